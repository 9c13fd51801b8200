"""Argument types for the sizing CLI's layout and load: whole numbers >= 1 and finite positive numbers, in one line.

``--tp 0`` would otherwise read as "let the planner choose" (zero is falsy) and ``nan`` compares false
with everything, so it passed ``min_concurrency <= 0``; both printed a plan for a layout no one asked for.
"""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give one >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: give a whole number >= 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a finite number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid: give a finite number > 0")
    return value
