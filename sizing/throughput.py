"""What one vLLM server delivers: tokens/s, time to first token, time per output token, latency.

A forward step of vLLM's v1 engine costs, per GPU of one pipeline stage::

    t_step = layers x per_layer_overhead
           + (weights read + KV cache read) / (HBM bandwidth x hbm_fraction)
           + (linear FLOPs + attention FLOPs + LM-head FLOPs) / (dense peak x compute_fraction)
           + 2 x layers x all-reduce(tokens x hidden x 2 bytes)          (TP > 1, over NVLink)

Weights are read once per step whatever the batch (for MoE layers only the experts the step's
tokens touch); each decoding sequence reads its whole KV cache; every scheduled token costs
2 x active parameters FLOPs, and every sampled token the LM head. The terms add rather than
overlap: decode GEMMs at these batch sizes neither hide the weight stream behind the tensor
cores nor the reverse, and the calibration's decode steps grow with the batch as the sum does.
With pipeline parallelism each stage holds layers / PP and vLLM keeps PP micro-batches in flight,
so a full step costs PP stage steps of 1/PP of the batch, plus the hops between stages.

Steps are scheduled as vLLM's v1 scheduler does (``vllm/v1/core/sched/scheduler.py``): running
requests first (a decode takes one token, an unfinished prefill its next chunk), then waiting
requests in arrival order while the ``max_num_batched_tokens`` budget lasts, the last one chunked
to what is left; never more than ``max_num_seqs`` running. The KV capacity the memory plan leaves
caps the running requests at ``kv_cache_tokens // (input + output)`` (vLLM admits more and then
preempts; this model does not predict preemption storms).

Two arrival patterns:

- ``burst``: ``concurrency`` requests arrive at once and run to completion (what an offline
  ``LLM.generate`` measures; the calibration runs are bursts). Simulated step by step, in cohorts
  of identical requests, with pure-decode stretches summed in closed form.
- ``steady``: ``concurrency`` clients each send the next request as soon as the previous one ends,
  desynchronised (what a load test at fixed concurrency measures once warm). Solved in closed form:
  each step holds the average mix of decodes and prefill tokens.

Efficiency factors (``CALIBRATED``), derived from the H200 file in this order, each from the run
that isolates it (``derive_efficiency`` recomputes them; tests check the constants):

1. ``power_limited_clock_fraction``: the SM clock the GPU holds at its power limit when the
   tensor cores are busy, over the boost clock the datasheet peaks assume (the prefill run's
   median sample: 1500 of 1980 MHz at 700 W). A step's compute runs at a clock between boost and
   this one, in proportion to the share of the step that is compute (a single-sequence decode
   held 1980 MHz, 256 sequences ~1710 MHz).
2. ``compute_fraction`` from the prefill-heavy run (2048-token prompts, 1 output token): its
   steps are 16384-token prefills, compute-bound, so the measured input tokens/s over the FLOPs
   per token, at the power-limited clock, gives the fraction of the tensor-core peak reached.
3. ``hbm_fraction`` is assumed (0.9, see ``sizing.throughput_calibration``): with one model the
   bandwidth fraction and the per-step overhead both only add to a weights-bound step.
4. ``per_layer_overhead_s`` from the single-sequence decode: what its step costs beyond
   streaming the weights at that fraction (kernel launches and tails, norms, rotary, sampling).

The mixed run and the decode runs at 8 to 256 sequences derive nothing: they check the model.
All-reduce and pipeline-hop costs are assumed, not calibrated (the shared file is TP=1, PP=1).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

from sizing.architecture import ModelArchitecture
from sizing.errors import SizingError
from sizing.estimate import MemoryEstimate
from sizing.gpus import Gpu, resolve_gpu
from sizing.kv_cache import kv_cache_bytes_per_token_per_layer
from sizing.memory import activation_bytes, estimate_memory
from sizing.parallel import pipeline_stage_layers
from sizing.plan import Plan
from sizing.settings import ServingSettings
from sizing.weights import allocated_bytes, linear_bytes, padded_vocab, weights_bytes_per_gpu

ARRIVALS = ("steady", "burst")
CALIBRATION_GPU = "H200-141GB"


@dataclass(frozen=True)
class Efficiency:
    """What a step reaches of the datasheet figures, and the costs the datasheets do not give.

    The last three are assumed, not measured: ``allreduce_latency_s`` per all-reduce of a decode
    batch (vLLM's custom all-reduce over NVLink, a few microseconds), ``nvlink_fraction`` of the
    one-direction NVLink bandwidth a large all-reduce reaches, ``pipeline_hop_s`` per hop between
    pipeline stages on different nodes.
    """

    hbm_fraction: float
    compute_fraction: float
    per_layer_overhead_s: float
    power_limited_clock_fraction: float = 1.0
    allreduce_latency_s: float = 8e-6
    nvlink_fraction: float = 0.7
    pipeline_hop_s: float = 50e-6


# sizing.throughput_calibration.derive_efficiency() on tests/sizing/calibration/vllm-0.26-h200-throughput.json.
CALIBRATED = Efficiency(
    hbm_fraction=0.9,
    compute_fraction=0.813,
    per_layer_overhead_s=44.2e-6,
    power_limited_clock_fraction=1500 / 1980,
)


@dataclass(frozen=True)
class RequestShape:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Step:
    """One forward step's work: decoding sequences and their KV context, prefill tokens and theirs."""

    decode_sequences: float = 0.0
    decode_context_tokens: float = 0.0
    prefill_tokens: float = 0.0
    prefill_context_tokens: float = 0.0  # sum over prefill tokens of the tokens each attends to
    sampled_tokens: float = 0.0
    # Expected share of a MoE layer's experts no token of the step reaches, when the step is an
    # average over steps (steady load): averaging the tokens first would overstate the reads,
    # since the share reached is concave in the tokens. None: derive it from the step's tokens.
    experts_untouched: float | None = None

    def scaled(self, factor: float) -> Step:
        values = {name: value * factor for name, value in asdict(self).items() if name != "experts_untouched"}
        untouched = None if self.experts_untouched is None else self.experts_untouched**factor
        return Step(**values, experts_untouched=untouched)


@dataclass(frozen=True)
class StepCost:
    """The per-GPU cost terms of one pipeline stage, precomputed once per layout."""

    layers: int
    pipeline_parallel_size: int
    tensor_parallel_size: int
    dense_weight_bytes: float  # read every step
    expert_bytes_per_layer: float  # all experts of one MoE layer on this GPU
    moe_layers: int
    experts: int
    experts_per_token: int
    kv_bytes_per_context_token: float  # all the stage's layers
    sliding_fraction: float
    sliding_window: int | None
    linear_flops_per_token: float
    lm_head_flops_per_sampled_token: float
    attention_flops_per_context_token: float  # all the stage's layers, one query token
    allreduce_bytes_per_token: float
    memory_bytes_per_s: float
    linear_flops_per_s: float
    attention_flops_per_s: float
    nvlink_bytes_per_s: float
    efficiency: Efficiency

    def seconds(self, step: Step) -> float:
        """A full step over all stages; with PP, PP micro-batches of 1/PP of the step each."""
        pp = self.pipeline_parallel_size
        stage = step.scaled(1.0 / pp) if pp > 1 else step
        hops = (pp - 1) * self.efficiency.pipeline_hop_s
        return pp * self._stage_seconds(stage) + hops

    def _stage_seconds(self, step: Step) -> float:
        e = self.efficiency
        tokens = step.decode_sequences + step.prefill_tokens
        if tokens <= 0:
            return 0.0
        touched = 1.0
        if self.moe_layers and step.experts_untouched is not None:
            touched = 1.0 - step.experts_untouched
        elif self.moe_layers:
            touched = 1.0 - (1.0 - self.experts_per_token / self.experts) ** tokens
        weights = self.dense_weight_bytes + self.moe_layers * self.expert_bytes_per_layer * touched
        context = step.decode_context_tokens
        if self.sliding_window and step.decode_sequences:
            per_sequence = context / step.decode_sequences
            windowed = min(per_sequence, self.sliding_window) * step.decode_sequences
            context = (1.0 - self.sliding_fraction) * context + self.sliding_fraction * windowed
        kv = context * self.kv_bytes_per_context_token
        memory_s = (weights + kv) / (self.memory_bytes_per_s * e.hbm_fraction)
        linear = tokens * self.linear_flops_per_token + step.sampled_tokens * self.lm_head_flops_per_sampled_token
        attention = (step.decode_context_tokens + step.prefill_context_tokens) * self.attention_flops_per_context_token
        at_boost_s = (linear / self.linear_flops_per_s + attention / self.attention_flops_per_s) / e.compute_fraction
        comm_s = 0.0
        if self.tensor_parallel_size > 1:
            tp = self.tensor_parallel_size
            wire = 2 * (tp - 1) / tp * tokens * self.allreduce_bytes_per_token
            per_allreduce = e.allreduce_latency_s + wire / (self.nvlink_bytes_per_s * e.nvlink_fraction)
            comm_s = 2 * self.layers * per_allreduce
        other_s = self.layers * e.per_layer_overhead_s + memory_s + comm_s
        share = at_boost_s / (at_boost_s + other_s)
        clock = 1.0 - (1.0 - e.power_limited_clock_fraction) * share
        return other_s + at_boost_s / clock


@functools.lru_cache(maxsize=512)
def step_cost(
    model: ModelArchitecture,
    gpu: Gpu,
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    settings: ServingSettings,
    efficiency: Efficiency | None = None,
) -> StepCost:
    """The cost terms for the pipeline stage with the most layers (the slowest; it sets the pace)."""
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    act = activation_bytes(model, settings)
    stages = pipeline_stage_layers(model.num_layers, pp)
    index = max(range(len(stages)), key=lambda i: (len(stages[i]), i))
    layers = stages[index]
    first, last = index == 0, index == len(stages) - 1
    held = weights_bytes_per_gpu(model, tp, layers, first, last, settings.quantization, act)
    h = model.hidden_size
    unread = allocated_bytes(model.max_position_embeddings * _rotary_dim(model) * act)  # rows by position
    if first and not (last and model.tie_word_embeddings):
        unread += allocated_bytes(padded_vocab(model.vocab_size) // tp * h * act)  # rows by token id
    moe_layers = sum(1 for layer in layers if model.is_moe_layer(layer))
    expert_bytes = 0.0
    experts = per_token = 1
    if model.moe is not None and moe_layers:
        moe = model.moe
        inter = moe.expert_intermediate_size // tp
        linear = linear_bytes(settings.quantization, act)
        expert_bytes = linear.of(h, moe.num_experts * 2 * inter) + linear.of(moe.num_experts * inter, h)
        experts, per_token = moe.num_experts, moe.experts_per_token
    dense = held - unread - moe_layers * expert_bytes
    kv_per_layer = kv_cache_bytes_per_token_per_layer(model, tp, settings.kv_cache_dtype_bytes)
    sliding = sum(1 for layer in layers if model.sliding_layers[layer])
    fp8_gemm = settings.quantization == "fp8" and gpu.dense_fp8_tflops
    linear_peak = (gpu.dense_fp8_tflops if fp8_gemm else gpu.dense_bf16_tflops) * 1e12
    return StepCost(
        layers=len(layers),
        pipeline_parallel_size=pp,
        tensor_parallel_size=tp,
        dense_weight_bytes=float(dense),
        expert_bytes_per_layer=float(expert_bytes),
        moe_layers=moe_layers,
        experts=experts,
        experts_per_token=per_token,
        kv_bytes_per_context_token=float(kv_per_layer * len(layers)),
        sliding_fraction=sliding / len(layers),
        sliding_window=model.sliding_window,
        linear_flops_per_token=2.0 * sum(_active_linear_parameters(model, layer) for layer in layers) / tp,
        lm_head_flops_per_sampled_token=2.0 * h * padded_vocab(model.vocab_size) / tp if last else 0.0,
        attention_flops_per_context_token=_attention_flops_per_context_token(model) * len(layers) / tp,
        allreduce_bytes_per_token=float(h * act),
        memory_bytes_per_s=gpu.hbm_bandwidth_gb_s * 1e9,
        linear_flops_per_s=linear_peak,
        attention_flops_per_s=gpu.dense_bf16_tflops * 1e12,
        nvlink_bytes_per_s=gpu.nvlink_bandwidth_gb_s * 1e9 / 2,  # the datasheet figure counts both directions
        efficiency=efficiency or CALIBRATED,
    )


def _rotary_dim(model: ModelArchitecture) -> int:
    return model.mla.qk_rope_head_dim if model.mla is not None else model.head_dim


def _active_linear_parameters(model: ModelArchitecture, layer: int) -> float:
    """Parameters one token multiplies through in one layer: the routed experts it picks, not all."""
    mlp = float(model.mlp_parameters(layer))
    if model.is_moe_layer(layer):
        moe = model.moe
        assert moe is not None
        routed = moe.num_experts * 3 * model.hidden_size * moe.expert_intermediate_size
        mlp += (moe.experts_per_token - moe.num_experts) * routed / moe.num_experts
    return model.attention_parameters() + mlp


def _attention_flops_per_context_token(model: ModelArchitecture) -> float:
    """QK^T and PV for one query against one cached token, one layer, all heads."""
    heads = model.num_attention_heads
    if model.mla is not None:
        m = model.mla
        return 2.0 * heads * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
    return 4.0 * heads * model.head_dim


@dataclass(frozen=True)
class ThroughputPrediction:
    """One server (replica) at ``concurrency`` requests of one shape.

    ``running`` is how many requests the engine holds at once (``concurrency`` capped by
    ``max_num_seqs`` and the KV cache); the rest queue, which shows in the time to first token.
    ``calibrated`` and ``extrapolated`` name which parts of this prediction rest on measurement.
    """

    model: str
    gpu: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    arrival: str
    input_tokens: int
    output_tokens: int
    concurrency: int
    running: int
    limited_by: str
    output_tokens_per_s: float
    input_tokens_per_s: float
    requests_per_s: float
    ttft_s: float
    tpot_s: float
    request_latency_s: float
    kv_cache_tokens: int
    calibrated: tuple[str, ...]
    extrapolated: tuple[str, ...]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ttft_ms"] = self.ttft_s * 1000
        data["tpot_ms"] = self.tpot_s * 1000
        data["calibrated"] = list(self.calibrated)
        data["extrapolated"] = list(self.extrapolated)
        return data


def predict_throughput(
    model: ModelArchitecture,
    gpu: Gpu,
    tensor_parallel_size: int,
    settings: ServingSettings,
    shape: RequestShape,
    concurrency: int,
    *,
    pipeline_parallel_size: int = 1,
    arrival: str = "steady",
    estimate: MemoryEstimate | None = None,
    efficiency: Efficiency | None = None,
) -> ThroughputPrediction:
    """Pass the planner's ``estimate`` for this layout to skip recomputing the memory plan."""
    _check_inputs(shape, concurrency, arrival)
    settings = settings.resolved(gpu)
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    if estimate is None:
        estimate = estimate_memory(model, gpu, tp, pp, settings)
    if not estimate.valid or not estimate.starts:
        raise SizingError(f"{model.name} on {gpu.name} TP={tp} PP={pp} does not serve: {estimate.reason}")
    length = shape.input_tokens + shape.output_tokens
    if length > settings.max_model_len:
        raise SizingError(
            f"input {shape.input_tokens} + output {shape.output_tokens} tokens exceed max_model_len "
            f"{settings.max_model_len}: raise max_model_len or shorten the request"
        )
    cost = step_cost(model, gpu, tp, pp, settings, efficiency)
    caps = {
        "concurrency": concurrency,
        "max_num_seqs": settings.max_num_seqs,
        "kv_cache": requests_held(estimate, shape),
    }
    budget = settings.max_num_batched_tokens
    assert budget is not None and settings.max_num_seqs is not None
    if arrival == "steady":
        caps["max_num_batched_tokens"] = steady_budget_cap(shape, budget)
    limited_by = min(caps, key=lambda k: (caps[k], k != "concurrency"))
    running = caps[limited_by]
    if running < 1:
        raise SizingError(f"the KV cache ({estimate.kv_cache_tokens} tokens) holds no request of {length} tokens")
    if arrival == "burst":
        figures = _burst(cost, shape, concurrency, running, budget)
    else:
        figures = _steady(cost, shape, concurrency, running, budget)
    calibrated, extrapolated = _provenance(model, gpu, tp, pp, settings, shape, concurrency, arrival)
    return ThroughputPrediction(
        model=model.name,
        gpu=gpu.name,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        arrival=arrival,
        input_tokens=shape.input_tokens,
        output_tokens=shape.output_tokens,
        concurrency=concurrency,
        running=running,
        limited_by=limited_by,
        kv_cache_tokens=estimate.kv_cache_tokens,
        calibrated=calibrated,
        extrapolated=extrapolated,
        **figures,
    )


def requests_held(estimate: MemoryEstimate, shape: RequestShape) -> int:
    """Requests of this shape the KV cache holds at once, each in whole 16-token blocks (vLLM admits
    more and then preempts; neither model here predicts preemption)."""
    return estimate.kv_cache_tokens // (16 * math.ceil((shape.input_tokens + shape.output_tokens) / 16))


def _check_inputs(shape: RequestShape, concurrency: int, arrival: str) -> None:
    for name, value in (
        ("input tokens", shape.input_tokens),
        ("output tokens", shape.output_tokens),
        ("concurrency", concurrency),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SizingError(f"{name} {value!r} is invalid: give a whole number >= 1")
    if arrival not in ARRIVALS:
        raise SizingError(f"arrival {arrival!r} is invalid: accepted values are {', '.join(ARRIVALS)}")


def _steady(cost: StepCost, shape: RequestShape, clients: int, running: int, budget: int) -> dict:
    """Closed loop, desynchronised, seen from one request among ``running``.

    A request lives ``prefill_steps + output - 1`` steps (its first token comes with its last
    prefill chunk). The other ``running - 1`` are spread over their lifetimes, so every step also
    carries their average: ``rate x input`` prefill tokens and ``rate x (output - 1)`` decodes,
    with ``rate = (running - 1) / lifetime``. Its prefill steps add its chunks to that, its decode
    steps one token; throughput follows by Little's law, and clients beyond ``running`` queue.
    """
    i, o = shape.input_tokens, shape.output_tokens
    others = running - 1
    prefill_steps = _prefill_steps(i, o, others, budget)
    lifetime = prefill_steps + o - 1
    rate = others / lifetime
    decoding = rate * (o - 1)
    # Each other request is, in a given step, prefilling one chunk (share prefill_steps / lifetime),
    # decoding one token (share (o - 1) / lifetime) or between requests; the expected share of
    # experts left unread follows from the binomial generating function of the tokens they bring.
    untouched_by_one = 1.0 - cost.experts_per_token / cost.experts
    prefilling, decoding_share = prefill_steps / lifetime, (o - 1) / lifetime
    per_other = (
        1.0
        - prefilling
        - decoding_share
        + prefilling * untouched_by_one ** (i / prefill_steps)
        + decoding_share * untouched_by_one
    )

    def step_s(decodes: float, prefill: float, prefill_context: float, sampled: float) -> float:
        return cost.seconds(
            Step(
                decode_sequences=decoding + decodes,
                decode_context_tokens=(decoding + decodes) * (i + o / 2),
                prefill_tokens=rate * i + prefill,
                prefill_context_tokens=rate * i * (i + 1) / 2 + prefill_context,
                sampled_tokens=decoding + rate + sampled,
                experts_untouched=untouched_by_one ** (decodes + prefill) * max(per_other, 0.0) ** others,
            )
        )

    chunk = i / prefill_steps
    ttft_s = prefill_steps * step_s(0, chunk, i * (i + 1) / 2 / prefill_steps, 1 / prefill_steps)
    tpot_s = step_s(1, 0, 0, 1) if o > 1 else 0.0
    service_s = ttft_s + (o - 1) * tpot_s
    requests_per_s = running / service_s
    latency_s = max(clients / requests_per_s, service_s)
    return dict(
        output_tokens_per_s=requests_per_s * o,
        input_tokens_per_s=requests_per_s * i,
        requests_per_s=requests_per_s,
        ttft_s=ttft_s + latency_s - service_s,
        tpot_s=tpot_s,
        request_latency_s=latency_s,
    )


def _prefill_steps(input_tokens: int, output_tokens: int, others: int, budget: int) -> int:
    """Chunks of a prompt, in the budget the others' decodes leave (as if theirs took one step)."""
    decodes = others * (output_tokens - 1) / output_tokens
    return max(1, math.ceil(input_tokens / max(budget - decodes, 1)))


def steady_budget_cap(shape: RequestShape, budget: int) -> int:
    """Requests a steady stream can keep in service before the token budget is full every step."""
    i, o = shape.input_tokens, shape.output_tokens
    return max(1, math.floor(budget * (math.ceil(i / budget) + o - 1) / (i + o - 1)))


@dataclass
class _Cohort:
    """Requests admitted in the same step, identical from then on."""

    count: int
    computed: int  # prompt tokens in the KV cache
    produced: int  # output tokens so far


def _burst(cost: StepCost, shape: RequestShape, total: int, cap: int, budget: int) -> dict:
    """All requests arrive at t=0; step the scheduler until the last one finishes."""
    i, o = shape.input_tokens, shape.output_tokens
    waiting, now = total, 0.0
    running: list[_Cohort] = []
    ttft_sum = latency_sum = 0.0
    while waiting or running:
        active = sum(c.count for c in running)
        prefilling = any(c.computed < i for c in running)
        if not prefilling and (not waiting or active >= cap):
            # Pure decode until the next cohort finishes: context grows by one token per sequence per step.
            k = min(o - c.produced for c in running)
            context = sum(c.count * (i + c.produced) for c in running)
            mid = Step(
                decode_sequences=active,
                decode_context_tokens=context + active * (k - 1) / 2,
                sampled_tokens=active,
            )
            now += k * cost.seconds(mid)
            for c in running:
                c.produced += k
            latency_sum += sum(c.count for c in running if c.produced >= o) * now
            running = [c for c in running if c.produced < o]
            continue
        left = budget
        step = Step()
        decode_n = decode_ctx = prefill_n = prefill_ctx = sampled = 0.0
        finishing_prefill: list[_Cohort] = []
        for c in running:
            if c.computed >= i:
                decode_n += c.count
                decode_ctx += c.count * (i + c.produced)
                left -= c.count
            else:
                chunk = min(i - c.computed, left)
                prefill_n += chunk
                prefill_ctx += chunk * (c.computed + (chunk + 1) / 2)
                c.computed += chunk
                left -= chunk
                if c.computed >= i:
                    finishing_prefill.append(c)
        new: list[_Cohort] = []
        room = cap - active
        if waiting and left > 0 and room > 0:
            whole = min(waiting, room, left // i)
            if whole:
                new.append(_Cohort(whole, i, 0))
                prefill_n += whole * i
                prefill_ctx += whole * i * (i + 1) / 2
                waiting -= whole
                room -= whole
                left -= whole * i
            if waiting and room > 0 and 0 < left < i:
                new.append(_Cohort(1, left, 0))
                prefill_n += left
                prefill_ctx += left * (left + 1) / 2
                waiting -= 1
        finishing_prefill += [c for c in new if c.computed >= i]
        sampled = decode_n + sum(c.count for c in finishing_prefill)
        step = Step(decode_n, decode_ctx, prefill_n, prefill_ctx, sampled)
        now += cost.seconds(step)
        for c in running:
            if c.computed >= i and c not in finishing_prefill:
                c.produced += 1
        for c in finishing_prefill:
            c.produced = 1
            ttft_sum += c.count * now
        running += new
        latency_sum += sum(c.count for c in running if c.produced >= o) * now
        running = [c for c in running if c.produced < o]
    latency_s = latency_sum / total
    ttft_s = ttft_sum / total
    return dict(
        output_tokens_per_s=total * o / now,
        input_tokens_per_s=total * i / now,
        requests_per_s=total / now,
        ttft_s=ttft_s,
        tpot_s=(latency_s - ttft_s) / (o - 1) if o > 1 else 0.0,
        request_latency_s=latency_s,
    )


def _provenance(model, gpu, tp, pp, settings, shape, concurrency, arrival) -> tuple[tuple[str, ...], tuple[str, ...]]:
    calibrated = ["vLLM 0.26 v1 scheduler (chunked prefill, max_num_seqs, token budget), as in its source"]
    extrapolated = []
    if gpu.name == CALIBRATION_GPU:
        calibrated.append(f"GPU {gpu.name}: tensor-core fraction, power-limited clock and per-layer overhead measured")
    else:
        extrapolated.append(f"GPU {gpu.name}: the H200's efficiency factors applied to its datasheet figures")
    parts = (("MoE", model.moe), ("MLA", model.mla), ("sliding window", any(model.sliding_layers)))
    kinds = [kind for kind, present in parts if present]
    if kinds:
        extrapolated.append(f"model class: {', '.join(kinds)} costed from first principles, not measured")
    else:
        calibrated.append("model class: dense decoder (measured on Llama-3.1-8B)")
    if settings.quantization != "none":
        extrapolated.append(f"quantization {settings.quantization}: weight bytes and GEMM peak changed, not measured")
    if settings.kv_cache_dtype != "auto":
        extrapolated.append(f"kv_cache_dtype {settings.kv_cache_dtype}: KV bytes halved, not measured")
    if tp > 1:
        extrapolated.append(f"TP={tp}: NVLink all-reduce cost assumed (latency and link efficiency), not measured")
    if pp > 1:
        extrapolated.append(f"PP={pp}: micro-batched stages and inter-node hops assumed, not measured")
    if arrival == "steady":
        extrapolated.append("steady load: the calibration measured bursts; same step costs, scheduler averaged")
    if concurrency > 256 or shape.input_tokens > 2048 or shape.output_tokens > 512:
        extrapolated.append("beyond the measured range (concurrency <= 256, input <= 2048, output <= 512 tokens)")
    return tuple(calibrated), tuple(extrapolated)


def predict_for_plan(
    plan: Plan, model: ModelArchitecture, shape: RequestShape, concurrency: int, arrival: str = "steady"
) -> ThroughputPrediction:
    """One replica of a planned layout, reusing the plan's memory estimate (its KV cache)."""
    return predict_throughput(
        model,
        resolve_gpu(plan.gpu),
        plan.tensor_parallel_size,
        plan.settings,
        shape,
        concurrency,
        pipeline_parallel_size=plan.pipeline_parallel_size,
        arrival=arrival,
        estimate=plan.estimate,
    )


def max_concurrency_within(
    plan: Plan,
    model: ModelArchitecture,
    shape: RequestShape,
    *,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    limit: int = 4096,
) -> ThroughputPrediction | None:
    """The highest steady concurrency one replica serves within the latency targets, or None when
    even one request misses them. Latency grows with concurrency, so a bisection finds it."""

    def meets(c: int) -> ThroughputPrediction | None:
        p = predict_for_plan(plan, model, shape, c)
        ok = (ttft_s is None or p.ttft_s <= ttft_s) and (tpot_s is None or p.tpot_s <= tpot_s)
        return p if ok else None

    best = meets(1)
    if best is None:
        return None
    low, high = 1, limit
    while low < high:
        mid = (low + high + 1) // 2
        found = meets(mid)
        if found is not None:
            low, best = mid, found
        else:
            high = mid - 1
    return best
