from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stack.autoscaling_config import (
    parse_autoscaling,
    parse_capacity_block_window,
    parse_cluster_autoscaling,
    parse_price_overrides,
)
from stack.config import ConfigError

PATH = "models[1].autoscaling"


def problems(value, parse=parse_autoscaling, path=PATH) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(value, path)
    return caught.value.problems


def test_camel_case_bounds_and_targets_parse():
    config = parse_autoscaling(
        {"minReplicas": 1, "maxReplicas": 4, "targetQueueLength": 8, "targetKvCacheUsage": 0.7}, PATH
    )
    assert (config.min_replicas, config.max_replicas) == (1, 4)
    assert config.target_queue_length == 8 and config.target_kv_cache_usage == 0.7
    assert config.scale_to_zero is False


def test_min_above_max_names_both_numbers():
    [line] = problems({"minReplicas": 5, "maxReplicas": 2})
    assert line.startswith(PATH) and "minReplicas 5" in line and "maxReplicas 2" in line


def test_unknown_key_is_rejected_with_its_path():
    [line] = problems({"minReplicas": 1, "maxReplicas": 2, "maxReplica": 3})
    assert line.startswith(f"{PATH}.maxReplica:")


def test_zero_replicas_only_when_asked():
    [line] = problems({"minReplicas": 0, "maxReplicas": 2})
    assert "scaleToZero: true" in line


def test_scale_to_zero_needs_a_signal_that_exists_at_zero():
    [line] = problems({"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True})
    assert "activationQuery" in line and "vllm:num_requests_waiting" in line
    config = parse_autoscaling(
        {"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True, "activationQuery": "sum(rate(x_total[2m]))"}, PATH
    )
    assert config.scale_to_zero


def test_scale_to_zero_with_min_above_zero_is_contradictory():
    [line] = problems({"minReplicas": 1, "maxReplicas": 2, "scaleToZero": True, "activationQuery": "up"})
    assert "minReplicas: 0" in line


@pytest.mark.parametrize(
    ("field", "value"), [("targetKvCacheUsage", 1.5), ("targetKvCacheUsage", 0), ("targetQueueLength", -1)]
)
def test_targets_out_of_range_name_field_and_value(field, value):
    [line] = problems({"minReplicas": 1, "maxReplicas": 2, field: value})
    assert line.startswith(f"{PATH}.{field}:") and repr(value) in line


def test_capacity_block_window_in_utc_and_ordered():
    window = parse_capacity_block_window({"start": "2026-12-10T11:30:00Z", "end": "2026-12-12T12:30:00+01:00"}, "w")
    assert window.start == datetime(2026, 12, 10, 11, 30, tzinfo=UTC)
    assert window.end == datetime(2026, 12, 12, 11, 30, tzinfo=UTC)
    [line] = problems({"start": "2026-12-10T11:30:00Z", "end": "2026-12-10T11:30:00Z"}, parse_capacity_block_window)
    assert "is not after start" in line
    [line] = problems({"start": "2026-12-10T11:30:00", "end": "2026-12-11T11:30:00Z"}, parse_capacity_block_window)
    assert ".start:" in line and "no time zone" in line


def test_cluster_autoscaling_defaults_and_bad_address():
    config = parse_cluster_autoscaling(None)
    assert config.install_keda and config.node_autoscaler == "clusterAutoscaler"
    [line] = problems({"prometheusServerAddress": "prometheus:9090"}, parse_cluster_autoscaling, "autoscaling")
    assert line.startswith("autoscaling.prometheusServerAddress:")


def test_price_overrides_only_for_catalog_types():
    prices = parse_price_overrides({"usdPerHour": {"P5.48xlarge": 40}})
    assert prices.usd_per_hour == {"p5.48xlarge": 40.0}
    [line] = problems({"usdPerHour": {"p9.huge": 1}}, parse_price_overrides, "prices")
    assert "p9.huge" in line and "p5.48xlarge" in line
