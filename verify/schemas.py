"""Kubernetes objects against the official schemas of each supported version, strict.

The OpenAPI-derived JSON schemas that PyPI's ``kubernetes-validate`` bundles (Kubernetes
1.25-1.37), in their *strict* form (unknown or misspelled fields fail), resolved the way
``kubernetes_validate.validate`` resolves them (the newest bundled schema not newer than the
version asked for). ``kubernetes_validate.validate`` re-reads the 1.4-4.6 MB definitions file on
every call; here each version's definitions are loaded once per process and each kind's validator
is built once (``SchemaSet``), which ``tests/verify`` checks gives the same verdicts.

Kinds without a bundled schema (custom resources):
- with a vendored CRD (``verify.crds``: LeaderWorkerSet, KAI's Queue, ...): the CRD's schema, strict,
  plus the object's metadata and pod templates against the *core* ``ObjectMeta``/``PodTemplateSpec``
  of each version checked, so the pods an LWS creates are checked exactly as a Deployment's are;
- anything else: its metadata and embedded pod templates (any ``template``/``*Template`` holding
  ``spec.containers``) against the core definitions, and a warning says the rest was not checked.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from packaging.version import Version
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from verify import Violation, crds
from verify.json_schema import error_key, schema_errors
from verify.manifests import describe, field_path, join_path, pod_templates

# The Kubernetes minor versions the project supports (EKS standard support); a stack that creates
# its cluster adds the version it pins (Pulumi.<stack>.yaml: cluster.create.version).
SUPPORTED_VERSIONS: tuple[str, ...] = ("1.31", "1.32", "1.33", "1.34")

DEFS_URI = "https://kubernetes.io/api/_definitions.json"


def schema_version(version: str) -> str:
    """The bundled schema kubernetes-validate uses for ``version`` (newest not newer than it)."""
    wanted = Version(kv_utils.major_minor(version.lstrip("v")))
    available = [v for v in kv_utils.all_versions() if Version(kv_utils.major_minor(v)) <= wanted]
    if not available or wanted > Version(kv_utils.major_minor(kv_utils.latest_version())):
        raise ValueError(
            f"kubernetes-validate {kubernetes_validate.__version__} has no schema for Kubernetes {version} "
            f"(it bundles {kv_utils.all_versions()[0]}-{kv_utils.latest_version()})"
        )
    return available[-1]


def schema_file(kind: str, api_version: str) -> str:
    """kubernetes-validate's file name for a kind (``networking.k8s.io/v1`` -> ``networking-v1``)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


class SchemaSet:
    """One Kubernetes version's strict schemas, loaded once; validators built once per kind."""

    def __init__(self, version: str):
        self.version = kv_utils.major_minor(version.lstrip("v"))
        self.schema_version = schema_version(version)
        self.directory = f"kubernetes-json-schema/v{self.schema_version}-local-strict"
        definitions = kv_utils.schema_contents(f"{self.directory}/_definitions.json", version)
        self.registry = Resource.from_contents(definitions) @ Registry()
        self._validators: dict[str, jsonschema.protocols.Validator | None] = {}

    def _build(self, schema: dict) -> jsonschema.protocols.Validator:
        registry = self.registry
        if "$id" in schema:
            registry = Resource.from_contents(schema, default_specification=DRAFT202012) @ registry
        return jsonschema.validators.Draft202012Validator(schema, registry=registry)

    def for_kind(self, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
        """The bundled schema's validator; None for kinds kubernetes-validate does not ship."""
        key = f"{api_version}/{kind}"
        if key not in self._validators:
            try:
                schema = kv_utils.schema_contents(f"{self.directory}/{schema_file(kind, api_version)}", self.version)
            except FileNotFoundError:
                schema = None
            self._validators[key] = self._build(schema) if schema is not None else None
        return self._validators[key]

    def for_definition(self, name: str, array: bool = False) -> jsonschema.protocols.Validator:
        key = f"#{name}{'[]' if array else ''}"
        if key not in self._validators:
            ref = {"$ref": f"{DEFS_URI}#/$defs/{name}"}
            schema = {"type": ["array", "null"], "items": ref} if array else ref
            self._validators[key] = self._build({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})
        return self._validators[key]  # type: ignore[return-value]


@functools.cache
def schemas(version: str) -> SchemaSet:
    return SchemaSet(version)


def merge_versions(per_version: dict[str, list[tuple[str, str]]], obj: str, prefix: str = "") -> list[Violation]:
    """One violation per error, naming the versions whose schema reports it (the field lists of
    "known fields" differ between versions: the newest version's list is shown)."""
    by_error: dict[tuple[str, str], tuple[list[str], str]] = {}
    for version, found in sorted(per_version.items(), key=lambda item: Version(item[0])):
        for path, message in found:
            key = error_key(path, message)
            versions, _ = by_error.get(key, ([], message))
            by_error[key] = (versions + [version], message)
    return [
        Violation(obj, join_path(prefix, path), f"{message} (schema of Kubernetes {', '.join(versions)})")
        for (path, _), (versions, message) in sorted(by_error.items())
    ]


def _core_parts_errors(schema_set: SchemaSet, obj: dict) -> list[tuple[str, str]]:
    """A custom resource's metadata and pod templates against this version's core definitions."""
    template_validator = schema_set.for_definition("io.k8s.api.core.v1.PodTemplateSpec")
    meta_validator = schema_set.for_definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    found = [(join_path("metadata", p), m) for p, m in schema_errors(meta_validator, obj.get("metadata") or {})]
    for path, template in pod_templates(obj):
        found += [(join_path(path, p), m) for p, m in schema_errors(template_validator, template)]
    return found


def check_schema(obj: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    name = describe(obj)
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return [Violation(name, "", "apiVersion and kind are required strings")]
    per_version: dict[str, list[tuple[str, str]]] = {}
    custom = False
    for version in versions:
        schema_set = schemas(version)
        validator = schema_set.for_kind(kind, api_version)
        if validator is not None:
            per_version[version] = schema_errors(validator, obj)
        else:
            custom = True
            per_version[version] = _core_parts_errors(schema_set, obj)
    violations = merge_versions(per_version, name)
    if not custom:
        return violations
    crd = crds.definition(api_version, kind)
    if crd is not None:
        reported = {error_key(p, m) for found in per_version.values() for p, m in found}
        violations += [
            Violation(name, path, f"{message} (CRD {crd.source})")
            for path, message in crds.crd_errors(obj) or []
            if error_key(path, message) not in reported
        ]
        return violations
    violations.append(
        Violation(
            name,
            "",
            f"no schema for {api_version} {kind} in kubernetes-validate and no vendored CRD: only its metadata and "
            f"embedded pod templates ({', '.join(p for p, _ in pod_templates(obj)) or 'none found'}) were "
            "schema-checked",
            severity="warning",
        )
    )
    return violations


def has_bundled_schema(kind: str, api_version: str, version: str) -> bool:
    """Whether kubernetes-validate ships a schema for the kind (custom resources: no)."""
    try:
        kv_utils.schema_contents(f"{schemas(version).directory}/{schema_file(kind, api_version)}", version)
    except FileNotFoundError:
        return False
    return True


def validate_with_kubernetes_validate(obj: dict, version: str) -> str | None:
    """The package's own entry point (re-reads the schema per call): for cross-checking SchemaSet."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{field_path(error.path)}: {error.message}"
    return None
