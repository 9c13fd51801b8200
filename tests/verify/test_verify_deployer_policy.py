"""The deployer's IAM policy: committed as this module derives it, clean under parliament, and
granting what every AWS resource type the stacks register needs."""

import json

import parliament
import pytest

from tests.harness import run_stack
from verify.deployer_policy import POLICY_FILE, REMOTE_CHILDREN, RESOURCE_ACTIONS, missing_grants, policy_text

STACKS = ["dev", "prod", "multinode"]


def committed():
    return json.loads(POLICY_FILE.read_text())


def aws_types(run):
    return {r.type for r in run.registrations if r.type.startswith(("aws:", "eks:")) and (r.custom or r.remote)}


def test_the_committed_policy_is_the_one_derived_from_the_table():
    assert POLICY_FILE.read_text() == policy_text(), "run: .venv/bin/python -m verify.deployer_policy --write"


def test_parliament_finds_nothing_in_the_policy():
    findings = parliament.analyze_policy_string(POLICY_FILE.read_text()).findings
    assert [(f.issue, f.detail) for f in findings] == []


def test_parliament_would_find_an_action_on_the_wrong_resource():
    policy = committed()
    (cluster,) = [s for s in policy["Statement"] if s["Sid"] == "EksCluster"]
    cluster["Action"].append("eks:DeleteNodegroup")  # takes a nodegroup ARN, not a cluster ARN
    findings = parliament.analyze_policy_string(json.dumps(policy)).findings
    assert [f.issue for f in findings] == ["RESOURCE_MISMATCH"]


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_resource_type_a_stack_registers_is_granted(stack, preview):
    types = aws_types(run_stack(stack, preview))
    assert types, "the stack registers no AWS resources"
    assert missing_grants(types, committed()) == []


def test_the_stacks_together_use_every_row_of_the_table():
    used = set().union(*(aws_types(run_stack(stack, False)) for stack in STACKS))
    used |= {child for parent in used & set(REMOTE_CHILDREN) for child in REMOTE_CHILDREN[parent]}
    assert set(RESOURCE_ACTIONS) - used == set(), "rows for types no stack creates: drop them or add the stack"


def test_a_resource_type_without_a_row_is_named():
    problems = missing_grants({"aws:s3/bucket:Bucket"}, committed())
    assert problems and problems[0].startswith("aws:s3/bucket:Bucket: no IAM actions declared")


def test_a_policy_missing_a_statement_is_caught():
    policy = committed()
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "IamRolePassToEks"]
    problems = missing_grants({"aws:eks/nodeGroup:NodeGroup"}, policy)
    assert "aws:eks/nodeGroup:NodeGroup: iam:PassRole on arn:aws:iam::*:role/* is not granted" in problems
