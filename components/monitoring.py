"""Metrics, alerts and dashboards for the served models, with thresholds taken from their plans.

What the stack declares (``Monitoring``), each piece also a pure builder so it can be read and
tested without Pulumi:

- per vLLM model a PodMonitor scraping ``/metrics`` on the server container's ``http`` port
  (the Service's leaders only for LeaderWorkerSet groups: workers serve no HTTP), relabelled
  with ``model=<name>`` so every query selects one model by the same label, ``up`` included;
- NVIDIA's DCGM exporter (pinned chart and image) on the GPU nodes only, tolerating the GPU taint,
  exporting the chart's default counters plus the volatile ECC counters, with the chart's
  ServiceMonitor labelled for the Prometheus;
- kube-prometheus-stack (pinned chart) when the config installs Prometheus, remote-writing to
  Amazon Managed Service for Prometheus when asked;
- one PrometheusRule for the stack: per model, alerts whose thresholds come from the plan (queue
  depth from the KV cache's concurrency, the not-ready window from the load-time budget, the
  replica count) or from the config's service levels; per GPU, DCGM's XID, ECC and memory
  temperature;
- Grafana dashboards as ConfigMaps for Grafana's sidecar: one serving dashboard per model, with
  the plan's KV tokens and max concurrency as reference lines, and one GPU dashboard.

``scrape_ingress_rule`` is the NetworkPolicy ingress rule that admits the monitoring namespace to
the servers' port: the scrape and the policy take the port and namespace from the same place.

NIM models are not covered: NIM names its metrics differently, and the rules here are checked
against what vLLM exports.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.engines import engine_for
from components.gpu_enablement import gpu_node_affinity
from components.helm import pinned_release
from components.labels import gpu_toleration
from components.server_pod import await_timeout_seconds, service_selector, startup_seconds
from stack.monitoring_config import MonitoringConfig
from stack.outputs import PORT
from stack.placement import ModelPlacement, Placement
from stack.project import PROJECT

MONITORING_GROUP = "monitoring.coreos.com"
MONITORING_API_VERSION = f"{MONITORING_GROUP}/v1"
# prometheus-operator's CRD of each kind the stack declares (``<plural>.<group>``); the DCGM
# chart's ServiceMonitor needs its CRD too.
CRD_PLURALS = {"PodMonitor": "podmonitors", "ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"}

# kube-prometheus-stack: prometheus-operator v0.93.1 (its CRDs are vendored in verify/vendor).
KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"
KUBE_PROMETHEUS_STACK_VERSION = "88.5.3"
KUBE_PROMETHEUS_STACK_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_RELEASE = "kube-prometheus-stack"
# The chart's Prometheus selects monitors and rules by ``release: <release name>``
# (``*SelectorNilUsesHelmValues: true``, its default).
KUBE_PROMETHEUS_STACK_SELECTOR = {"release": KUBE_PROMETHEUS_STACK_RELEASE}
# The chart's Grafana sidecar loads ConfigMaps labelled so, from every namespace
# (values.yaml 88.5.3: grafana.sidecar.dashboards.label/labelValue, searchNamespace: ALL).
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"
GRAFANA_DASHBOARD_LABEL_VALUE = "1"

# DCGM exporter: chart and image are released together but pinned separately (the image
# carries the DCGM library version too).
DCGM_CHART = "dcgm-exporter"
DCGM_CHART_VERSION = "4.8.2"
DCGM_CHART_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_IMAGE_REPOSITORY = "nvcr.io/nvidia/k8s/dcgm-exporter"
DCGM_IMAGE_TAG = "4.5.3-4.8.2-distroless"
DCGM_RELEASE = "dcgm-exporter"
DCGM_COUNTERS = Path(__file__).parent / "vendor" / "dcgm-exporter-4.5.3-4.8.2" / "default-counters.csv"
# Off in the default list, on here: the ECC alert needs them.
DCGM_EXTRA_COUNTERS = ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL")

# The labels DCGM exporter puts on every per-GPU sample (besides pci_bus_id, device, modelName).
DCGM_GPU_LABELS = ("Hostname", "gpu", "UUID")

SCRAPE_INTERVAL = "15s"
SERVER_PORT_NAME = "http"  # the vLLM container's port name (components.server_pod.server_container)
METRICS_PATH = "/metrics"
MODEL_LABEL = "model"  # added by the PodMonitor's relabeling; vLLM's own label is model_name

# The vLLM sample names the rules and dashboards use (checked against a real server's /metrics).
VLLM_KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
VLLM_REQUESTS_WAITING = "vllm:num_requests_waiting"
VLLM_REQUESTS_RUNNING = "vllm:num_requests_running"
VLLM_PREEMPTIONS = "vllm:num_preemptions_total"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_TTFT_BUCKET = "vllm:time_to_first_token_seconds_bucket"
VLLM_ITL_BUCKET = "vllm:inter_token_latency_seconds_bucket"
VLLM_E2E_BUCKET = "vllm:e2e_request_latency_seconds_bucket"
VLLM_CACHE_CONFIG_INFO = "vllm:cache_config_info"
VLLM_METRICS = (
    VLLM_KV_CACHE_USAGE,
    VLLM_REQUESTS_WAITING,
    VLLM_REQUESTS_RUNNING,
    VLLM_PREEMPTIONS,
    VLLM_REQUEST_SUCCESS,
    VLLM_PROMPT_TOKENS,
    VLLM_GENERATION_TOKENS,
    VLLM_TTFT_BUCKET,
    VLLM_ITL_BUCKET,
    VLLM_E2E_BUCKET,
    VLLM_CACHE_CONFIG_INFO,
)
# Labels of vllm:cache_config_info the serving dashboard shows next to the plan's numbers.
VLLM_CACHE_CONFIG_LABELS = ("kv_cache_size_tokens", "kv_cache_max_concurrency", "num_gpu_blocks", "block_size")

KV_CACHE_HIGH_FOR = "10m"
NO_REPLICA_FOR = "5m"


# --- scraping and the NetworkPolicy ---------------------------------------------------------------


def monitoring_namespace(config: MonitoringConfig) -> str:
    """Where Prometheus runs (the chart's namespace, or the existing Prometheus's)."""
    return config.prometheus.namespace


def prometheus_selector_labels(config: MonitoringConfig) -> dict[str, str]:
    """Labels the Prometheus selects PodMonitors, ServiceMonitors and PrometheusRules by."""
    if config.prometheus.installs_chart:
        return dict(KUBE_PROMETHEUS_STACK_SELECTOR)
    return dict(config.prometheus.selector_labels or {})


def scrape_ingress_rule(config: MonitoringConfig) -> dict[str, Any]:
    """The servers' NetworkPolicy ingress rule admitting Prometheus: its namespace, the scraped port."""
    return {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring_namespace(config)}}}],
        "ports": [{"protocol": "TCP", "port": PORT}],
    }


def monitored_models(placement: Placement) -> list[ModelPlacement]:
    """vLLM models with replicas (NIM's metrics have other names; nothing runs at 0 replicas)."""
    return [m for m in placement.models if m.engine == "vllm" and m.config.replicas > 0]


def model_selector(model: ModelPlacement, namespace: str) -> str:
    """The PromQL label matchers of one model's series (the PodMonitor's relabeling sets ``model``)."""
    return f'{{namespace="{namespace}", {MODEL_LABEL}="{model.name}"}}'


def pod_monitor(model: ModelPlacement, namespace: str, selector_labels: dict[str, str]) -> dict[str, Any]:
    """One model's PodMonitor: the pods its Service selects, the server container's port."""
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PodMonitor",
        "metadata": {
            "name": model.name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": PROJECT, **selector_labels},
        },
        "spec": {
            "selector": {"matchLabels": service_selector(engine_for(model), model)},
            "podMetricsEndpoints": [
                {
                    "port": SERVER_PORT_NAME,
                    "path": METRICS_PATH,
                    "interval": SCRAPE_INTERVAL,
                    "relabelings": [{"action": "replace", "targetLabel": MODEL_LABEL, "replacement": model.name}],
                }
            ],
        },
    }


# --- charts ---------------------------------------------------------------------------------------------


@cache
def dcgm_counters_csv(extra: tuple[str, ...] = DCGM_EXTRA_COUNTERS) -> str:
    """The exporter's counter list: the pinned release's defaults plus ``extra``, which must be
    fields that list names commented out (so the exporter knows them)."""
    lines = DCGM_COUNTERS.read_text().splitlines()
    enabled = []
    for name in extra:
        line = next((ln for ln in lines if ln.lstrip("# ").startswith(f"{name},")), None)
        if line is None:
            raise ValueError(f"{name} is not among DCGM exporter's counters in {DCGM_COUNTERS}")
        enabled.append(line.lstrip("# "))
    return "\n".join([*lines, "", "# Enabled by gpu-inference (alerts)", *enabled]) + "\n"


def dcgm_counter_names() -> set[str]:
    """Metric names the exporter serves with ``dcgm_counters_csv``."""
    names = set()
    for line in dcgm_counters_csv().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, kind = (part.strip() for part in line.split(",")[:2])
            if kind != "label":
                names.add(name)
    return names


def dcgm_values(node_groups: Sequence[str], selector_labels: dict[str, str]) -> dict[str, Any]:
    """On the GPU nodes of the given groups only, tolerating the GPU taint; ServiceMonitor labelled
    for the Prometheus."""
    return {
        "image": {"repository": DCGM_IMAGE_REPOSITORY, "tag": DCGM_IMAGE_TAG},
        "affinity": gpu_node_affinity(node_groups),
        "tolerations": [gpu_toleration()],
        "customMetrics": dcgm_counters_csv(),
        "serviceMonitor": {"enabled": True, "interval": SCRAPE_INTERVAL, "additionalLabels": selector_labels},
    }


def kube_prometheus_stack_values(config: MonitoringConfig) -> dict[str, Any]:
    prometheus = config.prometheus
    spec: dict[str, Any] = {}
    values: dict[str, Any] = {
        "grafana": {
            "enabled": prometheus.grafana,
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": GRAFANA_DASHBOARD_LABEL,
                    "labelValue": GRAFANA_DASHBOARD_LABEL_VALUE,
                }
            },
        },
        "prometheus": {"prometheusSpec": spec},
    }
    if prometheus.mode == "amazonManaged":
        spec["remoteWrite"] = [{"url": prometheus.remote_write_url, "sigv4": {"region": prometheus.region}}]
        values["prometheus"]["serviceAccount"] = {"annotations": {"eks.amazonaws.com/role-arn": prometheus.role_arn}}
    return values


# --- alerts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelAlertThresholds:
    """One model's alert thresholds and where each comes from."""

    replicas: int  # the config's replica count
    not_ready_for_seconds: int  # image pull + the plan's load-time budget, +10%
    waiting_requests: int  # the plan's max concurrency at max_model_len x the config's factor
    kv_cache_usage: float
    preemptions_per_minute: float
    ttft_p95_seconds: float
    tpot_p95_seconds: float | None  # the traffic target's, when the model gives one
    max_concurrency: float  # the plan's, for the dashboard's reference lines
    kv_cache_tokens: int
    max_num_seqs: int


def alert_thresholds(model: ModelPlacement, config: MonitoringConfig) -> ModelAlertThresholds:
    alerts = config.alerts
    estimate = model.plan.estimate
    return ModelAlertThresholds(
        replicas=model.config.replicas,
        not_ready_for_seconds=await_timeout_seconds(startup_seconds(engine_for(model), model)),
        waiting_requests=max(1, math.ceil(estimate.max_concurrency * alerts.queue_per_max_concurrency)),
        kv_cache_usage=alerts.kv_cache_usage_high,
        preemptions_per_minute=alerts.preemptions_per_minute,
        ttft_p95_seconds=_ttft_slo_seconds(model, config),
        tpot_p95_seconds=model.config.traffic.p95_tpot_s if model.config.traffic else None,
        max_concurrency=estimate.max_concurrency,
        kv_cache_tokens=estimate.kv_cache_tokens,
        max_num_seqs=model.plan.settings.max_num_seqs,
    )


def _ttft_slo_seconds(model: ModelPlacement, config: MonitoringConfig) -> float:
    """The model's own SLO under alerts, else its traffic target's p95, else the stack's SLO."""
    alerts = config.alerts
    traffic = model.config.traffic
    if model.name not in alerts.ttft_p95_slo_seconds_by_model and traffic and traffic.p95_ttft_s is not None:
        return traffic.p95_ttft_s
    return alerts.ttft_slo_seconds(model.name)


def _duration(seconds: int) -> str:
    return f"{math.ceil(seconds / 60)}m"


def _rule(alert: str, expr: str, for_: str, severity: str, summary: str, runbook: str, **labels: str) -> dict:
    return {
        "alert": alert,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **labels},
        "annotations": {"summary": summary, "runbook": runbook},
    }


def model_rules(model: ModelPlacement, namespace: str, config: MonitoringConfig) -> list[dict[str, Any]]:
    t = alert_thresholds(model, config)
    sel = model_selector(model, namespace)
    name = model.name
    serving = f"(count(up{sel} == 1) or vector(0))"
    plan = model.plan
    return [
        _rule(
            "VllmNoReplicaServing",
            f"{serving} == 0",
            NO_REPLICA_FOR,
            "critical",
            f"{name}: no replica answers /metrics: the model is down",
            f"kubectl -n {namespace} get pods -l app.kubernetes.io/instance={name}; describe them and read the "
            "server's log (OOM, CUDA/NCCL errors, a failed download); a Pending pod means no GPU node",
            model=name,
        ),
        _rule(
            "VllmReplicasNotReady",
            f"{serving} < {t.replicas}",
            _duration(t.not_ready_for_seconds),
            "warning",
            f"{name}: fewer than {t.replicas} replicas serving for longer than image pull + the plan's load budget",
            "A replica is crash-looping, stuck loading or Pending: kubectl describe the pod; Pending means the node "
            "group lacks room (maxNodes, capacity); repeated restarts: read the previous container's log",
            model=name,
        ),
        _rule(
            "VllmKvCacheUsageHigh",
            f"max by (pod) ({VLLM_KV_CACHE_USAGE}{sel}) > {t.kv_cache_usage:g}",
            KV_CACHE_HIGH_FOR,
            "warning",
            f"{name}: KV cache above {t.kv_cache_usage:.0%} for {KV_CACHE_HIGH_FOR} (plan: {t.kv_cache_tokens} tokens)",
            "Sustained load near the KV cache's capacity: add replicas, or lower maxModelLen / raise "
            "gpuMemoryUtilization and re-plan; expect queueing and preemptions next",
            model=name,
        ),
        _rule(
            "VllmRequestsQueued",
            f"max by (pod) ({VLLM_REQUESTS_WAITING}{sel}) > {t.waiting_requests}",
            "5m",
            "warning",
            f"{name}: more than {t.waiting_requests} requests waiting in one replica (the plan's KV cache holds "
            f"{plan.estimate.max_concurrency:.1f} requests at max_model_len {plan.settings.max_model_len})",
            "Demand exceeds the replicas: add replicas (nodeGroup maxNodes permitting) or rate-limit clients; "
            "check VllmKvCacheUsageHigh and TTFT",
            model=name,
        ),
        _rule(
            "VllmPreemptionsRising",
            f"sum by (pod) (rate({VLLM_PREEMPTIONS}{sel}[5m])) * 60 > {t.preemptions_per_minute:g}",
            "10m",
            "warning",
            f"{name}: more than {t.preemptions_per_minute:g} preemptions a minute (KV cache exhausted mid-generation)",
            "Requests are evicted and recomputed: lower maxNumSeqs or maxModelLen, or add replicas; a plan whose KV "
            "cache vLLM reports smaller than predicted needs recalibration (see the dashboard's KV table)",
            model=name,
        ),
        _rule(
            "VllmTimeToFirstTokenSloBreached",
            f"histogram_quantile(0.95, sum by (le) (rate({VLLM_TTFT_BUCKET}{sel}[10m]))) > {t.ttft_p95_seconds:g}",
            "10m",
            "warning",
            f"{name}: time to first token p95 above the {t.ttft_p95_seconds:g} s SLO",
            "Queueing or long prompts: check VllmRequestsQueued and the prompt tokens rate; add replicas or lower "
            "maxNumBatchedTokens contention; if idle and still slow, check GPU clocks and XIDs",
            model=name,
        ),
        *_tpot_rules(t, sel, name),
    ]


def _tpot_rules(t: ModelAlertThresholds, sel: str, name: str) -> list[dict[str, Any]]:
    if t.tpot_p95_seconds is None:
        return []
    return [
        _rule(
            "VllmTimePerOutputTokenSloBreached",
            f"histogram_quantile(0.95, sum by (le) (rate({VLLM_ITL_BUCKET}{sel}[10m]))) > {t.tpot_p95_seconds:g}",
            "10m",
            "warning",
            f"{name}: time per output token p95 above the traffic target's {t.tpot_p95_seconds:g} s",
            "More requests in flight per replica than the traffic plan allows: check the running requests per "
            "replica against the autoscaler's running target and whether maxReplicas was reached; if the load is "
            "within the plan, the throughput prediction is off for this GPU and model: compare the dashboard's "
            "tokens/s with python -m sizing throughput at the same concurrency",
            model=name,
        )
    ]


def gpu_rules(config: MonitoringConfig) -> list[dict[str, Any]]:
    limit = config.alerts.gpu_memory_temperature_celsius
    by = ", ".join(DCGM_GPU_LABELS)
    return [
        _rule(
            "GpuXidError",
            f"max by ({by}) (DCGM_FI_DEV_XID_ERRORS) > 0",
            "0m",
            "critical",
            "GPU reported an XID error (the value is the XID)",
            "Look the XID up in NVIDIA's XID catalog; 48, 63, 64, 74, 79, 94, 95: cordon and drain the node "
            "(kubectl drain) and replace the instance; others: read the server's log on that node",
        ),
        _rule(
            "GpuEccDoubleBitErrors",
            f"increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[10m]) > 0 or max by ({by}) (DCGM_FI_DEV_ROW_REMAP_FAILURE) > 0",
            "0m",
            "critical",
            "GPU memory has uncorrectable (double-bit) ECC errors or failed row remapping",
            "Results from this GPU may be corrupt: cordon and drain the node, then replace the instance "
            "(a reboot clears volatile counters, not the fault)",
        ),
        _rule(
            "GpuMemoryTemperatureHigh",
            f"max by ({by}) (DCGM_FI_DEV_MEMORY_TEMP) > {limit:g}",
            "5m",
            "warning",
            f"GPU memory (HBM) above {limit:g} °C for 5 minutes",
            "The GPU will throttle: check DCGM_FI_DEV_POWER_USAGE and the instance's health in EC2; sustained on "
            "one node only: drain it and replace the instance",
        ),
    ]


def prometheus_rule(
    placement: Placement, config: MonitoringConfig, *, server_namespace: str, rule_namespace: str
) -> dict[str, Any]:
    """The stack's one PrometheusRule: a group per model, one for the GPUs."""
    groups = [
        {"name": f"vllm-{m.name}", "rules": model_rules(m, server_namespace, config)}
        for m in monitored_models(placement)
    ]
    if config.dcgm_exporter:
        groups.append({"name": "gpu", "rules": gpu_rules(config)})
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": {
            "name": f"{PROJECT}-alerts",
            "namespace": rule_namespace,
            "labels": {"app.kubernetes.io/part-of": PROJECT, **prometheus_selector_labels(config)},
        },
        "spec": {"groups": groups},
    }


# --- dashboards -----------------------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass
class _Panels:
    """Lays panels out two per row, 12 columns wide."""

    panels: list[dict[str, Any]] = field(default_factory=list)

    def add(self, title: str, targets: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries", **extra):
        index = len(self.panels)
        self.panels.append(
            {
                "id": index + 1,
                "type": kind,
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(targets)
                ],
                **extra,
            }
        )


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": [PROJECT],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"}]
        },
        "panels": panels,
    }


def _uid(kind: str, name: str) -> str:
    """Grafana uids are at most 40 characters."""
    uid = f"{PROJECT}-{kind}-{name}"
    return uid if len(uid) <= 40 else f"{uid[:31]}-{hashlib.sha1(uid.encode()).hexdigest()[:8]}"


def _quantiles(bucket: str, sel: str) -> list[tuple[str, str]]:
    return [
        (f"histogram_quantile({q}, sum by (le) (rate({bucket}{sel}[5m])))", f"p{round(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]


def serving_dashboard(model: ModelPlacement, namespace: str, config: MonitoringConfig) -> dict[str, Any]:
    """One model's serving dashboard; the plan's numbers are drawn as ``vector(...)`` reference lines."""
    t = alert_thresholds(model, config)
    sel = model_selector(model, namespace)
    p = _Panels()
    p.add(
        "Requests finished / s",
        [(f"sum by (finished_reason) (rate({VLLM_REQUEST_SUCCESS}{sel}[5m]))", "{{finished_reason}}")],
        "reqps",
    )
    p.add(
        "Tokens / s",
        [
            (f"sum(rate({VLLM_PROMPT_TOKENS}{sel}[5m]))", "prompt"),
            (f"sum(rate({VLLM_GENERATION_TOKENS}{sel}[5m]))", "generated"),
        ],
    )
    p.add(
        "Time to first token",
        [*_quantiles(VLLM_TTFT_BUCKET, sel), (f"vector({t.ttft_p95_seconds:g})", "SLO (p95)")],
        "s",
    )
    p.add(
        "Inter-token latency",
        [*_quantiles(VLLM_ITL_BUCKET, sel)]
        + ([(f"vector({t.tpot_p95_seconds:g})", "target (p95)")] if t.tpot_p95_seconds is not None else []),
        "s",
    )
    p.add("End-to-end request latency", _quantiles(VLLM_E2E_BUCKET, sel), "s")
    p.add(
        "KV cache usage",
        [(f"max by (pod) ({VLLM_KV_CACHE_USAGE}{sel})", "{{pod}}"), (f"vector({t.kv_cache_usage:g})", "alert")],
        "percentunit",
    )
    p.add(
        "KV cache tokens in use (usage x the plan's capacity)",
        [
            (f"max by (pod) ({VLLM_KV_CACHE_USAGE}{sel}) * {t.kv_cache_tokens}", "{{pod}}"),
            (f"vector({t.kv_cache_tokens})", "plan: KV cache tokens per replica"),
        ],
        description="Compare the plan's capacity with what vLLM reports in the table 'KV cache: vLLM vs the plan'.",
    )
    p.add(
        "KV cache: vLLM vs the plan",
        [(f"max by (pod, {', '.join(VLLM_CACHE_CONFIG_LABELS)}) ({VLLM_CACHE_CONFIG_INFO}{sel})", "")],
        kind="table",
        description=(
            f"The plan predicts {t.kv_cache_tokens} KV tokens and a max concurrency of {t.max_concurrency:.2f} "
            f"requests at max_model_len {model.plan.settings.max_model_len}; vLLM's own numbers per pod are below. "
            "Fewer tokens than planned: recalibrate the sizing before trusting the alerts' thresholds."
        ),
        transformations=[{"id": "labelsToFields", "options": {}}],
        options={"showHeader": True},
    )
    p.panels[-1]["targets"][0].update(instant=True, format="table")
    p.add(
        "Requests running and waiting",
        [
            (f"sum by (pod) ({VLLM_REQUESTS_RUNNING}{sel})", "running {{pod}}"),
            (f"sum by (pod) ({VLLM_REQUESTS_WAITING}{sel})", "waiting {{pod}}"),
            (f"vector({t.max_concurrency:.2f})", "plan: max concurrency at max_model_len"),
            (f"vector({t.waiting_requests})", "alert: waiting"),
        ],
    )
    p.add(
        "Preemptions / min",
        [
            (f"sum by (pod) (rate({VLLM_PREEMPTIONS}{sel}[5m])) * 60", "{{pod}}"),
            (f"vector({t.preemptions_per_minute:g})", "alert"),
        ],
    )
    plan = model.plan
    title = (
        f"vLLM {model.name}: {plan.model} on {plan.gpus} x {plan.gpu} "
        f"(TP={plan.tensor_parallel_size} x PP={plan.pipeline_parallel_size}), "
        f"{t.replicas} replica{'s' * (t.replicas != 1)}"
    )
    return _dashboard(_uid("serving", model.name), title, p.panels)


def gpu_dashboard() -> dict[str, Any]:
    p = _Panels()
    by = "{{Hostname}} GPU {{gpu}}"
    p.add("GPU utilization", [("DCGM_FI_DEV_GPU_UTIL", by)], "percent")
    p.add("Tensor core activity", [("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", by)], "percentunit")
    p.add(
        "GPU memory used",
        [("DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)", by)],
        "percentunit",
    )
    p.add("Power", [("DCGM_FI_DEV_POWER_USAGE", by)], "watt")
    p.add(
        "Temperature",
        [("DCGM_FI_DEV_GPU_TEMP", "core " + by), ("DCGM_FI_DEV_MEMORY_TEMP", "memory " + by)],
        "celsius",
    )
    p.add(
        "XID and ECC errors",
        [
            ("DCGM_FI_DEV_XID_ERRORS", "last XID " + by),
            ("increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[1h])", "double-bit ECC / h " + by),
        ],
    )
    return _dashboard(_uid("gpu", "dcgm"), "GPUs (DCGM exporter)", p.panels)


def dashboards(placement: Placement, config: MonitoringConfig, server_namespace: str) -> dict[str, dict[str, Any]]:
    """Every dashboard of the stack, by ConfigMap name."""
    boards = {
        f"{PROJECT}-{m.name}": serving_dashboard(m, server_namespace, config) for m in monitored_models(placement)
    }
    if config.dcgm_exporter:
        boards[f"{PROJECT}-gpus"] = gpu_dashboard()
    return boards


def dashboard_config_map(name: str, dashboard: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": PROJECT, GRAFANA_DASHBOARD_LABEL: GRAFANA_DASHBOARD_LABEL_VALUE},
        },
        "data": {f"{name}.json": json.dumps(dashboard, indent=1, sort_keys=True)},
    }


# --- the component ----------------------------------------------------------------------------------------


@dataclass
class MonitoringArgs:
    """``config`` is the stack's ``monitoring`` section; ``placement`` the plan; ``server_namespace``
    where the servers (and their PodMonitors) are, as a plain string (it is in the PromQL);
    ``depends_on`` the cluster (and, for the PodMonitors' targets, nothing more: a PodMonitor
    may exist before its pods)."""

    config: MonitoringConfig
    placement: Placement
    server_namespace: str
    provider: k8s.Provider
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def crd_name(kind: str) -> str:
    return f"{CRD_PLURALS[kind]}.{MONITORING_GROUP}"


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack (when installed), DCGM exporter, PodMonitors, the PrometheusRule, dashboards.

    Nothing is applied before what it needs exists: with an installed Prometheus everything waits
    for the chart (whose CRDs Helm applies first); with an existing one the stack reads the
    prometheus-operator CRDs its objects need and the Prometheus's namespace, and everything
    waits for those reads. The engine runs reads during ``pulumi preview``, and a read of an
    object the cluster lacks fails there (``resource '<name>' does not exist``), so a cluster
    without prometheus-operator stops the preview instead of failing half-way through an update.
    """

    chart: k8s.helm.v3.Release | None  # kube-prometheus-stack, when the config installs it
    prerequisites: list[pulumi.Resource]  # the chart, or the reads of the existing Prometheus's CRDs and namespace
    dcgm: k8s.helm.v3.Release | None
    pod_monitors: list[k8s.apiextensions.CustomResource]
    rule: k8s.apiextensions.CustomResource | None
    dashboards: list[k8s.core.v1.ConfigMap]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:Monitoring", name, None, opts)
        config = args.config
        namespace = monitoring_namespace(config)
        selector = prometheus_selector_labels(config)
        groups = [g.name for g in args.placement.node_groups]
        models = monitored_models(args.placement)
        rule = prometheus_rule(args.placement, config, server_namespace=args.server_namespace, rule_namespace=namespace)
        kinds = [
            *(["PodMonitor"] if models else []),
            *(["PrometheusRule"] if rule["spec"]["groups"] else []),
            *(["ServiceMonitor"] if config.dcgm_exporter and groups else []),
        ]
        self.chart = None
        if config.prometheus.installs_chart:
            self.chart = pinned_release(
                f"{name}-kube-prometheus-stack",
                parent=self,
                provider=args.provider,
                depends_on=args.depends_on,
                release_name=KUBE_PROMETHEUS_STACK_RELEASE,
                chart=KUBE_PROMETHEUS_STACK_CHART,
                version=KUBE_PROMETHEUS_STACK_VERSION,
                repo=KUBE_PROMETHEUS_STACK_REPO,
                namespace=namespace,
                create_namespace=True,
                values=kube_prometheus_stack_values(config),
            )
            self.prerequisites = [self.chart]
        else:
            read = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
            self.prerequisites = [
                k8s.apiextensions.v1.CustomResourceDefinition.get(
                    f"{name}-prometheus-operator-{CRD_PLURALS[kind]}", crd_name(kind), opts=read
                )
                for kind in kinds
            ]
            self.prerequisites.append(k8s.core.v1.Namespace.get(f"{name}-prometheus-namespace", namespace, opts=read))
        after = [*args.depends_on, *self.prerequisites]
        self.dcgm = None
        if "ServiceMonitor" in kinds:
            self.dcgm = pinned_release(
                f"{name}-dcgm-exporter",
                parent=self,
                provider=args.provider,
                depends_on=after,
                release_name=DCGM_RELEASE,
                chart=DCGM_CHART,
                version=DCGM_CHART_VERSION,
                repo=DCGM_CHART_REPO,
                namespace=namespace,
                create_namespace=True,
                values=dcgm_values(groups, selector),
            )
        opts_after = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=after)

        def custom(resource: str, manifest: dict[str, Any]) -> k8s.apiextensions.CustomResource:
            return k8s.apiextensions.CustomResource(
                resource,
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=opts_after,
            )

        self.pod_monitors = [
            custom(f"{name}-{m.name}-podmonitor", pod_monitor(m, args.server_namespace, selector)) for m in models
        ]
        self.rule = custom(f"{name}-rules", rule) if rule["spec"]["groups"] else None
        self.dashboards = []
        for board, dashboard in dashboards(args.placement, config, args.server_namespace).items():
            manifest = dashboard_config_map(board, dashboard, namespace)
            self.dashboards.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-dashboard-{board}", metadata=manifest["metadata"], data=manifest["data"], opts=opts_after
                )
            )
        self.register_outputs(
            {
                "namespace": namespace,
                "kubePrometheusStackVersion": KUBE_PROMETHEUS_STACK_VERSION if self.chart else None,
                "dcgmExporterChartVersion": DCGM_CHART_VERSION if self.dcgm else None,
            }
        )
