from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stack.autoscaling_config import parse_capacity_block_window
from stack.capacity_block import EC2_TERMINATES_BEFORE_END, capacity_block_schedule

WINDOW = parse_capacity_block_window({"start": "2026-12-10T11:30:00Z", "end": "2026-12-12T11:30:00Z"}, "w")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(now: str):
    return capacity_block_schedule("h200-block", WINDOW, nodes=2, max_nodes=2, now=at(now))


def test_before_the_block_both_actions_and_zero_nodes_now():
    plan = schedule("2026-12-02T14:00:00")
    assert plan.phase == "before" and plan.desired_nodes_now == 0
    start, end = plan.actions
    assert (start.start_time, start.min_size, start.desired_capacity, start.max_size) == (
        "2026-12-10T11:30:00Z",
        2,
        2,
        2,
    )
    assert (end.min_size, end.max_size, end.desired_capacity) == (0, 0, 0)
    # More than 30 minutes before the end, when EC2 terminates the instances.
    assert WINDOW.end - end.time > EC2_TERMINATES_BEFORE_END
    assert end.start_time == "2026-12-12T10:45:00Z"


def test_during_the_block_no_past_action_is_declared():
    plan = schedule("2026-12-11T00:00:00")
    assert plan.phase == "during" and plan.desired_nodes_now == 2
    assert [a.name for a in plan.actions] == ["h200-block-capacity-block-end"]


@pytest.mark.parametrize("now", ["2026-12-12T10:50:00", "2026-12-12T10:40:00", "2026-12-13T00:00:00"])
def test_after_the_scale_in_nothing_scheduled_and_zero_nodes(now):
    plan = schedule(now)
    assert plan.phase in ("ending", "after") and plan.desired_nodes_now == 0 and plan.actions == ()


def test_too_close_to_the_start_warns_instead_of_scheduling_the_past():
    plan = schedule("2026-12-10T11:25:00")
    assert plan.phase == "before" and plan.desired_nodes_now == 0
    assert [a.name for a in plan.actions] == ["h200-block-capacity-block-end"]
    assert "run pulumi up again" in plan.warning


def test_the_plan_shows_the_window():
    text = schedule("2026-12-02T14:00:00").describe()
    assert "2026-12-10 11:30 -> 2026-12-12 11:30 UTC" in text and "scale-in at 2026-12-12 10:45 UTC" in text


def test_a_block_shorter_than_the_margin_is_refused():
    short = parse_capacity_block_window({"start": "2026-12-10T11:30:00Z", "end": "2026-12-10T12:00:00Z"}, "w")
    with pytest.raises(ValueError, match="shorter than the 45 minutes"):
        capacity_block_schedule("g", short, nodes=1, max_nodes=1, now=at("2026-12-01T00:00:00"))
    with pytest.raises(ValueError, match="time zone"):
        capacity_block_schedule("g", WINDOW, nodes=1, max_nodes=1, now=datetime(2026, 12, 1) + timedelta(0))
