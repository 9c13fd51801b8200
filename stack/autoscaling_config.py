"""The autoscaling parts of the stack config: a model's ``autoscaling``, a Capacity Block's window,
the cluster's ``autoscaling`` add-ons and the price overrides.

Keys are camelCase, unknown keys are rejected, and ``parse_*`` turn pydantic's errors into
``ConfigError`` lines that name the field path (``models[1].autoscaling.maxReplicas``), the value
and what would be valid. Bounds that need the plan (a group's maxNodes, a reservation's size)
are checked in ``stack.autoscaling_checks``.

A model's ``autoscaling``::

    autoscaling:
      minReplicas: 1
      maxReplicas: 4
      targetQueueLength: 8       # waiting requests per replica; default from the plan
      targetKvCacheUsage: 0.8    # mean KV-cache fill across replicas (0-1]
      scaleToZero: false         # minReplicas 0 needs it, and activationQuery
      activationQuery: sum(rate(envoy_cluster_upstream_rq_total{envoy_cluster_name="llama"}[2m]))

vLLM reports its queue only while a server runs: at zero replicas nothing exports
``vllm:num_requests_waiting``, so scaling from zero needs a signal from in front of the servers
(the gateway's request rate), given as ``activationQuery``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from sizing.instances import INSTANCES

# The longest HPA stabilization window and scaling-policy period Kubernetes accepts.
HPA_MAX_STABILIZATION_SECONDS = 3600
HPA_MAX_POLICY_PERIOD_SECONDS = 1800


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, populate_by_name=True)


class AutoscalingConfig(_Model):
    """One model's replica bounds and load targets (KEDA ScaledObject on vLLM's own metrics).

    Past ``stack.placement`` both bounds are set: given, or derived from the model's ``traffic``."""

    # Required unless the model gives ``traffic``, which derives them (stack.config.ModelConfig).
    min_replicas: int | None = Field(None, ge=0)
    max_replicas: int | None = Field(None, ge=1)
    target_queue_length: float | None = Field(None, gt=0, description="waiting requests per replica")
    target_kv_cache_usage: float | None = Field(None, gt=0, le=1, description="mean KV-cache fill, 0-1")
    scale_to_zero: bool = False
    activation_query: str | None = Field(None, description="PromQL: > activationThreshold wakes a scaled-to-zero model")
    activation_threshold: float = Field(0, ge=0)
    scale_down_stabilization_seconds: int | None = Field(None, ge=0, le=HPA_MAX_STABILIZATION_SECONDS)
    polling_interval_seconds: int = Field(30, ge=5, le=600)

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas is not None and self.max_replicas is not None and self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}: "
                f"give minReplicas <= maxReplicas (e.g. maxReplicas: {self.min_replicas})"
            )
        if self.min_replicas == 0 and not self.scale_to_zero:
            raise ValueError(
                "minReplicas 0 scales the model to zero, which must be asked for: set scaleToZero: true "
                "(and activationQuery), or give minReplicas >= 1"
            )
        if self.scale_to_zero and self.min_replicas not in (0, None):
            raise ValueError(f"scaleToZero: true needs minReplicas: 0, not {self.min_replicas}")
        if self.scale_to_zero and not self.activation_query:
            raise ValueError(
                "scaleToZero: true needs activationQuery: at zero replicas no vLLM server exports "
                "vllm:num_requests_waiting, so nothing would ever scale the model back up; give a PromQL "
                "expression on the traffic in front of the servers (e.g. the gateway's request rate)"
            )
        if self.activation_query and not self.scale_to_zero:
            raise ValueError("activationQuery is only used with scaleToZero: true")
        return self


class CapacityBlockWindow(_Model):
    """When a Capacity Block's instances exist: EC2 starts them at ``start`` and terminates them
    30 minutes before ``end``. Times are ISO 8601 with a zone (``2026-12-10T11:30:00Z``)."""

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} has no time zone: write it in UTC, e.g. {value.isoformat()}Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _order(self) -> CapacityBlockWindow:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self


NodeAutoscaler = Literal["clusterAutoscaler", "karpenter", "none"]


class ClusterAutoscalingConfig(_Model):
    """Cluster-wide: install KEDA (pinned chart) and which node autoscaler, and where Prometheus is."""

    install_keda: bool = True
    prometheus_server_address: str = Field(
        "http://kube-prometheus-stack-prometheus.monitoring.svc:9090",
        description="the Prometheus KEDA queries (the monitoring stack's)",
    )
    node_autoscaler: NodeAutoscaler = "clusterAutoscaler"

    @field_validator("prometheus_server_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not a URL: give http(s)://host:port of the Prometheus server")
        return value.rstrip("/")


class PriceOverrides(_Model):
    """$/hour per instance type, replacing the catalog's on-demand figure (a negotiated rate, or
    what a reservation or Capacity Block was bought at)."""

    usd_per_hour: dict[str, float] = Field(default_factory=dict)
    capacity_block_usd_per_hour: dict[str, float] = Field(default_factory=dict)

    @field_validator("usd_per_hour", "capacity_block_usd_per_hour")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        out = {}
        for name, price in value.items():
            key = name.strip().lower()
            if key not in INSTANCES:
                raise ValueError(f"unknown instance type {name!r}: priced types are {', '.join(INSTANCES)}")
            if price <= 0:
                raise ValueError(f"{name}: {price} $/hour is not a price (give a positive number)")
            out[key] = float(price)
        return out


def _problems(error: ValidationError, path: str) -> list[str]:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if part != "__root__")
        field = f"{path}.{where}" if where else path
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if isinstance(value, dict) or where == "" else f" (got {value!r})"
        lines.append(f"{field}: {message}{shown}")
    return lines


def _parse(model: type[_Model], value: Any, path: str) -> Any:
    from stack.config import ConfigError  # stack.config embeds these models in the stack's config

    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise ConfigError(_problems(error, path)) from None


def parse_autoscaling(value: Any, path: str) -> AutoscalingConfig:
    """``path`` is where the value sits, e.g. ``models[1].autoscaling``."""
    return _parse(AutoscalingConfig, value, path)


def parse_capacity_block_window(value: Any, path: str) -> CapacityBlockWindow:
    return _parse(CapacityBlockWindow, value, path)


def parse_cluster_autoscaling(value: Any, path: str = "autoscaling") -> ClusterAutoscalingConfig:
    return _parse(ClusterAutoscalingConfig, value or {}, path)


def parse_price_overrides(value: Any, path: str = "prices") -> PriceOverrides:
    return _parse(PriceOverrides, value or {}, path)
