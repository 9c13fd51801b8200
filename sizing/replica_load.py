"""One replica under random arrivals: how many requests it holds, and the latencies 95% of them see.

``sizing.throughput`` predicts a replica's latency with k requests in flight (a closed loop of k
clients). Requests that arrive at random (Poisson, rate λ) make k itself random. vLLM admits
every request its caps allow into the running batch at once, and each of the k running requests
finishes at rate 1 / R(k), R(k) the request latency at k in flight; so k is a birth-death chain
with births at λ and deaths at k / R(k), up to the engine's cap (``max_num_seqs``, the KV cache,
the token budget), beyond which requests wait and leave at cap / R(cap)::

    π(k) ∝ Π_{j=1..k} λ R(j) / j        (k <= cap; a geometric tail past it)

With a constant R this is the Poisson distribution of an infinite-server queue; R growing with k
(each step slower with more sequences) spreads it wider, which is what makes a replica near its
limit slow for more requests than Poisson would say. An arrival sees the chain's distribution
(PASTA) and runs with the k others it finds: 95% of arrivals run at a concurrency of at most
1 + q95, and since TTFT and TPOT grow with concurrency, their p95s are the latencies there.

``sizing.arrival_simulation`` steps the scheduler request by request to check this closed form.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

PERCENTILE = 0.95
EXACT_UP_TO = 48  # concurrencies predicted one by one; past it, on a grid 6% apart, interpolated
GRID_STEP = 1.06


@dataclass(frozen=True)
class LatencyCurve:
    """A replica's closed-loop latencies at 1..cap requests in flight (seconds)."""

    concurrency: tuple[int, ...]
    latency_s: tuple[float, ...]
    ttft_s: tuple[float, ...]
    tpot_s: tuple[float, ...]

    @property
    def cap(self) -> int:
        return self.concurrency[-1]

    @property
    def full_rate_per_s(self) -> float:
        """What the replica completes with the engine full: no arrival rate at or above it is stable."""
        return self.cap / self.latency_s[-1]

    @cached_property
    def _table(self) -> tuple[list[float], list[float], list[float]]:
        """Per k = 0..cap: Σ_{j<=k} log(R(j) / j) (the chain's weights less k log λ), and the highest
        TTFT and TPOT at any concurrency up to k."""
        log_terms, ttft, tpot = [0.0], [0.0], [0.0]
        for k in range(1, self.cap + 1):
            latency, first, per_token = self.at(k)
            log_terms.append(log_terms[-1] + math.log(latency) - math.log(k))
            ttft.append(max(ttft[-1], first))
            tpot.append(max(tpot[-1], per_token))
        return log_terms, ttft, tpot

    def at(self, k: int) -> tuple[float, float, float]:
        """(latency, TTFT, TPOT) at k in flight, linear between grid points."""
        k = max(1, min(k, self.cap))
        grid = self.concurrency
        low = bisect_right(grid, k) - 1
        if grid[low] == k:
            return self.latency_s[low], self.ttft_s[low], self.tpot_s[low]
        high = low + 1
        share = (k - grid[low]) / (grid[high] - grid[low])

        def mix(values: tuple[float, ...]) -> float:
            return values[low] + share * (values[high] - values[low])

        return mix(self.latency_s), mix(self.ttft_s), mix(self.tpot_s)


def latency_curve(predict: Callable[[int], tuple[float, float, float]], cap: int) -> LatencyCurve:
    """``predict(k)`` gives (latency, TTFT, TPOT) at k in flight; ``cap`` what the engine runs at once."""
    ks = list(range(1, min(cap, EXACT_UP_TO) + 1))
    k = ks[-1]
    while k < cap:
        k = min(cap, max(k + 1, round(k * GRID_STEP)))
        ks.append(k)
    figures = [predict(k) for k in ks]
    return LatencyCurve(
        tuple(ks),
        tuple(f[0] for f in figures),
        tuple(f[1] for f in figures),
        tuple(f[2] for f in figures),
    )


@dataclass(frozen=True)
class LoadAtRate:
    """One replica at ``requests_per_s`` of Poisson arrivals (the chain's stationary state).

    ``queued_fraction`` is the share of arrivals that find the engine full and wait;
    ``p95_concurrency`` the concurrency 95% of arrivals run at or below (capped at the engine's);
    ``p95_ttft_s``/``p95_tpot_s`` the latencies there (the highest up to it: they grow with
    concurrency); ``mean_running`` the requests running on average (what ``vllm:num_requests_running``
    reads). ``stable`` is False at or past the rate the replica completes at its cap.
    """

    requests_per_s: float
    stable: bool
    queued_fraction: float
    p95_concurrency: int
    p95_ttft_s: float
    p95_tpot_s: float
    mean_running: float


def load_at(curve: LatencyCurve, requests_per_s: float, probability: float = PERCENTILE) -> LoadAtRate:
    cap = curve.cap
    full_rate = curve.full_rate_per_s
    if requests_per_s >= full_rate:
        return LoadAtRate(requests_per_s, False, 1.0, cap, math.inf, curve.tpot_s[-1], float(cap))
    log_rate = math.log(requests_per_s)
    log_terms, highest_ttft, highest_tpot = curve._table
    log_weights = [k * log_rate + term for k, term in enumerate(log_terms)]
    top = max(log_weights)
    weights = [math.exp(w - top) for w in log_weights]
    tail = weights[cap] / (1.0 - requests_per_s / full_rate)  # k >= cap: geometric, ratio λ / full_rate
    total = sum(weights[:cap]) + tail
    queued = tail / total
    mean_running = (sum(k * w for k, w in enumerate(weights[:cap])) + cap * tail) / total
    seen, q95 = 0.0, cap
    for k in range(cap):
        seen += weights[k] / total
        if seen >= probability:
            q95 = k
            break
    concurrency = min(q95 + 1, cap)
    ttft, tpot = highest_ttft[concurrency], highest_tpot[concurrency]
    if q95 >= cap:  # more than 5% wait for a slot: their TTFT grows without a bound this chain gives
        ttft = math.inf
    return LoadAtRate(requests_per_s, True, queued, concurrency, ttft, tpot, mean_running)


def highest_rate(curve: LatencyCurve, meets: Callable[[LoadAtRate], bool], iterations: int = 50) -> LoadAtRate | None:
    """The highest arrival rate whose stationary load ``meets`` the targets (they only get harder
    as the rate grows), or None when even a trickle misses them."""
    low, high = 0.0, curve.full_rate_per_s
    best = None
    for _ in range(iterations):
        mid = (low + high) / 2
        load = load_at(curve, mid)
        if load.stable and meets(load):
            low, best = mid, load
        else:
            high = mid
    return best
