"""Secrets in plaintext, config under a misspelt namespace and a stack without models, as the program sees them."""

from __future__ import annotations

from stack.config_keys import no_models_warning, plaintext_secret_problems
from tests.harness import run_bad_config, run_config, stack_config


def test_a_plaintext_hf_token_is_refused_with_the_command_to_store_it() -> None:
    config = stack_config("dev")
    config["gpu-inference:hfToken"] = "hf_plaintext_token_123"
    run = run_bad_config(config, secrets={})
    message = str(run.error)
    assert "gpu-inference:hfToken: given in plaintext" in message
    assert "pulumi config set --secret hfToken 'hf_...'" in message
    assert "hf_plaintext_token_123" not in message
    assert run.registrations == []


def test_the_same_token_as_a_secret_is_accepted() -> None:
    run = run_config(stack_config("dev"), preview=True, secrets={"hfToken": "hf_secret"})
    assert run.error is None


def test_the_cli_secret_keys_count_as_secret(monkeypatch) -> None:
    from pulumi.runtime import set_all_config

    from stack.program import _is_secret

    set_all_config({}, [])  # the CLI passes none through the SDK's own secret keys
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", '["gpu-inference:kubeconfig"]')

    assert _is_secret("gpu-inference:kubeconfig")
    assert not _is_secret("gpu-inference:hfToken")


def test_plaintext_kubeconfig_gets_the_file_form() -> None:
    (problem,) = plaintext_secret_problems(["kubeconfig"], lambda key: False)
    assert problem.endswith("pulumi config set --secret kubeconfig < kubeconfig.yaml")


def test_config_under_a_misspelt_namespace_is_refused_by_the_program() -> None:
    config = stack_config("dev")
    config["gpu-infernce:models"] = config.pop("gpu-inference:models")
    message = str(run_bad_config(config).error)
    assert "namespace 'gpu-infernce' is not this project's" in message
    assert "write gpu-inference:models" in message


def test_a_stack_without_models_is_warned_about() -> None:
    config = stack_config("dev")
    del config["gpu-inference:models"]
    run = run_config(config, preview=True)
    assert run.error is None
    assert any(level == "warning" and "serves nothing" in text for level, text in run.logs)
    assert no_models_warning([{"name": "a"}]) is None
