"""GPU nodes that follow the pods: the Cluster Autoscaler on the managed node groups (default),
or Karpenter NodePools and EC2NodeClasses (builders only).

Why the Cluster Autoscaler is the default: the GPU node groups are EKS managed node groups whose
launch templates already carry what these instances need and what is verified here (the
capacity reservation target, the Capacity Block market type, a cluster placement group and one
EFA interface per network card). The Cluster Autoscaler only moves each group's desired size
between its minNodes and maxNodes, so every node it adds is launched by that same launch
template; EKS drains a node before its Auto Scaling group terminates it; and a Capacity Block's
window is handled by scheduled actions on the same Auto Scaling group (``components.capacity_block``).
Karpenter launches instances itself from an EC2NodeClass: each of those properties would be
re-expressed in its terms (``capacityReservationSelectorTerms``, ``karpenter.sh/capacity-type:
reserved``, ``networkInterfaces`` of type ``efa-only``, ``placementGroupSelector``) and re-proven;
its strengths (choosing among many instance types, bin-packing consolidation) buy little when a
group is one 8-GPU instance type bought in advance. The Karpenter objects are offered below for
clusters that already run it.

What the Cluster Autoscaler needs:

- auto-discovery tags on each group's Auto Scaling group (EKS puts
  ``k8s.io/cluster-autoscaler/enabled`` and ``k8s.io/cluster-autoscaler/<cluster>`` there itself);
- for scale from zero, ``node-template`` tags naming the labels, taint and GPUs a node would
  have: with no node to look at, the autoscaler cannot know a group's nodes tolerate the GPU
  taint and offer ``nvidia.com/gpu`` otherwise (``node_template_tags``);
- the priority expander: reserved and Capacity Block groups (paid for whether used or not)
  before on-demand, on-demand before spot (``expander_priorities``);
- an IAM role through EKS Pod Identity (no OIDC provider, no annotation on the service account);
- server pods marked ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``, so a node is
  removed only once its servers are gone (KEDA removed them), never under a loading server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.gpu_node_group import AWS_GPU_LABEL, accelerator_label, node_labels
from components.helm import pinned_release
from components.iam import PODS_ASSUME_ROLE
from components.labels import EFA_RESOURCE, GPU_RESOURCE, GPU_TAINT_EFFECT, GPU_TAINT_KEY, GPU_TAINT_VALUE
from stack.autoscaling_config import AutoscalingConfig
from stack.autoscaling_plan import replica_bounds
from stack.placement import NodeGroupPlacement, Placement

CLUSTER_AUTOSCALER_CHART = "cluster-autoscaler"
CLUSTER_AUTOSCALER_CHART_REPO = "https://kubernetes.github.io/autoscaler"
CLUSTER_AUTOSCALER_CHART_VERSION = "9.51.0"  # kubernetes/autoscaler charts/cluster-autoscaler (appVersion 1.33.0)
# The autoscaler's minor must match the cluster's Kubernetes minor: move this with the cluster.
CLUSTER_AUTOSCALER_IMAGE_TAG = "v1.33.0"
CLUSTER_AUTOSCALER_NAMESPACE = "kube-system"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"

TAG_PREFIX = "k8s.io/cluster-autoscaler"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
KARPENTER_DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"

# A p5 takes minutes to boot, join and load its drivers; the default 15 min can give up early.
MAX_NODE_PROVISION_TIME = "25m"

PRIORITY_RESERVED = 100
PRIORITY_ON_DEMAND = 50
PRIORITY_SPOT = 10


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def cluster_autoscaler_version_problem(kubernetes_version: str | None) -> str | None:
    """The autoscaler supports the Kubernetes minor it was built for; a mismatch is a config error."""
    if kubernetes_version is None:
        return None
    wanted = ".".join(CLUSTER_AUTOSCALER_IMAGE_TAG.lstrip("v").split(".")[:2])
    have = ".".join(kubernetes_version.lstrip("v").split(".")[:2])
    if have == wanted:
        return None
    return (
        f"cluster.create.version: {kubernetes_version} needs the Cluster Autoscaler {have}.x, but the stack pins "
        f"{CLUSTER_AUTOSCALER_IMAGE_TAG} (Kubernetes {wanted}): move CLUSTER_AUTOSCALER_IMAGE_TAG and the chart with "
        f"the cluster, or set the cluster version to {wanted}"
    )


def node_autoscaler_checks(placement: Placement, region: str | None) -> tuple[list[str], list[str]]:
    """(problems, warnings) of installing the Cluster Autoscaler for this stack's config."""
    config = placement.config
    problems: list[str] = []
    warnings: list[str] = []
    choice = config.autoscaling.node_autoscaler
    if choice == "karpenter":
        problems.append(
            "autoscaling.nodeAutoscaler: karpenter is not wired in this stack yet (only its NodePool and EC2NodeClass "
            "builders exist, components.node_autoscaling.node_pool/ec2_node_class): use clusterAutoscaler, or none "
            "for a cluster whose platform scales the GPU node groups"
        )
    if choice != "clusterAutoscaler":
        return problems, warnings
    if region is None:
        problems.append("aws:region: required to install the Cluster Autoscaler (its AWS provider's region)")
    if config.cluster.create is not None:
        if problem := cluster_autoscaler_version_problem(config.cluster.create.version):
            problems.append(problem)
    else:
        warnings.append(
            "the Cluster Autoscaler gets its AWS credentials through EKS Pod Identity: the adopted cluster must run "
            f"the eks-pod-identity-agent add-on, and Kubernetes {_minor(CLUSTER_AUTOSCALER_IMAGE_TAG)} (the "
            "autoscaler's minor must match the cluster's)"
        )
    return problems, warnings


def discovery_tags(cluster_name: str) -> dict[str, str]:
    return {f"{TAG_PREFIX}/enabled": "true", f"{TAG_PREFIX}/{cluster_name}": "owned"}


def node_template_tags(group: NodeGroupPlacement) -> dict[str, str]:
    """What a node of the group would look like, for scale-up from zero nodes."""
    labels = {**node_labels(group), AWS_GPU_LABEL: accelerator_label(group)}
    tags = {f"{TAG_PREFIX}/node-template/label/{key}": value for key, value in labels.items()}
    tags[f"{TAG_PREFIX}/node-template/taint/{GPU_TAINT_KEY}"] = f"{GPU_TAINT_VALUE}:{GPU_TAINT_EFFECT}"
    tags[f"{TAG_PREFIX}/node-template/resources/{GPU_RESOURCE}"] = str(group.instance.gpus_per_node)
    if group.config.efa:
        tags[f"{TAG_PREFIX}/node-template/resources/{EFA_RESOURCE}"] = str(group.instance.efa_interfaces)
    return tags


def group_priority(group: NodeGroupPlacement) -> int:
    config = group.config
    if config.capacity_type == "SPOT":
        return PRIORITY_SPOT
    if config.capacity_type == "CAPACITY_BLOCK" or config.capacity_reservation_id is not None:
        return PRIORITY_RESERVED
    return PRIORITY_ON_DEMAND


def expander_priorities(groups: Sequence[NodeGroupPlacement]) -> dict[str, list[str]]:
    """Priority -> regexes of Auto Scaling group names (EKS names them ``eks-<node group>-<uuid>``).
    The keys are strings: Helm values travel as a protobuf Struct, whose keys must be."""
    out: dict[int, list[str]] = {}
    for group in groups:
        out.setdefault(group_priority(group), []).append(f"^eks-{group.name}-.*")
    out.setdefault(1, []).append(".*")  # every other group (the system nodes) last
    return {str(priority): sorted(patterns) for priority, patterns in sorted(out.items(), reverse=True)}


def cluster_autoscaler_values(cluster_name: str, region: str, groups: Sequence[NodeGroupPlacement]) -> dict[str, Any]:
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": CLUSTER_AUTOSCALER_IMAGE_TAG},
        "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
        "expanderPriorities": expander_priorities(groups),
        "extraArgs": {
            "expander": "priority,least-waste",
            "balance-similar-node-groups": True,
            "skip-nodes-with-local-storage": False,  # servers keep caches in emptyDir
            "max-node-provision-time": MAX_NODE_PROVISION_TIME,
        },
    }


def cluster_autoscaler_policy(cluster_name: str) -> str:
    """Read everything; change sizes only of the groups tagged as this cluster's (the AWS provider's
    documented least-privilege policy), narrowed to EKS's Auto Scaling groups (``eks-<group>-<uuid>``)
    and this cluster's node groups, the resources those actions take (parliament finds no ``*`` left
    where an action has resource-level permissions)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                    ],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["eks:DescribeNodegroup"],
                    "Resource": f"arn:aws:eks:*:*:nodegroup/{cluster_name}/*/*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Resource": "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/eks-*",
                    "Condition": {"StringEquals": {f"aws:ResourceTag/{TAG_PREFIX}/{cluster_name}": "owned"}},
                },
            ],
        },
        sort_keys=True,
    )


POD_IDENTITY_TRUST = PODS_ASSUME_ROLE


def server_pod_annotations(node_autoscaler: str) -> dict[str, str]:
    """On every server pod: its node is never removed under it (it leaves when KEDA removes it)."""
    if node_autoscaler == "karpenter":
        return {KARPENTER_DO_NOT_DISRUPT: "true"}
    if node_autoscaler == "clusterAutoscaler":
        return {SAFE_TO_EVICT: "false"}
    return {}


@dataclass
class ClusterAutoscalerArgs:
    """``groups`` the GPU node groups it scales; ``asg_names`` their Auto Scaling group names
    (``aws.eks.NodeGroup.resources[0].autoscaling_groups[0].name``) for the node-template tags."""

    cluster_name: pulumi.Input[str]
    region: str
    groups: list[NodeGroupPlacement]
    asg_names: Mapping[str, pulumi.Input[str]]
    provider: k8s.Provider
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class ClusterAutoscaler(pulumi.ComponentResource):
    """IAM role through EKS Pod Identity, node-template tags on each GPU group, the pinned chart."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=POD_IDENTITY_TRUST,
            description="Cluster Autoscaler (EKS Pod Identity)",
            tags=args.tags,
            opts=child,
        )
        cluster_name = pulumi.Output.from_input(args.cluster_name)
        aws.iam.RolePolicy(
            f"{name}-policy", role=role.id, policy=cluster_name.apply(cluster_autoscaler_policy), opts=child
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=CLUSTER_AUTOSCALER_NAMESPACE,
            service_account=CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
            role_arn=role.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        for group in args.groups:
            for index, (key, value) in enumerate(sorted(node_template_tags(group).items())):
                aws.autoscaling.Tag(
                    f"{name}-{group.name}-tag-{index}",
                    autoscaling_group_name=args.asg_names[group.name],
                    tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                    opts=child,
                )
        self.release = pinned_release(
            name,
            parent=self,
            provider=args.provider,
            depends_on=[*args.depends_on, association],
            release_name=CLUSTER_AUTOSCALER_CHART,
            chart=CLUSTER_AUTOSCALER_CHART,
            version=CLUSTER_AUTOSCALER_CHART_VERSION,
            repo=CLUSTER_AUTOSCALER_CHART_REPO,
            namespace=CLUSTER_AUTOSCALER_NAMESPACE,
            values=cluster_name.apply(lambda cluster: cluster_autoscaler_values(cluster, args.region, args.groups)),
        )
        self.register_outputs({"chartVersion": CLUSTER_AUTOSCALER_CHART_VERSION, "roleArn": role.arn})


# --- Karpenter (offered, not the default) --------------------------------------------------------

KARPENTER_API_VERSION = "karpenter.sh/v1"
KARPENTER_AWS_API_VERSION = "karpenter.k8s.aws/v1"
KARPENTER_VERSION = "1.14.1"  # the release whose CRDs the tests validate against
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
KARPENTER_CAPACITY = {"ON_DEMAND": "on-demand", "SPOT": "spot", "CAPACITY_BLOCK": "reserved"}


def pool_gpu_limit(placement: Placement, group: str, autoscaling: Mapping[str, AutoscalingConfig]) -> int:
    """The GPUs a pool may hold: every model of the group at maxReplicas x its GPUs per replica."""
    return sum(
        replica_bounds(m, autoscaling.get(m.name))[1] * m.plan.gpus for m in placement.models if m.node_group == group
    )


def node_pool(group: NodeGroupPlacement, gpu_limit: int, node_class: str | None = None) -> dict[str, Any]:
    config = group.config
    capacity = "reserved" if config.capacity_reservation_id else KARPENTER_CAPACITY[config.capacity_type]
    return {
        "apiVersion": KARPENTER_API_VERSION,
        "kind": "NodePool",
        "metadata": {"name": group.name},
        "spec": {
            "template": {
                "metadata": {"labels": {**node_labels(group), AWS_GPU_LABEL: accelerator_label(group)}},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": node_class or group.name,
                    },
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [group.instance.name]},
                        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": [capacity]},
                    ],
                    "taints": [{"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT}],
                    "expireAfter": "Never",  # a GPU node is replaced on purpose, not on a timer
                },
            },
            # Only empty nodes go (servers carry karpenter.sh/do-not-disrupt), and one at a time.
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": "10m",
                "budgets": [{"nodes": "1"}],
            },
            "limits": {GPU_RESOURCE: str(gpu_limit)},
        },
    }


def ec2_node_class(
    group: NodeGroupPlacement,
    *,
    cluster_name: str,
    node_role: str,
    ami_alias: str,
    placement_group: str | None = None,
) -> dict[str, Any]:
    """``ami_alias`` pinned (``al2023@vYYYYMMDD``), never ``@latest``: a new AMI would replace every
    GPU node. Subnets and security groups by the cluster's discovery tag."""
    config = group.config
    discovery = {"karpenter.sh/discovery": cluster_name}
    spec: dict[str, Any] = {
        "amiSelectorTerms": [{"alias": ami_alias}],
        "role": node_role,
        "subnetSelectorTerms": [{"id": s} for s in config.subnet_ids] if config.subnet_ids else [{"tags": discovery}],
        "securityGroupSelectorTerms": [{"tags": discovery}],
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": f"{config.disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True},
            }
        ],
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2, "httpEndpoint": "enabled"},
    }
    if config.capacity_reservation_id:
        spec["capacityReservationSelectorTerms"] = [{"id": config.capacity_reservation_id}]
    if config.efa:
        # The primary ENA on card 0, then one EFA-only device per network card (card 0's at index 1).
        spec["networkInterfaces"] = [{"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}] + [
            {"networkCardIndex": card, "deviceIndex": 1 if card == 0 else 0, "interfaceType": "efa-only"}
            for card in range(group.instance.efa_interfaces)
        ]
        if placement_group:
            spec["placementGroupSelector"] = {"name": placement_group}
    return {
        "apiVersion": KARPENTER_AWS_API_VERSION,
        "kind": "EC2NodeClass",
        "metadata": {"name": group.name},
        "spec": spec,
    }
