"""JSON-schema errors as every check reports them: the field path inside the object, and a message
that names the unknown field with the nearest known one (``did you mean 'effect'?``).

Shared by the bundled Kubernetes schemas (``verify.schemas``) and the vendored CRDs
(``verify.crds``); values known only after an update are skipped (the provider checks them then).
"""

from __future__ import annotations

import difflib
from typing import Any

import jsonschema

from verify import is_unknown
from verify.manifests import field_path, join_path

KNOWN_FIELDS = "; known fields here"


def schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        extras = [k for k in error.instance if k not in known]
        parts = []
        for extra in extras:
            close = difflib.get_close_matches(extra, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown field {extra!r}{hint}")
        return f"{'; '.join(parts)}{KNOWN_FIELDS}: {', '.join(known)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {error.validator_value}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return best.message
    return error.message


def schema_errors(validator: jsonschema.protocols.Validator, instance: Any) -> list[tuple[str, str]]:
    """(field path, message) for every error, sorted; an unknown field's path ends at the field."""
    found = []
    for error in validator.iter_errors(instance):
        if is_unknown(error.instance):
            continue
        path = field_path(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set((error.schema.get("properties") or {}).keys())
            extras = [k for k in error.instance if k not in known]
            if len(extras) == 1:
                path = join_path(path, extras[0])
        found.append((path, schema_message(error)))
    return sorted(set(found))


def error_key(path: str, message: str) -> tuple[str, str]:
    """The same error from two schemas whose field lists differ counts once."""
    return path, message.split(KNOWN_FIELDS)[0]
