"""One Kubernetes object, or one ``kubernetes:*`` Pulumi resource, through every per-object check:
the schemas of each supported version (``verify.schemas``, vendored CRDs for custom resources via
``verify.crds``) and the API server's field rules (``verify.api_rules``); a Helm release's inputs
through ``verify.charts``. Rules across objects are ``verify.references``.
"""

from __future__ import annotations

from collections.abc import Iterable

from verify import Violation, plain
from verify.api_rules import check_rules
from verify.charts import HELM_RELEASE, check_helm_release
from verify.schemas import SUPPORTED_VERSIONS, check_schema


def check_object(obj: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    """Schema (every version) and server-side rules for one manifest."""
    obj = plain(obj)  # type: ignore[assignment]
    if not isinstance(obj, dict):
        return [Violation("<object>", "", f"a manifest must be a mapping, got {type(obj).__name__}")]
    versions = list(versions)
    return check_schema(obj, versions) + check_rules(obj)


def check_resource(resource_type: str, props: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    """A ``kubernetes:*`` Pulumi resource's inputs (a manifest, or a Helm release's inputs)."""
    if resource_type == HELM_RELEASE:
        return check_helm_release(props, versions)
    return check_object(props, versions)
