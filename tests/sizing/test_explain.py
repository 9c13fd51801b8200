"""The plan explains itself: what it passed over, by how much, and changes that really give a cheaper plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sizing.explain import explain_plan
from sizing.models import load_model
from sizing.planner import plan_model
from sizing.settings import ServingSettings

P5 = ["p5.48xlarge"]
CASES = [("llama-3.1-8b", 32768, 32.0), ("llama-3.1-70b", 32768, 4.0), ("llama-3.1-405b", 32768, 1.0)]


def explained(name: str, context: int, requests: float, instance_types=P5):
    model, settings = load_model(name), ServingSettings(max_model_len=context)
    plan = plan_model(model, settings, instance_types=instance_types, min_concurrency=requests)
    explanation = explain_plan(model, settings, plan, instance_types=instance_types, min_concurrency=requests)
    return model, settings, plan, explanation


def test_a_plan_that_takes_the_smallest_layout_says_so() -> None:
    _, _, plan, explanation = explained("llama-3.1-8b", 8192, 1.0)
    assert plan.gpus == 1
    assert "the smallest layout allowed" in explanation.chosen
    assert explanation.passed_over == () and explanation.cheaper_if == ()


def test_a_kv_shortfall_is_given_in_gib_and_requests() -> None:
    _, _, plan, explanation = explained("llama-3.1-8b", 32768, 32.0)
    assert plan.tensor_parallel_size > 1
    tp1 = next(line for line in explanation.passed_over if "TP=1 " in line)
    assert "min_concurrency 32 at 32k needs" in tp1 and "GiB of KV cache per GPU" in tp1 and "GiB left" in tp1


def test_a_layout_that_does_not_start_gives_the_reason() -> None:
    _, _, _, explanation = explained("llama-3.1-70b", 32768, 4.0)
    assert any("TP=1" in line and "out of memory" in line for line in explanation.passed_over)


@pytest.mark.parametrize(("name", "context", "requests"), CASES)
def test_every_change_named_gives_a_plan_on_fewer_gpus(name: str, context: int, requests: float) -> None:
    model, settings, plan, explanation = explained(name, context, requests)
    assert len(explanation.changes) == len(explanation.cheaper_if)
    assert explanation.changes, "a cheaper layout exists for each of these cases"
    for setting, value in explanation.changes:
        if setting == "min_concurrency":
            cheaper = plan_model(model, settings, instance_types=P5, min_concurrency=value)
        else:
            changed = replace(settings, **{setting: value})
            cheaper = plan_model(model, changed, instance_types=P5, min_concurrency=requests)
        assert cheaper.gpus < plan.gpus, (setting, value, cheaper.gpus, plan.gpus)


def test_a_configured_tp_is_named_as_the_reason() -> None:
    model, settings = load_model("llama-3.1-8b"), ServingSettings(max_model_len=8192)
    plan = plan_model(model, settings, instance_types=P5, tensor_parallel_size=4)
    explanation = explain_plan(model, settings, plan, instance_types=P5, min_concurrency=1.0, tensor_parallel_size=4)
    assert "TP=4 as configured" in explanation.chosen
