"""A model's name is refused at preview when any object it becomes would be refused by Kubernetes."""

from __future__ import annotations

import pytest

from components.server_pod import LWS_NAME_SUFFIX
from components.smoke_test import digest
from stack import derived_names
from stack.derived_names import derived_name_problems, longest_valid_name
from stack.derived_names import derived_names as derive
from stack.kubernetes_names import label_value
from tests.harness import run_bad_config, run_config, run_stack, stack_config

SKIPPED_KINDS = {"pod label value", "StatefulSet (made by the LeaderWorkerSet)"}  # not rendered by the stack


def rendered_names(run) -> set[tuple[str, str]]:
    out = set()
    for r in run.registrations:
        if r.type.startswith("kubernetes:") and r.custom and isinstance(r.inputs.get("metadata"), dict):
            out.add((r.inputs.get("kind"), r.inputs["metadata"].get("name")))
    return out


@pytest.mark.parametrize("stack", ["dev", "multinode"])
def test_every_derived_name_is_one_the_components_render(stack: str) -> None:
    run = run_stack(stack, True)
    plan = run.outputs["plan"]
    rendered = rendered_names(run)
    for model in plan["models"]:
        multi = model["topology"] == "leaderWorkerSet"
        for d in derive(model["name"], multi_node=multi, replicas=model["replicas"]):
            if d.kind in SKIPPED_KINDS:
                continue
            kind = d.kind.split(" ")[0]
            same_length = {n for k, n in rendered if k == kind and len(n) == len(d.name)}
            prefix = d.name.removesuffix(derived_names.HASH)
            assert any(n.startswith(prefix) for n in same_length), (kind, d.name, sorted(rendered))


def test_the_declared_suffix_and_digest_are_the_components() -> None:
    assert derived_names.LWS_NAME_SUFFIX == LWS_NAME_SUFFIX
    assert len(digest({"any": 1})) == derived_names.DIGEST_LENGTH


def test_a_name_starting_with_a_digit_is_refused_as_a_service_name() -> None:
    config = stack_config("dev")
    config["gpu-inference:models"][0]["name"] = "8b-llama"
    message = str(run_bad_config(config, preview=True).error)
    assert "models[0].name: '8b-llama' becomes the Service '8b-llama' (8 characters)" in message
    assert "DNS-1035" in message


def test_a_name_whose_smoke_job_is_too_long_is_refused_naming_the_job() -> None:
    name = "a" * 49
    config = stack_config("dev")
    config["gpu-inference:models"][0]["name"] = name
    run = run_bad_config(config, preview=True)
    message = str(run.error)
    assert f"becomes the Job '{name}-smoke-00000000' (64 characters)" in message
    assert "at most 48 characters" in message
    assert run.registrations == []
    assert label_value(f"{name}-smoke-{digest(1)}") is not None  # what Kubernetes would have refused


def test_the_longest_accepted_name_deploys() -> None:
    name = "m" + "a" * (longest_valid_name(multi_node=False, replicas=1) - 1)
    config = stack_config("dev")
    config["gpu-inference:models"][0]["name"] = name
    run = run_config(config, preview=True)
    assert run.error is None
    names = {n for _, n in rendered_names(run)}
    assert all(label_value(n) is None for n in names if n.startswith(name))


def test_a_multi_node_model_is_held_to_the_statefulset_limit() -> None:
    single = longest_valid_name(multi_node=False, replicas=1)
    multi = longest_valid_name(multi_node=True, replicas=12)
    assert multi < single
    problems = derived_name_problems("models[0].name", "a" * (multi + 1), multi_node=True, replicas=12)
    assert any("StatefulSet" in p for p in problems)
    assert derived_name_problems("models[0].name", "a" * multi, multi_node=True, replicas=12) == []
