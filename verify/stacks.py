"""Synthesise stacks in-process (as ``make synth`` does) and run every check on what they declare.

``verify_stack("dev")`` runs ``stack.synth.synth`` (the real ``__main__.py`` under the Pulumi
mocks, preview mode, config of ``Pulumi.dev.yaml``) into a build directory, then checks:
every ``kubernetes:*`` resource with ``verify.kubernetes`` against each Kubernetes version the
stack supports, the Kubernetes objects together (``verify.references``: selectors vs pod templates), every ``aws:*``/
``eks:*`` resource with ``verify.aws``, and the cross-resource invariants of ``verify.invariants``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify import Violation, errors, invariants, plain, references, schemas
from verify import aws as aws_checks
from verify import kubernetes as k8s
from verify import monitoring as monitoring_checks
from verify.charts import HELM_RELEASE, describe_release
from verify.manifests import describe

ROOT = Path(__file__).resolve().parent.parent


def stack_names(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_versions(stack: str) -> list[str]:
    """The supported Kubernetes versions, plus the one the stack's cluster pins if it creates one."""
    from stack.mockrun import load_stack_config

    versions = list(schemas.SUPPORTED_VERSIONS)
    cluster = load_stack_config(stack).get("gpu-inference:cluster") or {}
    pinned = ((cluster.get("create") or {}) if isinstance(cluster, dict) else {}).get("version")
    if pinned and str(pinned) not in versions:
        versions.append(str(pinned))
    return versions


@dataclass
class Checked:
    kind: str  # "kubernetes" or "aws"
    type: str  # Pulumi type
    name: str  # what the object is, for people
    file: str  # the file make synth writes for it (build/<stack>/...)
    violations: list[Violation] = field(default_factory=list)
    enums: int = 0  # AWS inputs checked against a model enum


@dataclass
class StackResult:
    stack: str
    versions: list[str]
    objects: list[Checked] = field(default_factory=list)
    stack_violations: list[Violation] = field(default_factory=list)  # across objects
    error: str | None = None

    @property
    def violations(self) -> list[Violation]:
        return [v for o in self.objects for v in o.violations] + self.stack_violations

    @property
    def ok(self) -> bool:
        return self.error is None and not errors(self.violations)


def synth_run(stack: str, build_root: Path | None = None):
    """``stack.synth.synth`` with its printout captured; returns the mocked run."""
    from stack.synth import synth

    with contextlib.ExitStack() as stack_ctx:
        if build_root is None:
            build_root = Path(stack_ctx.enter_context(tempfile.TemporaryDirectory(prefix="verify-")))
        with contextlib.redirect_stdout(io.StringIO()):
            return synth(stack, Path(build_root))


def verify_registrations(stack: str, registrations: list[Any], versions: list[str]) -> StackResult:
    from stack.synth import aws_file, kubernetes_file

    result = StackResult(stack=stack, versions=versions)
    manifests = []
    resources = []
    for registration in registrations:
        if getattr(registration, "read", False):
            continue  # an object the cluster already has: the stack declares nothing there
        props = plain(registration.inputs)
        if registration.type.startswith("kubernetes:") and registration.custom:
            checked = Checked(
                "kubernetes", registration.type, "", f"build/{stack}/kubernetes/{kubernetes_file(registration)}"
            )
            if registration.type == HELM_RELEASE:
                checked.name = describe_release(props)
            else:
                checked.name = describe(props)
                manifests.append(props)
            checked.violations = k8s.check_resource(registration.type, props, versions)
            result.objects.append(checked)
            resources.append((registration.type, registration.name, props))
        elif registration.type.startswith(("aws:", "eks:")):
            violations, enums = aws_checks.check_resource_with_coverage(registration.type, props, registration.name)
            result.objects.append(
                Checked(
                    "aws",
                    registration.type,
                    aws_checks.describe(registration.type, registration.name),
                    f"build/{stack}/aws/{aws_file(registration)}",
                    violations,
                    len(enums),
                )
            )
            resources.append((registration.type, registration.name, props))
    result.stack_violations = references.check_objects(manifests) + invariants.check_all(resources)
    result.stack_violations += monitoring_checks.check_manifests(manifests)
    for type_, _, props in resources:
        if type_ == HELM_RELEASE and props.get("chart") in monitoring_checks.CHART_DEFAULTS:
            result.stack_violations += monitoring_checks.check_chart_values(props["chart"], props.get("values") or {})
            if props["chart"] == monitoring_checks.monitoring.KUBE_PROMETHEUS_STACK_CHART:
                result.stack_violations += monitoring_checks.check_prometheus_spec_values(props.get("values") or {})
    return result


def verify_stack(stack: str, build_root: Path | None = None) -> StackResult:
    import pulumi

    versions = stack_versions(stack)
    try:
        for version in versions:
            schemas.schemas(version)
    except ValueError as error:
        return StackResult(stack=stack, versions=versions, error=str(error))
    try:
        run = synth_run(stack, build_root)
    except (pulumi.RunError, FileNotFoundError) as error:
        return StackResult(stack=stack, versions=versions, error=f"synth failed: {error}")
    return verify_registrations(stack, run.registrations, versions)
