"""Each serving setting declared once: its config key, its sizing field, its vLLM flag, its NIM
variable, its default per engine release and whether it changes memory.

Everything else derives from ``SERVING_SETTINGS``: the ``models[]`` keys and their validation
(``stack.config.ModelConfig``), the plan's ``ServingSettings`` (``stack.placement``), the
``vllm serve`` flags (``vllm_args``, for vLLM and NIM's passthrough), NIM's variables
(``nim_variables``) and what ``vllm_check`` compares in the engine config vLLM builds
(``engine_checks``). A new setting is one row here (plus its field in ``sizing.settings`` when
the sizing reads it) and its tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic.alias_generators import to_camel

from sizing.settings import DTYPES, KV_CACHE_DTYPES, QUANTIZATIONS, ServingSettings

# What ``vllm serve`` does when the flag is absent, per release the stack deploys.
VLLM_0_32 = "vllm 0.32.0"
PER_GPU = "per GPU: 8192 tokens / 1024 sequences on >= 70 GiB (not A100), else 2048 / 256"


@dataclass(frozen=True)
class ServingSetting:
    """One setting. ``annotation`` and ``constraints`` (pydantic ``Field`` keywords) validate the
    config value, ``config_default`` is used when the key is absent (None: the plan resolves it).
    ``vllm_flag`` renders it (``vllm_values`` maps config values to vLLM's, ``omit`` is a value
    for which no flag is passed; a bool setting is a bare flag, present when true). ``nim_variable``
    is NIM's own variable; without one, NIM gets the vLLM flag in ``NIM_PASSTHROUGH_ARGS``.
    ``engine_check`` is how ``vllm_check`` compares the flag with vLLM's engine config:
    ``exact``, ``unless-auto`` or None (not compared)."""

    sizing_field: str
    annotation: Any
    vllm_flag: str
    changes_memory: bool
    release_defaults: Mapping[str, Any]
    config_default: Any = None
    constraints: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    nim_variable: str | None = None
    vllm_values: Mapping[str, str] = field(default_factory=dict)
    omit: Any = ()
    engine_check: Literal["exact", "unless-auto"] | None = None
    required: bool = False

    @property
    def config_key(self) -> str:
        return to_camel(self.sizing_field)

    def vllm_arg(self, value: Any) -> list[str]:
        if self.annotation is bool:
            return [self.vllm_flag] if value else []
        if value == self.omit:
            return []
        return [self.vllm_flag, self.vllm_values.get(value, str(value))]


SERVING_SETTINGS: tuple[ServingSetting, ...] = (
    ServingSetting(
        "max_model_len",
        int,
        "--max-model-len",
        changes_memory=True,
        release_defaults={VLLM_0_32: "the model's max_position_embeddings"},
        constraints={"ge": 1},
        required=True,
        nim_variable="NIM_MAX_MODEL_LEN",
        engine_check="exact",
        description="context length, prompt plus output, in tokens",
    ),
    ServingSetting(
        "gpu_memory_utilization",
        float,
        "--gpu-memory-utilization",
        changes_memory=True,
        release_defaults={VLLM_0_32: 0.9},
        config_default=0.9,
        constraints={"gt": 0, "le": 0.98},
    ),
    ServingSetting(
        "max_num_seqs",
        int | None,
        "--max-num-seqs",
        changes_memory=True,
        release_defaults={VLLM_0_32: PER_GPU},
        constraints={"ge": 1},
        engine_check="exact",
    ),
    ServingSetting(
        "max_num_batched_tokens",
        int | None,
        "--max-num-batched-tokens",
        changes_memory=True,
        release_defaults={VLLM_0_32: PER_GPU},
        constraints={"ge": 1},
        engine_check="exact",
    ),
    ServingSetting(
        "dtype",
        Literal[DTYPES],  # type: ignore[valid-type]
        "--dtype",
        changes_memory=True,
        release_defaults={VLLM_0_32: "auto"},
        config_default="auto",
    ),
    ServingSetting(
        "quantization",
        Literal[QUANTIZATIONS],  # type: ignore[valid-type]
        "--quantization",
        changes_memory=True,
        release_defaults={VLLM_0_32: "none (or the checkpoint's quantization_config)"},
        config_default="none",
        omit="none",
        # An explicit ``--quantization awq`` forces vLLM's old fp16-only AWQ kernel; the Marlin kernels
        # are what the sizing's shape rules (sizing.rules) describe and what runs fast on A100/H100.
        vllm_values={"awq": "awq_marlin", "gptq": "gptq_marlin"},  # every other value is vLLM's own name
    ),
    ServingSetting(
        "kv_cache_dtype",
        Literal[KV_CACHE_DTYPES],  # type: ignore[valid-type]
        "--kv-cache-dtype",
        changes_memory=True,
        release_defaults={VLLM_0_32: "auto"},
        config_default="auto",
        engine_check="unless-auto",
    ),
    ServingSetting(
        "enforce_eager",
        bool,
        "--enforce-eager",
        changes_memory=True,  # no CUDA graphs: their capture memory is not reserved
        release_defaults={VLLM_0_32: False},
        config_default=False,
    ),
)

BY_FIELD = {setting.sizing_field: setting for setting in SERVING_SETTINGS}


def config_fields() -> dict[str, tuple[Any, dict[str, Any]]]:
    """``{field: (annotation, Field keywords)}`` of the settings in ``models[]``."""
    fields = {}
    for setting in SERVING_SETTINGS:
        keywords = dict(setting.constraints)
        if setting.description:
            keywords["description"] = setting.description
        if not setting.required:
            keywords["default"] = setting.config_default
        fields[setting.sizing_field] = (setting.annotation, keywords)
    return fields


def serving_settings(values: Mapping[str, Any]) -> ServingSettings:
    """The sizing's settings from a model's config values (by sizing field)."""
    return ServingSettings(**{setting.sizing_field: values[setting.sizing_field] for setting in SERVING_SETTINGS})


def vllm_args(settings: ServingSettings, *, without: tuple[str, ...] = ()) -> list[str]:
    """The ``vllm serve`` flags of every setting, in the table's order, except ``without`` (fields)."""
    args: list[str] = []
    for setting in SERVING_SETTINGS:
        if setting.sizing_field not in without:
            args += setting.vllm_arg(getattr(settings, setting.sizing_field))
    return args


def nim_variables(settings: ServingSettings) -> dict[str, str]:
    """NIM's own variables for the settings that have one."""
    return {
        setting.nim_variable: str(getattr(settings, setting.sizing_field))
        for setting in SERVING_SETTINGS
        if setting.nim_variable is not None
    }


def nim_passthrough_args(settings: ServingSettings) -> list[str]:
    """The vLLM flags NIM's vLLM backend takes (NIM_PASSTHROUGH_ARGS): those without a NIM variable."""
    return vllm_args(settings, without=tuple(s.sizing_field for s in SERVING_SETTINGS if s.nim_variable))


def engine_checks() -> list[tuple[str, str, str]]:
    """``(flag, engine config key, mode)`` that ``vllm_check`` compares after vLLM builds its config."""
    return [(s.vllm_flag, s.sizing_field, s.engine_check) for s in SERVING_SETTINGS if s.engine_check]
