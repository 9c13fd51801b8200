"""The policy pack's callbacks, as plain functions of (resource type, props, name, report_violation).

No ``pulumi_policy`` import here: ``policies.py`` wraps these in ``ResourceValidationPolicy`` /
``StackValidationPolicy``, and the tests call them directly with a props dict and a collecting
``report_violation``. Every check is ``verify``'s (the same functions ``python -m verify`` and
``tests/verify`` use); props arrive as pulumi-policy's unknown-checking proxies, which
``verify.plain`` unwraps, turning unknown sentinels into values the checks skip instead of letting
one unknown field skip the whole resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from verify import aws as aws_checks
from verify import errors, invariants, plain, references
from verify import kubernetes as k8s
from verify.charts import HELM_RELEASE
from verify.manifests import describe
from verify.schemas import SUPPORTED_VERSIONS

ReportViolation = Callable[..., None]


def kubernetes_versions(config: dict | None = None) -> list[str]:
    versions = (config or {}).get("kubernetesVersions")
    return [str(v) for v in versions] if versions else list(SUPPORTED_VERSIONS)


def validate_kubernetes(
    resource_type: str, props: Any, name: str, report_violation: ReportViolation, config: dict | None = None
) -> int:
    """A ``kubernetes:*`` resource: schema of every supported version + API-server rules."""
    if not resource_type.startswith("kubernetes:"):
        return 0
    data = plain(props)
    if resource_type != HELM_RELEASE and not (isinstance(data, dict) and "kind" in data):
        return 0  # components and providers (no manifest)
    found = errors(k8s.check_resource(resource_type, data, kubernetes_versions(config)))
    for violation in found:
        report_violation(str(violation))
    return len(found)


def validate_aws(resource_type: str, props: Any, name: str, report_violation: ReportViolation) -> int:
    """An ``aws:*``/``eks:*`` resource: botocore model enums and limits, EKS rules, GPU catalog."""
    if not resource_type.startswith(("aws:", "eks:")):
        return 0
    found = errors(aws_checks.check_resource(resource_type, plain(props), name))
    for violation in found:
        report_violation(str(violation))
    return len(found)


def validate_stack(resources: Iterable[Any], report_violation: ReportViolation) -> int:
    """All resources together: selectors vs pod templates, GPU pods vs GPU node groups.
    ``resources``: objects with ``resource_type``, ``name``, ``props`` (and ``urn``)."""
    resources = list(resources)
    plain_resources = [(r.resource_type, r.name, plain(r.props)) for r in resources]
    manifests = [
        p
        for t, _, p in plain_resources
        if t.startswith("kubernetes:") and t != HELM_RELEASE and isinstance(p, dict) and "kind" in p
    ]
    found = errors(references.check_objects(manifests) + invariants.check_all(plain_resources))
    urns = {
        describe(p): getattr(r, "urn", None)
        for r, (_, _, p) in zip(resources, plain_resources, strict=True)
        if isinstance(p, dict) and "kind" in p
    }
    for violation in found:
        urn = urns.get(violation.object)
        if urn:
            report_violation(str(violation), urn)
        else:
            report_violation(str(violation))
    return len(found)
