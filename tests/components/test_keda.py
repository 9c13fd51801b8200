"""KEDA ScaledObjects: vLLM's load signals, targets from the plan, valid PromQL on real metric
names, the pinned CRD's schema, and Pulumi leaving the live replica count to the autoscaler."""

from __future__ import annotations

import copy
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import promql_parser
import pulumi
import pytest

from components.engines import engine_for
from components.keda import (
    KEDA_CHART_VERSION,
    KEDA_IMAGE_TAG,
    KEDA_PAUSED_REPLICAS,
    REPLICAS_FIELD,
    VLLM_KV_CACHE_USAGE,
    VLLM_REQUESTS_RUNNING,
    VLLM_REQUESTS_WAITING,
    aws_trigger_authentication,
    keda_chart_values,
    paused_outside_window,
    scaled_object,
    workload_options,
    workload_replicas,
)
from components.server_pod import startup_seconds
from stack import mockrun
from stack.autoscaling_config import parse_autoscaling, parse_capacity_block_window
from stack.autoscaling_plan import plan_autoscaling
from stack.capacity_block import capacity_block_schedule
from stack.config import parse_config
from stack.placement import place
from tests.stack.autoscaling_fixtures import placement

ROOT = Path(__file__).resolve().parents[2]
VLLM_METRICS = ROOT / "verify" / "vendor" / "vllm-0.32.0-cpu-metrics.txt"
PROMETHEUS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
WAKE = 'sum(rate(envoy_cluster_upstream_rq_total{envoy_cluster_name="qwen2-5-72b"}[2m]))'


def autoscaled(name: str, **bounds):
    model = next(m for m in placement().models if m.name == name)
    config = parse_autoscaling({"minReplicas": 1, "maxReplicas": 4, **bounds}, "x")
    return model, plan_autoscaling(model, config, startup_seconds(engine_for(model), model))


def deployment_scaled_object(auto) -> dict:
    """The ScaledObject of a Deployment named after its model, on the in-cluster Prometheus."""
    return scaled_object(
        auto,
        name=auto.model,
        namespace="inference",
        target_api_version="apps/v1",
        target_kind="Deployment",
        server_address=PROMETHEUS,
    )


def manifests() -> list[dict]:
    out = [deployment_scaled_object(autoscaled(name)[1]) for name in ("llama-3-1-8b", "llama-3-1-70b")]
    _, auto = autoscaled("qwen2-5-72b", minReplicas=0, scaleToZero=True, activationQuery=WAKE)
    out.append(
        scaled_object(
            auto,
            name="qwen2-5-72b",
            namespace="inference",
            target_api_version="apps/v1",
            target_kind="Deployment",
            server_address="https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1",
            authentication="keda-aws",
            aws_region="us-east-1",
        )
    )
    out.append(traffic_scaled_object())
    return out


def traffic_scaled_object() -> dict:
    """prod's llama-3-1-8b as the stack file gives it: with a traffic target (a running-requests trigger)."""
    raw = {
        k.split(":", 1)[1]: v for k, v in mockrun.load_stack_config("prod").items() if k.startswith("gpu-inference:")
    }
    model = next(m for m in place(parse_config(raw)).models if m.name == "llama-3-1-8b")
    assert model.traffic is not None and model.config.autoscaling is not None
    return deployment_scaled_object(
        plan_autoscaling(model, model.config.autoscaling, startup_seconds(engine_for(model), model))
    )


def triggers(obj: dict) -> dict[str, dict]:
    return {t["name"]: t for t in obj["spec"]["triggers"]}


def test_triggers_are_vllms_queue_and_kv_cache_with_the_plans_targets():
    model, auto = autoscaled("llama-3-1-70b")
    obj = deployment_scaled_object(auto)
    found = triggers(obj)
    assert set(found) == {"queue", "kv-cache"}
    assert VLLM_REQUESTS_WAITING in found["queue"]["metadata"]["query"]
    assert float(found["queue"]["metadata"]["threshold"]) == auto.target_queue_length
    assert found["queue"]["metricType"] == "AverageValue"  # total waiting / per-replica target
    assert VLLM_KV_CACHE_USAGE in found["kv-cache"]["metadata"]["query"]
    assert float(found["kv-cache"]["metadata"]["threshold"]) == 0.8 and found["kv-cache"]["metricType"] == "Value"
    spec = obj["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.name}


def test_no_flapping_windows_cover_the_load_time():
    model, auto = autoscaled("llama-3-1-70b")
    load = startup_seconds(engine_for(model), model)
    behavior = scaled_object(
        auto,
        name="m",
        namespace="inference",
        target_api_version="apps/v1",
        target_kind="Deployment",
        server_address=PROMETHEUS,
    )["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    down = behavior["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= min(2 * load, 3600)
    assert all(p["periodSeconds"] == min(load, 1800) for p in behavior["scaleUp"]["policies"] + down["policies"])
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": min(load, 1800)}]


def test_scale_to_zero_wakes_on_the_configured_query_only():
    _, auto = autoscaled("qwen2-5-72b", minReplicas=0, scaleToZero=True, activationQuery=WAKE)
    obj = manifests()[2]
    wake = triggers(obj)["activation"]
    assert wake["metadata"]["query"] == WAKE and wake["metadata"]["activationThreshold"] == "0"
    assert obj["spec"]["minReplicaCount"] == 0 and workload_replicas(auto, 2) == 1
    assert wake["authenticationRef"] == {"name": "keda-aws"} and wake["metadata"]["awsRegion"] == "us-east-1"


def test_every_promql_expression_parses():
    for obj in manifests():
        for trigger in obj["spec"]["triggers"]:
            promql_parser.parse(trigger["metadata"]["query"])
    with pytest.raises(ValueError):
        promql_parser.parse('sum(vllm:num_requests_waiting{namespace="inference"}')


def _metric_names(node) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name}
    names: set[str] = set()
    for attr in ("expr", "lhs", "rhs", "param", "vector_selector", "args"):
        child = getattr(node, attr, None)
        if child is None:
            continue
        for item in child if isinstance(child, (list, tuple)) else [child]:
            names |= _metric_names(item)
    return names


def test_every_vllm_metric_named_is_in_the_pinned_vllm_metrics():
    if not VLLM_METRICS.exists():
        pytest.skip(f"{VLLM_METRICS.relative_to(ROOT)} (vLLM 0.32.0's real /metrics) arrives with branch observe")
    exposed = {
        line.split("{")[0].split()[0]
        for line in VLLM_METRICS.read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set()
    for obj in [*manifests()[:2], traffic_scaled_object()]:
        for trigger in obj["spec"]["triggers"]:
            used |= {
                n for n in _metric_names(promql_parser.parse(trigger["metadata"]["query"])) if n.startswith("vllm:")
            }
    assert used == {VLLM_REQUESTS_WAITING, VLLM_KV_CACHE_USAGE, VLLM_REQUESTS_RUNNING}
    assert used <= exposed, used - exposed


def test_scaled_objects_and_trigger_authentication_match_the_keda_crds():
    crds = pytest.importorskip("verify.crds", reason="verify/crds.py (KEDA v2.20.2 CRDs) arrives with branch verify")
    for obj in [*manifests(), aws_trigger_authentication("keda-aws", "inference")]:
        assert crds.validate_custom_resource(obj) == [], obj["metadata"]["name"]
    broken = copy.deepcopy(manifests()[0])
    broken["spec"]["maxReplicas"] = broken["spec"].pop("maxReplicaCount")
    assert crds.validate_custom_resource(broken)


def test_chart_and_image_pinned_separately():
    assert KEDA_CHART_VERSION and KEDA_IMAGE_TAG
    images = keda_chart_values()["image"]
    assert {images[k]["tag"] for k in ("keda", "metricsApiServer", "webhooks")} == {KEDA_IMAGE_TAG}


# --- Pulumi leaves the live replica count alone ---------------------------------------------------

PROGRAM = textwrap.dedent(
    """
    import pulumi
    import pulumi_kubernetes as k8s
    from components.keda import workload_options

    config = pulumi.Config()
    replicas = int(config.require("replicas"))
    labels = {"app": "m"}
    k8s.apps.v1.Deployment(
        "m",
        metadata={"name": "m", "namespace": "inference"},
        spec={
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        },
        opts=workload_options(pulumi.ResourceOptions(), autoscaled=config.require_bool("autoscaled")),
    )
    """
)


def _run(tmp_path, monkeypatch, **config):
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM)
    ignored: dict[str, list[str]] = {}
    original = mockrun.RecordingMonitor.RegisterResource

    def register(self, request):
        ignored[request.name] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(mockrun.RecordingMonitor, "RegisterResource", register)
    run = mockrun.run_program({k: str(v).lower() for k, v in config.items()}, program=program, stack="t")
    return run.find("kubernetes:apps/v1:Deployment", "m").plain_inputs, ignored["m"]


def _get(obj: dict, path: str):
    for key in path.split("."):
        obj = obj[key]
    return obj


def _engine_inputs(old: dict, new: dict, ignore_changes: list[str]) -> dict:
    """What the engine diffs after ignoreChanges: the old input's value at each ignored path."""
    merged = copy.deepcopy(new)
    for path in ignore_changes:
        *parents, leaf = path.split(".")
        _get(merged, ".".join(parents))[leaf] = _get(old, ".".join(parents))[leaf] if parents else old[leaf]
    return merged


def test_a_second_update_with_other_replicas_changes_nothing(tmp_path, monkeypatch):
    first, ignore = _run(tmp_path, monkeypatch, replicas=1, autoscaled=True)
    assert ignore == [REPLICAS_FIELD]
    # The autoscaler has since scaled the live Deployment to 7, and the config's floor moved to 2:
    live = copy.deepcopy(first)
    live["spec"]["replicas"] = 7
    second, ignore = _run(tmp_path, monkeypatch, replicas=2, autoscaled=True)
    assert second["spec"]["replicas"] == 2  # what a create would use
    assert _engine_inputs(first, second, ignore) == first  # no diff: the engine sends no update
    assert _get(live, REPLICAS_FIELD) == 7  # so nothing writes over the autoscaler's count


def test_options_builder_keeps_the_callers_options():
    base = pulumi.ResourceOptions(ignore_changes=["metadata.annotations"], protect=True)
    merged = workload_options(base, autoscaled=True)
    assert merged.ignore_changes == ["metadata.annotations", REPLICAS_FIELD] and merged.protect
    assert workload_options(base, autoscaled=False) is base


def test_a_fixed_replica_count_is_still_managed(tmp_path, monkeypatch):
    first, ignore = _run(tmp_path, monkeypatch, replicas=1, autoscaled=False)
    second, ignore = _run(tmp_path, monkeypatch, replicas=2, autoscaled=False)
    assert ignore == []
    assert _engine_inputs(first, second, ignore) != first


def test_a_capacity_block_model_is_held_at_zero_outside_the_window():
    window = parse_capacity_block_window({"start": "2026-12-10T11:30:00Z", "end": "2026-12-12T11:30:00Z"}, "w")
    _, auto = autoscaled("qwen2-5-72b")
    for now, held in ((datetime(2026, 12, 2, tzinfo=UTC), True), (datetime(2026, 12, 11, tzinfo=UTC), False)):
        schedule = capacity_block_schedule("h200-block", window, nodes=1, max_nodes=2, now=now)
        obj = scaled_object(
            auto,
            name="qwen2-5-72b",
            namespace="inference",
            target_api_version="apps/v1",
            target_kind="Deployment",
            server_address=PROMETHEUS,
            annotations=paused_outside_window(schedule.serving),
        )
        assert (obj["metadata"].get("annotations", {}).get(KEDA_PAUSED_REPLICAS) == "0") is held
