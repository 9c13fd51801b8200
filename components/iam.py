"""IAM roles: the one EKS managed nodes run with (system and GPU node groups), and the one the VPC
CNI's ``aws-node`` service account gets through EKS Pod Identity on clusters the stack creates."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.labels import CNI_POLICY_ARN, IMDS_HOP_LIMIT, NODE_POLICY_ARNS

EC2_ASSUME_ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    },
    sort_keys=True,
)


# EKS Pod Identity's trust policy (EKS User Guide, "Create a Pod Identity association").
PODS_ASSUME_ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    },
    sort_keys=True,
)


def node_metadata_options() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    """IMDSv2 only, hop limit 1: pods on the pod network cannot fetch the node role's credentials."""
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(
        http_tokens="required", http_put_response_hop_limit=IMDS_HOP_LIMIT, http_endpoint="enabled"
    )


def node_role(
    name: str, parent: pulumi.Resource, tags: dict[str, str], *, cni_policy: bool = False
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A node role with the worker, ECR read-only and SSM policies; the CNI policy only with
    ``cni_policy`` (an adopted cluster whose aws-node uses the node role)."""
    role = aws.iam.Role(
        f"{name}-node-role",
        assume_role_policy=EC2_ASSUME_ROLE,
        description=f"EKS managed node group {name}",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    arns = [*NODE_POLICY_ARNS, *([CNI_POLICY_ARN] if cni_policy else [])]
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{arn.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=arn,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for arn in arns
    ]
    return role, attachments


def pod_identity_role(
    name: str, parent: pulumi.Resource, tags: dict[str, str], policy_arn: str, description: str
) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
    """A role that a service account assumes through EKS Pod Identity, with one managed policy."""
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=PODS_ASSUME_ROLE,
        description=description,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachment = aws.iam.RolePolicyAttachment(
        f"{name}-{policy_arn.rsplit('/', 1)[-1]}",
        role=role.name,
        policy_arn=policy_arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return role, attachment
