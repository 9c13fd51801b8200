"""The IAM role EKS managed nodes run with (shared by the system and GPU node groups)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.labels import NODE_POLICY_ARNS

EC2_ASSUME_ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    },
    sort_keys=True,
)


def node_role(
    name: str, parent: pulumi.Resource, tags: dict[str, str]
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A node role with the worker, CNI and ECR read-only policies attached."""
    role = aws.iam.Role(
        f"{name}-node-role",
        assume_role_policy=EC2_ASSUME_ROLE,
        description=f"EKS managed node group {name}",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{arn.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=arn,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for arn in NODE_POLICY_ARNS
    ]
    return role, attachments
