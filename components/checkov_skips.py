"""checkov's findings we accept on purpose, written where checkov reads them: the object's own
``metadata.annotations`` (``checkov.io/skip<N>: <check id>=<reason>``, on the Deployment, Job or
DaemonSet itself, not on its pod template). ``make verify`` fails on any finding without one, so
every reason here is the argument a reviewer accepts or rejects."""

from __future__ import annotations

import re
from collections.abc import Mapping

SKIP_PREFIX = "checkov.io/skip"
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")

TAG_PINNED = (
    "images are pinned by release tag on purpose: the plan reads the engine release from the tag "
    "(stack/engine_release.py) and the stack config names no digest"
)
IF_NOT_PRESENT = (
    "IfNotPresent with a pinned tag: a node starts the image the pre-pull DaemonSet already holds "
    "without a registry round trip (Always would make every start depend on the registry)"
)
SMOKE_TAG = (
    "the stdlib-only script runs on python:3.12.8-slim, pinned to its patch release by tag: any build of it "
    "runs the script, and a digest would go stale with each security rebuild of the tag"
)
SMOKE_PULL = (
    "a pinned patch-release tag: IfNotPresent (the default for a tag) spares Docker Hub's pull rate limit "
    "on every smoke run"
)
PREPULL_TAG = (
    "the init containers are the models' server images, pinned by release tag because the plan reads the "
    "engine release from it (stack/engine_release.py), and pause:3.10, Kubernetes' sandbox image, by release"
)
SERVER_CPU_UNLIMITED = (
    "CPU limits throttle the engine's scheduler and tokenizer threads (CFS quota stalls between GPU "
    "steps); requests are set to the pod's share of the node"
)
SMOKE_TOKEN = "the live check patches its own report ConfigMap: its account may get/patch that one ConfigMap only"
PAUSE_NO_PROBE = (
    "the pause container serves nothing and has no shell to exec: it only holds the pre-pulled images; "
    "the kubelet restarts it if it exits"
)

SERVER = {"CKV_K8S_11": SERVER_CPU_UNLIMITED, "CKV_K8S_15": IF_NOT_PRESENT, "CKV_K8S_43": TAG_PINNED}
SMOKE = {"CKV_K8S_15": SMOKE_PULL, "CKV_K8S_43": SMOKE_TAG}
SMOKE_LIVE = {**SMOKE, "CKV_K8S_38": SMOKE_TOKEN}
PREPULL = {
    "CKV_K8S_8": PAUSE_NO_PROBE,
    "CKV_K8S_9": PAUSE_NO_PROBE,
    "CKV_K8S_15": "IfNotPresent is the point: a node keeps the pulled images and never pulls them again",
    "CKV_K8S_43": PREPULL_TAG,
}


def skip_annotations(reasons: Mapping[str, str]) -> dict[str, str]:
    """``{check id: reason}`` -> checkov's annotations. checkov splits the value on every ``=``, so a
    reason holding one would lose its tail; an empty reason would read "No comment provided"."""
    out = {}
    for index, (check_id, reason) in enumerate(sorted(reasons.items()), start=1):
        if not CHECK_ID.match(check_id):
            raise ValueError(f"checkov skip {check_id!r}: not a Kubernetes check id (CKV_K8S_<n> or CKV2_K8S_<n>)")
        if not reason.strip() or "=" in reason:
            raise ValueError(f"checkov skip {check_id}: reason {reason!r} must be non-empty and hold no '='")
        out[f"{SKIP_PREFIX}{index}"] = f"{check_id}={reason}"
    return out
