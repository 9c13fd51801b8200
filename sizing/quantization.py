"""The weight format of a checkpoint's linear layers, and what its kernels need.

vLLM reads ``quantization_config`` from config.json without being told (``ModelConfig.
_verify_quantization``): the checkpoint's ``quant_method`` becomes the engine's quantization, and a
``--quantization`` that names another method is refused ("Quantization method specified in the
model config (...) does not match ..."). Only a bf16/fp16 checkpoint can be quantized at load
time (``fp8``, ``bitsandbytes``); AWQ, GPTQ and compressed-tensors need a checkpoint made for them.

Per linear layer the format decides the bytes per weight element and its scales (per tensor, per
output channel, per group of input elements), which modules stay at the activation dtype (the
``ignore`` list; embeddings and the LM head always), and which kernel runs it: W8A8 (FP8/INT8
weights and activations, Cutlass scaled-mm on Hopper), or weight-only (Marlin, dequantizing
inside the GEMM).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sizing.errors import SizingError

NONE = "none"
# What ``--quantization`` (and the stack's ``quantization``) may say; "none" leaves it to the checkpoint.
REQUESTABLE = ("none", "fp8", "awq", "gptq", "compressed-tensors", "bitsandbytes", "fbgemm_fp8")
# vLLM's Marlin variants of a checkpoint's method: asking for them is asking for the same checkpoint.
MARLIN_VARIANTS = {"awq_marlin": "awq", "gptq_marlin": "gptq"}
# Methods vLLM can apply to an unquantized checkpoint while loading it.
ONLINE = frozenset({"fp8", "bitsandbytes"})
SUPPORTED_METHODS = ("fp8", "compressed-tensors", "awq", "gptq", "bitsandbytes", "fbgemm_fp8")
ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj", "gate_up_proj")


@dataclass(frozen=True)
class WeightFormat:
    """Bytes of one quantized linear layer, and the kernel family that runs it.

    ``group_size`` groups input elements per scale (AWQ/GPTQ/W4A16 group-wise, bitsandbytes'
    blocks); ``scale_bytes_per_output`` is a per-output-channel scale; ``row_bytes_per_input`` is
    per input row (GPTQ's ``g_idx`` and its sort indices with act-order).
    """

    method: str  # vLLM's quantization name as it logs it
    scheme: str  # what the checkpoint holds, e.g. "W8A8-FP8 per-channel, dynamic per-token"
    bytes_per_element: float
    group_size: int | None = None
    bytes_per_group: float = 0.0
    scale_bytes_per_output: float = 0.0
    row_bytes_per_input: float = 0.0
    quantizes_activations: bool = False  # W8A8: the GEMM's input is quantized per call
    weight_bits: int = 16
    ignore: tuple[str, ...] = ()
    from_checkpoint: bool = True

    @property
    def weight_only_4bit(self) -> bool:
        return self.weight_bits == 4

    def module_quantized(self, layer: int, module: str) -> bool:
        """False for a module the checkpoint leaves at its dtype (``ignore``: names or ``re:``)."""
        name = f"model.layers.{layer}.{'self_attn' if module in ATTENTION_MODULES else 'mlp'}.{module}"
        for pattern in self.ignore:
            if pattern.startswith("re:"):
                if re.fullmatch(pattern[3:], name) or re.match(pattern[3:], name):
                    return False
            elif name == pattern or name.endswith("." + pattern) or pattern == module:
                return False
        return True

    def label(self) -> str:
        source = "from the checkpoint" if self.from_checkpoint else "applied at load"
        return f"{self.method} ({self.scheme}, {source})"


def parse_quantization_config(config: Mapping[str, Any], label: str) -> WeightFormat | None:
    """The checkpoint's format, or None for an unquantized checkpoint."""
    raw = config.get("quantization_config")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SizingError(f"config.json of {label}: quantization_config must be an object, got {raw!r}")
    method = str(raw.get("quant_method") or "").lower()
    if method == "fp8":
        return _fp8(raw, label)
    if method == "compressed-tensors":
        return _compressed_tensors(raw, label)
    if method in ("awq", "gptq"):
        return _int4_grouped(method, raw, label)
    if method == "bitsandbytes":
        return _bitsandbytes(raw, label)
    if method == "fbgemm_fp8":
        # Meta's own FP8 releases (e.g. meta-llama/Llama-3.1-405B-Instruct-FP8): per-channel FP8
        # weights, dynamic per-token activations, the listed modules left in bf16.
        return WeightFormat(
            "fbgemm_fp8",
            "W8A8-FP8 per-channel, dynamic per-token activations",
            1.0,
            scale_bytes_per_output=4.0,
            quantizes_activations=True,
            weight_bits=8,
            ignore=_names(raw, "modules_to_not_convert", label),
        )
    raise SizingError(
        f"config.json of {label}: quantization_config.quant_method {method!r} is not one the sizing models; "
        f"supported: {', '.join(SUPPORTED_METHODS)}"
    )


def online_format(method: str) -> WeightFormat:
    """What ``--quantization`` makes of an unquantized checkpoint while loading it."""
    if method == "fp8":
        return WeightFormat(
            "fp8", "W8A8-FP8 per-tensor, dynamic activations", 1.0, quantizes_activations=True, weight_bits=8
        )
    if method == "bitsandbytes":
        return WeightFormat("bitsandbytes", "NF4, 64-element blocks", 0.5, 64, 4.0, weight_bits=4)
    if method in ("awq", "gptq"):  # the stack's AWQ/GPTQ choice sizes a checkpoint made for it
        return _int4_grouped(method, {"bits": 4, "group_size": 128}, "the model")
    raise SizingError(f"quantization {method!r} cannot be applied to an unquantized checkpoint")


def resolve_weight_format(
    checkpoint: WeightFormat | None, requested: str, label: str, strict: bool = False
) -> WeightFormat | None:
    """The format vLLM will run, or SizingError naming both sides when they contradict.

    ``requested`` "none" leaves it to the checkpoint, as vLLM does without ``--quantization``.
    AWQ/GPTQ asked of an unquantized config sizes an AWQ/GPTQ checkpoint of that architecture
    (the planner's what-if); ``strict`` refuses it, as vLLM does when the checkpoint it loads is
    the unquantized one.
    """
    wanted = MARLIN_VARIANTS.get(requested, requested)
    if wanted not in REQUESTABLE:
        raise SizingError(f"quantization {requested!r} is invalid: accepted values are {', '.join(REQUESTABLE)}")
    if checkpoint is None:
        if wanted == NONE:
            return None
        if wanted not in ONLINE and (strict or wanted not in ("awq", "gptq")):
            raise SizingError(
                f"quantization {requested!r} contradicts the checkpoint of {label}, which is unquantized "
                f"(no quantization_config in its config.json): vLLM refuses it at start. Use a {requested} "
                f"checkpoint, or quantization none, or one applied at load: {', '.join(sorted(ONLINE))}"
            )
        return online_format(wanted)
    if wanted in (NONE, checkpoint.method):
        return checkpoint
    raise SizingError(
        f"quantization {requested!r} contradicts the checkpoint of {label}, whose config.json says "
        f'quant_method {checkpoint.method!r} ({checkpoint.scheme}): vLLM refuses it ("Quantization method '
        f"specified in the model config ({checkpoint.method}) does not match the quantization method "
        f'specified in the `quantization` argument ({requested})"). Leave quantization at none to use the '
        f"checkpoint's {checkpoint.method}, or choose an unquantized checkpoint"
    )


def check_quantization(checkpoint: WeightFormat | None, requested: str, label: str) -> str:
    """For the stack's config validation of the checkpoint it downloads: the quantization vLLM
    will run, as its logs name it ("none" for an unquantized checkpoint), or SizingError naming
    both when they contradict, AWQ/GPTQ of an unquantized checkpoint included."""
    fmt = resolve_weight_format(checkpoint, requested, label, strict=True)
    return fmt.method if fmt is not None else NONE


def _names(raw: Mapping[str, Any], key: str, label: str) -> tuple[str, ...]:
    """A list of module names or ``re:`` patterns (``ignore`` and its kin), checked here so that
    matching them later cannot fail."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise SizingError(
            f"config.json of {label}: quantization_config.{key} = {value!r} is invalid: "
            "must be a list of module names (or 're:' patterns)"
        )
    for pattern in value:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as error:
                raise SizingError(
                    f"config.json of {label}: quantization_config.{key} pattern {pattern!r} is invalid: {error}"
                ) from None
    return tuple(value)


def _fp8(raw: Mapping[str, Any], label: str) -> WeightFormat:
    """AutoFP8 / ``Fp8Config``: per-tensor FP8 weights (or 128x128 blocks with
    ``weight_block_size``), static or dynamic per-tensor input scales."""
    static = str(raw.get("activation_scheme") or "dynamic") == "static"
    ignore = _names(raw, "ignored_layers", label) or _names(raw, "modules_to_not_convert", label)
    block = raw.get("weight_block_size")
    if block:
        if not (isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b > 0 for b in block)):
            raise SizingError(
                f"config.json of {label}: quantization_config.weight_block_size must be [n, k], got {block!r}"
            )
        return WeightFormat(
            "fp8",
            f"W8A8-FP8 {block[0]}x{block[1]} blocks, dynamic per-group activations",
            1.0,
            group_size=block[1],
            bytes_per_group=4.0 / block[0],
            quantizes_activations=True,
            weight_bits=8,
            ignore=ignore,
        )
    activations = "static per-tensor" if static else "dynamic per-tensor"
    return WeightFormat(
        "fp8", f"W8A8-FP8 per-tensor, {activations} activations", 1.0, quantizes_activations=True, weight_bits=8,
        ignore=ignore,
    )  # fmt: skip


def _compressed_tensors(raw: Mapping[str, Any], label: str) -> WeightFormat:
    groups = raw.get("config_groups") or {}
    if not isinstance(groups, Mapping) or not groups:
        raise SizingError(f"config.json of {label}: compressed-tensors quantization_config has no config_groups")
    schemes = []
    for name, group in groups.items():
        weights = (group or {}).get("weights") if isinstance(group, Mapping) else None
        if not isinstance(weights, Mapping):
            raise SizingError(f"config.json of {label}: quantization_config.config_groups.{name} has no weights")
        schemes.append((name, group, weights))
    name, group, weights = schemes[0]
    bits = weights.get("num_bits")
    kind = str(weights.get("type") or "int")
    strategy = str(weights.get("strategy") or "tensor")
    symmetric = bool(weights.get("symmetric", True))
    activations = group.get("input_activations")
    ignore = _names(raw, "ignore", label)
    where = f"config.json of {label}: quantization_config.config_groups.{name}.weights"
    if bits == 8 and isinstance(activations, Mapping):
        dynamic = "dynamic" if activations.get("dynamic") else "static"
        act = f"{dynamic} per-{activations.get('strategy') or 'tensor'}"
        channel = 4.0 if strategy == "channel" else 0.0
        return WeightFormat(
            "compressed-tensors",
            f"W8A8-{'FP8' if kind == 'float' else 'INT8'} per-{strategy}, {act} activations",
            1.0,
            scale_bytes_per_output=channel,
            quantizes_activations=True,
            weight_bits=8,
            ignore=ignore,
        )
    if bits in (4, 8) and activations is None:
        group_size = weights.get("group_size") if strategy == "group" else None
        if strategy == "group" and not (isinstance(group_size, int) and 0 < group_size <= 1 << 20):
            raise SizingError(f"{where}.group_size must be a whole number > 0 for strategy group, got {group_size!r}")
        per_group = 2.0 + (0.0 if symmetric else bits / 8)
        return WeightFormat(
            "compressed-tensors",
            f"W{bits}A16 {'per-group ' + str(group_size) if group_size else 'per-channel'}",
            bits / 8,
            group_size=group_size,
            bytes_per_group=per_group if group_size else 0.0,
            scale_bytes_per_output=0.0 if group_size else per_group,
            weight_bits=bits,
            ignore=ignore,
        )
    raise SizingError(
        f"{where}: num_bits {bits!r} with input_activations {activations!r} is not a scheme the sizing models "
        "(W8A8 FP8/INT8, W4A16, W8A16)"
    )


def _int4_grouped(method: str, raw: Mapping[str, Any], label: str) -> WeightFormat:
    """AWQ/GPTQ: 4-bit weights packed in int32, fp16 scales and packed 4-bit zeros per group;
    GPTQ with act-order keeps ``g_idx`` and its sort indices (int32 per input row)."""
    bits = raw.get("bits", raw.get("w_bit", 4))
    if bits != 4:
        raise SizingError(f"config.json of {label}: {method} with {bits!r} bits is not modelled (4-bit only)")
    group_size = raw.get("group_size", raw.get("q_group_size", 128))
    if (
        isinstance(group_size, bool)
        or not isinstance(group_size, int)
        or not (group_size == -1 or 0 < group_size <= 1 << 20)
    ):
        raise SizingError(f"config.json of {label}: quantization_config.group_size {group_size!r} is invalid")
    act_order = method == "gptq" and bool(raw.get("desc_act"))
    ignore = _names(raw, "modules_to_not_convert", label)
    return WeightFormat(
        method,
        f"W4A16 per-group {group_size}" + (" act-order" if act_order else ""),
        0.5,
        group_size=group_size if group_size > 0 else None,
        bytes_per_group=2.5 if group_size > 0 else 0.0,
        scale_bytes_per_output=2.5 if group_size <= 0 else 0.0,
        row_bytes_per_input=8.0 if act_order else 0.0,
        weight_bits=4,
        ignore=ignore,
    )


def _bitsandbytes(raw: Mapping[str, Any], label: str) -> WeightFormat:
    ignore = _names(raw, "llm_int8_skip_modules", label)
    if raw.get("load_in_8bit"):
        return WeightFormat(
            "bitsandbytes", "LLM.int8 per-row", 1.0, scale_bytes_per_output=4.0, weight_bits=8, ignore=ignore
        )
    double = bool(raw.get("bnb_4bit_use_double_quant"))
    kind = str(raw.get("bnb_4bit_quant_type") or "fp4").upper()
    # one fp32 absmax per 64 elements, or one uint8 per 64 plus one fp32 per 256 of those
    per_block = 1.0 + 4.0 / 256 if double else 4.0
    return WeightFormat(
        "bitsandbytes", f"{kind} 64-element blocks", 0.5, group_size=64, bytes_per_group=per_block,
        weight_bits=4, ignore=ignore,
    )  # fmt: skip
