"""A traffic plan as text, from its ``TrafficPlan.to_dict()``: what ``make synth`` prints under a
model's row and ``python -m sizing traffic`` under its chosen layout, written once for both."""

from __future__ import annotations

from typing import Any


def detail_lines(traffic: dict[str, Any], indent: str) -> list[str]:
    """The target and what one replica meets of it, the simulated check at the peak, every other
    layout weighed, what was set aside, the notes, and what the prediction rests on."""
    chosen, target, at = traffic["chosen"], traffic["target"], traffic["atTarget"]
    per, sim = chosen["perReplica"], chosen["simulated"]
    latency = [f"p95 TTFT <= {target['p95TtftS']:g} s"] if target["p95TtftS"] is not None else []
    latency += [f"p95 TPOT <= {target['p95TpotS'] * 1000:g} ms"] if target["p95TpotS"] is not None else []
    lines = [
        f"{indent}target: {target['requestsPerSecond']:g} req/s (trough {target['minRequestsPerSecond']:g}) of "
        f"{target['inputTokens']} in + {target['outputTokens']} out tokens"
        + (f", {', '.join(latency)}" if latency else "")
        + f"; per replica at capacity p95 TTFT {per['p95TtftS']:.3f} s, TPOT {per['p95TpotS'] * 1000:.1f} ms "
        f"({per['p95InFlight']} in flight at p95), limited by {per['limitedBy']}",
        f"{indent}simulated at the peak ({at['requestsPerSecondPerReplica']:g} req/s per replica, "
        f"{sim['requests']} requests): p95 TTFT {sim['p95TtftS']:.3f} s, TPOT {sim['p95TpotS'] * 1000:.1f} ms, "
        f"{sim['meanInFlight']:.1f} in flight"
        + (f"; {sim['addedReplicas']} replica(s) added for it" if sim["addedReplicas"] else ""),
    ]
    for option in traffic["weighed"][1:]:  # the chosen layout heads the list
        if "rejected" in option:
            lines.append(f"{indent}weighed {option['layout']}: {option['rejected']}")
        else:
            checked = " (simulated)" if "simulated" in option else ""
            lines.append(
                f"{indent}weighed {option['layout']}: {option['replicas']} x "
                f"{option['perReplica']['requestsPerSecond']:.2f} req/s = ${option['usdPerHour']:.2f}/h{checked}"
            )
    lines += [f"{indent}set aside {line}" for line in traffic["setAside"]]
    lines += [f"{indent}note: {line}" for line in traffic["notes"]]
    lines += [f"{indent}calibrated: {line}" for line in traffic["calibrated"]]
    lines += [f"{indent}extrapolated: {line}" for line in traffic["extrapolated"]]
    return lines
