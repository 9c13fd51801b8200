"""A Capacity Block's window, turned into the node group's size now and its scheduled actions.

EC2 starts a Capacity Block's instances at the block's start and terminates them 30 minutes
before its end. AWS's guidance for Auto Scaling groups: scale out when the block starts, scale
in to zero more than 30 minutes before it ends. Here the scale-in comes 45 minutes before the
end: EKS drains each node before its Auto Scaling group terminates it (a node not drained after
5 minutes is terminated anyway), so the servers stop cleanly with 10 minutes to spare.

``pulumi up`` outside the window must neither fail nor leave a degraded group: AWS rejects a
scheduled action whose start time is past, so only future actions are declared; and a group
asked for nodes outside the window would retry launches that cannot succeed (EKS reports such a
group DEGRADED), so outside the window the group is created at zero nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from stack.autoscaling_config import CapacityBlockWindow

EC2_TERMINATES_BEFORE_END = timedelta(minutes=30)
DRAIN_ALLOWANCE = timedelta(minutes=15)
SCALE_IN_BEFORE_END = EC2_TERMINATES_BEFORE_END + DRAIN_ALLOWANCE
# A scheduled action must start in the future when it is created; this much slack covers the
# time between preview and the create call.
SCHEDULE_SLACK = timedelta(minutes=10)

Phase = Literal["before", "during", "ending", "after"]


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    time: datetime
    min_size: int
    max_size: int
    desired_capacity: int

    @property
    def start_time(self) -> str:
        """The Auto Scaling API's format (UTC, seconds, Z)."""
        return self.time.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CapacityBlockSchedule:
    group: str
    window: CapacityBlockWindow
    phase: Phase
    nodes: int
    desired_nodes_now: int
    actions: tuple[ScheduledAction, ...]
    warning: str | None = None

    @property
    def serving(self) -> bool:
        """Whether the block's nodes exist now (servers on this group can run)."""
        return self.phase == "during"

    @property
    def scale_in_at(self) -> datetime:
        return self.window.end - SCALE_IN_BEFORE_END

    def describe(self) -> str:
        start = self.window.start.strftime("%Y-%m-%d %H:%M")
        scale_in = self.scale_in_at.strftime("%Y-%m-%d %H:%M")
        end = self.window.end.strftime("%Y-%m-%d %H:%M")
        state = {
            "before": f"not started: 0 nodes now, {self.nodes} at {start} UTC",
            "during": f"active: {self.desired_nodes_now} nodes now",
            "ending": "ending: drained and scaled to 0",
            "after": "over: 0 nodes",
        }[self.phase]
        return (
            f"{self.group}: Capacity Block {start} -> {end} UTC, scale-in at {scale_in} UTC "
            f"(EC2 ends instances 30 min before the end); {state}"
        )

    def to_dict(self) -> dict:
        return {
            "start": self.window.start.isoformat(),
            "end": self.window.end.isoformat(),
            "scaleInAt": self.scale_in_at.isoformat(),
            "phase": self.phase,
            "nodes": self.nodes,
            "desiredNodesNow": self.desired_nodes_now,
            "scheduledActions": [a.start_time for a in self.actions],
            "summary": self.describe(),
        }


def capacity_block_schedule(
    group: str, window: CapacityBlockWindow, *, nodes: int, max_nodes: int, now: datetime
) -> CapacityBlockSchedule:
    """``nodes``: what the group runs during the block (the plan's, at most the block's instance
    count); ``now``: the preview's time (UTC), which decides which actions are still ahead."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone (UTC)")
    scale_in = window.end - SCALE_IN_BEFORE_END
    if scale_in <= window.start:
        raise ValueError(
            f"{group}: the Capacity Block {window.start.isoformat()} -> {window.end.isoformat()} is shorter than the "
            f"{int(SCALE_IN_BEFORE_END.total_seconds() // 60)} minutes kept free before its end"
        )
    if now < window.start:
        phase: Phase = "before"
    elif now < scale_in:
        phase = "during"
    elif now < window.end:
        phase = "ending"
    else:
        phase = "after"
    warning = None
    if phase == "during" and scale_in < now + SCHEDULE_SLACK:
        phase = "ending"  # too close to schedule the scale-in: stay at zero now
    if phase == "before" and window.start < now + SCHEDULE_SLACK:
        warning = (
            f"{group}: the Capacity Block starts at {window.start.isoformat()}, too soon to schedule its scale-out; "
            "the group stays at 0 nodes: run pulumi up again once it has started"
        )
    candidates = (
        ScheduledAction(f"{group}-capacity-block-start", window.start, nodes, max_nodes, nodes),
        ScheduledAction(f"{group}-capacity-block-end", scale_in, 0, 0, 0),
    )
    actions = tuple(a for a in candidates if a.time >= now + SCHEDULE_SLACK)
    return CapacityBlockSchedule(
        group=group,
        window=window,
        phase=phase,
        nodes=nodes,
        desired_nodes_now=nodes if phase == "during" else 0,
        actions=actions,
        warning=warning,
    )
