"""The stack's outputs: the contract other teams read through a ``StackReference``.

Exported keys, all plain values: endpoints and the plan, never cluster credentials. The
kubeconfig is not exported: every reader of a StackReference could read it (secrets included),
and consumers need only the URLs; a consumer deploys to its namespace with its own cluster
access, and operators get theirs with ``aws eks update-kubeconfig --name <clusterName>``.

- ``clusterName``: the EKS cluster name.
- ``namespace``: the namespace the servers run in.
- ``models``: ``{name: {url, servedModelName, tensorParallelSize, pipelineParallelSize, gpus,
  gpusPerPod, replicas, gpu, instanceType, nodeGroup, service, namespace, maxModelLen, engine,
  topology, nodesPerReplica, sizingAccounting}}``; ``url`` is ``http://<service>.<namespace>.svc.cluster.local:8000/v1``
  (OpenAI-compatible, vLLM or NIM alike); ``topology`` is ``deployment`` (one pod per replica) or
  ``leaderWorkerSet`` (``nodesPerReplica`` pods per replica, the Service on the leaders).
- ``nodeGroups``: ``{name: {instanceType, gpu, nodes, minNodes, maxNodes, efa}}``.
- ``plan``: the sizing plan of every model and node group, as a plain dict, with the autoscalers'
  bounds and targets, the Capacity Block windows and the cost (``stack.autoscaling_report``).
- ``cost``: ``{usdPerHour: {min, max, models: {name: [min, max]}, nodeGroups: {name: [min, max]}},
  idleGpus}``: $/hour at the minimum and maximum replicas and the GPUs paid for but idle at the
  minimum, so a pull request's preview diff shows what a change costs. An autoscaled model's
  ``models[name].replicas`` is the count it is created with (its ``minReplicas``, at least 1).
- ``clusterAssumptions``: ``{networkPolicyEnforced, networkPolicyEnforcedBy, awsNodeCredentials}``:
  whether the models' NetworkPolicies are enforced (``true`` on clusters the stack creates, where it
  turns on the VPC CNI's enforcement; on adopted clusters what ``cluster.existing.networkPolicyEnforced``
  declares, ``null`` when undeclared) and where ``kube-system/aws-node`` gets AWS credentials
  (``podIdentity`` made by the stack, or the adopted cluster's ``nodeRole`` / ``serviceAccount``).

``read_stack_outputs`` reads them back into the pydantic models below, for consumers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:  # consumers import this module without the sizing or the components
    from stack.placement import ModelPlacement, NodeGroupPlacement, Placement

CONTRACT_VERSION = 1
PORT = 8000  # the servers' port (components.server_pod uses this constant)


class _Out(BaseModel):
    # Consumers ignore keys added by later versions of the contract.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class ModelEndpoint(_Out):
    url: str
    served_model_name: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    gpus: int
    gpus_per_pod: int
    replicas: int
    gpu: str
    instance_type: str
    node_group: str
    service: str
    namespace: str
    max_model_len: int
    # Added in contract version 1 without a bump (defaults keep older producers readable).
    engine: str = "vllm"
    topology: str = "deployment"
    nodes_per_replica: int = 1
    # Which vLLM release's memory accounting the plan followed, and whether it was measured.
    sizing_accounting: str = ""


class NodeGroupInfo(_Out):
    instance_type: str
    gpu: str
    nodes: int
    min_nodes: int
    max_nodes: int
    efa: bool = False


class StackOutputs(_Out):
    contract_version: int
    cluster_name: str
    namespace: str
    models: dict[str, ModelEndpoint]
    node_groups: dict[str, NodeGroupInfo]


def service_url(service: str, namespace: str) -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{PORT}/v1"


def model_endpoint(model: ModelPlacement, namespace: str) -> ModelEndpoint:
    plan = model.plan
    return ModelEndpoint(
        url=service_url(model.name, namespace),
        served_model_name=model.served_model_name,
        tensor_parallel_size=plan.tensor_parallel_size,
        pipeline_parallel_size=plan.pipeline_parallel_size,
        gpus=plan.gpus,
        gpus_per_pod=plan.gpus_per_pod,
        replicas=model.config.replicas,
        gpu=plan.gpu,
        instance_type=plan.instance_type,
        node_group=model.node_group,
        service=model.name,
        namespace=namespace,
        max_model_len=plan.settings.max_model_len,
        engine=model.engine,
        topology="leaderWorkerSet" if model.multi_node else "deployment",
        nodes_per_replica=plan.nodes,
        sizing_accounting=model.sizing.label if model.sizing else "",
    )


def node_group_info(group: NodeGroupPlacement) -> NodeGroupInfo:
    return NodeGroupInfo(
        instance_type=group.instance.name,
        gpu=group.instance.gpu_name,
        nodes=group.desired_nodes,
        min_nodes=group.config.min_nodes,
        max_nodes=group.config.max_nodes,
        efa=group.config.efa,
    )


def cluster_assumptions(placement: Placement) -> dict[str, Any]:
    existing = placement.config.cluster.existing
    if existing is None:
        return {
            "networkPolicyEnforced": True,
            "networkPolicyEnforcedBy": "VPC CNI enableNetworkPolicy, set by this stack",
            "awsNodeCredentials": "podIdentity",
        }
    declared = existing.network_policy_enforced
    return {
        "networkPolicyEnforced": declared,
        "networkPolicyEnforcedBy": "not declared"
        if declared is None
        else "declared by cluster.existing.networkPolicyEnforced",
        "awsNodeCredentials": existing.aws_node_credentials,
    }


def plain_outputs(placement: Placement) -> dict[str, Any]:
    """Every output except ``clusterName``, as plain JSON-able values."""
    namespace = placement.config.cluster.namespace
    return {
        "contractVersion": CONTRACT_VERSION,
        "namespace": namespace,
        "models": {m.name: model_endpoint(m, namespace).model_dump(by_alias=True) for m in placement.models},
        "nodeGroups": {g.name: node_group_info(g).model_dump(by_alias=True) for g in placement.node_groups},
        "plan": placement.to_dict(),
        "clusterAssumptions": cluster_assumptions(placement),
    }


def export_outputs(
    placement: Placement, cluster_name: pulumi.Input[str], plan_extra: dict[str, Any] | None = None
) -> None:
    """``plan_extra``: more of the plan (autoscaling, Capacity Blocks, cost) beside its models and groups."""
    for key, value in plain_outputs(placement).items():
        pulumi.export(key, {**value, **(plan_extra or {})} if key == "plan" else value)
    pulumi.export("clusterName", cluster_name)


OUTPUT_KEYS = ("contractVersion", "clusterName", "namespace", "models", "nodeGroups")


def parse_outputs(values: dict[str, Any]) -> StackOutputs:
    """Validate a dict of the stack's outputs (as ``pulumi stack output --json`` prints them)."""
    return StackOutputs.model_validate({key: values.get(key) for key in OUTPUT_KEYS})


def read_stack_outputs(
    stack_name: str, opts: pulumi.ResourceOptions | None = None
) -> tuple[pulumi.StackReference, pulumi.Output[StackOutputs]]:
    """Read a gpu-inference stack's outputs through a StackReference, typed.

    Returns the reference (for outputs added by later contract versions) and the plain outputs
    parsed into ``StackOutputs``.
    """
    ref = pulumi.StackReference(stack_name, opts=opts)
    outputs = pulumi.Output.all(*(ref.get_output(key) for key in OUTPUT_KEYS)).apply(
        lambda values: parse_outputs(dict(zip(OUTPUT_KEYS, values, strict=True)))
    )
    return ref, outputs
