import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sizing.startup import DEFAULT_ASSUMPTIONS, SOURCES, estimate_startup, with_overrides

CALIBRATION_LOGS = Path("/work/shared/calibration/logs")
weights = st.floats(min_value=1, max_value=2000, allow_nan=False)


@given(small=weights, extra=st.floats(min_value=1, max_value=500), source=st.sampled_from(SOURCES))
def test_the_budget_grows_with_the_weights(small, extra, source):
    a, b = estimate_startup(small, source), estimate_startup(small + extra, source)
    assert b.startup_probe_budget_s >= a.startup_probe_budget_s
    assert b.await_timeout_s >= a.await_timeout_s
    assert b.expected_s > a.expected_s


@given(size=weights, factor=st.floats(min_value=1.5, max_value=10))
def test_a_faster_source_shrinks_the_budget(size, factor):
    base = estimate_startup(size, "s3")
    faster = estimate_startup(
        size, "s3", assumptions=with_overrides(s3_streamer_gib_per_s=DEFAULT_ASSUMPTIONS.s3_streamer_gib_per_s * factor)
    )
    assert faster.weights_load_s < base.weights_load_s
    assert faster.startup_probe_budget_s <= base.startup_probe_budget_s


@pytest.mark.parametrize("size", [15, 131, 700])
def test_streaming_from_s3_beats_downloading_and_a_volume_with_the_default_assumptions(size):
    s3, hub, volume = (estimate_startup(size, source) for source in ("s3", "huggingFace", "volume"))
    assert s3.startup_probe_budget_s < hub.startup_probe_budget_s
    assert s3.startup_probe_budget_s < volume.startup_probe_budget_s


def test_a_prepulled_image_and_local_nvme_shorten_the_wait():
    cold = estimate_startup(131, "huggingFace")
    nvme = estimate_startup(131, "huggingFace", local_nvme=True)
    warm = estimate_startup(131, "huggingFace", local_nvme=True, prepulled=True)
    assert warm.await_timeout_s < nvme.await_timeout_s < cold.await_timeout_s
    assert warm.image_pull_s < 0.1 * cold.image_pull_s
    assert warm.startup_probe_budget_s == nvme.startup_probe_budget_s  # the pull is before the container starts


def test_the_budget_covers_the_expected_start_with_the_margin_and_the_timeout_covers_the_budget():
    estimate = estimate_startup(131, "s3", extra_s=900)
    after_start = estimate.weights_load_s + estimate.compile_s + estimate.extra_s
    assert estimate.startup_probe_budget_s >= after_start * DEFAULT_ASSUMPTIONS.margin
    assert estimate.await_timeout_s > estimate.startup_probe_budget_s + estimate.image_pull_s
    assert "startupProbe budget" in estimate.describe() and "s3" in estimate.describe()


def test_bad_inputs_name_what_would_work():
    with pytest.raises(ValueError, match="s3, huggingFace, volume"):
        estimate_startup(10, "ftp")
    with pytest.raises(ValueError, match="known: .*s3_streamer_gib_per_s"):
        with_overrides(s3_speed=3)
    with pytest.raises(ValueError, match="margin"):
        with_overrides(margin=0.5)
    with pytest.raises(ValueError, match="weights_gib"):
        estimate_startup(0, "s3")


@pytest.mark.skipif(not CALIBRATION_LOGS.is_dir(), reason="the calibration logs live outside the repository")
def test_the_compile_allowance_covers_every_measured_engine_init():
    took = [
        float(m)
        for log in CALIBRATION_LOGS.rglob("*.txt")
        for m in re.findall(r"init engine \(profile, create kv cache, warmup model\) took ([0-9.]+) s", log.read_text())
    ]
    assert took, "no engine init times found in the calibration logs"
    assert DEFAULT_ASSUMPTIONS.compile_s >= max(took)
