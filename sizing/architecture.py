"""A model's architecture as vLLM's memory accounting sees it, read from a Hugging Face config.json.

Only the fields that change memory are kept. Counting parameters from them (rather than trusting
a published "70B") is what lets the weights per GPU follow vLLM's sharding: which matrices split
across tensor-parallel ranks, which are replicated, and what each pipeline stage holds.

The model is a sequence of layers, each with its own attention kind (full, sliding window with
its size, MLA, linear/state-space) and MLP kind (dense or MoE), as vLLM builds them; KV bytes,
weights and activations sum or take the maximum over the layers. Interleaved sliding-window
models and hybrids are then just other layer sequences. ``moe`` and ``mla`` hold the shapes
those layer kinds share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sizing.errors import SizingError
from sizing.quantization import WeightFormat, parse_quantization_config

# vLLM architectures whose model classes implement SupportsPP (pipeline parallel).
PIPELINE_PARALLEL_ARCHITECTURES = frozenset(
    {
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "MixtralForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "Gemma2ForCausalLM",
        "Gemma3ForCausalLM",
        "Phi3ForCausalLM",
        "DeepseekV2ForCausalLM",
        "DeepseekV3ForCausalLM",
    }
)

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class MoE:
    num_experts: int
    experts_per_token: int
    expert_intermediate_size: int
    shared_expert_intermediate_size: int  # 0 when the model has no shared experts
    first_dense_layers: int  # layers before the first MoE layer use a dense MLP
    layer_frequency: int  # every n-th layer (after the dense ones) is MoE
    shared_expert_gate: bool = False  # Qwen-MoE scales its shared expert by a learned gate


@dataclass(frozen=True)
class MultiHeadLatentAttention:
    """DeepSeek-V2's MLA: the KV cache holds one compressed latent per token, not per head."""

    kv_lora_rank: int
    q_lora_rank: int | None
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int


FULL_ATTENTION = "full_attention"
SLIDING_WINDOW = "sliding_window"
MLA_ATTENTION = "mla"
LINEAR_ATTENTION = "linear_attention"  # Mamba / linear attention: a fixed state per request, no KV per token
DENSE_MLP = "dense"
MOE_MLP = "moe"
LINEAR_LAYER_TYPES = frozenset({"linear_attention", "mamba", "mamba2", "ssm"})


@dataclass(frozen=True)
class Layer:
    """One decoder layer as vLLM builds it: the KV cache spec its attention registers, and its MLP."""

    attention: str = FULL_ATTENTION
    mlp: str = DENSE_MLP
    sliding_window: int | None = None  # tokens, for SLIDING_WINDOW layers

    @property
    def caches_kv_per_token(self) -> bool:
        return self.attention != LINEAR_ATTENTION


@dataclass(frozen=True)
class ModelArchitecture:
    name: str
    architecture: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    checkpoint_dtype: str
    qkv_bias: bool
    mlp_bias: bool
    norms_per_layer: int
    layers: tuple[Layer, ...]
    moe: MoE | None = None
    mla: MultiHeadLatentAttention | None = None
    hf_repo_id: str | None = None
    published_parameters: int | None = None
    quantization: WeightFormat | None = None  # the checkpoint's own format (config.json's quantization_config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], name: str | None = None) -> ModelArchitecture:
        """Parse a config.json; a missing field the sizing needs is named in the error."""
        return _parse(config, name)

    @property
    def supports_pipeline_parallel(self) -> bool:
        return self.architecture in PIPELINE_PARALLEL_ARCHITECTURES

    def is_moe_layer(self, layer: int) -> bool:
        return self.layers[layer].mlp == MOE_MLP

    @property
    def sliding_layers(self) -> tuple[bool, ...]:
        return tuple(layer.attention == SLIDING_WINDOW for layer in self.layers)

    @property
    def sliding_window(self) -> int | None:
        """The largest window of the sliding layers, or None when every layer attends in full."""
        windows = [layer.sliding_window for layer in self.layers if layer.attention == SLIDING_WINDOW]
        return max(windows) if windows else None  # type: ignore[type-var]

    def layer_kinds(self, layers: range) -> set[Layer]:
        return set(self.layer_counts(layers))

    @cached_property
    def kinds(self) -> frozenset[Layer]:
        return frozenset(self.layers)

    @cached_property
    def memo(self) -> dict:
        """Derived figures the planner asks for thousands of times (the model is immutable)."""
        return {}

    @cached_property
    def runs(self) -> tuple[tuple[int, int, Layer], ...]:
        """(start, stop, layer) for each run of identical consecutive layers."""
        out: list[tuple[int, int, Layer]] = []
        for index, layer in enumerate(self.layers):
            if out and out[-1][2] == layer:
                out[-1] = (out[-1][0], index + 1, layer)
            else:
                out.append((index, index + 1, layer))
        return tuple(out)

    def layer_counts(self, layers: range) -> dict[Layer, int]:
        """How many layers of each kind a (pipeline stage's) range holds."""
        key = ("counts", layers.start, layers.stop)
        counts = self.memo.get(key)
        if counts is None:
            counts = {}
            for start, stop, layer in self.runs:
                overlap = min(stop, layers.stop) - max(start, layers.start)
                if overlap > 0:
                    counts[layer] = counts.get(layer, 0) + overlap
            self.memo[key] = counts
        return counts

    @property
    def parameters(self) -> int:
        """Exact parameter count, as the checkpoint holds them (tied embeddings counted once)."""
        total = self.vocab_size * self.hidden_size + self.hidden_size
        if not self.tie_word_embeddings:
            total += self.vocab_size * self.hidden_size
        for layer in range(self.num_layers):
            total += self.attention_parameters(layer) + self.mlp_parameters(layer)
            total += self.norms_per_layer * self.hidden_size
        return total

    def attention_parameters(self, layer: int = 0) -> int:
        h = self.hidden_size
        kind = self.layers[layer].attention
        if kind == LINEAR_ATTENTION:
            raise SizingError(
                f"{self.name}: linear-attention/state-space layers are not modelled by the sizing: "
                "their weights and per-request state are unknown to it"
            )
        if kind == MLA_ATTENTION:
            assert self.mla is not None
            m = self.mla
            qk_head = m.qk_nope_head_dim + m.qk_rope_head_dim
            if m.q_lora_rank:
                q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * self.num_attention_heads * qk_head
            else:
                q = h * self.num_attention_heads * qk_head
            kv_a = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
            kv_b = m.kv_lora_rank * self.num_attention_heads * (m.qk_nope_head_dim + m.v_head_dim)
            o = self.num_attention_heads * m.v_head_dim * h
            return q + kv_a + kv_b + o
        q_dim = self.num_attention_heads * self.head_dim
        kv_dim = self.num_kv_heads * self.head_dim
        total = h * (q_dim + 2 * kv_dim) + q_dim * h
        if self.qkv_bias:
            total += q_dim + 2 * kv_dim
        return total

    def mlp_parameters(self, layer: int) -> int:
        h = self.hidden_size
        if self.is_moe_layer(layer):
            moe = self.moe
            assert moe is not None
            experts = moe.num_experts * 3 * h * moe.expert_intermediate_size
            shared = 3 * h * moe.shared_expert_intermediate_size
            if moe.shared_expert_gate:
                shared += h
            return experts + shared + h * moe.num_experts
        total = 3 * h * self.intermediate_size
        if self.mlp_bias:
            total += 2 * self.intermediate_size + h
        return total


def _parse(config: Mapping[str, Any], name: str | None) -> ModelArchitecture:
    label = name or str(config.get("_name_or_path") or "the model")

    def need(key: str, *alternatives: str) -> Any:
        for k in (key, *alternatives):
            if config.get(k) is not None:
                return config[k]
        keys = " or ".join(repr(k) for k in (key, *alternatives))
        raise SizingError(f"config.json of {label} has no {keys}: the sizing needs it")

    def integer(key: str, *alternatives: str) -> int:
        value = need(key, *alternatives)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 0:
            raise SizingError(f"config.json of {label}: {key} must be a whole number, got {value!r}")
        return int(value)

    architectures = config.get("architectures") or []
    if isinstance(architectures, str):
        architectures = [architectures]
    architecture = architectures[0] if architectures else ""
    model_type = str(config.get("model_type") or "")
    if not architecture and not model_type:
        raise SizingError(f"config.json of {label} has neither 'architectures' nor 'model_type'")

    hidden = integer("hidden_size")
    layers = integer("num_hidden_layers")
    heads = integer("num_attention_heads")
    kv_heads = integer("num_key_value_heads") if config.get("num_key_value_heads") is not None else heads
    head_dim = integer("head_dim") if config.get("head_dim") else hidden // heads
    vocab = integer("vocab_size")
    intermediate = integer("intermediate_size") if config.get("intermediate_size") is not None else 0
    max_pos = integer("max_position_embeddings")

    moe = _parse_moe(config, intermediate)
    if moe is None and intermediate == 0:
        need("intermediate_size")
    mla = None
    if config.get("kv_lora_rank"):
        mla = MultiHeadLatentAttention(
            kv_lora_rank=integer("kv_lora_rank"),
            q_lora_rank=integer("q_lora_rank") if config.get("q_lora_rank") else None,
            qk_rope_head_dim=integer("qk_rope_head_dim"),
            qk_nope_head_dim=integer("qk_nope_head_dim"),
            v_head_dim=integer("v_head_dim"),
        )

    dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    if dtype not in DTYPE_BYTES:
        raise SizingError(f"config.json of {label}: torch_dtype {dtype!r} is not one of {', '.join(DTYPE_BYTES)}")
    gemma = model_type.startswith("gemma")
    tie = bool(config.get("tie_word_embeddings", gemma))
    window = config.get("sliding_window")
    sliding = _sliding_layers(config, model_type, layers, window)
    linear = _linear_layers(config, layers)
    attention = [
        LINEAR_ATTENTION
        if linear[i]
        else MLA_ATTENTION
        if mla is not None
        else SLIDING_WINDOW
        if sliding[i]
        else FULL_ATTENTION
        for i in range(layers)
    ]
    layer_specs = tuple(
        Layer(
            attention=attention[i],
            mlp=MOE_MLP if _is_moe_layer(moe, i) else DENSE_MLP,
            sliding_window=int(window) if attention[i] == SLIDING_WINDOW else None,
        )
        for i in range(layers)
    )
    published = (
        config.get("_published_params", {}).get("exact_from_config")
        if isinstance(config.get("_published_params"), dict)
        else None
    )
    return ModelArchitecture(
        name=label,
        architecture=architecture or model_type,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        tie_word_embeddings=tie,
        checkpoint_dtype=dtype,
        qkv_bias=bool(config.get("attention_bias", model_type == "qwen2" or model_type == "qwen2_moe")),
        mlp_bias=bool(config.get("mlp_bias", False)),
        norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
        layers=layer_specs,
        moe=moe,
        mla=mla,
        hf_repo_id=config.get("_name_or_path") or None,
        published_parameters=published,
        quantization=parse_quantization_config(config, label),
    )


def _parse_moe(config: Mapping[str, Any], intermediate: int) -> MoE | None:
    experts = config.get("num_local_experts") or config.get("n_routed_experts") or config.get("num_experts")
    if not experts:
        return None
    expert_size = int(config.get("moe_intermediate_size") or intermediate)
    shared, gated = 0, False
    if config.get("n_shared_experts"):
        shared = int(config["n_shared_experts"]) * expert_size
    elif config.get("shared_expert_intermediate_size"):
        shared, gated = int(config["shared_expert_intermediate_size"]), True
    return MoE(
        num_experts=int(experts),
        experts_per_token=int(config.get("num_experts_per_tok") or 2),
        expert_intermediate_size=expert_size,
        shared_expert_intermediate_size=shared,
        first_dense_layers=int(config.get("first_k_dense_replace") or 0),
        layer_frequency=int(config.get("moe_layer_freq") or config.get("decoder_sparse_step") or 1),
        shared_expert_gate=gated,
    )


def _is_moe_layer(moe: MoE | None, layer: int) -> bool:
    if moe is None or layer < moe.first_dense_layers:
        return False
    return (layer - moe.first_dense_layers) % moe.layer_frequency == 0 if moe.layer_frequency > 1 else True


def _linear_layers(config: Mapping[str, Any], layers: int) -> tuple[bool, ...]:
    layer_types = config.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == layers:
        return tuple(str(t) in LINEAR_LAYER_TYPES for t in layer_types)
    return (False,) * layers


def _sliding_layers(config: Mapping[str, Any], model_type: str, layers: int, window: Any) -> tuple[bool, ...]:
    """Which layers vLLM builds with a sliding-window attention spec."""
    if not window:
        return (False,) * layers
    layer_types = config.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == layers:
        return tuple(t == "sliding_attention" for t in layer_types)
    if model_type == "gemma2":
        return tuple(i % 2 == 0 for i in range(layers))
    if "use_sliding_window" in config:
        if not config["use_sliding_window"]:
            return (False,) * layers
        first_full = int(config.get("max_window_layers") or layers)
        return tuple(i >= first_full for i in range(layers))
    if model_type in ("mistral", "phi3"):
        return (True,) * layers
    return (False,) * layers
