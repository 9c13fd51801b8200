"""sizing.replica_load: the requests in flight under random arrivals, and the latencies 95% of them see."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sizing.replica_load import EXACT_UP_TO, LatencyCurve, highest_rate, latency_curve, load_at


def poisson_cdf(k: int, mean: float) -> float:
    return sum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1)) for i in range(k + 1))


def flat(latency_s: float, cap: int) -> LatencyCurve:
    """A replica whose requests take the same time however many run: an infinite-server queue."""
    return latency_curve(lambda k: (latency_s, 0.1, 0.01), cap)


def slowing(cap: int, per_request_s: float = 0.01) -> LatencyCurve:
    """Each request in flight slows every step (latency grows with k), as a GPU's steps do."""
    return latency_curve(lambda k: (2.0 + per_request_s * k, 0.1 + 0.001 * k, 0.01 + 0.0001 * k), cap)


@given(st.floats(min_value=0.05, max_value=200.0))
@settings(max_examples=40, deadline=None)
def test_with_a_constant_latency_the_requests_in_flight_are_poisson(mean):
    # A cap far above the mean: no queue, so the chain is the M/G/inf queue's Poisson(lambda x R).
    curve = flat(2.0, cap=2000)
    load = load_at(curve, mean / 2.0)
    assert load.mean_running == pytest.approx(mean, rel=1e-6)
    others = load.p95_concurrency - 1  # an arrival runs with the others it finds
    assert poisson_cdf(others, mean) >= 0.95 - 1e-12
    assert others == 0 or poisson_cdf(others - 1, mean) < 0.95


def test_a_latency_growing_with_load_spreads_the_requests_wider_than_poisson():
    curve = slowing(cap=2000)
    load = load_at(curve, 40.0)
    others = load.p95_concurrency - 1
    # The same mean under Poisson would put its 95th percentile lower.
    assert poisson_cdf(others - 1, load.mean_running) > 0.95 + 0.005


def test_past_the_rate_the_full_engine_completes_nothing_is_stable():
    curve = slowing(cap=64)
    full = 64 / curve.at(64)[0]
    assert not load_at(curve, full).stable and load_at(curve, 0.9 * full).stable
    near = load_at(curve, 0.99 * full)
    assert near.queued_fraction > 0.5 and near.p95_ttft_s == math.inf


def test_the_p95_latencies_are_those_at_the_p95_concurrency():
    curve = slowing(cap=500)
    load = load_at(curve, 30.0)
    _, ttft, tpot = curve.at(load.p95_concurrency)
    assert (load.p95_ttft_s, load.p95_tpot_s) == pytest.approx((ttft, tpot))


def test_the_highest_rate_is_where_the_target_stops_holding():
    curve = slowing(cap=500)
    meets = lambda load: load.p95_tpot_s <= 0.02  # noqa: E731
    best = highest_rate(curve, meets)
    assert best is not None and meets(best)
    assert not meets(load_at(curve, best.requests_per_s * 1.01))
    assert highest_rate(curve, lambda load: load.p95_tpot_s <= 0.001) is None


def test_the_curve_is_exact_on_its_grid_and_linear_between():
    calls = []

    def predict(k):
        calls.append(k)
        return (1.0 + k * k, float(k), 2.0 * k)

    curve = latency_curve(predict, cap=1000)
    assert curve.concurrency[:EXACT_UP_TO] == tuple(range(1, EXACT_UP_TO + 1)) and curve.cap == 1000
    assert len(calls) < 150, "a grid, not every concurrency"
    for k in curve.concurrency:
        assert curve.at(k) == (1.0 + k * k, float(k), 2.0 * k)
    low, high = curve.concurrency[60], curve.concurrency[61]
    middle = curve.at((low + high) // 2)
    assert curve.at(low)[0] <= middle[0] <= curve.at(high)[0]
    assert middle[1] == pytest.approx((low + high) // 2)  # TTFT here is linear in k: interpolation is exact
