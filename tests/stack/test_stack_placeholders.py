"""The example stacks' placeholder ids: marked, found by path, refused by a real preview, let
through by the offline runner only."""

import os
import re

import pytest

from stack.config import ConfigError
from stack.mockrun import run_program
from stack.placeholders import OFFLINE_ENV, find_placeholders, refuse_placeholders
from stack.project import PROJECT
from tests.harness import SECRETS, stack_config

STACKS = ["dev", "prod", "multinode"]
AWS_ID = re.compile(r"\b(?:vpc|subnet|cr|sg|lt|pg)-[0-9a-f]{8,17}\b")
ACCOUNT_ID = re.compile(r"\b\d{12}\b")


def raw(stack):
    prefix = f"{PROJECT}:"
    return {k[len(prefix) :]: v for k, v in stack_config(stack).items() if k.startswith(prefix)}


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("stack", STACKS)
def test_every_id_in_the_example_stacks_is_a_recognisable_placeholder(stack):
    config = raw(stack)
    found = {p.value for p in find_placeholders(config)}
    ids = {v for v in strings(config) if AWS_ID.search(v) or ACCOUNT_ID.search(v)}
    assert ids, "the example has no AWS ids to check"
    assert ids <= found, f"unmarked ids: {sorted(ids - found)}"


def test_placeholders_are_named_by_path_with_what_to_put_instead():
    by_path = {p.path: p for p in find_placeholders(raw("prod"))}
    assert set(by_path) == {
        "cluster.existing.stack",
        "nodeGroups[0].capacityReservationId",
        "nodeGroups[0].subnetIds[0]",
        "nodeGroups[1].capacityReservationId",
        "nodeGroups[1].subnetIds[0]",
    }
    assert "describe-capacity-reservations" in by_path["nodeGroups[1].capacityReservationId"].instead
    assert "<organization>/<project>/<stack>" in by_path["cluster.existing.stack"].instead
    (image,) = [p for p in find_placeholders(raw("multinode")) if p.path == "models[0].engine.image"]
    assert "sts get-caller-identity" in image.instead


def test_real_ids_and_ordinary_values_are_not_placeholders():
    config = raw("dev")
    config["cluster"]["create"]["vpcId"] = "vpc-04c2f1e9a7b3d5e60"
    config["cluster"]["create"]["subnetIds"] = ["subnet-0f3e9a1b2c4d5e6f7", "subnet-0a9b8c7d6e5f40312"]
    config["models"][0]["image"] = "210987654321.dkr.ecr.us-east-1.amazonaws.com/vllm-openai:v0.32.0"
    assert find_placeholders(config) == []


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
@pytest.mark.parametrize("stack", STACKS)
def test_a_real_run_of_an_example_stack_refuses_its_placeholders_by_name_and_registers_nothing(stack, preview):
    run = run_program(
        stack_config(stack), stack=stack, preview=preview, secrets=SECRETS, offline=False, capture_errors=True
    )
    assert run.error is not None
    message = str(run.error)
    for placeholder in find_placeholders(raw(stack)):
        assert f"{placeholder.path}: {placeholder.value!r} is a placeholder" in message
    assert "docs/deploying.md" in message
    assert run.registrations == []


def test_a_real_run_with_the_placeholders_replaced_goes_ahead():
    config = stack_config("dev")
    cluster = config[f"{PROJECT}:cluster"]["create"]
    cluster["vpcId"] = "vpc-04c2f1e9a7b3d5e60"
    cluster["subnetIds"] = ["subnet-0f3e9a1b2c4d5e6f7", "subnet-0a9b8c7d6e5f40312"]
    run = run_program(config, stack="dev", preview=True, secrets=SECRETS, offline=False, capture_errors=True)
    assert run.error is None
    assert run.registrations


def test_only_the_offline_runner_lets_placeholders_through():
    with pytest.raises(ConfigError, match="vpc-0123456789abcdef0"):
        refuse_placeholders(raw("dev"), environ={})
    with pytest.raises(ConfigError):
        refuse_placeholders(raw("dev"), environ={OFFLINE_ENV: "yes"})
    refuse_placeholders(raw("dev"), environ={OFFLINE_ENV: "1"})
    assert OFFLINE_ENV not in os.environ  # a run sets it for its own duration only
