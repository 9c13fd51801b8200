"""Custom resources against the CustomResourceDefinitions their operators publish, vendored and
pinned under ``verify/vendor/`` (each file's header names its repository, path, tag and commit).

The API server validates a custom resource against its CRD's ``openAPIV3Schema`` and prunes (or,
with strict field validation, rejects) fields the schema does not declare. Here each served
version's schema becomes a JSON schema in the same strict form as the bundled core schemas:
``additionalProperties: false`` wherever ``properties`` are declared and unknown fields are not
preserved (``x-kubernetes-preserve-unknown-fields``), ``x-kubernetes-int-or-string`` as integer or
string, ``nullable`` as null allowed. CEL rules (``x-kubernetes-validations``) are not evaluated.

``validate_custom_resource(obj)`` is the whole check for one object; ``verify.schemas`` uses the
same validators for kinds without a bundled schema and adds the core ``ObjectMeta`` and
``PodTemplateSpec`` of each Kubernetes version on top.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from stack.kubernetes_names import dns1123_label, dns1123_subdomain
from verify import plain
from verify.json_schema import schema_errors
from verify.manifests import join_path

VENDOR = Path(__file__).resolve().parent / "vendor"

# (apiVersion, kind) -> the vendored CRD file that defines it, so a run parses only the CRDs of the
# kinds it meets (the LWS CRD alone is 1.3 MB); tests check each file defines what is listed here.
# LWS and KAI: the versions components/addons.py pins. Prometheus operator (kube-prometheus-stack
# 88.5.3, operator v0.93.1), KEDA v2.20.2, Karpenter v1.14.1: the releases the components that will
# render those kinds are to pin; moving a pin means re-vendoring its CRD.
CRD_FILES: dict[tuple[str, str], str] = {
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "lws-v0.8.0-leaderworkersets-crd.yaml",
    ("scheduling.run.ai/v2", "Queue"): "kai-scheduler-v0.9.3-queues-crd.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "kube-prometheus-stack-88.5.3-podmonitors-crd.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "kube-prometheus-stack-88.5.3-servicemonitors-crd.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "kube-prometheus-stack-88.5.3-prometheusrules-crd.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-v2.20.2-scaledobjects-crd.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-v2.20.2-triggerauthentications-crd.yaml",
    ("karpenter.sh/v1", "NodePool"): "karpenter-v1.14.1-nodepools-crd.yaml",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "karpenter-v1.14.1-ec2nodeclasses-crd.yaml",
}

_SOURCE = re.compile(r"^# repository: (\S+)\s+path: (\S+)\s+ref: (\S+)\s+commit: (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class CustomResourceDefinition:
    api_version: str  # group/version, e.g. leaderworkerset.x-k8s.io/v1
    kind: str
    scope: str  # Namespaced or Cluster
    schema: dict  # the version's openAPIV3Schema, strict (see strict_schema)
    source: str  # where the vendored CRD comes from, for messages

    @functools.cached_property
    def validator(self) -> jsonschema.protocols.Validator:
        # OpenAPI 3.0 schema objects are draft-4 JSON schema (boolean exclusiveMinimum and all).
        return jsonschema.validators.Draft4Validator(self.schema)


def _load(text: str) -> list[Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]


@functools.cache
def load_file(name: str) -> dict[tuple[str, str], CustomResourceDefinition]:
    """(apiVersion, kind) -> its CRD, for every served version in one vendored file."""
    text = (VENDOR / name).read_text()
    match = _SOURCE.search(text)
    source = f"{match.group(1)} {match.group(2)} at {match.group(3)}" if match else name
    found = {}
    for doc in _load(text):
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            api_version = f"{spec['group']}/{version['name']}"
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object"}
            found[(api_version, spec["names"]["kind"])] = CustomResourceDefinition(
                api_version, spec["names"]["kind"], spec.get("scope", "Namespaced"), strict_schema(schema), source
            )
    return found


def definition(api_version: Any, kind: Any) -> CustomResourceDefinition | None:
    name = CRD_FILES.get((api_version, kind))
    return None if name is None else load_file(name).get((api_version, kind))


def strict_schema(node: Any, top: bool = True) -> Any:
    """A CRD's structural schema as a strict JSON schema (what the API server keeps, nothing more)."""
    if isinstance(node, list):
        return [strict_schema(item, False) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: (value if key in ("enum", "default", "example", "required") else strict_schema(value, False))
        for key, value in node.items()
        if not key.startswith("x-kubernetes-") and key not in ("nullable", "description")
    }
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserve:
        properties = dict(out["properties"])
        if node.get("x-kubernetes-embedded-resource") or top:
            for implicit in ("apiVersion", "kind", "metadata"):
                properties.setdefault(implicit, {})
        out["properties"] = properties
        out["additionalProperties"] = False
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def crd_errors(obj: dict) -> list[tuple[str, str]] | None:
    """(field path, message) against the object's vendored CRD; None if no CRD is vendored for it."""
    crd = definition(obj.get("apiVersion"), obj.get("kind"))
    if crd is None:
        return None
    return schema_errors(crd.validator, obj)


def validate_custom_resource(obj: dict) -> list[str]:
    """Every problem of one custom resource against its vendored CRD, as ``path: message``; an
    apiVersion/kind with no vendored CRD is itself a problem (nothing could be checked)."""
    obj = plain(obj)  # type: ignore[assignment]
    if not isinstance(obj, dict):
        return [f"a custom resource must be a mapping, got {type(obj).__name__}"]
    crd = definition(obj.get("apiVersion"), obj.get("kind"))
    if crd is None:
        known = ", ".join(f"{a} {k}" for a, k in sorted(CRD_FILES))
        return [f"no vendored CRD for {obj.get('apiVersion')} {obj.get('kind')}: vendored are {known}"]
    problems = [f"{path or '(object)'}: {message} (CRD {crd.source})" for path, message in crd_errors(obj) or []]
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name")
    if name is None and not metadata.get("generateName"):
        problems.append("metadata.name: metadata.name is required")
    elif name is not None:
        problem = dns1123_subdomain(name)
        if problem:
            problems.append(f"metadata.name: {problem}")
    if crd.scope == "Namespaced" and metadata.get("namespace") is not None:
        problem = dns1123_label(metadata["namespace"])
        if problem:
            problems.append(f"{join_path('metadata', 'namespace')}: {problem}")
    return problems
