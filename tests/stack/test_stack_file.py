"""Stack files read offline are refused where the Pulumi CLI refuses them, with file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.mockrun import load_stack_config
from stack.stack_file import StackFileError, parse_stack_text, read_stack_file
from stack.synth import main as synth_main


def refused(text: str) -> str:
    with pytest.raises(StackFileError) as caught:
        parse_stack_text(text, "Pulumi.x.yaml")
    return str(caught.value)


def test_a_syntax_error_names_the_file_line_and_column() -> None:
    message = refused("config:\n  gpu-inference:models:\n    - name: a\n     model: b\n")
    assert message.startswith("Pulumi.x.yaml:4:6: ")
    assert "indentation" in message


def test_an_unclosed_flow_sequence_is_refused_with_its_position() -> None:
    assert refused("config:\n  gpu-inference:models: [a, b\n").startswith("Pulumi.x.yaml:")


def test_a_duplicate_key_is_refused_as_the_cli_refuses_it() -> None:
    message = refused("config:\n  gpu-inference:models:\n    - name: a\n      model: b\n      model: c\n")
    assert message.startswith("Pulumi.x.yaml:5:7: ")
    assert "mapping key 'model' already defined at line 4" in message


def test_a_duplicate_top_level_config_key_is_refused() -> None:
    message = refused("config:\n  gpu-inference:models: []\n  gpu-inference:models: []\n")
    assert "already defined at line 2" in message


def test_a_misspelt_namespace_is_named_with_the_key_to_write() -> None:
    message = refused("config:\n  gpu-infernce:models: []\n  aws:region: us-east-1\n")
    assert "'gpu-infernce:models'" in message and "write gpu-inference:models" in message


def test_provider_namespaces_and_the_project_are_accepted() -> None:
    config = parse_stack_text("config:\n  aws:region: us-east-1\n  gpu-inference:models: []\n", "f")
    assert config == {"aws:region": "us-east-1", "gpu-inference:models": []}


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert "top level must be a mapping" in refused("- config\n")
    assert "config must be a mapping" in refused("config: 3\n")


def test_a_missing_stack_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="no such stack file"):
        read_stack_file(tmp_path / "Pulumi.nope.yaml")


def test_the_example_stacks_read_as_before() -> None:
    for stack in ("dev", "prod", "multinode"):
        assert "gpu-inference:models" in load_stack_config(stack)


def test_synth_prints_one_line_and_exits_1_on_a_broken_stack_file(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  gpu-inference:models: [\n")
    monkeypatch.setattr("stack.mockrun.ROOT", tmp_path)
    monkeypatch.setattr(load_stack_config, "__defaults__", (tmp_path,))
    assert synth_main(["--stack", "broken", "--build-dir", str(tmp_path / "build")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Pulumi.broken.yaml:3:1" in err
    assert "Traceback" not in err
