"""The policy pack's callbacks: accept every rendered stack, reject broken resources.

In the project's .venv the adapter functions are called with props dicts and a collecting
``report_violation`` (pulumi_policy is not installed there: it pins older protobuf/grpcio). When
the pack's own virtualenv exists (policy/venv, from policy/requirements.txt), the real
``ResourceValidationPolicy``/``StackValidationPolicy`` objects are also run there, on
pulumi-policy's own ``ResourceValidationArgs``/``StackValidationArgs`` with props wrapped in its
unknown-checking proxy.
"""

import copy
import json
import os
import subprocess
from types import SimpleNamespace

import pytest

from policy import adapter
from tests.verify.conftest import ROOT, rendered, rendered_resource
from verify import plain

POLICY_PYTHON = ROOT / "policy" / "venv" / "bin" / "python"


class Collector:
    def __init__(self):
        self.messages = []

    def __call__(self, message, urn=None):
        self.messages.append((message, urn))


def stack_resources(run):
    return [
        SimpleNamespace(resource_type=r.type, name=r.name, urn=r.urn, props=plain(r.inputs)) for r in run.registrations
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pack_accepts_the_rendered_stacks(runs, stack):
    report = Collector()
    resources = stack_resources(runs[stack])
    for resource in resources:
        adapter.validate_kubernetes(resource.resource_type, resource.props, resource.name, report)
        adapter.validate_aws(resource.resource_type, resource.props, resource.name, report)
    adapter.validate_stack(resources, report)
    assert report.messages == []


def test_pack_rejects_a_broken_deployment(runs):
    deployment = rendered(runs, "dev", "Deployment", "llama-3-1-70b")
    expression = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][3]
    expression["operator"] = "Gte"
    report = Collector()
    assert adapter.validate_kubernetes("kubernetes:apps/v1:Deployment", deployment, "llama-3-1-70b", report) == 1
    assert "Deployment inference/llama-3-1-70b" in report.messages[0][0] and "'Gte'" in report.messages[0][0]


def test_pack_rejects_a_broken_node_group(runs):
    group = rendered_resource(runs, "prod", "aws:eks/nodeGroup:NodeGroup", "h100-reserved")
    group["taints"][0]["effect"] = "NoSchedule"
    group["instanceTypes"] = ["p5.4xlarge"]
    report = Collector()
    assert adapter.validate_aws("aws:eks/nodeGroup:NodeGroup", group, "h100-reserved", report) == 2


def test_pack_rejects_pods_no_gpu_group_tolerates(runs):
    resources = stack_resources(runs["dev"])
    for resource in resources:
        if resource.props.get("kind") == "Deployment":
            resource.props["spec"]["template"]["spec"]["tolerations"] = []
        if resource.props.get("kind") == "Service":
            resource.props["spec"]["selector"] = {"app": "gone"}
    report = Collector()
    adapter.validate_stack(resources, report)
    text = "\n".join(m for m, _ in report.messages)
    assert "does not tolerate taint" in text and "matches no pod template" in text
    assert all(urn for _, urn in report.messages)  # attributed to the resource


def test_the_pack_in_its_own_virtualenv(runs, tmp_path):
    if not POLICY_PYTHON.exists():
        pytest.skip("policy/venv missing: make policy-venv")
    cases = {}
    for stack, run in runs.items():
        cases[f"{stack}-rendered"] = [(r.type, r.name, r.urn, plain(r.inputs)) for r in run.registrations]
    broken = copy.deepcopy(cases["dev-rendered"])
    for _, _, _, props in broken:
        if props.get("kind") == "Deployment":
            props["spec"]["template"]["spec"]["tolerations"][0]["effect"] = "NO_SCHEDULE_X"
            props["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
        if "taints" in props:
            props["taints"][0]["effect"] = "NO_SCHEDULE_X"
    cases["dev-broken"] = broken
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    done = subprocess.run(
        [str(POLICY_PYTHON), str(ROOT / "tests" / "verify" / "policy_venv_check.py"), str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "policy")},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dev-rendered"] == [] and result["prod-rendered"] == []
    text = "\n".join(result["dev-broken"])
    assert "kubernetes-objects-valid" in text and "'NO_SCHEDULE_X'" in text and "resourcez" in text
    assert "aws-inputs-valid" in text and "eks TaintEffect" in text
