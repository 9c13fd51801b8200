from __future__ import annotations

import textwrap

from stack import mockrun

PROGRAM = textwrap.dedent(
    """
    from datetime import datetime, UTC
    from components.capacity_block import CapacityBlockScaling, CapacityBlockScheduleArgs
    from stack.autoscaling_config import parse_capacity_block_window
    from stack.capacity_block import capacity_block_schedule

    window = parse_capacity_block_window({"start": "2026-12-10T11:30:00Z", "end": "2026-12-12T11:30:00Z"}, "w")
    for label, now in (("before", datetime(2026, 12, 2, tzinfo=UTC)), ("after", datetime(2026, 12, 13, tzinfo=UTC))):
        schedule = capacity_block_schedule(label, window, nodes=2, max_nodes=2, now=now)
        CapacityBlockScaling(label, CapacityBlockScheduleArgs(schedule, "eks-h200-block-0001"))
    """
)


def test_scheduled_actions_under_mocks(tmp_path):
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM)
    run = mockrun.run_program({}, program=program, stack="t", preview=True)
    actions = {r.name: r.plain_inputs for r in run.of_type("aws:autoscaling/schedule:Schedule")}
    # Before the block: scale-out at its start and scale-in 45 min before its end; after it: nothing.
    assert set(actions) == {"before-capacity-block-start", "before-capacity-block-end"}
    start = actions["before-capacity-block-start"]
    assert (start["startTime"], start["desiredCapacity"], start["autoscalingGroupName"]) == (
        "2026-12-10T11:30:00Z",
        2,
        "eks-h200-block-0001",
    )
    assert actions["before-capacity-block-end"]["startTime"] == "2026-12-12T10:45:00Z"
