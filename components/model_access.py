"""Read access to a model's S3 prefix for its server pods, through EKS Pod Identity.

One IAM role per model (or per namespace, ``roleScope: namespace``), trusted by EKS Pod Identity
(``pods.eks.amazonaws.com``), with a policy that reads only the models' prefixes: ``s3:GetObject``
on ``arn:aws:s3:::bucket/prefix/*`` and ``s3:ListBucket`` on the bucket limited to that prefix by
``s3:prefix``, plus ``kms:Decrypt`` on the key the config names. A ServiceAccount and a
PodIdentityAssociation bind the role to the pods; the eks-pod-identity-agent add-on hands them the
credentials (boto3, which the Run:ai streamer authenticates with, reads them from the
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` the agent's webhook injects). No IRSA, no OIDC provider, no
static keys.

The policy documents are pure functions so tests and the IAM linter (parliament) can read them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.s3_streamer import service_account_name
from stack.model_source_s3 import S3Source
from stack.placement import ModelPlacement
from stack.project import PROJECT

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
POD_IDENTITY_AGENT_ADDON = "eks-pod-identity-agent"
IAM_POLICY_VERSION = "2012-10-17"


def pod_identity_trust_policy() -> dict[str, Any]:
    """Who may assume the role: EKS Pod Identity, which needs sts:TagSession besides sts:AssumeRole."""
    return {
        "Version": IAM_POLICY_VERSION,
        "Statement": [
            {
                "Sid": "EksPodIdentity",
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def objects_arn(bucket: str, prefix: str) -> str:
    return f"arn:aws:s3:::{bucket}/{prefix}/*"


def s3_read_policy(sources: Sequence[S3Source]) -> dict[str, Any]:
    """Read-only access to exactly these prefixes (and decrypt with the keys they name).

    ListBucket takes the bucket ARN and is narrowed by ``s3:prefix`` (the prefix itself, for the
    streamer's listing of ``prefix/``, and everything below it); GetObject takes the objects' ARN.
    """
    if not sources:
        raise ValueError("s3_read_policy: no S3 sources to grant access to")
    statements: list[dict[str, Any]] = []
    prefixes_by_bucket: dict[str, list[str]] = {}
    for source in sources:
        prefixes_by_bucket.setdefault(source.bucket, [])
        if source.prefix not in prefixes_by_bucket[source.bucket]:
            prefixes_by_bucket[source.bucket].append(source.prefix)
    for index, (bucket, prefixes) in enumerate(sorted(prefixes_by_bucket.items())):
        statements.append(
            {
                "Sid": f"ListModelPrefix{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn(bucket),
                "Condition": {
                    "StringLike": {"s3:prefix": sorted({p for prefix in prefixes for p in (prefix, f"{prefix}/*")})}
                },
            }
        )
        statements.append(
            {
                "Sid": f"ReadModelObjects{index}",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": sorted(objects_arn(bucket, prefix) for prefix in prefixes),
            }
        )
    keys = sorted({source.kms_key_arn for source in sources if source.kms_key_arn})
    if keys:
        statements.append({"Sid": "DecryptModelObjects", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": keys})
    return {"Version": IAM_POLICY_VERSION, "Statement": statements}


def service_account_manifest(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """The pods' identity; Pod Identity needs no annotation on it (unlike IRSA)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "automountServiceAccountToken": True,
    }


def pod_identity_agent_addon(
    name: str, cluster_name: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
) -> aws.eks.Addon:
    """The eks-pod-identity-agent add-on (a DaemonSet serving credentials on the node's link-local address).

    One per cluster: call it once, whoever needs it first (aws-node's Pod Identity uses it too).
    """
    return aws.eks.Addon(
        name,
        cluster_name=cluster_name,
        addon_name=POD_IDENTITY_AGENT_ADDON,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="PRESERVE",
        opts=opts,
    )


@dataclass
class ModelAccessArgs:
    """``sources``: one model's S3 source, or every S3 source of a namespace (``roleScope: namespace``)."""

    cluster_name: pulumi.Input[str]
    namespace: str
    service_account_name: str
    sources: Sequence[S3Source]
    k8s_provider: pulumi.ProviderResource | None = None
    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()  # e.g. the pod-identity agent add-on


class ModelAccess(pulumi.ComponentResource):
    """IAM role + read policy + ServiceAccount + PodIdentityAssociation for S3-sourced models."""

    def __init__(self, name: str, args: ModelAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:ModelAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(pod_identity_trust_policy(), sort_keys=True),
            description=f"Model weights read by {args.namespace}/{args.service_account_name}",
            tags=args.tags,
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-s3-read",
            role=self.role.id,
            policy=json.dumps(s3_read_policy(args.sources), sort_keys=True),
            opts=child,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            **_without_kind(service_account_manifest(args.service_account_name, args.namespace, args.labels)),
            opts=pulumi.ResourceOptions(parent=self, provider=args.k8s_provider, depends_on=list(args.depends_on)),
        )
        self.association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=args.service_account_name,
            role_arn=self.role.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.service_account_name = args.service_account_name
        self.register_outputs({"roleArn": self.role.arn, "serviceAccountName": args.service_account_name})


def model_accesses(
    models: Sequence[ModelPlacement],
    *,
    cluster_name: pulumi.Input[str],
    namespace: str,
    k8s_provider: pulumi.ProviderResource,
    tags: dict[str, str],
    depends_on: Sequence[pulumi.Resource],
) -> dict[str, ModelAccess]:
    """Model name -> the access its pods use: one per S3 model (``roleScope: model``) and one shared
    by the namespace's ``roleScope: namespace`` models. ``depends_on``: the pod-identity agent and
    the namespace."""
    by_account: dict[str, list[ModelPlacement]] = {}
    for model in models:
        source = model.config.source
        if isinstance(source, S3Source) and model.config.replicas > 0:
            by_account.setdefault(service_account_name(model.name, source), []).append(model)
    out: dict[str, ModelAccess] = {}
    for account, served in by_account.items():
        access = ModelAccess(
            f"{account}-access",
            ModelAccessArgs(
                cluster_name=cluster_name,
                namespace=namespace,
                service_account_name=account,
                sources=[m.config.source for m in served],
                k8s_provider=k8s_provider,
                tags=tags,
                labels={"app.kubernetes.io/part-of": PROJECT},
                depends_on=depends_on,
            ),
        )
        out.update({m.name: access for m in served})
    return out


def _without_kind(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        ("automount_service_account_token" if k == "automountServiceAccountToken" else k): v
        for k, v in manifest.items()
        if k not in ("apiVersion", "kind")
    }
