"""Errors the sizing raises at its boundary.

Every error carries a message a user can act on without reading code: the field, the value,
why it is wrong and what would work. The CLI and the Pulumi program print ``str(error)`` and
nothing else.
"""

from __future__ import annotations


class SizingError(ValueError):
    """Bad input: an unknown name, an invalid option value, an unusable config.json."""


class NoFitError(SizingError):
    """No (GPU, TP, PP) in the allowed set starts the model with the requested context."""

    def __init__(self, message: str, attempts: tuple = (), suggestions: tuple[str, ...] = ()):
        super().__init__(message)
        self.attempts = attempts
        self.suggestions = suggestions
