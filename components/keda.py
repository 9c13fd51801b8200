"""Pod autoscaling on vLLM's own load signals: KEDA (pinned chart) and one ScaledObject per model.

KEDA turns each ScaledObject into a HorizontalPodAutoscaler fed from Prometheus queries. The
triggers (``scaled_object``) read what the PodMonitor scrapes from every server, selected by the
``model`` label its relabeling adds:

- ``sum(vllm:num_requests_waiting{...})`` as an AverageValue target: replicas = waiting requests /
  the per-replica queue target;
- ``avg(vllm:kv_cache_usage_perc{...})`` as a Value target: replicas grow by the ratio of the mean
  KV-cache fill to its target;
- with a ``traffic`` target, ``sum(vllm:num_requests_running{...})`` as an AverageValue target:
  replicas = requests in flight / what one replica holds within the target's p95 latencies;
- with ``scaleToZero``, the configured ``activationQuery`` (traffic seen in front of the servers),
  which only wakes the model: its target is out of reach, so it never asks for more than one.

The behaviour (``hpa_behavior``) comes from ``stack.autoscaling_plan``: at most double (at least
one replica) per load time up, one replica per load time down after twice the load time of low
load. Pulumi and the autoscaler must not fight over ``spec.replicas``: see ``workload_options``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.helm import pinned_release
from components.monitoring import MODEL_LABEL, VLLM_KV_CACHE_USAGE, VLLM_REQUESTS_RUNNING, VLLM_REQUESTS_WAITING
from stack.autoscaling_plan import SCALE_UP_STABILIZATION_SECONDS, ModelAutoscaling
from stack.project import PROJECT

KEDA_CHART = "keda"
KEDA_CHART_REPO = "https://kedacore.github.io/charts"
KEDA_CHART_VERSION = "2.20.2"  # kedacore/charts tag v2.20.2 (keda/Chart.yaml: version and appVersion 2.20.2)
KEDA_IMAGE_TAG = "2.20.2"  # ghcr.io/kedacore/keda, keda-metrics-apiserver, keda-admission-webhooks
KEDA_NAMESPACE = "keda"
KEDA_API_VERSION = "keda.sh/v1alpha1"

# An activation trigger's target: unreachable, so it contributes one replica at most.
WAKE_ONLY_THRESHOLD = "1000000"

REPLICAS_FIELD = "spec.replicas"
# Holds the target at this many replicas whatever the triggers say, until removed (KEDA >= 2.8).
KEDA_PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"


def keda_chart_values() -> dict[str, Any]:
    """The operator, metrics API server and webhooks at the pinned image tag, named apart from the
    chart's version so an image bump is a visible one-line change."""
    return {
        "image": {
            "keda": {"tag": KEDA_IMAGE_TAG},
            "metricsApiServer": {"tag": KEDA_IMAGE_TAG},
            "webhooks": {"tag": KEDA_IMAGE_TAG},
        },
    }


def model_selector(model: str, namespace: str) -> str:
    return f'{{namespace="{namespace}", {MODEL_LABEL}="{model}"}}'


def trigger_queries(model: str, namespace: str) -> dict[str, str]:
    selector = model_selector(model, namespace)
    return {
        "queue": f"sum({VLLM_REQUESTS_WAITING}{selector})",
        "kv-cache": f"avg({VLLM_KV_CACHE_USAGE}{selector})",
        "running": f"sum({VLLM_REQUESTS_RUNNING}{selector})",
    }


def _number(value: float) -> str:
    """KEDA reads thresholds as strings; whole numbers without a trailing .0."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def hpa_behavior(auto: ModelAutoscaling) -> dict[str, Any]:
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": SCALE_UP_STABILIZATION_SECONDS,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 1, "periodSeconds": auto.scale_up_period_s},
                {"type": "Percent", "value": 100, "periodSeconds": auto.scale_up_period_s},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": auto.scale_down_stabilization_s,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": auto.scale_down_period_s}],
        },
    }


def scaled_object(
    auto: ModelAutoscaling,
    *,
    name: str,
    namespace: str,
    target_api_version: str,
    target_kind: str,
    server_address: str,
    authentication: str | None = None,
    aws_region: str | None = None,
    annotations: dict[str, str] | None = None,
    target_name: str | None = None,
) -> dict[str, Any]:
    """The whole ScaledObject manifest for one model's workload (Deployment or LeaderWorkerSet:
    both have the scale subresource), ``target_name`` when the workload is not named after the
    model (a LeaderWorkerSet is not). ``authentication`` names a TriggerAuthentication (for a
    Prometheus that needs it, e.g. Amazon Managed Prometheus with ``aws_region``)."""
    queries = trigger_queries(auto.model, namespace)

    def trigger(trigger_name: str, query: str, metric_type: str, threshold: str, **extra: str) -> dict[str, Any]:
        metadata = {"serverAddress": server_address, "query": query, "threshold": threshold, **extra}
        if aws_region:
            metadata["awsRegion"] = aws_region
        entry: dict[str, Any] = {"type": "prometheus", "name": trigger_name, "metricType": metric_type}
        entry["metadata"] = metadata
        if authentication:
            entry["authenticationRef"] = {"name": authentication}
        return entry

    triggers = [
        trigger("queue", queries["queue"], "AverageValue", _number(auto.target_queue_length)),
        trigger("kv-cache", queries["kv-cache"], "Value", _number(auto.target_kv_cache_usage)),
    ]
    if auto.target_running_requests is not None:
        triggers.append(trigger("running", queries["running"], "AverageValue", _number(auto.target_running_requests)))
    if auto.scale_to_zero:
        assert auto.activation_query is not None
        triggers.append(
            trigger(
                "activation",
                auto.activation_query,
                "AverageValue",
                WAKE_ONLY_THRESHOLD,
                activationThreshold=_number(auto.activation_threshold),
            )
        )
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/instance": auto.model, "app.kubernetes.io/part-of": PROJECT},
            **({"annotations": dict(annotations)} if annotations else {}),
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": target_api_version,
                "kind": target_kind,
                "name": target_name or auto.model,
            },
            "pollingInterval": auto.polling_interval_s,
            "cooldownPeriod": auto.scale_down_stabilization_s,
            "minReplicaCount": auto.min_replicas,
            "maxReplicaCount": auto.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": hpa_behavior(auto)}},
            "triggers": triggers,
        },
    }


def paused_outside_window(serving: bool) -> dict[str, str]:
    """ScaledObject annotations for a model on a Capacity Block group: outside the block's window
    its replicas are held at zero, so no pending server makes the node autoscaler try launches
    that cannot succeed (EKS would report the group DEGRADED). The next ``pulumi up`` inside the
    window drops the annotation."""
    return {} if serving else {KEDA_PAUSED_REPLICAS: "0"}


def aws_trigger_authentication(name: str, namespace: str) -> dict[str, Any]:
    """Queries signed with the KEDA operator's own AWS identity (EKS Pod Identity), for Amazon
    Managed Service for Prometheus; an in-cluster Prometheus needs none."""
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": PROJECT}},
        "spec": {"podIdentity": {"provider": "aws"}},
    }


def workload_replicas(auto: ModelAutoscaling | None, fixed: int) -> int:
    """``spec.replicas`` the workload is created with: the autoscaler's floor (at least one, so the
    first ``pulumi up`` waits for a ready server and its smoke test runs), or the fixed count."""
    return fixed if auto is None else auto.initial_replicas


def workload_options(opts: pulumi.ResourceOptions, autoscaled: bool) -> pulumi.ResourceOptions:
    """The workload's options; autoscaled, Pulumi stops managing ``spec.replicas`` after creation.

    The field stays in the manifest (the create sets the floor) and is ignored on every later
    diff, so an update keeps whatever count the HPA has set. Omitting it instead is worse under
    server-side apply: when Pulumi's field manager stops sending a field that no other manager
    owns yet (an HPA that has not scaled), the API server resets it to its default of 1.
    """
    if not autoscaled:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=[REPLICAS_FIELD]))


@dataclass
class KedaArgs:
    provider: k8s.Provider
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Keda(pulumi.ComponentResource):
    """The KEDA operator, metrics API server and admission webhooks (pinned chart and images)."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:Keda", name, None, opts)
        self.release = pinned_release(
            name,
            parent=self,
            provider=args.provider,
            depends_on=args.depends_on,
            release_name="keda",
            chart=KEDA_CHART,
            version=KEDA_CHART_VERSION,
            repo=KEDA_CHART_REPO,
            namespace=KEDA_NAMESPACE,
            create_namespace=True,
            values=keda_chart_values(),
        )
        self.register_outputs({"chartVersion": KEDA_CHART_VERSION, "imageTag": KEDA_IMAGE_TAG})


@dataclass
class ModelAutoscalerArgs:
    """``manifest`` from ``scaled_object``; ``depends_on`` the KEDA release (its CRD) and the workload."""

    manifest: dict[str, Any]
    provider: k8s.Provider
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    trigger_authentication: dict[str, Any] | None = None


class ModelAutoscaler(pulumi.ComponentResource):
    scaled_object: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: ModelAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:ModelAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
        depends = list(args.depends_on)
        if args.trigger_authentication is not None:
            auth = args.trigger_authentication
            depends.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-auth",
                    api_version=auth["apiVersion"],
                    kind=auth["kind"],
                    metadata=auth["metadata"],
                    spec=auth["spec"],
                    opts=child,
                )
            )
        manifest = args.manifest
        self.scaled_object = k8s.apiextensions.CustomResource(
            name,
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=depends),
        )
        self.register_outputs({"scaledObject": manifest["metadata"]["name"]})
