"""Cluster add-ons installed only when the plan needs them, each a pinned Helm chart.

- ``LeaderWorkerSetController``: the LeaderWorkerSet CRD, controller and webhook (kubernetes-sigs/lws,
  chart ``oci://registry.k8s.io/lws/charts/lws``), when some model spans nodes. LeaderWorkerSet
  objects depend on it: the API server rejects them before the CRD exists.
- ``EfaEnablement``: the AWS EFA device plugin (chart ``aws-efa-k8s-device-plugin`` from
  https://aws.github.io/eks-charts), which advertises ``vpc.amazonaws.com/efa`` on the nodes of the
  EFA node groups only, tolerating the GPU taint (with the chart's default tolerations it never
  lands on a tainted GPU node and every multi-node pod stays Pending).
- ``KaiScheduler``: NVIDIA KAI Scheduler (chart ``oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler``)
  and the queues the config names, under one parent queue, when ``cluster.scheduling.install`` is
  true. Without ``install`` the stack only labels pods for a KAI that the platform runs already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.helm import pinned_release
from components.labels import NODE_GROUP_LABEL, gpu_toleration
from stack.config import KAI_PARENT_QUEUE

# Chart versions and the image versions they run, named apart: they differ (EFA chart v0.5.20 runs
# plugin v0.5.13). Where the chart lets values set the tag, the release sets it to the image version
# below, so what runs is what is written here.
LWS_CHART = "oci://registry.k8s.io/lws/charts/lws"
LWS_CHART_VERSION = "0.8.0"  # the release the LWS installation guide pins
# registry.k8s.io/lws/lws: LWS v0.8.0 hack/push-chart.sh sets image.manager.tag to the release tag when it
# packages the chart (charts/lws/values.yaml in git says "main").
LWS_IMAGE_VERSION = "v0.8.0"
LWS_NAMESPACE = "lws-system"

EFA_CHART = "aws-efa-k8s-device-plugin"
EFA_CHART_VERSION = "v0.5.20"  # eks-charts; the chart's versions carry the "v"
# aws/eks-charts stable/aws-efa-k8s-device-plugin/values.yaml image.tag at chart v0.5.20 (commit de5fdc1,
# appVersion v0.5.13).
EFA_IMAGE_VERSION = "v0.5.13"
EFA_CHART_REPO = "https://aws.github.io/eks-charts"
EFA_NAMESPACE = "kube-system"

KAI_CHART = "oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler"
KAI_CHART_VERSION = "v0.9.3"
# ghcr.io/nvidia/kai-scheduler/*: KAI v0.9.3's templates tag every image with .Chart.Version (no value
# overrides it), so the image version follows the chart's.
KAI_IMAGE_VERSION = KAI_CHART_VERSION
KAI_NAMESPACE = "kai-scheduler"
KAI_QUEUE_API_VERSION = "scheduling.run.ai/v2"


@dataclass
class AddonArgs:
    provider: k8s.Provider
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class LeaderWorkerSetController(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: AddonArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:LeaderWorkerSetController", name, None, opts)
        self.release = pinned_release(
            name,
            parent=self,
            provider=args.provider,
            depends_on=args.depends_on,
            release_name="lws",
            chart=LWS_CHART,
            version=LWS_CHART_VERSION,
            namespace=LWS_NAMESPACE,
            create_namespace=True,
            values={"image": {"manager": {"tag": LWS_IMAGE_VERSION}}},
        )
        self.register_outputs({"chartVersion": LWS_CHART_VERSION, "imageVersion": LWS_IMAGE_VERSION})


def efa_chart_values(node_groups: Sequence[str]) -> dict[str, Any]:
    """The plugin image pinned, on the EFA node groups only (the chart's affinity takes label keys and
    values), tolerating the GPU taint."""
    return {
        "image": {"tag": EFA_IMAGE_VERSION},
        "supportedInstanceLabels": {"keys": [NODE_GROUP_LABEL], "values": sorted(node_groups)},
        "tolerations": [gpu_toleration()],
    }


@dataclass
class EfaEnablementArgs(AddonArgs):
    node_groups: list[str] = field(default_factory=list)


class EfaEnablement(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: EfaEnablementArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:EfaEnablement", name, None, opts)
        self.release = pinned_release(
            name,
            parent=self,
            provider=args.provider,
            depends_on=args.depends_on,
            release_name=EFA_CHART,
            chart=EFA_CHART,
            version=EFA_CHART_VERSION,
            repo=EFA_CHART_REPO,
            namespace=EFA_NAMESPACE,
            values=efa_chart_values(args.node_groups),
        )
        self.register_outputs({"chartVersion": EFA_CHART_VERSION, "imageVersion": EFA_IMAGE_VERSION})


def queue_spec(parent: str | None) -> dict[str, Any]:
    """A KAI queue with no quota of its own (-1: unlimited), sharing over-quota equally."""
    unlimited = {"quota": -1, "limit": -1, "overQuotaWeight": 1}
    spec: dict[str, Any] = {"resources": {"cpu": dict(unlimited), "gpu": dict(unlimited), "memory": dict(unlimited)}}
    if parent:
        spec["parentQueue"] = parent
    return spec


@dataclass
class KaiSchedulerArgs(AddonArgs):
    queues: list[str] = field(default_factory=list)


class KaiScheduler(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KaiSchedulerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:KaiScheduler", name, None, opts)
        self.release = pinned_release(
            name,
            parent=self,
            provider=args.provider,
            depends_on=args.depends_on,
            release_name="kai-scheduler",
            chart=KAI_CHART,
            version=KAI_CHART_VERSION,
            namespace=KAI_NAMESPACE,
            create_namespace=True,
        )
        self.queues: list[k8s.apiextensions.CustomResource] = []
        queue_opts = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.release])
        parent = self._queue(name, KAI_PARENT_QUEUE, None, queue_opts)
        self.queues.append(parent)
        children = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.release, parent])
        for queue in sorted(set(args.queues) - {KAI_PARENT_QUEUE}):
            self.queues.append(self._queue(name, queue, KAI_PARENT_QUEUE, children))
        self.register_outputs({"chartVersion": KAI_CHART_VERSION, "imageVersion": KAI_IMAGE_VERSION})

    @staticmethod
    def _queue(
        name: str, queue: str, parent: str | None, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-queue-{queue}",
            api_version=KAI_QUEUE_API_VERSION,
            kind="Queue",
            metadata={"name": queue},
            spec=queue_spec(parent),
            opts=opts,
        )
