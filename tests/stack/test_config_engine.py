"""The ``engine`` union of stack.config: each engine's typed options, and stack files written
before the union read the same, with errors at the paths those files use."""

from __future__ import annotations

import pytest

from stack.config import ConfigError, NimOptions, VllmOptions, parse_config
from stack.placement import place

NIM_IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"


def raw(**model):
    return {
        "cluster": {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
        "nodeGroups": [{"name": "h100", "instanceType": "p5.48xlarge", "maxNodes": 2}],
        "models": [{"name": "m", "model": "llama-3.1-8b", "maxModelLen": 8192, **model}],
    }


def errors(**model) -> str:
    with pytest.raises(ConfigError) as caught:
        place(parse_config(raw(**model)))
    return str(caught.value)


def test_the_default_engine_is_vllm_with_its_default_image():
    (model,) = parse_config(raw()).models
    assert model.engine == VllmOptions() and model.engine.image is None


@pytest.mark.parametrize(
    "old, new",
    [
        ({"image": "acme/vllm:v1"}, {"engine": {"type": "vllm", "image": "acme/vllm:v1"}}),
        ({"engine": "vllm"}, {"engine": {"type": "vllm"}}),
        (
            {"engine": "nim", "nim": {"image": NIM_IMAGE, "profileTensorParallelSizes": [1, 2]}},
            {"engine": {"type": "nim", "image": NIM_IMAGE, "profileTensorParallelSizes": [1, 2]}},
        ),
    ],
    ids=["vllm image", "vllm by name", "nim block"],
)
def test_a_stack_file_in_the_old_shape_reads_as_the_union(old, new):
    assert parse_config(raw(**old)).model_dump() == parse_config(raw(**new)).model_dump()


def test_nim_options_are_typed():
    (model,) = parse_config(
        raw(engine={"type": "nim", "image": NIM_IMAGE, "cache": {"type": "pvc", "claimName": "c"}})
    ).models
    assert isinstance(model.engine, NimOptions) and model.engine.cache.claim_name == "c"


@pytest.mark.parametrize(
    "model, expected",
    [
        (
            {"engine": {"type": "vllm", "image": "acme/vllm:latest"}},
            "models[0].engine.image: 'acme/vllm:latest' is not pinned",
        ),
        ({"image": "acme/vllm:latest"}, "models[0].image: 'acme/vllm:latest' is not pinned"),
        (
            {"engine": {"type": "nim", "image": "nvcr.io/nim/a/b:latest"}},
            "models[0].engine.image: 'nvcr.io/nim/a/b:latest'",
        ),
        (
            {"engine": "nim", "nim": {"image": "nvcr.io/nim/a/b:latest"}},
            "models[0].nim.image: 'nvcr.io/nim/a/b:latest'",
        ),
        (
            {"engine": {"type": "vllm", "profile": "x"}},
            "models[0].engine.profile: unknown key; valid keys here are type, vllmRelease, sizingAccounting, image",
        ),
        ({"engine": {"type": "nim"}}, "models[0].engine.image: required"),
        ({"engine": {"type": "sglang"}}, "models[0].engine: Input tag 'sglang' found using 'type'"),
        ({"engine": "nim"}, "models[0]: engine nim needs nim"),
        ({"engine": "vllm", "nim": {"image": NIM_IMAGE}}, "models[0]: nim is only used with engine: nim"),
        ({"engine": "nim", "nim": {"image": NIM_IMAGE}, "image": "a/b:1"}, "models[0]: image is the vLLM image"),
        (
            {"engine": {"type": "nim", "image": NIM_IMAGE}, "source": {"type": "huggingFace"}},
            "models[0]: source is not used with engine nim",
        ),
    ],
)
def test_engine_errors_name_the_path_the_file_uses(model, expected):
    assert expected in errors(**model)


def test_nim_profile_errors_follow_where_the_options_are_written():
    new = errors(engine={"type": "nim", "image": NIM_IMAGE, "profile": "vllm-bf16-tp8-pp2"})
    old = errors(engine="nim", nim={"image": NIM_IMAGE, "profile": "vllm-bf16-tp8-pp2"})
    assert "models[0].engine.profile: 'vllm-bf16-tp8-pp2' is a pp2 profile" in new
    assert "models[0].nim.profile: 'vllm-bf16-tp8-pp2' is a pp2 profile" in old
