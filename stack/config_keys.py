"""Checks on the config keys the program receives, before their values are parsed.

Secrets belong in ``secure:`` values: the CLI then passes their names in
``PULUMI_CONFIG_SECRET_KEYS`` (the mocks through ``set_all_config``'s secret keys), and
``pulumi.runtime.is_config_secret`` says so. A token pasted in plaintext would be committed with the
stack file and shown unmasked in every diff, so it is refused with the command that stores it
encrypted. Config under a near-miss of the project's namespace and a stack without models would
both come up as GPUs serving nothing, so they are named too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stack.project import PROJECT
from stack.stack_file import namespace_problems

SECRET_EXAMPLES = {"hfToken": "hf_...", "ngcApiKey": "nvapi-...", "kubeconfig": "< kubeconfig.yaml"}


def plaintext_secret_problems(
    present: Iterable[str], is_secret: Callable[[str], bool], project: str = PROJECT
) -> list[str]:
    """``present``: the secret keys (``hfToken``...) that have a value; ``is_secret`` takes the full key."""
    problems = []
    for key in present:
        full = f"{project}:{key}"
        if is_secret(full):
            continue
        example = SECRET_EXAMPLES.get(key, "...")
        value_arg = example if example.startswith("<") else f"'{example}'"
        problems.append(
            f"{full}: given in plaintext, so it would be committed with the stack file and shown unmasked in "
            f"diffs; remove the line and run: pulumi config set --secret {key} {value_arg}"
        )
    return problems


def foreign_namespace_problems(keys: Iterable[str], project: str = PROJECT) -> list[str]:
    return namespace_problems(dict.fromkeys(keys), project)


def no_models_warning(models: object, project: str = PROJECT) -> str | None:
    if models:
        return None
    return (
        f"{project}:models is empty or not set: the stack creates the cluster and its GPU node groups but serves "
        "nothing on them (node groups with minNodes > 0 bill idle GPUs); add a model, e.g. "
        "{name: llama-3-1-8b, model: llama-3.1-8b, maxModelLen: 8192}"
    )
