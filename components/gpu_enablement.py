"""GPU enablement: the NVIDIA device plugin Helm chart, with GPU feature discovery.

AL2023 NVIDIA nodes have the driver and container toolkit but no device plugin: without the
chart no node advertises ``nvidia.com/gpu`` and every server stays Pending. Bottlerocket NVIDIA
nodes ship the plugin, so the chart is kept off them (two plugins would both register the
resource); when every group is Bottlerocket the chart is not installed at all, and GPU feature
discovery labels (``nvidia.com/gpu.count``, the refreshed ``nvidia.com/gpu.product``) then do not
exist: servers must not require them (see ``stack.placement.Placement.gfd_node_groups``).

The chart's bundled node-feature-discovery worker tolerates ``nvidia.com/gpu=present`` with
``operator: Equal``, which never matches the EKS-style taint ``nvidia.com/gpu=true:NoSchedule``;
NFD then never runs on GPU nodes and nothing gets scheduled (k8s-device-plugin issue 1934). Every
DaemonSet here tolerates the taint with ``operator: Exists`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.helm import pinned_release
from components.labels import GPU_PRESENT_LABEL, NODE_GROUP_LABEL, gpu_toleration

CHART = "nvidia-device-plugin"
CHART_VERSION = "0.19.0"  # released 2026; chart 0.19.x still ships the Equal-present NFD toleration
# nvcr.io/nvidia/k8s-device-plugin (plugin and GFD): the chart's "fullimage" helper tags it "v" + appVersion
# (deployments/helm/nvidia-device-plugin at v0.19.0, appVersion 0.19.0).
DEVICE_PLUGIN_IMAGE_VERSION = "v0.19.0"
# The node-feature-discovery chart the device-plugin chart 0.19.0 depends on (Chart.yaml), and the image
# it runs, registry.k8s.io/nfd/node-feature-discovery (its appVersion at v0.17.3).
NFD_CHART_VERSION = "0.17.3"
NFD_IMAGE_VERSION = "v0.17.3"
CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
NAMESPACE = "kube-system"


def gpu_node_affinity(node_groups: Sequence[str]) -> dict[str, Any]:
    """Required affinity: GPU nodes (``nvidia.com/gpu.present``) of the given node groups only."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]},
                            {"key": NODE_GROUP_LABEL, "operator": "In", "values": sorted(node_groups)},
                        ]
                    }
                ]
            }
        }
    }


def chart_values(node_groups: Sequence[str]) -> dict[str, Any]:
    """Helm values: images pinned; GFD on; plugin, GFD and NFD worker on the given GPU groups, tolerating
    the taint."""
    affinity = gpu_node_affinity(node_groups)
    tolerations = [{"key": "CriticalAddonsOnly", "operator": "Exists"}, gpu_toleration()]
    return {
        "image": {"tag": DEVICE_PLUGIN_IMAGE_VERSION},
        "gfd": {"enabled": True},
        # The plugin and GFD DaemonSets share these two values.
        "affinity": affinity,
        "tolerations": tolerations,
        "nfd": {
            "image": {"tag": NFD_IMAGE_VERSION},
            "worker": {"tolerations": [gpu_toleration()], "affinity": affinity},
        },
    }


@dataclass
class GpuEnablementArgs:
    """``node_groups`` names the groups the chart's DaemonSets run on (the AL2023 ones);
    ``provider`` is the cluster's Kubernetes provider; ``depends_on`` what must exist first
    (the cluster and its system nodes, which run the NFD master)."""

    node_groups: list[str]
    provider: k8s.Provider
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class GpuEnablement(pulumi.ComponentResource):
    """The NVIDIA device plugin chart, pinned, with GPU feature discovery."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: GpuEnablementArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:GpuEnablement", name, None, opts)
        self.release = pinned_release(
            name,
            parent=self,
            provider=args.provider,
            depends_on=args.depends_on,
            release_name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            repo=CHART_REPO,
            namespace=NAMESPACE,
            values=chart_values(args.node_groups),
        )
        self.register_outputs(
            {
                "chartVersion": CHART_VERSION,
                "imageVersion": DEVICE_PLUGIN_IMAGE_VERSION,
                "nfdChartVersion": NFD_CHART_VERSION,
                "nfdImageVersion": NFD_IMAGE_VERSION,
            }
        )
