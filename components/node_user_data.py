"""Launch-template user data that puts a GPU node's instance-store NVMe disks to use.

p4d/p4de/p5/p5e/p5en carry 8 NVMe instance-store disks (8-30 TB) that sit idle unless the node
is told to use them. With them as one RAID0 array under containerd's image store and the kubelet's
directory, the multi-GB server image and every emptyDir (the model cache, the Hugging Face
download) land on local NVMe instead of the EBS root volume.

- AL2023 (``AL2023_x86_64_NVIDIA``): a nodeadm ``NodeConfig`` with
  ``spec.instance.localStorage.strategy: RAID0`` in a MIME multi-part document (what EKS managed
  node groups require for AL2023 user data; EKS merges its own NodeConfig with the cluster's
  details). nodeadm's ``setup-local-disks raid0`` builds ``/dev/md/kubernetes``, mounts it at
  ``/mnt/k8s-disks`` and bind-mounts /var/lib/kubelet, /var/lib/containerd and /var/log/pods onto
  it (amazon-eks-ami v20260724, templates/al2023/runtime/bin/setup-local-disks). The NodeConfig
  API is the vendored CRD in ``components/vendor/nodeadm`` (same release).
- Bottlerocket (``BOTTLEROCKET_x86_64_NVIDIA``): TOML settings with a bootstrap command running
  ``apiclient ephemeral-storage init`` (a RAID0 array of all ephemeral disks, xfs) then
  ``apiclient ephemeral-storage bind --dirs /var/lib/containerd /var/lib/kubelet /var/log/pods``
  (bottlerocket-core-kit v3.1.1: sources/api/apiclient/src/main.rs, the apiserver's
  ephemeral_storage.rs, whose ``allowed_bind_dirs`` for k8s variants are exactly these three plus
  /var/lib/host-containerd; bootstrap commands run before bootstrap containers and the kubelet:
  sources/bootstrap-commands/README.md). Both commands are no-ops on an instance without
  ephemeral disks.
"""

from __future__ import annotations

import base64
import json
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import yaml

from components.labels import AL2023_NVIDIA, BOTTLEROCKET_NVIDIA
from sizing.instances import INSTANCES

NODEADM_API_VERSION = "node.eks.aws/v1alpha1"
NODEADM_CONTENT_TYPE = "application/node.eks.aws"
NODEADM_AMI_RELEASE = "v20260724"  # the amazon-eks-ami release whose NodeConfig API is vendored
MIME_BOUNDARY = "//gpu-inference-nodeadm//"


# What the RAID0 array holds (the defaults of both AMIs' local-storage setup).
LOCAL_STORAGE_DIRS = ("/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods")
BOTTLEROCKET_BOOTSTRAP_COMMAND = "010-ephemeral-storage"


def has_instance_store(instance_type: str) -> bool:
    """From the catalog (``sizing.instances``); an instance type outside it has none we know of."""
    return instance_store_gb(instance_type) > 0


def instance_store_gb(instance_type: str) -> int:
    instance = INSTANCES.get(instance_type)
    return instance.local_nvme_gb if instance is not None else 0


def ephemeral_storage_gb(instance_type: str, root_volume_gib: int) -> float:
    """Where emptyDirs (the model cache, the Hugging Face download) and images land, in GB: the
    NVMe RAID0 when the instance has instance store and the user data sets it up, else the root volume."""
    if has_instance_store(instance_type):
        return float(instance_store_gb(instance_type))
    return root_volume_gib * 1.073741824  # GiB -> GB


def nodeadm_local_storage_config() -> dict[str, Any]:
    """A partial NodeConfig: EKS's managed node group merges it with the one naming the cluster."""
    return {
        "apiVersion": NODEADM_API_VERSION,
        "kind": "NodeConfig",
        "spec": {"instance": {"localStorage": {"strategy": "RAID0"}}},
    }


def al2023_user_data(node_config: dict[str, Any] | None = None) -> str:
    """The MIME multi-part document EKS managed node groups accept as AL2023 user data."""
    document = MIMEMultipart("mixed", boundary=MIME_BOUNDARY)
    config = node_config if node_config is not None else nodeadm_local_storage_config()
    part = MIMEText(yaml.safe_dump(config, sort_keys=False), _charset="us-ascii")
    part.replace_header("Content-Type", NODEADM_CONTENT_TYPE)
    document.attach(part)
    return document.as_string()


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable ASCII is a TOML basic string


def bottlerocket_user_data() -> str:
    """Bottlerocket settings (TOML) that put the ephemeral disks under containerd and the kubelet."""
    commands = [
        ["apiclient", "ephemeral-storage", "init"],
        ["apiclient", "ephemeral-storage", "bind", "--dirs", *LOCAL_STORAGE_DIRS],
    ]
    rendered = "[" + ", ".join("[" + ", ".join(_toml_string(arg) for arg in cmd) + "]" for cmd in commands) + "]"
    return "\n".join(
        [
            f'[settings.bootstrap-commands."{BOTTLEROCKET_BOOTSTRAP_COMMAND}"]',
            f"commands = {rendered}",
            'mode = "always"',
            "essential = true",
            "",
        ]
    )


def local_storage_user_data(ami_type: str, instance_type: str) -> str | None:
    """The user data for a GPU node group's launch template, or None when the instance has no NVMe."""
    if not has_instance_store(instance_type):
        return None
    if ami_type == AL2023_NVIDIA:
        return al2023_user_data()
    if ami_type == BOTTLEROCKET_NVIDIA:
        return bottlerocket_user_data()
    raise ValueError(
        f"amiType {ami_type!r}: no local-storage user data for it; use {AL2023_NVIDIA} or {BOTTLEROCKET_NVIDIA}"
    )


def merge_node_configs(*configs: dict[str, Any]) -> dict[str, Any]:
    """One NodeConfig holding every part's spec (nested maps merged; a key set twice is an error),
    so a node group's user data stays one document however many features add to it."""

    def merge(into: dict[str, Any], other: dict[str, Any], path: str) -> None:
        for key, value in other.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value, f"{path}.{key}")
            elif key in into and into[key] != value:
                raise ValueError(f"NodeConfig {path}.{key} is set twice with different values")
            else:
                into[key] = json.loads(json.dumps(value))

    merged: dict[str, Any] = {"apiVersion": NODEADM_API_VERSION, "kind": "NodeConfig", "spec": {}}
    for config in configs:
        merge(merged["spec"], config["spec"], "spec")
    return merged


def node_group_user_data(ami_type: str, instance_type: str, node_configs: list[dict[str, Any]]) -> str | None:
    """A GPU node group's launch-template user data: the local-storage setup where the instance has
    NVMe, merged with the group's other NodeConfig parts (AL2023: one NodeConfig in one MIME
    document); None when there is nothing to say."""
    if ami_type == AL2023_NVIDIA:
        parts = [*([nodeadm_local_storage_config()] if has_instance_store(instance_type) else []), *node_configs]
        return al2023_user_data(merge_node_configs(*parts)) if parts else None
    if node_configs:
        raise ValueError(f"amiType {ami_type!r}: NodeConfig parts apply to {AL2023_NVIDIA} only")
    return local_storage_user_data(ami_type, instance_type)


def user_data_base64(user_data: str) -> str:
    """What ``aws.ec2.LaunchTemplate(user_data=...)`` takes."""
    return base64.b64encode(user_data.encode()).decode()
