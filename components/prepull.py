"""Pull each model's server image onto its GPU nodes as soon as they join, before a replica needs it.

One DaemonSet per GPU node group. Its init containers are the server images of the models placed
on that group, each running ``true`` instead of the image's entrypoint: the kubelet must pull the
image to start it, the container exits at once, and the image stays in containerd's store (on the
node's NVMe when local storage is set up, see ``components.node_user_data``). A pause container
then keeps the pod alive, so the DaemonSet neither restarts nor re-pulls. When a model's image
changes, the DaemonSet's template changes and every node pulls the new one while the servers'
rollout is still waiting.

The pods tolerate the GPU taint, select the group's nodes only, request no GPU and almost no CPU or
memory, and run as nobody with nothing mounted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import checkov_skips
from components.checkov_skips import skip_annotations
from components.labels import NODE_GROUP_LABEL, gpu_toleration
from stack.placement import Placement

# registry.k8s.io/pause: the image Kubernetes itself uses for pod sandboxes (multi-arch, ~300 kB).
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
PREPULL_LABEL = "gpu-inference.io/prepull"
# The program gives every GPU node group its pre-pull DaemonSet, so start-time estimates
# (components.server_pod.startup_estimate) count the image as present.
IMAGES_PREPULLED = True
NOBODY_UID = 65534
TINY = {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"cpu": "50m", "memory": "32Mi"}}


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def prepull_name(node_group: str) -> str:
    return f"prepull-{node_group}"


def prepull_daemonset(
    node_group: str,
    images: Sequence[str],
    namespace: str,
    image_pull_secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """The DaemonSet manifest that keeps ``images`` on every node of ``node_group``."""
    if not images:
        raise ValueError(f"node group {node_group!r}: no images to pre-pull")
    unique = sorted(dict.fromkeys(images))
    labels = {PREPULL_LABEL: node_group}
    pod_spec: dict[str, Any] = {
        "nodeSelector": {NODE_GROUP_LABEL: node_group},
        "tolerations": [gpu_toleration()],
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY_UID,
            "runAsGroup": NOBODY_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [
            {
                "name": f"pull-{index}",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["true"],
                "resources": TINY,
                "securityContext": _security_context(),
            }
            for index, image in enumerate(unique)
        ],
        "containers": [
            {
                "name": "pause",
                "image": PAUSE_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "resources": TINY,
                "securityContext": _security_context(),
            }
        ],
    }
    if image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": prepull_name(node_group), "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def network_policy_spec(node_group: str) -> dict[str, Any]:
    """The kubelet pulls the images, not the pod: its pods need no network either way."""
    return {"podSelector": {"matchLabels": {PREPULL_LABEL: node_group}}, "policyTypes": ["Ingress", "Egress"]}


def images_by_node_group(placements: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """(node group, image) pairs, e.g. one per placed model -> the images each group should hold."""
    out: dict[str, list[str]] = {}
    for group, image in placements:
        if image not in out.setdefault(group, []):
            out[group].append(image)
    return out


@dataclass
class ImagePrePullArgs:
    """``images`` the group's models run; ``image_pull_secrets`` the Secrets (by name) a private
    registry needs, which ``depends_on`` holds with the namespace."""

    node_group: str
    images: Sequence[str]
    namespace: str
    provider: k8s.Provider
    image_pull_secrets: Sequence[str] = ()
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class ImagePrePull(pulumi.ComponentResource):
    """The pre-pull DaemonSet of one GPU node group. Pulumi does not await its rollout: a node's
    pull is best effort ahead of the servers, which are awaited themselves."""

    def __init__(self, name: str, args: ImagePrePullArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:ImagePrePull", name, None, opts)
        manifest = prepull_daemonset(args.node_group, args.images, args.namespace, args.image_pull_secrets)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=manifest["metadata"],
            spec=network_policy_spec(args.node_group),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.daemon_set = k8s.apps.v1.DaemonSet(
            name,
            metadata={
                **manifest["metadata"],
                "annotations": {"pulumi.com/skipAwait": "true", **skip_annotations(checkov_skips.PREPULL)},
            },
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"daemonSet": self.daemon_set.metadata["name"]})


def prepull_per_group(
    placement: Placement, servers: Mapping[str, Any], *, namespace: k8s.core.v1.Namespace, provider: k8s.Provider
) -> dict[str, ImagePrePull]:
    """One pre-pull per GPU node group holding every image of its models; ``servers`` maps a model's
    name to its ``ModelServer`` (its image, and the pull Secrets the DaemonSet needs too)."""
    out = {}
    pairs = [(model.node_group, servers[model.name].image) for model in placement.models]
    for group, images in images_by_node_group(pairs).items():
        served = [servers[m.name] for m in placement.models if m.node_group == group]
        pull_secrets = sorted({name for server in served for name in server.image_pull_secrets})
        secrets = [server.secrets[name] for server in served for name in server.image_pull_secrets]
        out[group] = ImagePrePull(
            prepull_name(group),
            ImagePrePullArgs(
                node_group=group,
                images=images,
                namespace=placement.config.cluster.namespace,
                provider=provider,
                image_pull_secrets=pull_secrets,
                depends_on=[namespace, *secrets],
            ),
        )
    return out
