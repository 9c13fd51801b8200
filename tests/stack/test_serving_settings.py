"""Each serving setting is declared once (stack.serving_settings): the config keys, the sizing's
fields, the vLLM flags and NIM's variables are exactly the table's, so a new setting is one row."""

from __future__ import annotations

import dataclasses
import shlex

from components.engines.nim import nim_env
from components.engines.vllm import server_args
from sizing.settings import ServingSettings
from stack.config import ModelConfig, parse_config
from stack.placement import place
from stack.serving_settings import BY_FIELD, SERVING_SETTINGS, engine_checks, nim_passthrough_args, vllm_args

NIM_IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"
# Every setting away from its default, so each renders.
EVERYTHING = {
    "maxModelLen": 8192,
    "gpuMemoryUtilization": 0.85,
    "maxNumSeqs": 64,
    "maxNumBatchedTokens": 4096,
    "dtype": "bfloat16",
    "quantization": "fp8",  # applied at load: the bf16 checkpoint accepts it (AWQ would contradict it)
    "kvCacheDtype": "fp8",
    "enforceEager": True,
}
SIZING_FIELDS = {f.name for f in dataclasses.fields(ServingSettings)} - {"assumed_defaults"}
NOT_SETTINGS = {  # the model keys that are not serving settings (what to serve, where, how many)
    "traffic",
    "name",
    "model",
    "architecture",
    "source",
    "min_concurrency",
    "autoscaling",
    "drain_seconds",
    "rollout",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "replicas",
    "node_group",
    "served_model_name",
    "client_namespaces",
    "engine",
    "scheduling",
}


def placed(**model):
    config = parse_config(
        {
            "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
            "nodeGroups": [{"name": "h100", "instanceType": "p5.48xlarge", "maxNodes": 2}],
            "models": [{"name": "m", "model": "llama-3.1-70b", **EVERYTHING, **model}],
        }
    )
    return place(config).models[0]


def flags_in(args: list[str]) -> set[str]:
    return {a for a in args if a.startswith("--")}


def test_every_sizing_setting_is_a_row_and_every_row_a_sizing_setting():
    assert {s.sizing_field for s in SERVING_SETTINGS} == SIZING_FIELDS
    assert len(BY_FIELD) == len(SERVING_SETTINGS)  # no setting declared twice


def test_the_model_config_keys_of_settings_are_exactly_the_tables():
    settings_fields = set(ModelConfig.model_fields) - NOT_SETTINGS
    assert settings_fields == set(BY_FIELD)
    for name in settings_fields:
        assert ModelConfig.model_fields[name].alias == BY_FIELD[name].config_key


def test_the_config_defaults_are_the_sizings_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(ServingSettings) if f.name in SIZING_FIELDS}
    for setting in SERVING_SETTINGS:
        if not setting.required:
            assert setting.config_default == defaults[setting.sizing_field], setting.sizing_field


def test_the_plan_carries_every_configured_setting():
    settings = placed().plan.settings
    for setting in SERVING_SETTINGS:
        assert getattr(settings, setting.sizing_field) == EVERYTHING[setting.config_key]


def test_vllm_serve_gets_exactly_the_tables_flags_with_its_values():
    model = placed()
    args = server_args(model)
    table_flags = {s.vllm_flag for s in SERVING_SETTINGS}
    other_flags = {"--tensor-parallel-size", "--served-model-name", "--host", "--port"}
    assert flags_in(args) == table_flags | other_flags
    assert " ".join(vllm_args(model.plan.settings)) in " ".join(args)
    assert args[args.index("--quantization") + 1] == "fp8"
    # the table's value mapping: AWQ and GPTQ checkpoints run vLLM's Marlin kernels
    assert BY_FIELD["quantization"].vllm_arg("awq") == ["--quantization", "awq_marlin"]


def test_a_setting_at_its_omitted_value_passes_no_flag():
    args = server_args(placed(quantization="none", enforceEager=False))
    assert "--quantization" not in args and "--enforce-eager" not in args


def test_nim_gets_its_variables_and_the_other_settings_as_passthrough_flags():
    model = placed(engine={"type": "nim", "image": NIM_IMAGE}, quantization="none")
    env = {e["name"]: e.get("value") for e in nim_env(model, "key")}
    for setting in SERVING_SETTINGS:
        if setting.nim_variable:
            assert env[setting.nim_variable] == str(getattr(model.plan.settings, setting.sizing_field))
    passthrough = shlex.split(env["NIM_PASSTHROUGH_ARGS"])
    expected = {s.vllm_flag for s in SERVING_SETTINGS if not s.nim_variable and s.sizing_field != "quantization"}
    assert flags_in(passthrough) == expected
    assert passthrough == nim_passthrough_args(model.plan.settings)


def test_vllm_check_compares_the_tables_checked_settings():
    checked = {flag for flag, _, _ in engine_checks()}
    assert checked == {s.vllm_flag for s in SERVING_SETTINGS if s.engine_check}
    assert {"--max-model-len", "--max-num-seqs", "--max-num-batched-tokens", "--kv-cache-dtype"} <= checked
