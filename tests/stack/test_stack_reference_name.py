"""A mistyped stack reference gets a clear message: refused by form at once, or named by the (mocked) engine."""

from __future__ import annotations

import pytest

from stack.stack_reference_name import stack_reference_problem
from stack.synth import main as synth_main
from tests.harness import run_bad_config, stack_config


@pytest.mark.parametrize("name", ["acme/platform/prod", "platform/prod", "prod", "my_org/net.work/dev-1"])
def test_stack_names_pulumi_accepts_are_accepted(name: str) -> None:
    assert stack_reference_problem(name) is None


@pytest.mark.parametrize("name", ["", "acme platform prod", "acme//prod", "a/b/c/d", "acme/platform/prod/", "ä/b/c"])
def test_names_that_cannot_be_a_stack_are_refused(name: str) -> None:
    assert stack_reference_problem(name) is not None


def test_a_malformed_reference_is_refused_at_its_field() -> None:
    config = stack_config("prod")
    config["gpu-inference:cluster"]["existing"]["stack"] = "acme platform prod"
    run = run_bad_config(config, preview=True)
    assert "cluster.existing.stack: 'acme platform prod' is not a stack name" in str(run.error)
    assert run.registrations == []


def test_a_misspelt_reference_names_the_stack_it_probably_meant() -> None:
    config = stack_config("prod")
    config["gpu-inference:cluster"]["existing"]["stack"] = "acme/platfrom/prod"
    run = run_bad_config(config, preview=True)
    message = str(run.error)
    assert type(run.error).__name__ == "RunError"
    assert "stack reference 'acme/platfrom/prod' names no stack" in message
    assert "did you mean 'acme/platform/prod'?" in message


def test_synth_prints_it_in_one_line_without_a_traceback(tmp_path, capsys, monkeypatch) -> None:
    import yaml

    from stack.mockrun import ROOT

    data = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    data["config"]["gpu-inference:cluster"]["existing"]["stack"] = "acme/platfrom/prod"
    (tmp_path / "Pulumi.typo.yaml").write_text(yaml.safe_dump(data))
    from stack.mockrun import load_stack_config

    monkeypatch.setattr(load_stack_config, "__defaults__", (tmp_path,))
    assert synth_main(["--stack", "typo", "--build-dir", str(tmp_path / "build")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: stack reference 'acme/platfrom/prod'") and "Traceback" not in err


def test_a_cluster_name_beside_a_stack_reference_is_refused_not_ignored() -> None:
    config = stack_config("prod")
    config["gpu-inference:cluster"]["existing"]["clusterName"] = "team-gpu"
    message = str(run_bad_config(config, preview=True).error)
    assert "cluster.existing: clusterName 'team-gpu' would be ignored" in message
    assert "the stack's output 'clusterName'" in message


def test_an_output_the_referenced_stack_does_not_export_is_named_with_its_field() -> None:
    config = stack_config("prod")
    config["gpu-inference:cluster"]["existing"]["outputs"]["clusterName"] = "clusterNmae"
    run = run_bad_config(config, preview=True)
    assert type(run.error).__name__ == "RunError"
    assert str(run.error).startswith(
        "cluster.existing.outputs.clusterName: stack 'acme/platform/prod' exports no output 'clusterNmae'"
    )
