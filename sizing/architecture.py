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

# The families whose parameter layout the sizing reproduces (attention and MLP projections, norms,
# embeddings). Another class is refused unless its config maps it onto one of these explicitly.
SIZED_ARCHITECTURES = PIPELINE_PARALLEL_ARCHITECTURES
MODEL_TYPES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM",
}
SIZING_FAMILY_KEY = "_sizing_architecture"

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


# Upper bounds far above any published model: they refuse absurd configs in microseconds instead
# of letting the planner enumerate layouts of a million-layer model.
LIMITS = {
    "hidden_size": 1 << 17,
    "num_hidden_layers": 1 << 11,
    "num_attention_heads": 1 << 12,
    "num_key_value_heads": 1 << 12,
    "head_dim": 1 << 12,
    "vocab_size": 1 << 23,
    "intermediate_size": 1 << 20,
    "max_position_embeddings": 1 << 27,
    "sliding_window": 1 << 27,
    "experts": 1 << 13,
    "rank": 1 << 17,
}
ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})


class _Fields:
    """The config.json boundary: every field the sizing reads, typed and range-checked, each
    failure naming the file, the field, the value and the rule."""

    def __init__(self, config: Mapping[str, Any], label: str):
        if not isinstance(config, Mapping):
            raise SizingError(f"config.json of {label} must be a JSON object, got {type(config).__name__}")
        self.config, self.label = config, label

    def fail(self, key: str, value: Any, rule: str) -> SizingError:
        return SizingError(f"config.json of {self.label}: {key} = {value!r} is invalid: {rule}")

    def present(self, key: str) -> bool:
        return self.config.get(key) is not None

    def whole(self, key: str, *alternatives: str, low: int = 1, high: int | None = None, default: Any = ...) -> int:
        for k in (key, *alternatives):
            if self.present(k):
                key, value = k, self.config[k]
                break
        else:
            if default is not ...:
                return default
            keys = " or ".join(repr(k) for k in (key, *alternatives))
            raise SizingError(f"config.json of {self.label} has no {keys}: the sizing needs it")
        high = high if high is not None else LIMITS.get(key, 1 << 31)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != value
            or value
            in (
                float("inf"),
                float("-inf"),
            )
        ):
            raise self.fail(key, value, f"must be a whole number from {low} to {high:,}")
        if int(value) != value or not low <= value <= high:
            raise self.fail(key, value, f"must be a whole number from {low} to {high:,}")
        return int(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, value, "must be true or false")
        return value

    def text(self, key: str, default: str = "") -> str:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, value, "must be a string")
        return value


def _parse(config: Mapping[str, Any], name: str | None) -> ModelArchitecture:
    label = name or (str(config.get("_name_or_path") or "the model") if isinstance(config, Mapping) else "the model")
    f = _Fields(config, label)

    architectures = config.get("architectures") or []
    if isinstance(architectures, str):
        architectures = [architectures]
    if not isinstance(architectures, list) or not all(isinstance(a, str) and a for a in architectures):
        raise f.fail("architectures", architectures, 'must be a list of model class names, e.g. ["LlamaForCausalLM"]')
    architecture = architectures[0] if architectures else ""
    model_type = f.text("model_type")
    if not architecture and not model_type:
        raise SizingError(f"config.json of {label} has neither 'architectures' nor 'model_type'")
    architecture = architecture or MODEL_TYPES.get(model_type, model_type)
    _sizing_family(f, architecture)

    hidden = f.whole("hidden_size")
    layers = f.whole("num_hidden_layers")
    heads = f.whole("num_attention_heads")
    kv_heads = f.whole("num_key_value_heads", high=heads, default=heads)
    if heads % kv_heads:
        raise f.fail("num_key_value_heads", kv_heads, f"num_attention_heads ({heads}) must be a multiple of it")
    if f.present("head_dim"):
        head_dim = f.whole("head_dim")
    elif hidden % heads:
        raise f.fail(
            "hidden_size", hidden, f"must be divisible by num_attention_heads ({heads}) when head_dim is not given"
        )
    else:
        head_dim = hidden // heads
    vocab = f.whole("vocab_size")
    intermediate = f.whole("intermediate_size", default=0)
    max_pos = f.whole("max_position_embeddings")

    moe = _parse_moe(f, intermediate, layers)
    if moe is None and intermediate == 0:
        f.whole("intermediate_size")
    mla = None
    if config.get("kv_lora_rank"):
        high = LIMITS["rank"]
        mla = MultiHeadLatentAttention(
            kv_lora_rank=f.whole("kv_lora_rank", high=high),
            q_lora_rank=f.whole("q_lora_rank", high=high) if config.get("q_lora_rank") else None,
            qk_rope_head_dim=f.whole("qk_rope_head_dim", high=LIMITS["head_dim"]),
            qk_nope_head_dim=f.whole("qk_nope_head_dim", high=LIMITS["head_dim"]),
            v_head_dim=f.whole("v_head_dim", high=LIMITS["head_dim"]),
        )

    dtype = config.get("torch_dtype") or config.get("dtype") or "bfloat16"
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise f.fail("torch_dtype", dtype, f"must be one of {', '.join(DTYPE_BYTES)}")
    tie = f.flag("tie_word_embeddings", model_type.startswith("gemma"))
    window = f.whole("sliding_window", default=None) if config.get("sliding_window") is not False else None
    layer_types = _layer_types(f, layers)
    sliding = _sliding_layers(f, model_type, layers, window, layer_types)
    linear = tuple(t in LINEAR_LAYER_TYPES for t in layer_types) if layer_types else (False,) * layers
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
            sliding_window=window if attention[i] == SLIDING_WINDOW else None,
        )
        for i in range(layers)
    )
    published_params = config.get("_published_params")
    published = published_params.get("exact_from_config") if isinstance(published_params, dict) else None
    repo = config.get("_name_or_path")
    return ModelArchitecture(
        name=label,
        architecture=architecture,
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
        qkv_bias=f.flag("attention_bias", model_type in ("qwen2", "qwen2_moe")),
        mlp_bias=f.flag("mlp_bias", False),
        norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
        layers=layer_specs,
        moe=moe,
        mla=mla,
        hf_repo_id=repo if isinstance(repo, str) and repo else None,
        published_parameters=published if isinstance(published, int) else None,
        quantization=parse_quantization_config(config, label),
    )


def _sizing_family(f: _Fields, architecture: str) -> str:
    """The family whose layout sizes this model: its own class, or the one its config maps it to."""
    mapped = f.config.get(SIZING_FAMILY_KEY)
    supported = ", ".join(sorted(SIZED_ARCHITECTURES))
    if mapped is not None:
        if mapped not in SIZED_ARCHITECTURES:
            raise f.fail(SIZING_FAMILY_KEY, mapped, f"must be one of the families the sizing models: {supported}")
        return mapped
    if architecture in SIZED_ARCHITECTURES:
        return architecture
    raise f.fail(
        "architectures",
        [architecture],
        f"{architecture} is not a family the sizing models ({supported}). If its layers are those of one of "
        f'them (e.g. a Llama-shaped model under its own class name), add "{SIZING_FAMILY_KEY}": '
        '"LlamaForCausalLM" (or that family) to its config.json to size it as that family; vLLM still runs it '
        "as its own class",
    )


def _parse_moe(f: _Fields, intermediate: int, layers: int) -> MoE | None:
    keys = ("num_local_experts", "n_routed_experts", "num_experts")
    if not any(f.config.get(k) for k in keys):
        return None
    experts = f.whole(*keys, high=LIMITS["experts"])
    expert_size = f.whole("moe_intermediate_size", default=0) or intermediate
    if not expert_size:
        f.whole("moe_intermediate_size")
    shared, gated = 0, False
    if f.config.get("n_shared_experts"):
        shared = f.whole("n_shared_experts", high=experts) * expert_size
    elif f.config.get("shared_expert_intermediate_size"):
        shared, gated = f.whole("shared_expert_intermediate_size", high=LIMITS["intermediate_size"]), True
    return MoE(
        num_experts=experts,
        experts_per_token=f.whole("num_experts_per_tok", high=experts, default=min(2, experts)),
        expert_intermediate_size=expert_size,
        shared_expert_intermediate_size=shared,
        first_dense_layers=f.whole("first_k_dense_replace", low=0, high=layers, default=0),
        layer_frequency=f.whole("moe_layer_freq", "decoder_sparse_step", high=layers, default=1),
        shared_expert_gate=gated,
    )


def _layer_types(f: _Fields, layers: int) -> tuple[str, ...] | None:
    value = f.config.get("layer_types")
    if value is None:
        return None
    known = sorted(ATTENTION_LAYER_TYPES | LINEAR_LAYER_TYPES)
    if not isinstance(value, list) or len(value) != layers or not all(isinstance(t, str) for t in value):
        raise f.fail("layer_types", value, f"must list one type per layer ({layers}), each one of {', '.join(known)}")
    unknown = sorted({t for t in value if t not in ATTENTION_LAYER_TYPES | LINEAR_LAYER_TYPES})
    if unknown:
        raise f.fail("layer_types", unknown, f"unknown layer types; the sizing knows {', '.join(known)}")
    return tuple(value)


def _is_moe_layer(moe: MoE | None, layer: int) -> bool:
    if moe is None or layer < moe.first_dense_layers:
        return False
    return (layer - moe.first_dense_layers) % moe.layer_frequency == 0 if moe.layer_frequency > 1 else True


def _sliding_layers(
    f: _Fields, model_type: str, layers: int, window: int | None, layer_types: tuple[str, ...] | None
) -> tuple[bool, ...]:
    """Which layers vLLM builds with a sliding-window attention spec."""
    if not window:
        return (False,) * layers
    if layer_types is not None:
        return tuple(t == "sliding_attention" for t in layer_types)
    if model_type == "gemma2":
        return tuple(i % 2 == 0 for i in range(layers))
    if "use_sliding_window" in f.config:
        if not f.flag("use_sliding_window", False):
            return (False,) * layers
        first_full = f.whole("max_window_layers", low=0, high=layers, default=layers) or layers
        return tuple(i >= first_full for i in range(layers))
    if model_type in ("mistral", "phi3"):
        return (True,) * layers
    return (False,) * layers
