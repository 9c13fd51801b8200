"""Scheduled actions on a Capacity Block node group's Auto Scaling group (``stack.capacity_block``
decides which, from the block's window and the preview's time)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stack.capacity_block import CapacityBlockSchedule


def asg_name(node_group: aws.eks.NodeGroup) -> pulumi.Output[str]:
    """The Auto Scaling group EKS created for a managed node group."""
    return node_group.resources.apply(lambda resources: resources[0].autoscaling_groups[0].name)


@dataclass
class CapacityBlockScheduleArgs:
    schedule: CapacityBlockSchedule
    autoscaling_group_name: pulumi.Input[str]


class CapacityBlockScaling(pulumi.ComponentResource):
    """Scale out when the block starts, to zero 45 minutes before it ends (EKS drains the nodes)."""

    def __init__(self, name: str, args: CapacityBlockScheduleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:CapacityBlockScaling", name, None, opts)
        self.actions = [
            aws.autoscaling.Schedule(
                action.name,
                autoscaling_group_name=args.autoscaling_group_name,
                scheduled_action_name=action.name,
                start_time=action.start_time,
                min_size=action.min_size,
                max_size=action.max_size,
                desired_capacity=action.desired_capacity,
                time_zone="Etc/UTC",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for action in args.schedule.actions
        ]
        self.register_outputs({"window": args.schedule.describe()})
