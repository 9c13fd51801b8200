"""The form of a stack a StackReference reads: ``stack``, ``project/stack`` or ``org/project/stack``.

The Pulumi CLI accepts names of letters, digits, ``-``, ``_`` and ``.`` (at most 100 characters each
part); anything else can never name a stack, so it is refused where it is written, not after the
engine fails to find it. Whether the stack exists only the engine knows: a preview then fails with
"unknown stack" (the mocks say the same, with the nearest stack they know).
"""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
EXAMPLE = "acme/platform/prod"


def stack_reference_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{value!r} is not a stack name: give org/project/stack, e.g. {EXAMPLE}"
    parts = value.split("/")
    if len(parts) > 3:
        return f"{value!r} has {len(parts)} parts: a stack is named org/project/stack (e.g. {EXAMPLE})"
    for part in parts:
        if not _PART.match(part):
            return (
                f"{value!r} is not a stack name: each part of org/project/stack is 1 to 100 letters, digits, "
                f"'-', '_' or '.' ({part!r} is not), e.g. {EXAMPLE}"
            )
    return None


def required_output(reference: Any, name: str, stack: str, field: str) -> Any:
    """``reference.require_output(name)`` with the field to fix: the SDK's own raises a bare ``KeyError``,
    which ``pulumi up`` prints as a Python traceback."""
    import pulumi

    def present(value: Any) -> Any:
        if value is None:
            raise pulumi.RunError(
                f"{field}: stack {stack!r} exports no output {name!r} (or it is empty); name one of its outputs "
                f"(pulumi stack output -s {stack})"
            )
        return value

    return reference.get_output(name).apply(present)
