"""The plan table's explanation lines: why each model got its layout, and the GPUs its node group leaves idle."""

from __future__ import annotations

from typing import Any

from sizing.traffic_report import detail_lines

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


def traffic_lines(plan: dict[str, Any]) -> list[str]:
    """The models with a traffic target: what one replica delivers within its p95 targets, the
    replicas the target needs, what they cost, and the layouts weighed against the chosen one."""
    models = [m for m in plan["models"] if m.get("traffic")]
    if not models:
        return []
    lines = [
        "Traffic targets (sizing.traffic: per replica within the p95 targets, Poisson arrivals):",
        f"  {'model':<20} {'layout':<22} {'req/s':>7} {'out tok/s':>9} {'in flight':>9} {'needed':>8} "
        f"{'$/h peak':>9} {'$/M out':>8}",
    ]
    for model in models:
        traffic = model["traffic"]
        chosen = traffic["chosen"]
        per = chosen["perReplica"]
        replicas = f"{traffic['replicas']['min']}-{traffic['replicas']['max']}"
        lines.append(
            f"  {model['name']:<20} {chosen['layout']:<22} {per['requestsPerSecond']:>7.2f} "
            f"{per['outputTokensPerSecond']:>9.0f} {per['meanInFlight']:>9.1f} {replicas:>8} "
            f"{chosen['usdPerHour']:>9.2f} {chosen['usdPerMillionOutputTokens']:>8.3f}"
        )
        lines += detail_lines(traffic, INDENT)
    return lines
