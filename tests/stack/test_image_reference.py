"""Engine images must be well-formed, pinned references; the stack refuses the rest at preview."""

from __future__ import annotations

import pytest

from stack.image_reference import image_reference_problem
from tests.harness import run_bad_config, stack_config

EXAMPLE = "vllm/vllm-openai:v0.32.0"


@pytest.mark.parametrize(
    "image",
    [
        "vllm/vllm-openai:v0.32.0",
        "public.ecr.aws/acme/vllm-efa:0.32.0-efa1.43",
        "registry.example.com:5000/team/vllm:2026.12.1",
        "vllm/vllm-openai@sha256:" + "a" * 64,
        "vllm/vllm-openai:v0.32.0@sha256:" + "0123456789abcdef" * 4,
        "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4",
    ],
)
def test_pinned_references_are_accepted(image: str) -> None:
    assert image_reference_problem(image, EXAMPLE) is None


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("", "is not an image"),
        ("   ", "is not an image"),
        ("vllm/vllm-openai:${TAG}", "unsubstituted template variable"),
        ("vllm/vllm-openai:v", "names no release"),
        ("vllm/vllm-openai:latest", "is not pinned"),
        ("vllm/vllm-openai:", "not a valid image reference"),
        ("vllm/vllm-openai", "has no tag or digest"),
        ("docker run --gpus all vllm/vllm-openai:v0.32.0", "contains spaces (a command line?)"),
        ("vllm/vllm-openai:v0.32.0 --model x", "contains spaces"),
        ("VLLM/Vllm-OpenAI:v0.32.0", "not a valid image reference"),
        ("vllm/vllm-openai@sha256:abc", "not a valid image reference"),
        ("vllm/vllm-openai:v0.32.0:v0.33.0", "not a valid image reference"),
    ],
)
def test_unpinned_or_malformed_references_are_refused(image: str, why: str) -> None:
    problem = image_reference_problem(image, EXAMPLE)
    assert problem is not None and why in problem
    if image.strip():
        assert EXAMPLE in problem or "sha256" in problem or "no release" in problem


@pytest.mark.parametrize("image", ["vllm/vllm-openai:${TAG}", "vllm/vllm-openai:v", "python -m vllm serve x"])
def test_the_stack_refuses_them_at_preview_naming_the_field(image: str) -> None:
    config = stack_config("dev")
    config["gpu-inference:models"][0]["engine"] = {"type": "vllm", "image": image}
    run = run_bad_config(config, preview=True)
    assert f"models[0].engine.image: {image!r}" in str(run.error)
    assert run.registrations == []
