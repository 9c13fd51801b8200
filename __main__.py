"""gpu-inference: config -> plan -> components -> exports."""

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
from components.labels import common_tags
from components.monitoring import Monitoring, MonitoringArgs, scrape_ingress_rule
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
        ),
    )
    for group in placement.node_groups
}

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

for model in placement.models:
    depends_on = [node_groups[model.node_group], *([gpu_enablement] if gpu_enablement else [])]
    if model.multi_node:
        depends_on += [lws_controller, *([efa] if efa else [])]
    if model.scheduling.kai and kai is not None:
        depends_on.append(kai)
    served = ModelServer(
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
        ),
    )
    if model.config.replicas > 0:
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

# 3. Exports: the contract other teams read (stack/outputs.py).
export_outputs(placement, cluster_name=cluster.name)
