"""gpu-inference: config -> plan -> components -> exports."""

from datetime import UTC, datetime

import pulumi

from components import (
    Cluster,
    ClusterArgs,
    GpuEnablement,
    GpuEnablementArgs,
    GpuNodeGroup,
    GpuNodeGroupArgs,
    ModelServer,
    ModelServerArgs,
    SmokeTest,
    SmokeTestArgs,
)
from components.addons import (
    AddonArgs,
    EfaEnablement,
    EfaEnablementArgs,
    KaiScheduler,
    KaiSchedulerArgs,
    LeaderWorkerSetController,
)
from components.capacity_block import CapacityBlockScaling, CapacityBlockScheduleArgs, asg_name
from components.engines import engine_for
from components.keda import Keda, KedaArgs, ModelAutoscaler, ModelAutoscalerArgs, paused_outside_window, scaled_object
from components.labels import common_tags
from components.model_access import model_accesses
from components.monitoring import Monitoring, MonitoringArgs, scrape_ingress_rule
from components.node_autoscaling import (
    ClusterAutoscaler,
    ClusterAutoscalerArgs,
    node_autoscaler_checks,
    server_pod_annotations,
)
from components.prepull import prepull_per_group
from components.server_pod import LWS_API_VERSION, LWS_KIND, startup_seconds, workload_name
from stack.autoscaling_report import stack_report
from stack.config import ConfigError
from stack.outputs import export_outputs
from stack.program import load

# 1. Config and plan: everything is validated and sized before any resource is declared.
try:
    loaded = load()
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None
placement = loaded.placement
config = placement.config
tags = common_tags(pulumi.get_stack())

# Scaling and cost: the autoscalers' bounds checked against the node groups and reservations,
# the Capacity Block windows, $/hour and idle GPUs (stack.autoscaling_report).
report = stack_report(
    placement,
    startup_seconds={m.name: startup_seconds(engine_for(m), m) for m in placement.models},
    now=datetime.now(UTC),
)
autoscaled = [m for m in placement.models if report.model(m.name) is not None]
node_autoscaler = config.autoscaling.node_autoscaler if autoscaled else "none"
region = pulumi.Config("aws").get("region")
problems, warnings = node_autoscaler_checks(placement, region) if autoscaled else ([], [])
if report.problems or problems:
    raise pulumi.RunError(str(ConfigError([*report.problems, *problems])))
for warning in [*report.warnings, *warnings]:
    pulumi.log.warn(warning)

# 2. Components.
cluster = Cluster("cluster", ClusterArgs(config=config.cluster, kubeconfig=loaded.kubeconfig, tags=tags))

node_groups = {
    group.name: GpuNodeGroup(
        group.name,
        GpuNodeGroupArgs(
            placement=group,
            cluster_name=cluster.name,
            subnet_ids=cluster.subnet_ids,
            depends_on=cluster.ready,
            tags=tags,
            cni_policy_on_node_role=cluster.cni_policy_on_node_role,
            models=[m for m in placement.models if m.node_group == group.name],
            autoscaled=node_autoscaler == "clusterAutoscaler",
            capacity_block=report.capacity_block(group.name),
        ),
    )
    for group in placement.node_groups
}
for block in report.capacity_blocks:
    CapacityBlockScaling(
        f"{block.group}-capacity-block",
        CapacityBlockScheduleArgs(block, asg_name(node_groups[block.group].node_group)),
    )

gfd_groups = placement.gfd_node_groups
gpu_enablement = (
    GpuEnablement(
        "gpu-enablement",
        GpuEnablementArgs(node_groups=gfd_groups, provider=cluster.provider, depends_on=cluster.ready),
    )
    if gfd_groups
    else None
)

# Add-ons only where the plan needs them: the LeaderWorkerSet controller for multi-node models,
# the EFA device plugin on EFA groups, KAI Scheduler when the config asks to install it.
lws_controller = (
    LeaderWorkerSetController("leader-worker-set", AddonArgs(provider=cluster.provider, depends_on=cluster.ready))
    if placement.needs_leader_worker_set
    else None
)
efa_groups = placement.efa_node_groups
efa = (
    EfaEnablement(
        "efa-device-plugin",
        EfaEnablementArgs(provider=cluster.provider, depends_on=cluster.ready, node_groups=efa_groups),
    )
    if efa_groups
    else None
)
kai = (
    KaiScheduler(
        "kai-scheduler",
        KaiSchedulerArgs(provider=cluster.provider, depends_on=cluster.ready, queues=placement.kai_queues),
    )
    if config.cluster.scheduling.install
    else None
)

monitoring = (
    Monitoring(
        "monitoring",
        MonitoringArgs(
            config=config.monitoring,
            placement=placement,
            server_namespace=config.cluster.namespace,
            provider=cluster.provider,
            depends_on=[*cluster.ready, cluster.namespace],
        ),
    )
    if config.monitoring is not None
    else None
)
scrape = [scrape_ingress_rule(config.monitoring)] if config.monitoring is not None else []
# Node autoscaling: the Cluster Autoscaler resizes every GPU group between minNodes and maxNodes
# (its Pod Identity association relies on the cluster's eks-pod-identity-agent add-on, in cluster.ready).
if node_autoscaler == "clusterAutoscaler":
    ClusterAutoscaler(
        "cluster-autoscaler",
        ClusterAutoscalerArgs(
            cluster_name=cluster.name,
            region=region,
            groups=list(placement.node_groups),
            asg_names={name: asg_name(group.node_group) for name, group in node_groups.items()},
            provider=cluster.provider,
            depends_on=cluster.ready,
            tags=tags,
        ),
    )
keda = (
    Keda("keda", KedaArgs(provider=cluster.provider, depends_on=cluster.ready))
    if autoscaled and config.autoscaling.install_keda
    else None
)

# S3 sources: a Pod Identity role, read policy and ServiceAccount per model (or namespace).
accesses = model_accesses(
    placement.models,
    cluster_name=cluster.name,
    namespace=config.cluster.namespace,
    k8s_provider=cluster.provider,
    tags=tags,
    depends_on=[*([cluster.pod_identity_agent] if cluster.pod_identity_agent else []), cluster.namespace],
)

servers = {}
for model in placement.models:
    depends_on = [node_groups[model.node_group], *([gpu_enablement] if gpu_enablement else [])]
    if model.name in accesses:
        depends_on.append(accesses[model.name].association)
    if model.multi_node:
        depends_on += [lws_controller, *([efa] if efa else [])]
    if model.scheduling.kai and kai is not None:
        depends_on.append(kai)
    served = servers[model.name] = ModelServer(
        model.name,
        ModelServerArgs(
            model=model,
            instance=placement.node_group(model.node_group).instance,
            namespace=cluster.namespace.metadata["name"],
            provider=cluster.provider,
            gfd=model.node_group in gfd_groups,
            client_namespaces=placement.client_namespaces(model),
            secrets={"hfToken": loaded.hf_token, "ngcApiKey": loaded.ngc_api_key},
            depends_on=depends_on,
            extra_ingress=scrape,
            replicas=report.created_replicas(model),
            autoscaled=model in autoscaled,
            pod_annotations=server_pod_annotations(node_autoscaler),
        ),
    )
    auto = report.model(model.name)
    if auto is not None:
        block = report.capacity_block(model.node_group)
        ModelAutoscaler(
            f"{model.name}-autoscaler",
            ModelAutoscalerArgs(
                manifest=scaled_object(
                    auto,
                    name=model.name,
                    namespace=config.cluster.namespace,
                    target_api_version=LWS_API_VERSION if model.multi_node else "apps/v1",
                    target_kind=LWS_KIND if model.multi_node else "Deployment",
                    target_name=workload_name(model),
                    server_address=config.autoscaling.prometheus_server_address,
                    annotations=paused_outside_window(block.serving) if block is not None else None,
                ),
                provider=cluster.provider,
                depends_on=[*([keda.release] if keda else []), served.workload],
            ),
        )
    if report.created_replicas(model) > 0:
        SmokeTest(
            f"{model.name}-smoke",
            SmokeTestArgs(
                model=model,
                namespace=config.cluster.namespace,
                provider=cluster.provider,
                fingerprint=served.fingerprint,
                depends_on=[served.workload, served.service, *served.smoke_depends_on],
                service=served.smoke_service,
                wait_seconds=served.smoke_wait_seconds,
            ),
        )

prepull_per_group(placement, servers, namespace=cluster.namespace, provider=cluster.provider)
for name, served in servers.items():
    pulumi.log.info(f"start time {name}: {served.startup.describe()}")

# 3. Exports: the contract other teams read (stack/outputs.py).
export_outputs(placement, cluster_name=cluster.name, plan_extra=report.to_dict())
pulumi.export("cost", report.outputs())
