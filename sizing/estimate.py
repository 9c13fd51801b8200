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
