"""What vLLM will report for one GPU of one (model, GPU, TP, PP, settings) configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sizing.settings import ServingSettings


@dataclass(frozen=True)
class MemoryEstimate:
    """Per GPU, for the pipeline stage that leaves the least KV cache (vLLM takes the minimum).

    ``valid`` is False when vLLM rejects the parallel layout before loading anything; ``starts``
    is False when it would load and then refuse to start (or run out of memory). ``reason`` is
    the message vLLM would give, or why the plan is close to failing.

    ``kv_cache_tokens`` and ``max_concurrency`` are what vLLM's start-up log will say. ``basis``
    says whether the path is measured or extrapolated (``sizing.basis``); an extrapolated one keeps
    ``kv_margin_gib_per_gpu`` off its KV cache, and ``promised_*`` are what remains: what a plan
    may rely on.
    """

    model: str
    gpu: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    settings: ServingSettings
    valid: bool
    starts: bool
    reason: str
    budget_gib_per_gpu: float
    weights_gib_per_gpu: float
    activation_gib_per_gpu: float
    non_torch_gib_per_gpu: float
    cudagraph_gib_per_gpu: float
    cudagraph_in_budget: bool
    kv_cache_gib_per_gpu: float
    kv_cache_bytes_per_token_per_gpu: int
    kv_cache_tokens: int
    kv_cache_gib_needed_per_request: float
    max_concurrency: float
    outside_budget_gib_per_gpu: float
    accounting: str
    basis: str = "measured"
    kv_margin_gib_per_gpu: float = 0.0
    promised_kv_cache_tokens: int = 0
    promised_max_concurrency: float = 0.0
    weight_format: str = "unquantized"
    model_runner: str = "V2"

    @property
    def measured(self) -> bool:
        return self.basis == "measured"

    @property
    def promised_kv_cache_gib_per_gpu(self) -> float:
        return max(0.0, self.kv_cache_gib_per_gpu - self.kv_margin_gib_per_gpu)

    @property
    def overhead_gib_per_gpu(self) -> float:
        """What the budget loses besides weights, activations and KV cache."""
        return self.non_torch_gib_per_gpu + (self.cudagraph_gib_per_gpu if self.cudagraph_in_budget else 0.0)

    def to_dict(self) -> dict:
        data = asdict(self)
        settings = data.pop("settings")
        data["assumed_defaults"] = list(settings.pop("assumed_defaults"))
        data["settings"] = settings
        return data
