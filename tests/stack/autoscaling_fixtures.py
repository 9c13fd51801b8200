"""The production stack's plan, built with the project's own config parser and planner.

These unit tests pass their own bounds: they start from the production stack with fixed replicas
(llama-3-1-8b 4, llama-3-1-70b 3, qwen2-5-72b 2), the shape they were written against, not from
the stack file's own ``autoscaling`` and ``traffic`` (tests/stack/test_stack_autoscaling.py runs that one).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from stack.config import parse_config
from stack.mockrun import load_stack_config
from stack.placement import Placement, place

FIXED_REPLICAS = {"prod": {"llama-3-1-8b": 4, "llama-3-1-70b": 3, "qwen2-5-72b": 2}}


def raw_config(stack: str) -> dict[str, Any]:
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith("gpu-inference:")}
    raw = copy.deepcopy(raw)
    for model in raw.get("models") or []:
        if model["name"] in FIXED_REPLICAS.get(stack, {}):
            model.pop("autoscaling", None)
            model.pop("traffic", None)
            model["replicas"] = FIXED_REPLICAS[stack][model["name"]]
    return raw


@functools.cache
def _placement(stack: str) -> Placement:
    return place(parse_config(raw_config(stack)))


def placement(stack: str = "prod") -> Placement:
    return _placement(stack)


def placement_with(stack: str, edit) -> Placement:
    raw = copy.deepcopy(raw_config(stack))
    edit(raw)
    return place(parse_config(raw))
