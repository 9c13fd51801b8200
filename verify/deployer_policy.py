"""The IAM policy a deployer needs for ``pulumi up`` / ``destroy``, derived from the AWS resource
types the stacks create.

``RESOURCE_ACTIONS`` maps each Pulumi resource type the program registers to the IAM actions its
create, read, update and delete call (as pulumi-aws 7.51 implements them), each on the ARN
pattern the action authorizes and under a named condition where IAM offers one. The
multi-language ``eks:index:Cluster`` is one registration under the mocks; what it creates inside,
for the arguments ``components.cluster`` passes (pulumi-eks 4.4.0, ``nodejs/eks/cluster/cluster.ts``:
service role + AmazonEKSClusterPolicy, cluster and node security groups with their rules, the
cluster, the vpc-cni / kube-proxy / coredns add-ons; no default node group, no OIDC provider,
no access entries) is ``REMOTE_CHILDREN``. Invokes and provider start-up are ``INVOKE_ACTIONS``.

``policy_document()`` groups the actions into statements by ARN pattern and condition;
``docs/iam/deployer-policy.json`` is its output, committed (``python -m verify.deployer_policy
--write``). The tests check that every AWS type a stack registers has a row here (a new type
without one fails), that the committed file is this module's output, and that parliament finds
nothing in it. Kubernetes objects need no IAM: the deployer reaches the cluster as its creator
(EKS access entry with cluster-admin) or, on an adopted cluster, through its own access entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.labels import CNI_POLICY_ARN, NODE_POLICY_ARNS

ROOT = Path(__file__).resolve().parent.parent
POLICY_FILE = ROOT / "docs" / "iam" / "deployer-policy.json"

EKS_CLUSTER_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"  # pulumi-eks's service role
MANAGED_POLICY_ARNS = tuple(sorted({EKS_CLUSTER_POLICY_ARN, CNI_POLICY_ARN, *NODE_POLICY_ARNS}))

# ARN patterns, as the IAM service authorization reference names the resource types.
ANY = "*"
EKS_CLUSTER = "arn:aws:eks:*:*:cluster/*"
EKS_NODEGROUP = "arn:aws:eks:*:*:nodegroup/*/*/*"
EKS_ADDON = "arn:aws:eks:*:*:addon/*/*/*"
EKS_POD_IDENTITY = "arn:aws:eks:*:*:podidentityassociation/*/*"
IAM_ROLE = "arn:aws:iam::*:role/*"
IAM_SERVICE_LINKED_ROLES = "arn:aws:iam::*:role/aws-service-role/*"
EC2_LAUNCH_TEMPLATE = "arn:aws:ec2:*:*:launch-template/*"
EC2_SECURITY_GROUP = "arn:aws:ec2:*:*:security-group/*"
EC2_SECURITY_GROUP_RULE = "arn:aws:ec2:*:*:security-group-rule/*"
EC2_PLACEMENT_GROUP = "arn:aws:ec2:*:*:placement-group/*"
EC2_VPC = "arn:aws:ec2:*:*:vpc/*"
# EKS names a managed node group's Auto Scaling group eks-<node group>-<uuid>.
EKS_ASG = "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/eks-*"

# Named conditions: who a role may be passed to, which managed policies may be attached, which
# service-linked roles may be created.
CONDITIONS: dict[str, dict[str, Any]] = {
    "passToEks": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "eks.amazonaws.com"]}},
    "passToPodIdentity": {"StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}},
    "managedPolicies": {"ArnEquals": {"iam:PolicyARN": list(MANAGED_POLICY_ARNS)}},
    "eksServiceLinkedRoles": {
        "StringEquals": {"iam:AWSServiceName": ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com"]}
    },
}


@dataclass(frozen=True)
class Need:
    action: str
    resources: tuple[str, ...]  # the action is authorized on all of these at once (CreateSecurityGroup: group, VPC)
    condition: str | None = None


def _on(resource: str | tuple[str, ...], *actions: str, condition: str | None = None) -> tuple[Need, ...]:
    resources = resource if isinstance(resource, tuple) else (resource,)
    return tuple(Need(action, resources, condition) for action in actions)


EKS_TAGGING = ("eks:TagResource", "eks:UntagResource")
EC2_TAGGING = ("ec2:CreateTags", "ec2:DeleteTags")

RESOURCE_ACTIONS: dict[str, tuple[Need, ...]] = {
    "aws:eks/cluster:Cluster": (
        *_on(ANY, "eks:CreateCluster"),
        *_on(EKS_CLUSTER, "eks:DescribeCluster", "eks:DeleteCluster"),
        *_on(EKS_CLUSTER, "eks:UpdateClusterConfig", "eks:UpdateClusterVersion", "eks:DescribeUpdate"),
        *_on(EKS_CLUSTER, *EKS_TAGGING),
        *_on(IAM_ROLE, "iam:PassRole", condition="passToEks"),
        *_on(IAM_SERVICE_LINKED_ROLES, "iam:CreateServiceLinkedRole", condition="eksServiceLinkedRoles"),
        *_on(ANY, "ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeSecurityGroups"),
    ),
    "aws:eks/addon:Addon": (
        *_on(EKS_CLUSTER, "eks:CreateAddon"),
        *_on(EKS_ADDON, "eks:DescribeAddon", "eks:UpdateAddon", "eks:DeleteAddon", *EKS_TAGGING),
        *_on(ANY, "eks:DescribeAddonVersions", "eks:DescribeAddonConfiguration"),
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        *_on(EKS_CLUSTER, "eks:CreateNodegroup", "eks:DescribeUpdate"),
        *_on(EKS_NODEGROUP, "eks:DescribeNodegroup", "eks:DeleteNodegroup"),
        *_on(EKS_NODEGROUP, "eks:UpdateNodegroupConfig", "eks:UpdateNodegroupVersion", *EKS_TAGGING),
        *_on(IAM_ROLE, "iam:PassRole", condition="passToEks"),
        *_on(IAM_SERVICE_LINKED_ROLES, "iam:CreateServiceLinkedRole", condition="eksServiceLinkedRoles"),
        *_on(ANY, "ec2:DescribeSubnets", "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeCapacityReservations"),
    ),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        *_on(EKS_CLUSTER, "eks:CreatePodIdentityAssociation"),
        *_on(EKS_POD_IDENTITY, "eks:DescribePodIdentityAssociation", "eks:UpdatePodIdentityAssociation"),
        *_on(EKS_POD_IDENTITY, "eks:DeletePodIdentityAssociation", *EKS_TAGGING),
        *_on(IAM_ROLE, "iam:PassRole", condition="passToPodIdentity"),
        *_on(IAM_ROLE, "iam:GetRole"),
    ),
    "aws:iam/role:Role": (
        *_on(IAM_ROLE, "iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:UpdateRole"),
        *_on(IAM_ROLE, "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole"),
        *_on(IAM_ROLE, "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"),
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
        *_on(IAM_ROLE, "iam:AttachRolePolicy", "iam:DetachRolePolicy", condition="managedPolicies"),
        *_on(IAM_ROLE, "iam:ListAttachedRolePolicies"),
    ),
    "aws:iam/rolePolicy:RolePolicy": (
        *_on(IAM_ROLE, "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    ),
    "aws:autoscaling/schedule:Schedule": (
        *_on(EKS_ASG, "autoscaling:PutScheduledUpdateGroupAction", "autoscaling:DeleteScheduledAction"),
        *_on(ANY, "autoscaling:DescribeScheduledActions"),
    ),
    "aws:autoscaling/tag:Tag": (
        *_on(EKS_ASG, "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"),
        *_on(ANY, "autoscaling:DescribeTags"),
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        *_on(EC2_LAUNCH_TEMPLATE, "ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion"),
        *_on(EC2_LAUNCH_TEMPLATE, "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplate", *EC2_TAGGING),
        *_on(ANY, "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions"),
    ),
    "aws:ec2/placementGroup:PlacementGroup": (
        *_on(EC2_PLACEMENT_GROUP, "ec2:CreatePlacementGroup", "ec2:DeletePlacementGroup", *EC2_TAGGING),
        *_on(ANY, "ec2:DescribePlacementGroups"),
    ),
    "aws:ec2/securityGroup:SecurityGroup": (
        *_on((EC2_SECURITY_GROUP, EC2_VPC), "ec2:CreateSecurityGroup"),
        *_on(EC2_SECURITY_GROUP, "ec2:DeleteSecurityGroup", *EC2_TAGGING),
        *_on(EC2_SECURITY_GROUP, "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"),
        *_on(EC2_SECURITY_GROUP, "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"),
        *_on(EC2_SECURITY_GROUP_RULE, *EC2_TAGGING),
        *_on(ANY, "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeNetworkInterfaces"),
    ),
    "aws:ec2/securityGroupRule:SecurityGroupRule": (
        *_on(EC2_SECURITY_GROUP, "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"),
        *_on(EC2_SECURITY_GROUP, "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"),
        *_on(ANY, "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules"),
    ),
}

# A remote component -> the resource types it creates inside (invisible under the mocks).
REMOTE_CHILDREN: dict[str, tuple[str, ...]] = {
    "eks:index:Cluster": (
        "aws:iam/role:Role",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:eks/cluster:Cluster",
        "aws:eks/addon:Addon",
    ),
}

# Invokes and the AWS provider's start-up: aws.eks.get_cluster (node groups on an existing
# cluster's security group), pulumi-eks's add-on version lookups, the provider's credential check.
INVOKE_ACTIONS: dict[str, tuple[Need, ...]] = {
    "aws:eks/getCluster:getCluster": _on(EKS_CLUSTER, "eks:DescribeCluster"),
    "aws:eks/getAddonVersion:getAddonVersion": _on(ANY, "eks:DescribeAddonVersions"),
    "pulumi:providers:aws": _on(ANY, "sts:GetCallerIdentity"),
}


def needs_of(resource_type: str) -> tuple[Need, ...]:
    """The actions one registered type needs, its remote component's children included.

    Raises ``KeyError`` naming the type when nothing here says what it needs."""
    if resource_type in REMOTE_CHILDREN:
        return tuple(need for child in REMOTE_CHILDREN[resource_type] for need in needs_of(child))
    if resource_type not in RESOURCE_ACTIONS:
        raise KeyError(
            f"{resource_type}: no IAM actions declared for this AWS resource type; add its create/read/update/"
            "delete actions to verify.deployer_policy.RESOURCE_ACTIONS and regenerate docs/iam/deployer-policy.json"
        )
    return RESOURCE_ACTIONS[resource_type]


def all_needs() -> list[Need]:
    needs = [need for needs in RESOURCE_ACTIONS.values() for need in needs]
    return needs + [need for needs in INVOKE_ACTIONS.values() for need in needs]


def _sid_part(resource: str) -> str:
    if resource == ANY:
        return "AnyResource"
    if resource == IAM_SERVICE_LINKED_ROLES:
        return "IamServiceLinkedRole"
    service, kind = resource.split(":")[2], resource.split(":")[5].split("/")[0]
    return service.capitalize() + "".join(part.capitalize() for part in kind.split("-"))


def _sid(resources: tuple[str, ...], condition: str | None) -> str:
    base = "And".join(_sid_part(resource) for resource in resources)
    return base + (condition[0].upper() + condition[1:] if condition else "")


def policy_document() -> dict[str, Any]:
    """Every declared action, grouped into one statement per (ARN pattern, condition)."""
    groups: dict[tuple[tuple[str, ...], str | None], set[str]] = {}
    for need in all_needs():
        groups.setdefault((need.resources, need.condition), set()).add(need.action)
    statements = []
    for (resources, condition), actions in sorted(groups.items(), key=lambda item: _sid(*item[0])):
        statement: dict[str, Any] = {
            "Sid": _sid(resources, condition),
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": resources[0] if len(resources) == 1 else list(resources),
        }
        if condition is not None:
            statement["Condition"] = CONDITIONS[condition]
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_text() -> str:
    return json.dumps(policy_document(), indent=2) + "\n"


def granted(policy: dict[str, Any]) -> set[tuple[str, tuple[str, ...], str]]:
    """(action, resources, condition as JSON) a policy document allows, statement by statement, as
    written: an action is granted on the exact resource list and condition a statement gives it."""
    out = set()
    for statement in policy["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        condition = json.dumps(statement.get("Condition"), sort_keys=True)
        out |= {(a, tuple(resources), condition) for a in actions}
    return out


def missing_grants(resource_types: set[str], policy: dict[str, Any]) -> list[str]:
    """What the policy lacks for these registered types (or the types with no row here)."""
    allowed = granted(policy)
    problems = []
    for resource_type in sorted(resource_types):
        try:
            needs = needs_of(resource_type)
        except KeyError as error:
            problems.append(str(error.args[0]))
            continue
        for need in needs:
            condition = json.dumps(CONDITIONS[need.condition] if need.condition else None, sort_keys=True)
            if (need.action, need.resources, condition) not in allowed:
                problems.append(f"{resource_type}: {need.action} on {', '.join(need.resources)} is not granted")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {POLICY_FILE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.write:
        POLICY_FILE.parent.mkdir(parents=True, exist_ok=True)
        POLICY_FILE.write_text(policy_text())
        print(f"wrote {POLICY_FILE.relative_to(ROOT)}")
    else:
        sys.stdout.write(policy_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
