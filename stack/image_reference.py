"""Whether a container image reference is well formed and pinned, as the stack requires of every engine image.

The grammar is the one container runtimes parse references with (distribution/reference,
``reference.go``): ``[registry[:port]/]path[:tag][@algorithm:hex]``, path components of lowercase
letters and digits joined by ``.``, ``_``, ``__`` or dashes, a tag of at most 128 word characters,
dots and dashes. A kubelet that cannot parse the reference reports ``InvalidImageName`` only once
the pod is scheduled on a GPU node; here it is refused at preview.

Pinned means a digest, or a tag naming a release: one with a digit in it. ``latest``, ``stable``,
``nightly`` move under the stack, and a tag such as ``v`` is what a half-substituted template
(``v${VERSION}``) leaves behind.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_NAME = rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^{_NAME}(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_NAME_LENGTH = 255


def image_reference_problem(value: object, example: str) -> str | None:
    """``None`` when ``value`` is a well-formed, pinned image reference, else why not and what would work."""
    if not isinstance(value, str) or not value.strip():
        return f"{value!r} is not an image: give a pinned reference, e.g. {example}"
    if any(c.isspace() for c in value):
        return (
            f"{value!r} is not an image reference but contains spaces (a command line?): give only the image, "
            f"e.g. {example}; the engine's arguments come from the plan"
        )
    if "$" in value or "{" in value or "}" in value:
        return f"{value!r} holds an unsubstituted template variable: give the resolved reference, e.g. {example}"
    match = _REFERENCE.match(value)
    if match is None:
        return (
            f"{value!r} is not a valid image reference ([registry/]path[:tag][@sha256:digest], path in lowercase "
            f"letters, digits, '.', '_' and '-'), e.g. {example}"
        )
    name_length = len(value.split("@")[0].rsplit(":", 1)[0]) if match.group("tag") else len(value.split("@")[0])
    if name_length > MAX_NAME_LENGTH:
        return f"{value!r} has a repository name longer than {MAX_NAME_LENGTH} characters"
    digest, tag = match.group("digest"), match.group("tag")
    if digest is not None:
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            return f"{value!r}: a sha256 digest is 64 lowercase hex digits"
        return None
    if tag is None:
        return f"{value!r} has no tag or digest: pin the image, e.g. {example}"
    if not any(c.isdigit() for c in tag):
        return (
            f"{value!r} is not pinned: tag {tag!r} names no release (a moving tag, or what a half-substituted "
            f"template leaves); name a release tag or a digest, e.g. {example}"
        )
    return None
