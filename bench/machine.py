"""The machine a benchmark ran on, printed next to its figures.

A figure from a shared 2-core machine under load and one from an idle workstation are not
comparable; the line this prints lets a reader tell which is which. Targets are documented
numbers printed beside the figure (``versus``), never an exit code: a slower run of the same
code on a busier machine is not a failure.
"""

from __future__ import annotations

import os
import platform
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def describe() -> str:
    """One line: cores, CPU model, Python, platform and load average (1, 5, 15 min)."""
    return (
        f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()} ({sys.platform}), "
        f"load average {load_average()}"
    )


def versus(figure: str, target: str, met: bool) -> str:
    """A figure with its documented target beside it: information for the reader, not a verdict."""
    return f"{figure} (target {target}: {'met' if met else 'not met on this run'})"
