"""Random arrivals into vLLM's v1 scheduler, step by step: the check on ``sizing.traffic``'s queueing step.

``sizing.traffic`` turns a per-concurrency latency into a request rate in closed form (requests in
flight ~ Poisson, mean-field step costs). This simulates the same replica request by request:
Poisson arrivals, the scheduler's order (running requests first, a decode one token, a prefill its
next chunk of the ``max_num_batched_tokens`` budget, then waiting requests in arrival order while
the budget and ``max_num_seqs``/KV-cache cap last), each step costed by ``sizing.throughput``'s
``StepCost`` with the step's own mix. It reports the p95 TTFT and TPOT over the requests, so a
test or a bench can hold the closed form to it at the planned load.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from collections import deque
from dataclasses import dataclass

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.gpus import resolve_gpu
from sizing.plan import Plan
from sizing.throughput import RequestShape, Step, requests_held, step_cost


@dataclass
class _Request:
    arrival_s: float
    order: int
    computed: int = 0
    first_token_s: float = 0.0
    finished_s: float = 0.0


@dataclass(frozen=True)
class SimulatedLoad:
    requests_per_s: float
    requests: int  # counted (after the warm-up)
    p95_ttft_s: float
    p95_tpot_s: float
    mean_in_flight: float
    output_tokens_per_s: float  # every request's output over the whole run


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@functools.lru_cache(maxsize=1024)
def simulate_arrivals(
    plan: Plan,
    model: ModelArchitecture,
    shape: RequestShape,
    requests_per_s: float,
    *,
    requests: int = 2000,
    warmup_fraction: float = 0.2,
    seed: int = 0,
) -> SimulatedLoad:
    """``requests`` Poisson arrivals at ``requests_per_s`` into one replica of ``plan``; the first
    ``warmup_fraction`` of them fill the server and are not counted. Seeded, so the same inputs
    give the same load (and the result is cached)."""
    settings = plan.settings
    cost = step_cost(model, resolve_gpu(plan.gpu), plan.tensor_parallel_size, plan.pipeline_parallel_size, settings)
    i, o = shape.input_tokens, shape.output_tokens
    cap = min(settings.max_num_seqs or 1, requests_held(plan.estimate, shape))
    budget = settings.max_num_batched_tokens or i
    if cap < 1:
        raise SizingError(f"the KV cache ({plan.estimate.kv_cache_tokens} tokens) holds no request of {i + o} tokens")
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    for _ in range(requests):
        t += rng.expovariate(requests_per_s)
        arrivals.append(_Request(t, len(arrivals)))
    # Decoding requests all gain one token per step: each keeps the step count (``tick``) at its
    # first token, so a step costs O(its prefill chunks and completions), not O(requests running).
    waiting: deque[_Request] = deque()
    prefilling: deque[_Request] = deque()
    finishing: list[tuple[int, int, _Request]] = []  # (tick of the last token, arrival order, request)
    first_ticks = 0  # sum over decoding requests of the tick of their first token
    done: list[_Request] = []
    now, tick, next_arrival, in_flight_time = 0.0, 0, 0, 0.0

    def decode_context() -> float:
        return len(finishing) * (i + 1 + tick) - first_ticks

    while len(done) < requests:
        while next_arrival < requests and arrivals[next_arrival].arrival_s <= now:
            waiting.append(arrivals[next_arrival])
            next_arrival += 1
        decoding = len(finishing)
        running = decoding + len(prefilling)
        if not running and not waiting:
            now = arrivals[next_arrival].arrival_s
            continue
        if not prefilling and (not waiting or running >= cap):
            # Pure decode until a request finishes or one arrives that could be admitted: the
            # context grows one token per sequence per step, costed at the stretch's midpoint.
            k = finishing[0][0] - tick
            if next_arrival < requests and running < cap:
                first = cost.seconds(Step(decoding, decode_context(), 0.0, 0.0, decoding))
                k = max(1, min(k, math.ceil((arrivals[next_arrival].arrival_s - now) / first)))
            step = Step(decoding, decode_context() + decoding * (k - 1) / 2, 0.0, 0.0, decoding)
            stretch_s = k * cost.seconds(step)
            now += stretch_s
            in_flight_time += running * stretch_s
            tick += k
        else:
            left = budget - decoding
            prefill_n = prefill_ctx = 0.0
            prefilled = []
            for r in prefilling:
                if left <= 0:
                    break
                chunk = min(i - r.computed, left)
                prefill_n += chunk
                prefill_ctx += chunk * (r.computed + (chunk + 1) / 2)
                r.computed += chunk
                left -= chunk
            while waiting and left > 0 and running < cap:
                r = waiting.popleft()
                chunk = min(i, left)
                prefill_n += chunk
                prefill_ctx += chunk * (chunk + 1) / 2
                r.computed = chunk
                left -= chunk
                prefilling.append(r)
                running += 1
            while prefilling and prefilling[0].computed >= i:
                prefilled.append(prefilling.popleft())
            # (a later request's last chunk can only complete once those before it have)
            step_s = cost.seconds(Step(decoding, decode_context(), prefill_n, prefill_ctx, decoding + len(prefilled)))
            now += step_s
            in_flight_time += running * step_s
            tick += 1
            for r in prefilled:
                r.first_token_s = now
                if o == 1:
                    r.finished_s = now
                    done.append(r)
                    continue
                heapq.heappush(finishing, (tick + o - 1, r.order, r))
                first_ticks += tick
        while finishing and finishing[0][0] <= tick:
            last, _, r = heapq.heappop(finishing)
            first_ticks -= last - (o - 1)
            r.finished_s = now
            done.append(r)
    counted = sorted(done, key=lambda r: r.arrival_s)[int(warmup_fraction * requests) :]
    ttft = [r.first_token_s - r.arrival_s for r in counted]
    tpot = [(r.finished_s - r.first_token_s) / (o - 1) for r in counted] if o > 1 else [0.0]
    return SimulatedLoad(requests_per_s, len(counted), _p95(ttft), _p95(tpot), in_flight_time / now, requests * o / now)
