"""Bisection over a monotonic predicate: the longest context, the most requests, that still fit."""

from __future__ import annotations

from collections.abc import Callable


def largest_where(fits: Callable[[int], bool], high: int, low: int = 0) -> int:
    """The largest n in [low, high] for which ``fits(n)`` holds, given it holds for all smaller n
    down to ``low`` (which is returned when nothing above it fits)."""
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low
