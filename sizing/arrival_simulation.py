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

import math
import random
from dataclasses import dataclass

from sizing.architecture import ModelArchitecture
from sizing.gpus import resolve_gpu
from sizing.plan import Plan
from sizing.throughput import RequestShape, Step, step_cost


@dataclass
class _Request:
    arrival_s: float
    computed: int = 0
    produced: int = 0
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
    ``warmup_fraction`` of them fill the server and are not counted."""
    settings = plan.settings
    cost = step_cost(model, resolve_gpu(plan.gpu), plan.tensor_parallel_size, plan.pipeline_parallel_size, settings)
    i, o = shape.input_tokens, shape.output_tokens
    length = 16 * math.ceil((i + o) / 16)
    cap = min(settings.max_num_seqs or 1, plan.estimate.kv_cache_tokens // length)
    budget = settings.max_num_batched_tokens or i
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    for _ in range(requests):
        t += rng.expovariate(requests_per_s)
        arrivals.append(_Request(t))
    waiting: list[_Request] = []
    running: list[_Request] = []
    done: list[_Request] = []
    now, next_arrival = 0.0, 0
    in_flight_time = 0.0
    while len(done) < requests:
        while next_arrival < requests and arrivals[next_arrival].arrival_s <= now:
            waiting.append(arrivals[next_arrival])
            next_arrival += 1
        if not running and not waiting:
            now = arrivals[next_arrival].arrival_s
            continue
        left = budget
        decode_n = decode_ctx = prefill_n = prefill_ctx = 0.0
        decoding, prefilled = [], []
        for r in running:
            if r.computed >= i:
                decoding.append(r)
                decode_n += 1
                decode_ctx += i + r.produced
                left -= 1
        for r in running:
            if r.computed < i and left > 0:
                chunk = min(i - r.computed, left)
                prefill_n += chunk
                prefill_ctx += chunk * (r.computed + (chunk + 1) / 2)
                r.computed += chunk
                left -= chunk
                if r.computed >= i:
                    prefilled.append(r)
        while waiting and left > 0 and len(running) < cap:
            r = waiting.pop(0)
            chunk = min(i, left)
            prefill_n += chunk
            prefill_ctx += chunk * (chunk + 1) / 2
            r.computed = chunk
            left -= chunk
            running.append(r)
            if r.computed >= i:
                prefilled.append(r)
        step_s = cost.seconds(Step(decode_n, decode_ctx, prefill_n, prefill_ctx, decode_n + len(prefilled)))
        in_flight_time += len(running) * step_s
        now += step_s
        for r in decoding:
            r.produced += 1
        for r in prefilled:
            r.produced = 1
            r.first_token_s = now
        still = []
        for r in running:
            if r.produced >= o:
                r.finished_s = now
                done.append(r)
            else:
                still.append(r)
        running = still
    counted = sorted(done, key=lambda r: r.arrival_s)[int(warmup_fraction * requests) :]
    ttft = [r.first_token_s - r.arrival_s for r in counted]
    tpot = [(r.finished_s - r.first_token_s) / (o - 1) for r in counted] if o > 1 else [0.0]
    return SimulatedLoad(requests_per_s, len(counted), _p95(ttft), _p95(tpot), in_flight_time / now, requests * o / now)
