"""The plan table's explanation lines: why each model got its layout, and the GPUs its node group leaves idle."""

from __future__ import annotations

from typing import Any

INDENT = "      "


def explanation_lines(model: dict[str, Any]) -> list[str]:
    why = model.get("why")
    if not why:
        return []
    lines = [f"{INDENT}why: {why['chosen']}"]
    lines += [f"{INDENT}passed over {' '.join(line.split())}" for line in why["passedOver"]]
    if why["cheaperIf"]:
        lines.append(f"{INDENT}cheaper if: {'; '.join(why['cheaperIf'])}")
    return lines


def idle_text(group: dict[str, Any], gpus_per_node: int) -> str:
    idle = group.get("idleGpus")
    if idle is None or group["neededNodes"] == 0:
        return ""
    total = group["neededNodes"] * gpus_per_node
    if idle == 0:
        return f"; all {total} GPUs used"
    return f"; {idle} of {total} GPUs idle"
