"""The plan follows the vLLM release the stack deploys: read from the image tag or declared, refused
when the sizing has no accounting for it unless one is accepted explicitly, and always stated."""

import pytest

from sizing.accounting import VLLM_0_26, VLLM_0_32
from stack.engine_release import release_from_image
from stack.synth import accounting_summary
from tests.harness import run_bad_config, run_config, stack_config

NIM_IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"
DIGEST = "vllm/vllm-openai@sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("vllm/vllm-openai:v0.32.0", "0.32.0"),
        ("vllm/vllm-openai:v0.26.0", "0.26.0"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm-openai-efa:v0.32.0", "0.32.0"),
        ("registry.local:5000/vllm:0.32.0-cu128", "0.32.0"),
        ("vllm/vllm-openai:nightly", None),
        (DIGEST, None),
    ],
)
def test_the_release_is_read_from_the_image_tag(image, release):
    assert release_from_image(image) == release


def _run(engine, preview=False, bad=False):
    config = stack_config("dev")
    model = {**config["gpu-inference:models"][0], "name": "m", "engine": engine}
    if engine["type"] == "nim":
        model.pop("source", None)  # NIM fetches its own model
    config["gpu-inference:models"] = [model]
    return (run_bad_config if bad else run_config)(config, preview=preview)


def _planned(run):
    (model,) = [m for m in run.outputs["plan"]["models"] if m["name"] == "m"]
    return model


def test_each_image_is_planned_with_its_own_releases_accounting():
    newer = _planned(_run({"type": "vllm", "image": "vllm/vllm-openai:v0.32.0"}))
    older = _planned(_run({"type": "vllm", "image": "vllm/vllm-openai:v0.26.0"}))
    assert newer["sizingAccounting"]["accounting"] == VLLM_0_32.vllm_release
    assert newer["sizingAccounting"]["basis"] == "projected"
    assert older["sizingAccounting"]["accounting"] == VLLM_0_26.vllm_release
    assert older["sizingAccounting"]["basis"] == "measured"
    # 0.32's V2 runner reserves its CUDA graphs inside the budget: the same layout holds less KV.
    assert older["plan"]["tensor_parallel_size"] == newer["plan"]["tensor_parallel_size"]
    assert newer["plan"]["kv_cache_tokens"] < older["plan"]["kv_cache_tokens"]
    assert newer["plan"]["accounting"].startswith("vLLM 0.32.0") and older["plan"]["accounting"].startswith(
        "vLLM 0.26.0"
    )


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_a_release_without_accounting_is_refused_naming_the_known_ones_and_the_way_to_accept_a_projection(preview):
    run = _run({"type": "vllm", "image": "vllm/vllm-openai:v0.35.0"}, preview=preview, bad=True)
    assert run.error is not None and not run.registrations
    message = str(run.error)
    assert "models[0].engine: vLLM 0.35.0 (tag of vllm/vllm-openai:v0.35.0) has no sizing accounting" in message
    assert "0.26 (measured), 0.32 (projected)" in message and 'models[0].engine.sizingAccounting: "0.32"' in message


def test_a_projection_accepted_explicitly_is_planned_and_marked_projected():
    run = _run({"type": "vllm", "image": "vllm/vllm-openai:v0.35.0", "sizingAccounting": "0.32"})
    sizing = _planned(run)["sizingAccounting"]
    assert sizing["basis"] == "projected" and sizing["deployedRelease"] == "0.35.0"
    assert "sizingAccounting 0.32 accepted explicitly" in sizing["source"]
    line = next(line for line in accounting_summary(run.outputs["plan"]) if line.strip().startswith("m "))
    assert "projected: vLLM 0.32.0" in line and "deployed vLLM 0.35.0" in line


def test_a_digest_needs_its_release_declared():
    refused = _run({"type": "vllm", "image": DIGEST}, bad=True)
    assert "names no vLLM release" in str(refused.error) and "models[0].engine.vllmRelease" in str(refused.error)
    declared = _planned(_run({"type": "vllm", "image": DIGEST, "vllmRelease": "0.26.0"}))["sizingAccounting"]
    assert declared["basis"] == "measured" and declared["deployedRelease"] == "0.26.0"


def test_a_declared_release_that_contradicts_the_tag_is_refused():
    run = _run({"type": "vllm", "image": "vllm/vllm-openai:v0.32.0", "vllmRelease": "0.26.0"}, bad=True)
    assert "models[0].engine.vllmRelease: 0.26.0 contradicts the image vllm/vllm-openai:v0.32.0" in str(run.error)


def test_nim_without_its_backend_release_is_planned_on_an_assumed_accounting_and_warned():
    run = _run({"type": "nim", "image": NIM_IMAGE}, preview=True)
    sizing = _planned(run)["sizingAccounting"]
    assert sizing["basis"] == "assumed" and sizing["deployedRelease"] is None
    assert any(level == "warning" and "assumed accounting" in text for level, text in run.logs)
    declared = _planned(_run({"type": "nim", "image": NIM_IMAGE, "vllmRelease": "0.32.0"}))["sizingAccounting"]
    assert declared["basis"] == "projected" and declared["accounting"] == VLLM_0_32.vllm_release
