"""The production stack's plan, built with the project's own config parser and planner."""

from __future__ import annotations

import copy
import functools
from typing import Any

from stack.config import parse_config
from stack.mockrun import load_stack_config
from stack.placement import Placement, place


def raw_config(stack: str) -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith("gpu-inference:")}


@functools.cache
def _placement(stack: str) -> Placement:
    return place(parse_config(raw_config(stack)))


def placement(stack: str = "prod") -> Placement:
    return _placement(stack)


def placement_with(stack: str, edit) -> Placement:
    raw = copy.deepcopy(raw_config(stack))
    edit(raw)
    return place(parse_config(raw))
