"""Which vLLM release a model's engine runs, and so which memory accounting its plan must follow.

A plan computed with one release's accounting and deployed on another is the failure this project
exists to prevent, so the release is read from what is deployed: the image tag (``…:v0.32.0``), or a
release declared beside a custom image or a digest (``engine.vllmRelease``). A release with no
accounting in ``sizing.accounting`` is refused at preview; ``engine.sizingAccounting`` accepts a
known release's accounting for it explicitly, and the plan then says it is projected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sizing.accounting import ACCOUNTINGS, Accounting

# The image a vLLM model runs when its engine names none.
DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"

RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
IMAGE_RELEASE_TAG = re.compile(r":v?(\d+\.\d+\.\d+)(?:[-+._][\w.-]*)?$")


def release_from_image(image: str) -> str | None:
    """``vllm/vllm-openai:v0.32.0`` → ``0.32.0``; None for a digest or a tag naming no release."""
    if "@" in image:
        return None
    match = IMAGE_RELEASE_TAG.search(image.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def minor(release: str) -> str:
    return release.rsplit(".", 1)[0]


def known_accountings() -> str:
    return ", ".join(f"{key} ({'measured' if a.measured else 'projected'})" for key, a in ACCOUNTINGS.items())


@dataclass(frozen=True)
class SizingAccounting:
    """The accounting a model is planned with, and why."""

    accounting: Accounting
    release: str | None  # the vLLM release deployed, when known
    source: str  # where the release came from: the image tag, a declaration, or an assumption
    assumed: bool = False  # no release known: planned on an accounting nobody confirmed

    @property
    def measured(self) -> bool:
        """Calibrated on real runs of the release deployed; anything else is a projection."""
        return (
            self.accounting.measured
            and self.release is not None
            and minor(self.release) == minor(self.accounting.vllm_release)
        )

    @property
    def label(self) -> str:
        state = "measured" if self.measured else ("assumed" if self.assumed else "projected")
        return f"{state}: {self.accounting.label}; deployed vLLM {self.release or 'unknown'} ({self.source})"

    def to_dict(self) -> dict[str, object]:
        return {
            "accounting": self.accounting.vllm_release,
            "deployedRelease": self.release,
            "source": self.source,
            "basis": "measured" if self.measured else ("assumed" if self.assumed else "projected"),
            "label": self.label,
        }


def resolve_accounting(
    release: str | None, source: str, sizing_accounting: str | None, path: str, *, assumable: bool = False
) -> SizingAccounting:
    """The accounting for a deployed ``release`` (None: unknown), or ValueError naming ``path``.

    ``assumable``: an engine whose release cannot be read (NIM hides its vLLM backend) plans on
    the measured accounting and says it is assumed, rather than being refused.
    """
    if release is not None and not RELEASE.match(release):
        raise ValueError(f"{path}.vllmRelease: {release!r} is not a release: give major.minor.patch, e.g. 0.32.0")
    if sizing_accounting is not None:
        if sizing_accounting not in ACCOUNTINGS:
            raise ValueError(
                f"{path}.sizingAccounting: {sizing_accounting!r} is not a known accounting: "
                f"choose one of {known_accountings()}"
            )
        chosen = ACCOUNTINGS[sizing_accounting]
        return SizingAccounting(chosen, release, f"{source}; sizingAccounting {sizing_accounting} accepted explicitly")
    if release is None:
        if assumable:
            measured = next(a for a in ACCOUNTINGS.values() if a.measured)
            return SizingAccounting(measured, None, source, assumed=True)
        raise ValueError(
            f"{path}: {source} names no vLLM release, so the plan cannot follow its memory accounting: "
            f"declare it with {path}.vllmRelease (e.g. 0.32.0), or accept a known accounting with "
            f"{path}.sizingAccounting (one of {known_accountings()})"
        )
    if minor(release) not in ACCOUNTINGS:
        newest = max(ACCOUNTINGS, key=lambda key: tuple(map(int, key.split("."))))
        raise ValueError(
            f"{path}: vLLM {release} ({source}) has no sizing accounting; known releases: {known_accountings()}. "
            f"Plan it anyway on a known release's accounting with {path}.sizingAccounting: "
            f'"{newest}" (the plan is then marked '
            "projected), or deploy a known release"
        )
    return SizingAccounting(ACCOUNTINGS[minor(release)], release, source)
