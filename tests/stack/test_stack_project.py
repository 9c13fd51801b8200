"""The project's name is declared for the CLI in Pulumi.yaml and for the code in stack.project: one value."""

import yaml

from stack.mockrun import ROOT
from stack.project import PROJECT


def test_the_code_and_the_cli_name_the_same_project():
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"] == PROJECT


def test_every_stack_file_configures_this_project_only():
    for path in ROOT.glob("Pulumi.*.yaml"):
        namespaces = {key.split(":", 1)[0] for key in (yaml.safe_load(path.read_text())["config"] or {})}
        assert namespaces <= {PROJECT, "aws"}, (path.name, namespaces)
