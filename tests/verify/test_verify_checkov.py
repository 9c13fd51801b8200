"""verify.checkov: checkov's findings over build/<stack>/kubernetes/, grouped by check id, per stack;
report-only (the command exits 0 with findings)."""

import json

import pytest
import yaml

from verify import checkov

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
    assert checkov.main(["--build-dir", str(tmp_path), "--stack", "one", "--stack", "two"]) == 0
    out = capsys.readouterr().out
    assert "CKV_K8S_16" in out and "one: Pod.inference.bad" in out and "report-only" in out


def test_an_unrendered_stack_is_an_error_not_a_clean_report(tmp_path, capsys):
    assert checkov.main(["--build-dir", str(tmp_path), "--stack", "dev"]) == 2
    assert "not rendered" in capsys.readouterr().out
