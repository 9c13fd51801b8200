"""make synth: deterministic files for every resource, the plan, the outputs."""

import json
import subprocess
import sys

import pytest
import yaml

from stack.mockrun import ROOT
from stack.synth import synth


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", ["dev", "prod", "multinode"])
def test_two_runs_write_identical_files(tmp_path, stack, capsys):
    first = synth(stack, tmp_path / "a")
    synth(stack, tmp_path / "b")
    a, b = tree(tmp_path / "a" / stack), tree(tmp_path / "b" / stack)
    assert a == b
    # Objects the stack only reads (an existing Prometheus's CRDs) are in the printed tree, not in files.
    kubernetes = [r for r in first.registrations if r.type.startswith("kubernetes:") and r.custom and not r.read]
    aws = [r for r in first.registrations if r.type.startswith(("aws:", "eks:"))]
    assert len([k for k in a if k.startswith("kubernetes/")]) == len(kubernetes)
    assert len([k for k in a if k.startswith("aws/")]) == len(aws)
    printed = capsys.readouterr().out
    assert "Sizing plan:" in printed and "gpu-inference:components:VllmModel" in printed
    for read in [r for r in first.registrations if r.read]:
        assert f"{read.name}  (read)" in printed


def test_files_are_manifests_and_hold_no_secrets(tmp_path, capsys):
    synth("dev", tmp_path)
    out = tmp_path / "dev"
    deployment = yaml.safe_load((out / "kubernetes" / "deployment-llama-3-1-70b.yaml").read_text())
    assert deployment["apiVersion"] == "apps/v1" and deployment["kind"] == "Deployment"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert deployment["spec"]["replicas"] == 1  # whole numbers written as integers
    plan = json.loads((out / "plan.json").read_text())
    assert [m["name"] for m in plan["models"]] == ["llama-3-1-8b", "llama-3-1-70b"]
    outputs = json.loads((out / "outputs.json").read_text())
    assert "kubeconfig" not in outputs and "[secret]" not in json.dumps(outputs)
    node_group = json.loads((out / "aws" / "eks-nodegroup-h100.json").read_text())
    assert node_group["nodeRoleArn"] == "<computed>"  # a preview: not known before the update


def test_stale_files_are_removed(tmp_path, capsys):
    stale = tmp_path / "dev" / "kubernetes" / "deployment-removed-model.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    synth("dev", tmp_path)
    assert not stale.exists()


def test_make_synth_entry_point_reports_bad_config_without_traceback(tmp_path):
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  gpu-inference:nodeGroups: []\n")
    script = (
        "import sys; import stack.mockrun as m; from pathlib import Path; "
        f"m.ROOT = Path({str(tmp_path)!r}); "
        "import stack.synth as s; s.load_stack_config = lambda stack: m.load_stack_config(stack, m.ROOT); "
        f"sys.exit(s.main(['--stack', 'bad', '--build-dir', {str(tmp_path / 'build')!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "cluster: required" in result.stderr
    assert "Traceback" not in result.stderr
