"""Helm charts the stack installs: always one pinned version, installed atomically."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

HELM_TIMEOUT_SECONDS = 600


def pinned_release(
    name: str,
    *,
    parent: pulumi.Resource,
    provider: k8s.Provider,
    release_name: str,
    chart: str,
    version: str,
    namespace: str,
    depends_on: Sequence[pulumi.Resource] = (),
    repo: str | None = None,
    values: dict[str, Any] | None = None,
    create_namespace: bool = False,
) -> k8s.helm.v3.Release:
    """A release that either becomes ready within ten minutes or is rolled back whole
    (``atomic``), so a failed install never leaves half a device plugin on GPU nodes."""
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=namespace,
        create_namespace=create_namespace or None,
        values=values,
        atomic=True,
        timeout=HELM_TIMEOUT_SECONDS,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )
