"""verify.checkov: checkov's findings over build/<stack>/kubernetes/, grouped by check id, per stack;
the command fails on a finding that no skip annotation explains, and on a skip without a reason."""

import json
from pathlib import Path

import pytest
import yaml

from stack.synth import kubernetes_file
from tests.harness import run_config, stack_config
from tests.verify.conftest import runs  # noqa: F401
from verify import checkov, plain

PRIVILEGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "inference"},
    "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
}


def test_documents_back_to_back_are_all_read():
    text = json.dumps({"a": 1}, indent=2) + "\n" + json.dumps([{"b": 2}, {"c": 3}])
    assert checkov._documents(text) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_the_stack_comes_from_the_path():
    assert checkov._stack_of("/build/prod/kubernetes/deployment-x.yaml", ["dev", "prod"]) == "prod"
    assert checkov._stack_of("/build/prod/aws/x.json", ["prod"]) is None
    assert checkov._stack_of("/build/other/kubernetes/x.yaml", ["prod"]) is None


@pytest.mark.skipif(not checkov.CHECKOV.exists(), reason="checkov not installed: make verify installs .venv-checkov")
def test_a_privileged_pod_is_reported_under_its_check_id_and_stack(tmp_path, capsys):
    for stack in ("one", "two"):
        (tmp_path / stack / "kubernetes").mkdir(parents=True)
    (tmp_path / "one" / "kubernetes" / "pod-bad.yaml").write_text(yaml.safe_dump(PRIVILEGED_POD))
    skipped = dict(PRIVILEGED_POD, metadata={"name": "excused", "namespace": "inference"})
    skipped["metadata"]["annotations"] = {"checkov.io/skip1": "CKV_K8S_16=the device plugin needs it"}
    (tmp_path / "two" / "kubernetes" / "pod-excused.yaml").write_text(yaml.safe_dump(skipped))
    result = checkov.scan(tmp_path, ["one", "two"])
    assert result.failed["CKV_K8S_16"].objects == ["one: Pod.inference.bad"]
    assert result.skipped["CKV_K8S_16"].objects == ["two: Pod.inference.excused (the device plugin needs it)"]
    assert checkov.main(["--build-dir", str(tmp_path), "--stack", "one", "--stack", "two"]) == 1
    out = capsys.readouterr().out
    assert "CKV_K8S_16" in out and "one: Pod.inference.bad" in out and "UNEXPLAINED" in out


def test_an_unrendered_stack_is_an_error_not_a_clean_report(tmp_path, capsys):
    assert checkov.main(["--build-dir", str(tmp_path), "--stack", "dev"]) == 2
    assert "not rendered" in capsys.readouterr().out


def write_rendered(run, into: Path, edit=None) -> None:
    """The stack's Kubernetes objects as ``make synth`` writes them, ``edit`` applied to each first."""
    into.mkdir(parents=True)
    for registration in run.registrations:
        if registration.type.startswith("kubernetes:") and registration.custom and not registration.read_id:
            manifest = plain(registration.inputs)
            (into / kubernetes_file(registration)).write_text(yaml.safe_dump(edit(manifest) if edit else manifest))


@pytest.mark.skipif(not checkov.CHECKOV.exists(), reason="checkov not installed: make verify installs .venv-checkov")
def test_a_rendered_stack_fails_the_scan_once_a_skip_loses_its_annotation_or_its_reason(runs, tmp_path, capsys):  # noqa: F811
    """dev as rendered, but its server Deployments lose their CPU-limit skip and keep their digest
    skip without a reason: both are findings, nothing else is."""

    def unexplain(manifest):
        annotations = (manifest.get("metadata") or {}).get("annotations") or {}
        if manifest.get("kind") == "Deployment":
            for key, value in list(annotations.items()):
                if value.startswith("CKV_K8S_11="):
                    del annotations[key]
                elif value.startswith("CKV_K8S_43="):
                    annotations[key] = "CKV_K8S_43"
        return manifest

    write_rendered(runs["dev"], tmp_path / "dev" / "kubernetes", unexplain)
    result = checkov.scan(tmp_path, ["dev"])
    deployments = sorted(m for m in (tmp_path / "dev" / "kubernetes").iterdir() if m.name.startswith("deployment-"))
    assert deployments
    assert set(result.failed) == {"CKV_K8S_11"} and len(result.failed["CKV_K8S_11"].objects) == len(deployments)
    assert set(result.unexplained) == {"CKV_K8S_43"}
    assert all(o.startswith("dev: Deployment.") for o in result.failed["CKV_K8S_11"].objects)
    assert result.skipped and not result.clean
    assert checkov.main(["--build-dir", str(tmp_path), "--stack", "dev"]) == 1
    out = capsys.readouterr().out
    assert "CKV_K8S_11" in out and "skipped without a reason" in out and "UNEXPLAINED" in out


@pytest.mark.skipif(not checkov.CHECKOV.exists(), reason="checkov not installed: make verify installs .venv-checkov")
def test_a_nim_server_no_stack_renders_yet_scans_clean(tmp_path):
    """NIM's image differs from vLLM's (its own user, its key in the environment): its skips are its own."""
    config = stack_config("dev")
    config["gpu-inference:models"] = [
        {
            "name": "nim",
            "model": "llama-3.1-8b",
            "maxModelLen": 8192,
            "nodeGroup": "h100",
            "engine": "nim",
            "nim": {"image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"},
        }
    ]
    run = run_config(config, preview=True)
    assert run.error is None
    write_rendered(run, tmp_path / "nim" / "kubernetes")
    assert (tmp_path / "nim" / "kubernetes" / "deployment-nim.yaml").exists()
    result = checkov.scan(tmp_path, ["nim"])
    assert result.clean, checkov.report(result)
    assert {"CKV_K8S_22", "CKV_K8S_35", "CKV_K8S_40"} <= set(result.skipped)
