"""The ``monitoring`` section of the stack config: which Prometheus, and the alerts' service levels.

```yaml
gpu-inference:monitoring:
  prometheus:
    mode: install            # install | existing | amazonManaged
    namespace: monitoring
  alerts:
    ttftP95SloSeconds: 2.0
    ttftP95SloSecondsByModel: {llama-3-1-70b: 4.0}
```

- ``install``: kube-prometheus-stack (pinned chart, with Grafana and kube-state-metrics) in
  ``namespace``; it selects monitors and rules by its ``release`` label, which the stack's carry.
- ``existing``: a Prometheus the platform runs (prometheus-operator) in ``namespace``; give the
  labels its ``podMonitorSelector``/``serviceMonitorSelector``/``ruleSelector`` match as
  ``selectorLabels``. Its namespace is what the servers' NetworkPolicy admits. The stack reads the
  operator's CRDs and that namespace, so a cluster without them fails at preview; hence only on an
  adopted cluster (``cluster.existing``): one the stack creates has no Prometheus yet.
- ``amazonManaged``: kube-prometheus-stack as in ``install``, remote-writing to an Amazon
  Managed Service for Prometheus workspace with SigV4, through an IAM role for its service
  account (``roleArn``, with ``aps:RemoteWrite`` on the workspace).

Thresholds that depend on the plan (queue depth, KV tokens, concurrency) are not here: they are
derived from each model's plan in ``components.monitoring``. Only service levels (an SLO) and
hardware limits are configured.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from stack.kubernetes_names import dns1123_label

# Kubernetes label keys: an optional DNS-subdomain prefix, then a name of up to 63 characters.
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
AMP_WORKSPACE = re.compile(r"^ws-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
DEFAULT_MONITORING_NAMESPACE = "monitoring"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


def _namespace(value: str) -> str:
    if problem := dns1123_label(value):
        raise ValueError(f"namespace {problem}")
    return value


class PrometheusConfig(_Model):
    mode: Literal["install", "existing", "amazonManaged"]
    namespace: str = DEFAULT_MONITORING_NAMESPACE
    selector_labels: dict[str, str] | None = Field(
        None, description="existing: the labels the Prometheus selects PodMonitors, ServiceMonitors and rules by"
    )
    grafana: bool = Field(True, description="install/amazonManaged: install Grafana with the chart")
    workspace_id: str | None = None
    region: str | None = None
    role_arn: str | None = None

    @field_validator("namespace")
    @classmethod
    def _ns(cls, value: str) -> str:
        return _namespace(value)

    @field_validator("selector_labels")
    @classmethod
    def _labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, label in (value or {}).items():
            if not LABEL_KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
                raise ValueError(f"{key!r} is not a valid label key (optional prefix/, then a name of up to 63 chars)")
            if len(label) > 63 or not LABEL_VALUE.match(label):
                raise ValueError(
                    f"{key}: {label!r} is not a valid label value (up to 63 letters, digits, '-', '_', '.', "
                    "starting and ending with a letter or digit)"
                )
        return value

    @model_validator(mode="after")
    def _mode(self) -> PrometheusConfig:
        amp = {"workspaceId": self.workspace_id, "region": self.region, "roleArn": self.role_arn}
        if self.mode == "existing":
            if not self.selector_labels:
                raise ValueError(
                    "mode existing needs selectorLabels: the labels your Prometheus's podMonitorSelector, "
                    "serviceMonitorSelector and ruleSelector match (e.g. {release: kube-prometheus-stack}); "
                    "without them it would ignore the stack's monitors and rules"
                )
            given = [key for key, value in amp.items() if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for mode amazonManaged")
        else:
            if self.selector_labels is not None:
                raise ValueError(
                    f"selectorLabels: only for mode existing (mode {self.mode} installs kube-prometheus-stack, "
                    "which selects by its release label)"
                )
        if self.mode == "amazonManaged":
            missing = [key for key, value in amp.items() if value is None]
            if missing:
                raise ValueError(
                    f"mode amazonManaged needs {', '.join(missing)}: the workspace (ws-...), its region, and an IAM "
                    "role for the Prometheus service account (IRSA) allowed aps:RemoteWrite on it"
                )
            if not AMP_WORKSPACE.match(self.workspace_id or ""):
                raise ValueError(f"workspaceId: {self.workspace_id!r} is not an AMP workspace id (ws-<uuid>)")
            if not AWS_REGION.match(self.region or ""):
                raise ValueError(f"region: {self.region!r} is not an AWS region (e.g. us-east-1)")
            if not IAM_ROLE_ARN.match(self.role_arn or ""):
                raise ValueError(
                    f"roleArn: {self.role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
                )
        elif self.mode == "install":
            given = [key for key, value in amp.items() if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for mode amazonManaged")
        return self

    @property
    def installs_chart(self) -> bool:
        return self.mode in ("install", "amazonManaged")

    @property
    def remote_write_url(self) -> str | None:
        if self.mode != "amazonManaged":
            return None
        return f"https://aps-workspaces.{self.region}.amazonaws.com/workspaces/{self.workspace_id}/api/v1/remote_write"


class AlertsConfig(_Model):
    """Service levels and hardware limits; everything sized by the plan is derived, not set here."""

    ttft_p95_slo_seconds: float = Field(2.0, gt=0, le=600)
    ttft_p95_slo_seconds_by_model: dict[str, float] = Field(default_factory=dict)
    kv_cache_usage_high: float = Field(0.9, gt=0, le=1, description="fraction of the KV cache, held for 10 minutes")
    queue_per_max_concurrency: float = Field(
        1.0, gt=0, le=100, description="waiting requests per request the plan's KV cache holds at full length"
    )
    preemptions_per_minute: float = Field(1.0, gt=0)
    gpu_memory_temperature_celsius: float = Field(
        85.0, gt=40, le=110, description="HBM temperature; H100/H200 HBM throttles in the mid 90s"
    )

    @field_validator("ttft_p95_slo_seconds_by_model")
    @classmethod
    def _per_model(cls, value: dict[str, float]) -> dict[str, float]:
        for name, seconds in value.items():
            if not seconds > 0:
                raise ValueError(f"{name}: {seconds!r} is not a time to first token: give seconds > 0")
        return value

    def ttft_slo_seconds(self, model: str) -> float:
        return self.ttft_p95_slo_seconds_by_model.get(model, self.ttft_p95_slo_seconds)


class MonitoringConfig(_Model):
    prometheus: PrometheusConfig
    dcgm_exporter: bool = Field(True, description="install NVIDIA's DCGM exporter on the GPU nodes")
    alerts: AlertsConfig = AlertsConfig()

    def problems(self, model_names: list[str], creates_cluster: bool = False) -> list[str]:
        """What only the whole stack config can tell: per-model settings naming unknown models; an
        existing Prometheus on a cluster the stack creates (there is none to find, and at the first
        preview the cluster cannot be read to check for its CRDs)."""
        unknown = sorted(set(self.alerts.ttft_p95_slo_seconds_by_model) - set(model_names))
        problems = [
            f"monitoring.alerts.ttftP95SloSecondsByModel.{name}: no model of that name "
            f"(models: {', '.join(model_names) or 'none'})"
            for name in unknown
        ]
        if creates_cluster and self.prometheus.mode == "existing":
            problems.append(
                "monitoring.prometheus.mode: existing needs a Prometheus already running in the cluster, but this "
                "stack creates the cluster (cluster.create): use mode install (or amazonManaged), or adopt a cluster "
                "that runs prometheus-operator (cluster.existing)"
            )
        return problems
