"""The engine settings a memory prediction depends on.

vLLM's defaults differ between the ``LLM`` class and ``vllm serve`` and between GPUs (on an
H100, ``vllm serve`` batches 8192 tokens where ``LLM`` batches 16384), and the activation peak
grows with the batch. A server whose memory was predicted must therefore be started with every
one of these set explicitly; ``ServingSettings.resolved`` fills the gaps the way ``vllm serve``
would and records which values were assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sizing.errors import SizingError
from sizing.gpus import Gpu
from sizing.quantization import REQUESTABLE

DTYPES = ("auto", "bfloat16", "float16")
QUANTIZATIONS = REQUESTABLE  # "none": whatever the checkpoint's config.json says, as vLLM does
KV_CACHE_DTYPES = ("auto", "fp8")
BLOCK_SIZE_TOKENS = 16


@dataclass(frozen=True)
class ServingSettings:
    max_model_len: int
    gpu_memory_utilization: float = 0.9
    dtype: str = "auto"
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    assumed_defaults: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _require_choice("dtype", self.dtype, DTYPES)
        _require_choice("quantization", self.quantization, QUANTIZATIONS)
        _require_choice("kv_cache_dtype", self.kv_cache_dtype, KV_CACHE_DTYPES)
        if not (isinstance(self.max_model_len, int) and self.max_model_len >= 1):
            raise SizingError(f"max_model_len {self.max_model_len!r} is invalid: give a whole number of tokens >= 1")
        if not (0.0 < self.gpu_memory_utilization <= 1.0):
            raise SizingError(
                f"gpu_memory_utilization {self.gpu_memory_utilization!r} is invalid: "
                "it is a fraction of GPU memory, above 0 and at most 1 (vLLM's default is 0.9)"
            )
        for name in ("max_num_seqs", "max_num_batched_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise SizingError(f"{name} {value!r} is invalid: give a whole number >= 1")

    @property
    def kv_cache_dtype_bytes(self) -> int:
        return 1 if self.kv_cache_dtype == "fp8" else 2

    def resolved(self, gpu: Gpu) -> ServingSettings:
        """Fill unset batching limits with ``vllm serve``'s defaults for this GPU.

        vLLM (``EngineArgs.get_batch_defaults``) gives large GPUs (>= 70 GiB, not A100) 8192
        batched tokens and 1024 sequences for the OpenAI server, and every other GPU 2048 and
        256. The profile run's activation peak is sized by these, so they are written into the
        server's arguments rather than left to the engine.
        """
        assumed = list(self.assumed_defaults)
        large = gpu.torch_total_memory_gib >= 70 and not gpu.name.startswith("A100")
        values: dict[str, object] = {}
        if self.max_num_batched_tokens is None:
            values["max_num_batched_tokens"] = 8192 if large else 2048
            assumed.append(f"max_num_batched_tokens={values['max_num_batched_tokens']}")
        if self.max_num_seqs is None:
            values["max_num_seqs"] = 1024 if large else 256
            assumed.append(f"max_num_seqs={values['max_num_seqs']}")
        if not values:
            return self
        return replace(self, **values, assumed_defaults=tuple(assumed))


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SizingError(f"{name} {value!r} is invalid: accepted values are {', '.join(choices)}")
