"""docs/deploying.md stays in step with the example stacks: every placeholder it must name, and
the On-Demand P vCPU quota each GPU group needs."""

import pytest

from sizing.instances import INSTANCES
from stack.mockrun import ROOT
from stack.placeholders import find_placeholders
from stack.project import PROJECT
from tests.harness import stack_config

GUIDE = ROOT / "docs" / "deploying.md"
STACKS = ["dev", "prod", "multinode"]


def raw(stack):
    prefix = f"{PROJECT}:"
    return {k[len(prefix) :]: v for k, v in stack_config(stack).items() if k.startswith(prefix)}


@pytest.mark.parametrize("stack", STACKS)
def test_the_guide_names_every_placeholder_by_path_and_value(stack):
    guide = GUIDE.read_text()
    found = find_placeholders(raw(stack))
    assert found
    for placeholder in found:
        assert f"`{placeholder.path}`" in guide, placeholder.path
        assert f"`{placeholder.value}`" in guide, placeholder.value


@pytest.mark.parametrize("stack", STACKS)
def test_the_guide_gives_the_on_demand_vcpus_of_every_on_demand_gpu_group(stack):
    guide = GUIDE.read_text()
    for group in raw(stack)["nodeGroups"]:
        if group.get("capacityType", "ON_DEMAND") != "ON_DEMAND":
            continue
        vcpus = INSTANCES[group["instanceType"]].vcpus
        nodes = group["maxNodes"]
        assert f"`{stack}` `{group['name']}` ({group['instanceType']}" in guide, group["name"]
        assert f"{nodes} × {vcpus} = {nodes * vcpus}" in guide, group["name"]
