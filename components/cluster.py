"""The Kubernetes cluster the servers run in: created with pulumi-eks, or adopted.

On a created cluster the VPC CNI enforces NetworkPolicies: pulumi-eks passes ``enableNetworkPolicy``
to its VPC CNI add-on only when it is set (``VpcCniAddon``, ``mergeConfigurationValues``) and the
add-on's default is off, so it is set here. ``kube-system/aws-node`` gets the CNI policy through
EKS Pod Identity (the agent add-on and an association made before any node joins) instead of the
node role, which pods could otherwise reach. On an adopted cluster both are the platform's: the
config declares them (``cluster.existing.networkPolicyEnforced``, ``awsNodeCredentials``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.iam import node_metadata_options, node_role, pod_identity_role
from components.labels import AWS_NODE_NAMESPACE, AWS_NODE_SERVICE_ACCOUNT, CNI_POLICY_ARN, ROLE_LABEL
from stack.config import ClusterConfig
from stack.project import PROJECT
from stack.stack_reference_name import required_output


@dataclass
class ClusterArgs:
    """What the Cluster component needs.

    ``config`` is the validated ``cluster`` config object. ``kubeconfig`` is the
    ``gpu-inference:kubeconfig`` secret, required when adopting a cluster with
    ``existing.source: kubeconfig``. ``tags`` go on every AWS resource created.
    """

    config: ClusterConfig
    kubeconfig: pulumi.Input[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _kubeconfig_text(value: Any) -> str:
    """A cluster stack may export the kubeconfig as an object (pulumi-eks does) or as text."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class Cluster(pulumi.ComponentResource):
    """An EKS cluster (API authentication mode, a small system node group) or an adopted one.

    Exposes ``name``, ``kubeconfig`` (secret), ``subnet_ids`` (where GPU node groups launch),
    ``provider`` (a Kubernetes provider for that cluster), ``namespace`` (the servers'
    namespace, created here), ``ready`` (resources that must exist before nodes and workloads)
    and ``cni_policy_on_node_role`` (whether node roles must carry the CNI policy).
    """

    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    subnet_ids: pulumi.Output[list]
    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    ready: list[pulumi.Resource]
    cni_policy_on_node_role: bool

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:Cluster", name, None, opts)
        config = args.config
        self.ready = []
        self.pod_identity_agent: aws.eks.Addon | None = None  # adopted clusters: the platform runs it
        self.cni_policy_on_node_role = (
            config.existing is not None and config.existing.aws_node_credentials == "nodeRole"
        )
        if config.create is not None:
            self._create(name, args)
        else:
            self._adopt(name, args)

        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            delete_unreachable=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.ready),
        )
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-{config.namespace}",
            metadata={
                "name": config.namespace,
                "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": PROJECT},
            },
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=self.ready),
        )
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig, "subnetIds": self.subnet_ids})

    def _create(self, name: str, args: ClusterArgs) -> None:
        create = args.config.create
        assert create is not None
        if create.network_stack is not None:
            network = pulumi.StackReference(
                f"{name}-network", stack_name=create.network_stack.name, opts=pulumi.ResourceOptions(parent=self)
            )
            ns, where = create.network_stack, "cluster.create.networkStack"
            vpc_id = required_output(network, ns.vpc_id_output, ns.name, f"{where}.vpcIdOutput")
            subnet_ids = required_output(network, ns.subnet_ids_output, ns.name, f"{where}.subnetIdsOutput")
            public_subnet_ids = (
                required_output(network, ns.public_subnet_ids_output, ns.name, f"{where}.publicSubnetIdsOutput")
                if ns.public_subnet_ids_output
                else None
            )
        else:
            vpc_id = create.vpc_id
            subnet_ids = create.subnet_ids
            public_subnet_ids = create.public_subnet_ids

        network_args: dict[str, Any] = {"vpc_id": vpc_id}
        if public_subnet_ids is not None:
            network_args.update(private_subnet_ids=subnet_ids, public_subnet_ids=public_subnet_ids)
        else:
            network_args.update(subnet_ids=subnet_ids)

        cluster = eks.Cluster(
            f"{name}-eks",
            name=create.name,
            version=create.version,
            authentication_mode=eks.AuthenticationMode.API,
            skip_default_node_group=True,
            endpoint_public_access=create.endpoint_public_access,
            endpoint_private_access=True,
            node_associate_public_ip_address=False,
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
            **network_args,
        )
        self.name = pulumi.Output.from_input(create.name)
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.subnet_ids = pulumi.Output.from_input(subnet_ids)

        # aws-node's credentials, in place before the first node (and its aws-node pod) starts.
        agent = aws.eks.Addon(
            f"{name}-pod-identity-agent",
            cluster_name=create.name,
            addon_name="eks-pod-identity-agent",
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]),
        )
        cni_role, cni_attachment = pod_identity_role(
            f"{name}-aws-node", self, args.tags, CNI_POLICY_ARN, "VPC CNI (kube-system/aws-node) via EKS Pod Identity"
        )
        cni_association = aws.eks.PodIdentityAssociation(
            f"{name}-aws-node",
            cluster_name=create.name,
            namespace=AWS_NODE_NAMESPACE,
            service_account=AWS_NODE_SERVICE_ACCOUNT,
            role_arn=cni_role.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, cni_attachment]),
        )

        system = create.system_node_group
        role, attachments = node_role(f"{name}-system", self, args.tags)
        system_template = aws.ec2.LaunchTemplate(
            f"{name}-system-lt",
            description=f"system node group of {create.name}",
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=system.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=node_metadata_options(),
            update_default_version=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        system_nodes = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=create.name,
            node_role_arn=role.arn,
            subnet_ids=subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=[system.instance_type],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=system_template.id, version=system_template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=system.min_nodes, min_size=system.min_nodes, max_size=system.max_nodes
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={ROLE_LABEL: "system"},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, *attachments, agent, cni_association]),
        )
        # pulumi-eks only creates the CoreDNS add-on when it creates a default node group (it
        # would stay DEGRADED with no node to run on); here it follows the system nodes.
        coredns = aws.eks.Addon(
            f"{name}-coredns",
            cluster_name=create.name,
            addon_name="coredns",
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster, system_nodes]),
        )
        self.ready = [cluster, agent, cni_association, system_nodes, coredns]
        self.pod_identity_agent = agent

    def _adopt(self, name: str, args: ClusterArgs) -> None:
        existing = args.config.existing
        assert existing is not None
        if existing.source == "kubeconfig":
            if args.kubeconfig is None:
                raise ValueError("existing.source kubeconfig needs the gpu-inference:kubeconfig secret")
            self.name = pulumi.Output.from_input(existing.cluster_name)
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
            self.subnet_ids = pulumi.Output.from_input(existing.subnet_ids)
            return
        platform = pulumi.StackReference(
            f"{name}-platform", stack_name=existing.stack, opts=pulumi.ResourceOptions(parent=self)
        )
        outputs, stack = existing.outputs, existing.stack
        self.name = required_output(platform, outputs.cluster_name, stack, "cluster.existing.outputs.clusterName")
        self.kubeconfig = pulumi.Output.secret(
            required_output(platform, outputs.kubeconfig, stack, "cluster.existing.outputs.kubeconfig").apply(
                _kubeconfig_text
            )
        )
        self.subnet_ids = (
            pulumi.Output.from_input(existing.subnet_ids)
            if existing.subnet_ids
            else required_output(platform, outputs.node_subnet_ids, stack, "cluster.existing.outputs.nodeSubnetIds")
        )
