from __future__ import annotations

from datetime import UTC, datetime

from stack.autoscaling_config import parse_autoscaling, parse_capacity_block_window
from stack.autoscaling_report import autoscaling_report
from tests.stack.autoscaling_fixtures import placement

STARTUP = {"llama-3-1-8b": 300, "llama-3-1-70b": 1500, "qwen2-5-72b": 1600}
NOW = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
WINDOW = {
    "h200-block": parse_capacity_block_window({"start": "2026-12-10T11:30:00Z", "end": "2026-12-12T11:30:00Z"}, "w")
}


def report(**bounds):
    auto = {name: parse_autoscaling(value, "x") for name, value in bounds.items()}
    return autoscaling_report(placement(), autoscaling=auto, startup_seconds=STARTUP, capacity_blocks=WINDOW, now=NOW)


def test_prod_report_shows_bounds_window_and_cost():
    r = report(**{"llama-3-1-8b": {"minReplicas": 1, "maxReplicas": 6}})
    assert r.problems == () and r.warnings == ()
    text = "\n".join(r.lines())
    assert "llama-3-1-8b" in text and "1-6" in text
    assert "h200-block: Capacity Block 2026-12-10 11:30 -> 2026-12-12 11:30 UTC" in text
    outputs = r.outputs()
    # min: 2 p5 (55.04) + 1 p5e (63.30); max: 3 p5 + 1 p5e.
    assert (outputs["usdPerHour"]["min"], outputs["usdPerHour"]["max"]) == (173.38, 228.42)
    assert r.to_dict()["capacityBlocks"]["h200-block"]["phase"] == "before"


def test_problems_and_warnings_are_collected():
    r = report(
        **{
            "llama-3-1-8b": {"minReplicas": 1, "maxReplicas": 12},
            "qwen2-5-72b": {"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True, "activationQuery": "up"},
        }
    )
    assert len(r.problems) == 1 and r.problems[0].startswith("nodeGroups[0].maxNodes")
    assert len(r.warnings) == 1 and "scales to zero" in r.warnings[0]


def test_a_window_on_a_group_that_is_not_a_capacity_block_is_refused():
    window = {"h100-reserved": WINDOW["h200-block"]}
    r = autoscaling_report(placement(), autoscaling={}, startup_seconds=STARTUP, capacity_blocks=window, now=NOW)
    assert r.problems == ("h100-reserved: a Capacity Block window is given for a group that is not CAPACITY_BLOCK",)
