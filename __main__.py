"""gpu-inference: config -> plan -> components -> exports."""

import pulumi

from components import (
    Cluster,
    ClusterArgs,
    GpuEnablement,
    GpuEnablementArgs,
    GpuNodeGroup,
    GpuNodeGroupArgs,
    VllmModel,
    VllmModelArgs,
)
from components.gpu_enablement import gfd_runs_on
from components.labels import common_tags
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
        ),
    )
    for group in placement.node_groups
}

gfd_groups = gfd_runs_on({group.name: group.config.ami_type for group in placement.node_groups})
gpu_enablement = (
    GpuEnablement(
        "gpu-enablement",
        GpuEnablementArgs(node_groups=sorted(gfd_groups), provider=cluster.provider, depends_on=cluster.ready),
    )
    if gfd_groups
    else None
)

for model in placement.models:
    VllmModel(
        model.name,
        VllmModelArgs(
            model=model,
            instance=placement.node_group(model.node_group).instance,
            namespace=cluster.namespace.metadata["name"],
            provider=cluster.provider,
            gfd=model.node_group in gfd_groups,
            client_namespaces=model.config.client_namespaces
            if model.config.client_namespaces is not None
            else config.cluster.client_namespaces,
            hf_token=loaded.hf_token,
            depends_on=[node_groups[model.node_group], *([gpu_enablement] if gpu_enablement else [])],
        ),
    )

# 3. Exports: the contract other teams read (stack/outputs.py).
export_outputs(placement, cluster_name=cluster.name, kubeconfig=cluster.kubeconfig)
