"""An EKS managed node group of GPU nodes, sized from the plan.

pulumi-aws resources are used directly (not pulumi-eks's ManagedNodeGroup, a remote component
whose children tests could not see). Every group gets a launch template, if only to require
IMDSv2 with a hop limit of 1 (without one, EKS's own template lets pods reach the node role's
credentials); the disk size then lives in the launch template, not on the node group.

Placement: EFA groups get a cluster placement group made here, except where a capacity
reservation or Capacity Block decides placement itself (``NodeGroupConfig.creates_placement_group``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.engines import engine_for
from components.iam import node_metadata_options, node_role
from components.labels import (
    AL2023_NVIDIA,
    BOTTLEROCKET_NVIDIA,
    GPU_LABEL,
    GPU_PRESENT_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_TAINT_EFFECT_EKS,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    NODE_GROUP_LABEL,
)
from components.node_user_data import node_group_user_data, user_data_base64
from components.server_pod import startup_seconds
from stack.capacity_block import CapacityBlockSchedule
from stack.placement import ModelPlacement, NodeGroupPlacement

# The label the Cluster Autoscaler's AWS provider reads to know a node has GPUs still being
# advertised (it waits for the device plugin instead of adding another node).
AWS_GPU_LABEL = "k8s.amazonaws.com/accelerator"

# The volume containers and images live on: AL2023 has one root volume; Bottlerocket keeps
# images and container storage on its second (data) volume.
DATA_DEVICE = {"AL2023_x86_64_NVIDIA": "/dev/xvda", BOTTLEROCKET_NVIDIA: "/dev/xvdb"}


# EKS drains one node at a time (maxUnavailable 1) and fails the update with PodEvictionFailure when
# a pod cannot be evicted within 15 minutes (EKS User Guide, "Understand each phase of node updates").
EKS_EVICTION_TIMEOUT_S = 15 * 60


def eviction_blockers(group: NodeGroupPlacement, models: Sequence[ModelPlacement]) -> list[tuple[str, int]]:
    """Models whose PodDisruptionBudget (maxUnavailable 1) would hold a drain past EKS's 15 minutes:
    pods on more than one node, and a replacement that takes longer than that to become ready."""
    if group.desired_nodes < 2:
        return []
    return [
        (model.name, startup_seconds(engine_for(model), model))
        for model in models
        if model.pods >= 2 and startup_seconds(engine_for(model), model) > EKS_EVICTION_TIMEOUT_S
    ]


def accelerator_label(group: NodeGroupPlacement) -> str:
    return f"nvidia-{group.instance.gpu_name.lower()}"


def node_labels(group: NodeGroupPlacement) -> dict[str, str]:
    """Labels every node of the group carries from registration on."""
    gpu = group.instance.gpu
    return {
        GPU_PRESENT_LABEL: "true",
        GPU_PRODUCT_LABEL: gpu.product_label,
        GPU_LABEL: gpu.name,
        NODE_GROUP_LABEL: group.name,
        AWS_GPU_LABEL: accelerator_label(group),
    }


def node_group_options(opts: pulumi.ResourceOptions, autoscaled: bool) -> pulumi.ResourceOptions:
    """A node group the autoscaler (or a Capacity Block schedule) resizes: Pulumi sets the desired
    size at creation and leaves it alone after, as it does a workload's replicas."""
    if not autoscaled:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"]))


def node_taints() -> list[aws.eks.NodeGroupTaintArgs]:
    """``nvidia.com/gpu=true:NoSchedule``, in the EKS API's spelling."""
    return [aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect=GPU_TAINT_EFFECT_EKS)]


# EFA registers (pins) host memory, which counts against RLIMIT_MEMLOCK unless the process holds
# CAP_IPC_LOCK (the servers drop every capability). On AL2023 containers get containerd's limit:
# the AMI's base runtime spec sets RLIMIT_NOFILE only (amazon-eks-ami nodeadm/internal/containerd/
# base-runtime-spec.json), and libfabric then fails with "Cannot allocate memory" (-12). nodeadm
# merges a NodeConfig's baseRuntimeSpec over that default, replacing its rlimits list, so the
# default RLIMIT_NOFILE is restated. Bottlerocket raises the limit itself where EFA is attached.
AL2023_DEFAULT_NOFILE = {"type": "RLIMIT_NOFILE", "soft": 65536, "hard": 1048576}
MEMLOCK_LIMIT_BYTES = 2**53  # effectively unlimited; exact through nodeadm's float64 JSON round trip


def efa_node_config() -> dict[str, Any]:
    """An AL2023 NodeConfig part (EKS merges it with its own) raising the containers' locked-memory limit."""
    return {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {
            "containerd": {
                "baseRuntimeSpec": {
                    "process": {
                        "rlimits": [
                            AL2023_DEFAULT_NOFILE,
                            {"type": "RLIMIT_MEMLOCK", "soft": MEMLOCK_LIMIT_BYTES, "hard": MEMLOCK_LIMIT_BYTES},
                        ]
                    }
                }
            }
        },
    }


def efa_network_interfaces(
    count: int, security_group_ids: pulumi.Input[Sequence[str]]
) -> list[aws.ec2.LaunchTemplateNetworkInterfaceArgs]:
    """One EFA interface per network card: an ``efa`` interface (EFA with ENA, the node's IP) on
    card 0, device 0; ``efa-only`` interfaces (no IP address) on device 1 of every other card, as
    the EC2 User Guide's EFA configuration for P5 instances (use case 1) sets them. ``efa`` on
    every card would take one subnet IP per card, 32 per p5 node."""
    return [
        aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            device_index=0 if card == 0 else 1,
            network_card_index=card,
            interface_type="efa" if card == 0 else "efa-only",
            delete_on_termination="true",
            security_groups=security_group_ids,
        )
        for card in range(count)
    ]


@dataclass
class GpuNodeGroupArgs:
    """What a GPU node group needs.

    ``placement`` is the group's config with the node count the plan needs; ``cluster_name``
    and ``subnet_ids`` say where nodes join and launch; ``depends_on`` holds what must exist
    first (the cluster). ``tags`` go on every AWS resource. ``cni_policy_on_node_role`` gives
    the node role ``AmazonEKS_CNI_Policy``, for adopted clusters whose aws-node uses the node role.
    ``models`` are the models placed on the group (for the update warning). ``autoscaled``: the
    Cluster Autoscaler resizes the group; ``capacity_block``: the block's schedule (its size now; the
    scheduled actions are ``components.capacity_block.CapacityBlockScaling``).
    """

    placement: NodeGroupPlacement
    cluster_name: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    cni_policy_on_node_role: bool = False
    models: list[ModelPlacement] = field(default_factory=list)
    autoscaled: bool = False
    capacity_block: CapacityBlockSchedule | None = None


class GpuNodeGroup(pulumi.ComponentResource):
    """Node role, launch template, optional placement group / EFA security group, node group."""

    node_group: aws.eks.NodeGroup
    launch_template: aws.ec2.LaunchTemplate
    placement_group: aws.ec2.PlacementGroup | None

    def __init__(self, name: str, args: GpuNodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:GpuNodeGroup", name, None, opts)
        group = args.placement
        config = group.config
        instance = group.instance
        block = args.capacity_block
        tags = {**args.tags, "gpu-inference:node-group": group.name}
        child = pulumi.ResourceOptions(parent=self)

        role, attachments = node_role(name, self, tags, cni_policy=args.cni_policy_on_node_role)
        self.placement_group = None

        launch_template_args: dict[str, Any] = {}
        if config.creates_placement_group:
            self.placement_group = aws.ec2.PlacementGroup(f"{name}-cluster", strategy="cluster", tags=tags, opts=child)
            launch_template_args["placement"] = aws.ec2.LaunchTemplatePlacementArgs(
                group_name=self.placement_group.name
            )
        elif config.existing_placement_group is not None:
            launch_template_args["placement"] = aws.ec2.LaunchTemplatePlacementArgs(
                group_name=config.existing_placement_group
            )
        if config.efa:
            cluster = aws.eks.get_cluster_output(
                name=args.cluster_name, opts=pulumi.InvokeOutputOptions(parent=self, depends_on=args.depends_on)
            )
            efa_sg = aws.ec2.SecurityGroup(
                f"{name}-efa",
                description=f"EFA traffic between the nodes of {group.name}",
                vpc_id=cluster.vpc_config.vpc_id,
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="-1", from_port=0, to_port=0, self=True, description="EFA from the group"
                    )
                ],
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="-1", from_port=0, to_port=0, self=True, description="EFA to the group"
                    ),
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"], description="all egress"
                    ),
                ],
                tags=tags,
                opts=child,
            )
            security_groups = pulumi.Output.all(cluster.vpc_config.cluster_security_group_id, efa_sg.id).apply(list)
            launch_template_args["network_interfaces"] = efa_network_interfaces(
                instance.efa_interfaces, security_groups
            )
        efa_parts = [efa_node_config()] if config.efa and config.ami_type == AL2023_NVIDIA else []
        user_data = node_group_user_data(config.ami_type, instance.name, efa_parts)
        if user_data is not None:
            launch_template_args["user_data"] = user_data_base64(user_data)
        if config.capacity_reservation_id is not None:
            launch_template_args["capacity_reservation_specification"] = (
                aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                    capacity_reservation_target=(
                        aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                            capacity_reservation_id=config.capacity_reservation_id
                        )
                    )
                )
            )
        if config.capacity_type == "CAPACITY_BLOCK":
            launch_template_args["instance_market_options"] = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(
                market_type="capacity-block"
            )

        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"GPU node group {group.name} ({instance.name})",
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=DATA_DEVICE[config.ami_type],
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=config.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=node_metadata_options(),
            update_default_version=True,
            tags=tags,
            opts=child,
            **launch_template_args,
        )
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_role_arn=role.arn,
            subnet_ids=config.subnet_ids or args.subnet_ids,
            ami_type=config.ami_type,
            capacity_type=config.capacity_type,
            instance_types=[instance.name],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=group.desired_nodes if block is None else block.desired_nodes_now,
                min_size=config.min_nodes if block is None else 0,
                max_size=config.max_nodes,
            ),
            # Reserved capacity has no room for EKS's default surge (new nodes first): MINIMAL replaces
            # old nodes before launching new ones (EKS API, NodegroupUpdateConfig.updateStrategy).
            update_config=aws.eks.NodeGroupUpdateConfigArgs(
                max_unavailable=1,
                update_strategy="MINIMAL" if config.capacity_reservation_id is not None else None,
            ),
            force_update_version=config.force_update_version,
            labels=node_labels(group),
            taints=node_taints(),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self.launch_template.id, version=self.launch_template.latest_version.apply(str)
            ),
            tags=tags,
            opts=node_group_options(
                pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *attachments]),
                args.autoscaled or block is not None,
            ),
        )
        blockers = [] if config.force_update_version else eviction_blockers(group, args.models)
        if blockers:
            ready = ", ".join(f"{model} (~{seconds // 60} min to become ready)" for model, seconds in blockers)
            pulumi.log.warn(
                f"nodeGroups[{group.index}] ({group.name}): an EKS update of this group (AMI release, launch template "
                f"change) will fail with PodEvictionFailure: EKS drains one node at a time and gives up when a pod "
                f"cannot be evicted within 15 minutes (EKS User Guide, 'Understand each phase of node updates'), and "
                f"the PodDisruptionBudget (maxUnavailable 1) of {ready} holds the next eviction until the replaced pod "
                f"is ready. Set nodeGroups[{group.index}].forceUpdateVersion: true to let EKS replace nodes anyway "
                "(fewer replicas serve during the update), or update the group in a maintenance window",
                resource=self,
            )
        self.register_outputs(
            {
                "nodeGroupName": self.node_group.node_group_name,
                "instanceType": instance.name,
                "nodes": group.desired_nodes,
            }
        )
