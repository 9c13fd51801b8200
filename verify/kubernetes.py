"""Kubernetes objects: official schemas (strict) for each supported version, then the API server's
rules the schema leaves to plain strings.

Schemas: the OpenAPI-derived JSON schemas that PyPI's ``kubernetes-validate`` bundles (Kubernetes
1.25-1.37), in their *strict* form (unknown or misspelled fields fail), resolved the way
``kubernetes_validate.validate`` resolves them (the newest bundled schema not newer than the
version asked for). ``kubernetes_validate.validate`` re-reads the 1.4-4.6 MB definitions file on
every call; here each version's definitions are loaded once per process and each kind's validator
is built once (``SchemaSet``), which ``tests/verify`` checks gives the same verdicts.

Kinds without a bundled schema (custom resources):
- ``leaderworkerset.x-k8s.io/v1`` ``LeaderWorkerSet``: a structural schema transcribed from the
  LWS API types (``api/leaderworkerset/v1/leaderworkerset_types.go``) whose pod templates
  (``spec.leaderWorkerTemplate.leaderTemplate``/``workerTemplate``) and PVC templates refer to the
  *core* ``PodTemplateSpec``/``PersistentVolumeClaim`` definitions of the version being checked, so
  the pods an LWS creates are checked exactly as a Deployment's are;
- anything else: its embedded pod templates (any ``template``/``*Template`` holding
  ``spec.containers``) are checked against the core ``PodTemplateSpec``, and a warning says the
  rest of the object was not schema-checked.

``helm.sh/v3`` ``Release`` (Pulumi's Helm release, not a Kubernetes object): the chart must be
pinned, the release name valid, the ``values`` top-level keys known to the chart (from the chart's
``values.yaml``, see ``CHART_VALUE_KEYS``), and every ``affinity``/``tolerations``/``nodeSelector``/
``resources`` inside ``values`` checked against the core schema and rules. The chart's rendered
manifests themselves are checked by Helm (and the API server) at deploy time, not here.

Server-side rules checked (the schema types these as strings or leaves them out): node-selector
operators and their values, label-selector operators, toleration operators/effects, resource
quantities (grammar, requests <= limits, extended resources integer with requests == limits),
DNS-1123/1035 names, label and annotation keys and values, container/volume/port names (unique,
IANA service names), probe and Service ports (named ports must exist), emptyDir ``sizeLimit``,
env var names, volume mounts referring to volumes, workload selectors matching their templates,
and across objects: every Service, PodDisruptionBudget and NetworkPolicy selector matches some
pod template rendered in its namespace.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from packaging.version import Version
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from verify import Violation, is_unknown, plain

# The Kubernetes minor versions the project supports (EKS standard support); a stack that creates
# its cluster adds the version it pins (Pulumi.<stack>.yaml: cluster.create.version).
SUPPORTED_VERSIONS: tuple[str, ...] = ("1.31", "1.32", "1.33", "1.34")

DEFS_URI = "https://kubernetes.io/api/_definitions.json"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"


# --- names and syntax (k8s.io/apimachinery/pkg/util/validation) --------------------------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # strict form (relaxed only from 1.34 GA)
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}

NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def dns1123_label(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.match(value):
        return (
            f"{value!r} is not a DNS-1123 label: at most 63 characters, lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (e.g. 'my-name')"
        )
    return None


def dns1123_subdomain(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        return (
            f"{value!r} is not a DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit (e.g. 'example.com')"
        )
    return None


def dns1035_label(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1035_LABEL.match(value):
        return (
            f"{value!r} is not a DNS-1035 label: at most 63 characters, lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit (e.g. 'my-name')"
        )
    return None


def qualified_name(value: Any) -> str | None:
    """A label/annotation key: optional DNS-1123 subdomain prefix (<= 253) + '/' + name (<= 63)."""
    if not isinstance(value, str) or not value:
        return f"{value!r} is not a valid key: it must be a non-empty string"
    parts = value.split("/")
    if len(parts) > 2:
        return f"{value!r} is not a valid key: at most one '/' (prefix/name)"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return f"{value!r} is not a valid key: the prefix before '/' must not be empty"
        if dns1123_subdomain(prefix):
            return f"{value!r} is not a valid key: prefix {prefix!r} must be a DNS-1123 subdomain of at most 253 characters"
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            f"{value!r} is not a valid key: the name part {name!r} must be at most 63 characters of "
            "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        )
    return None


def label_value(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            f"{value!r} is not a valid label value: at most 63 characters of alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric (or empty)"
        )
    return None


def iana_svc_name(value: Any) -> str | None:
    if (
        not isinstance(value, str)
        or len(value) > 15
        or not _IANA_SVC_NAME.match(value)
        or "--" in value
        or not re.search(r"[a-z]", value)
    ):
        return (
            f"{value!r} is not a valid port name (IANA_SVC_NAME): at most 15 characters of lowercase letters, "
            "digits and '-', at least one letter, no leading, trailing or double '-'"
        )
    return None


def quantity_problem(value: Any) -> str:
    """Why ``value`` is not a quantity, with the nearest valid spelling when there is one."""
    hint = ""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKMGTPE])(i?)[bB]\s*", str(value))
    if match:
        unit = match.group(2).upper() if match.group(2) != "k" else "k"
        hint = f" (did you mean {match.group(1)}{unit}i for binary or {match.group(1)}{unit if unit != 'K' else 'k'} for decimal units?)"
    return f"{value!r} is not {QUANTITY_HELP}{hint}"


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "1.5Gi", "2", "1e3") as a number; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return base * (Decimal(10) ** int(suffix[1:]))
    return base * _SUFFIX[suffix]


QUANTITY_HELP = (
    "a Kubernetes quantity: a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei (binary), "
    "m, k, M, G, T, P, E (decimal) or an exponent e<N> (e.g. '500m', '1.5Gi', '4096Mi', '2')"
)


# --- schemas ------------------------------------------------------------------------------------


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
        key = f"{api_version}/{kind}"
        if key not in self._validators:
            if api_version == LWS_API_VERSION and kind == "LeaderWorkerSet":
                self._validators[key] = self._build(lws_schema())
            else:
                try:
                    schema = kv_utils.schema_contents(
                        f"{self.directory}/{schema_file(kind, api_version)}", self.version
                    )
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


def lws_schema() -> dict:
    """LeaderWorkerSet v1 (kubernetes-sigs/lws api/leaderworkerset/v1/leaderworkerset_types.go),
    strict like the bundled schemas; pod and PVC templates are the core definitions."""

    def ref(name: str) -> dict:
        return {"$ref": f"{DEFS_URI}#/$defs/{name}"}

    int32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    int_or_string = ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "spec"],
        "properties": {
            "apiVersion": {"enum": [LWS_API_VERSION]},
            "kind": {"enum": ["LeaderWorkerSet"]},
            "metadata": ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "status": {"type": "object"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["leaderWorkerTemplate"],
                "properties": {
                    "replicas": int32,
                    "startupPolicy": {"enum": ["LeaderCreated", "LeaderReady"]},
                    "leaderWorkerTemplate": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["workerTemplate"],
                        "properties": {
                            "leaderTemplate": ref("io.k8s.api.core.v1.PodTemplateSpec"),
                            "workerTemplate": ref("io.k8s.api.core.v1.PodTemplateSpec"),
                            "size": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                            "restartPolicy": {
                                "enum": ["Default", "RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None"]
                            },
                            "subGroupPolicy": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "subGroupPolicyType": {"enum": ["LeaderWorker", "LeaderExcluded"]},
                                    "subGroupSize": {"type": "integer", "minimum": 1},
                                },
                            },
                            "volumeClaimTemplates": {
                                "type": "array",
                                "items": ref("io.k8s.api.core.v1.PersistentVolumeClaim"),
                            },
                            "persistentVolumeClaimRetentionPolicy": ref(
                                "io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy"
                            ),
                        },
                    },
                    "rolloutStrategy": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type"],
                        "properties": {
                            "type": {"enum": ["RollingUpdate"]},
                            "rollingUpdateConfiguration": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "partition": int32,
                                    "maxUnavailable": int_or_string,
                                    "maxSurge": int_or_string,
                                },
                            },
                        },
                    },
                    "networkConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"subdomainPolicy": {"enum": ["Shared", "UniquePerReplica"]}},
                    },
                },
            },
        },
    }


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        extras = [k for k in error.instance if k not in known]
        parts = []
        for extra in extras:
            close = difflib.get_close_matches(extra, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown field {extra!r}{hint}")
        return f"{'; '.join(parts)}; known fields here: {', '.join(known)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {error.validator_value}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return best.message
    return error.message


def _schema_errors(validator: jsonschema.protocols.Validator, instance: Any) -> list[tuple[str, str]]:
    found = []
    for error in validator.iter_errors(instance):
        if is_unknown(error.instance):
            continue  # known only after an update; the provider checks it then
        path = _path(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set((error.schema.get("properties") or {}).keys())
            extras = [k for k in error.instance if k not in known]
            if len(extras) == 1:
                path = _join(path, extras[0])
        found.append((path, _schema_message(error)))
    return sorted(set(found))


def _merge_versions(per_version: dict[str, list[tuple[str, str]]], obj: str, prefix: str = "") -> list[Violation]:
    """One violation per error, naming the versions whose schema reports it (the field lists of
    "known fields" differ between versions: the newest version's list is shown)."""
    by_error: dict[tuple[str, str], tuple[list[str], str]] = {}
    for version, found in sorted(per_version.items(), key=lambda item: Version(item[0])):
        for path, message in found:
            key = (path, message.split("; known fields here")[0])
            versions, _ = by_error.get(key, ([], message))
            by_error[key] = (versions + [version], message)
    return [
        Violation(obj, _join(prefix, path), f"{message} (schema of Kubernetes {', '.join(versions)})")
        for (path, _), (versions, message) in sorted(by_error.items())
    ]


# --- objects ------------------------------------------------------------------------------------


def describe(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "<unnamed>")
    namespace = metadata.get("namespace")
    return f"{obj.get('kind', '<no kind>')} {namespace + '/' if namespace else ''}{name}"


def describe_release(props: dict) -> str:
    return f"helm Release {props.get('namespace', '<default>')}/{props.get('name', '<unnamed>')} (chart {props.get('chart')} {props.get('version', '<unpinned>')})"


def pod_templates(obj: dict) -> list[tuple[str, dict]]:
    """(path, PodTemplateSpec-shaped dict) for every pod template the object creates pods from."""
    kind = obj.get("kind")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out: list[tuple[str, dict]] = []
    if kind == "Pod":
        return [("", {"metadata": obj.get("metadata") or {}, "spec": spec})]
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        return [("spec.jobTemplate.spec.template", template)] if isinstance(template, dict) else []
    if kind == "PodTemplate":
        return [("template", obj["template"])] if isinstance(obj.get("template"), dict) else []
    if kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        for key in ("leaderTemplate", "workerTemplate"):
            if isinstance(lwt.get(key), dict):
                out.append((f"spec.leaderWorkerTemplate.{key}", lwt[key]))
        return out
    if isinstance(spec.get("template"), dict):
        return [("spec.template", spec["template"])]

    # Unknown custom resources: any nested "template"/"*Template" holding spec.containers.
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                sub = _join(path, key)
                if (
                    (key == "template" or key.endswith("Template"))
                    and isinstance(value, dict)
                    and isinstance(
                        (value.get("spec") or {}).get("containers") if isinstance(value.get("spec"), dict) else None,
                        list,
                    )
                ):
                    out.append((sub, value))
                else:
                    walk(value, sub)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(spec, "spec")
    return out


def check_schema(obj: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    name = describe(obj)
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return [Violation(name, "", "apiVersion and kind are required strings")]
    per_version: dict[str, list[tuple[str, str]]] = {}
    unschema = False
    for version in versions:
        schema_set = schemas(version)
        validator = schema_set.for_kind(kind, api_version)
        if validator is not None:
            per_version[version] = _schema_errors(validator, obj)
            continue
        unschema = True
        found: list[tuple[str, str]] = []
        template_validator = schema_set.for_definition("io.k8s.api.core.v1.PodTemplateSpec")
        meta_validator = schema_set.for_definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        found += [(_join("metadata", p), m) for p, m in _schema_errors(meta_validator, obj.get("metadata") or {})]
        for path, template in pod_templates(obj):
            found += [(_join(path, p), m) for p, m in _schema_errors(template_validator, template)]
        per_version[version] = found
    violations = _merge_versions(per_version, name)
    if unschema:
        violations.append(
            Violation(
                name,
                "",
                f"no schema for {api_version} {kind} in kubernetes-validate: only its metadata and embedded "
                f"pod templates ({', '.join(p for p, _ in pod_templates(obj)) or 'none found'}) were schema-checked",
                severity="warning",
            )
        )
    return violations


def check_object(obj: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    """Schema (every version) and server-side rules for one manifest."""
    obj = plain(obj)  # type: ignore[assignment]
    if not isinstance(obj, dict):
        return [Violation("<object>", "", f"a manifest must be a mapping, got {type(obj).__name__}")]
    violations = check_schema(obj, versions)
    violations += check_rules(obj)
    return violations


def check_resource(resource_type: str, props: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    """A ``kubernetes:*`` Pulumi resource's inputs (a manifest, or a Helm release's inputs)."""
    if resource_type == HELM_RELEASE:
        return check_helm_release(props, versions)
    return check_object(props, versions)


# --- server-side rules --------------------------------------------------------------------------


class _Collector:
    def __init__(self, obj: str):
        self.obj = obj
        self.items: list[Violation] = []

    def add(self, path: str, message: str | None) -> None:
        if message:
            self.items.append(Violation(self.obj, path, message))


def check_rules(obj: dict) -> list[Violation]:
    out = _Collector(describe(obj))
    kind = obj.get("kind")
    metadata = obj.get("metadata") or {}
    _check_metadata(out, metadata, kind, "metadata")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    for path, template in pod_templates(obj):
        _check_labels(out, (template.get("metadata") or {}).get("labels"), _join(path, "metadata.labels"))
        _check_annotations(
            out, (template.get("metadata") or {}).get("annotations"), _join(path, "metadata.annotations")
        )
        if isinstance(template.get("spec"), dict):
            _check_pod_spec(out, template["spec"], _join(path, "spec"))
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        _check_workload_selector(out, spec)
        if kind == "Deployment":
            _check_deployment_strategy(out, spec.get("strategy") or {})
    if kind == "Job" and spec.get("selector") and spec.get("manualSelector"):
        _check_workload_selector(out, spec)
    if kind == "Service":
        _check_service(out, spec)
    if kind == "PodDisruptionBudget":
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            out.add("spec", "minAvailable and maxUnavailable are mutually exclusive: set one")
        _check_label_selector(out, spec.get("selector"), "spec.selector")
        for key in ("minAvailable", "maxUnavailable"):
            _check_int_or_percent(out, spec.get(key), f"spec.{key}")
    if kind == "NetworkPolicy":
        _check_network_policy(out, spec)
    if kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        size = lwt.get("size", 1)
        sub = (lwt.get("subGroupPolicy") or {}).get("subGroupSize")
        if isinstance(size, int) and isinstance(sub, int) and sub > 0 and size % sub and (size - 1) % sub:
            out.add(
                "spec.leaderWorkerTemplate.subGroupPolicy.subGroupSize",
                f"size {size} (or size-1) must be divisible by subGroupSize {sub}",
            )
    return out.items


def _check_metadata(out: _Collector, metadata: dict, kind: str | None, path: str) -> None:
    name = metadata.get("name")
    if name is None or is_unknown(name):
        if name is None and not metadata.get("generateName"):
            out.add(
                f"{path}.name", "metadata.name is required (Pulumi auto-names only when it is left to the provider)"
            )
    elif kind == "Service":
        out.add(f"{path}.name", dns1035_label(name) and f"Service names must be DNS-1035 labels: {dns1035_label(name)}")
    elif kind == "Namespace":
        out.add(f"{path}.name", dns1123_label(name))
    else:
        out.add(f"{path}.name", dns1123_subdomain(name))
    namespace = metadata.get("namespace")
    if namespace is not None and not is_unknown(namespace):
        out.add(f"{path}.namespace", dns1123_label(namespace))
    _check_labels(out, metadata.get("labels"), f"{path}.labels")
    _check_annotations(out, metadata.get("annotations"), f"{path}.annotations")


def _check_labels(out: _Collector, labels: Any, path: str) -> None:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        out.add(f"{path}[{key!r}]", qualified_name(key))
        if not is_unknown(value):
            out.add(f"{path}[{key!r}]", label_value(value))


def _check_annotations(out: _Collector, annotations: Any, path: str) -> None:
    if not isinstance(annotations, dict):
        return
    for key in annotations:
        out.add(f"{path}[{key!r}]", qualified_name(str(key).lower()))
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > 256 * 1024:
        out.add(path, f"annotations total {size} bytes, more than the 262144 the API server accepts")


def _check_label_selector(out: _Collector, selector: Any, path: str) -> None:
    if not isinstance(selector, dict):
        return
    _check_labels(out, selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expression in enumerate(selector.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(expression, dict):
            continue
        out.add(f"{p}.key", qualified_name(expression.get("key")))
        operator, values = expression.get("operator"), expression.get("values") or []
        if operator not in LABEL_SELECTOR_OPERATORS:
            out.add(
                f"{p}.operator",
                f"invalid label selector operator {operator!r}: valid operators are {', '.join(LABEL_SELECTOR_OPERATORS)}",
            )
        elif operator in ("In", "NotIn") and not values:
            out.add(f"{p}.values", f"operator {operator} needs at least one value")
        elif operator in ("Exists", "DoesNotExist") and values:
            out.add(f"{p}.values", f"operator {operator} takes no values, got {values}")
        for j, value in enumerate(values):
            out.add(f"{p}.values[{j}]", label_value(value))


def check_node_selector_requirement(expression: Any, path: str, fields: bool = False) -> list[tuple[str, str]]:
    """The API server's rules for one node-selector requirement (matchExpressions or matchFields)."""
    problems: list[tuple[str, str]] = []
    if not isinstance(expression, dict):
        return problems
    key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
    if fields:
        if key != "metadata.name":
            problems.append((f"{path}.key", f"matchFields supports only the key 'metadata.name', got {key!r}"))
        if operator not in ("In", "NotIn"):
            problems.append((f"{path}.operator", f"matchFields supports only operators In and NotIn, got {operator!r}"))
        elif len(values) != 1:
            problems.append((f"{path}.values", f"matchFields {operator} needs exactly one value, got {values}"))
        return problems
    message = qualified_name(key)
    if message:
        problems.append((f"{path}.key", message))
    if operator not in NODE_SELECTOR_OPERATORS:
        problems.append(
            (
                f"{path}.operator",
                f"invalid node selector operator {operator!r}: valid operators are "
                f"{', '.join(NODE_SELECTOR_OPERATORS)} (for 'at least N' use Gt N-1)",
            )
        )
    elif operator in ("In", "NotIn"):
        if not values:
            problems.append((f"{path}.values", f"operator {operator} needs at least one value"))
        for j, value in enumerate(values):
            message = label_value(value)
            if message:
                problems.append((f"{path}.values[{j}]", message))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            problems.append((f"{path}.values", f"operator {operator} takes no values, got {values}"))
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            problems.append(
                (f"{path}.values", f"operator {operator} takes exactly one integer value, got {len(values)}: {values}")
            )
        elif not (
            isinstance(values[0], str)
            and re.fullmatch(r"[+-]?[0-9]+", values[0])
            and -(2**63) <= int(values[0]) < 2**63
        ):
            problems.append(
                (
                    f"{path}.values[0]",
                    f"operator {operator} takes an integer (as a string, e.g. '3'), got {values[0]!r}",
                )
            )
    return problems


def _check_node_selector_term(out: _Collector, term: Any, path: str) -> None:
    if not isinstance(term, dict):
        return
    for i, expression in enumerate(term.get("matchExpressions") or []):
        for p, m in check_node_selector_requirement(expression, f"{path}.matchExpressions[{i}]"):
            out.add(p, m)
    for i, expression in enumerate(term.get("matchFields") or []):
        for p, m in check_node_selector_requirement(expression, f"{path}.matchFields[{i}]", fields=True):
            out.add(p, m)


def check_affinity(out: _Collector, affinity: Any, path: str) -> None:
    if not isinstance(affinity, dict):
        return
    node = affinity.get("nodeAffinity") or {}
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms")
    if "requiredDuringSchedulingIgnoredDuringExecution" in node and not terms:
        out.add(
            f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
            "at least one node selector term is required",
        )
    for i, term in enumerate(terms or []):
        _check_node_selector_term(
            out, term, f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]"
        )
    for i, preferred in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        p = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        weight = (preferred or {}).get("weight")
        if isinstance(weight, int) and not 1 <= weight <= 100:
            out.add(f"{p}.weight", f"weight {weight} must be in 1-100")
        _check_node_selector_term(out, (preferred or {}).get("preference"), f"{p}.preference")
    for kind in ("podAffinity", "podAntiAffinity"):
        section = affinity.get(kind) or {}
        for i, term in enumerate(section.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            p = f"{path}.{kind}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            _check_pod_affinity_term(out, term, p)
        for i, weighted in enumerate(section.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            p = f"{path}.{kind}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = (weighted or {}).get("weight")
            if isinstance(weight, int) and not 1 <= weight <= 100:
                out.add(f"{p}.weight", f"weight {weight} must be in 1-100")
            _check_pod_affinity_term(out, (weighted or {}).get("podAffinityTerm"), f"{p}.podAffinityTerm")


def _check_pod_affinity_term(out: _Collector, term: Any, path: str) -> None:
    if not isinstance(term, dict):
        return
    if not term.get("topologyKey"):
        out.add(f"{path}.topologyKey", "topologyKey is required and must not be empty")
    else:
        out.add(f"{path}.topologyKey", qualified_name(term["topologyKey"]))
    _check_label_selector(out, term.get("labelSelector"), f"{path}.labelSelector")
    _check_label_selector(out, term.get("namespaceSelector"), f"{path}.namespaceSelector")


def check_tolerations(out: _Collector, tolerations: Any, path: str) -> None:
    if not isinstance(tolerations, list):
        return
    for i, toleration in enumerate(tolerations):
        p = f"{path}[{i}]"
        if not isinstance(toleration, dict):
            continue
        key, operator = toleration.get("key") or "", toleration.get("operator") or "Equal"
        value, effect = toleration.get("value") or "", toleration.get("effect") or ""
        if key:
            out.add(f"{p}.key", qualified_name(key))
        if operator not in TOLERATION_OPERATORS:
            out.add(
                f"{p}.operator",
                f"invalid toleration operator {operator!r}: valid operators are Equal (the default) and Exists",
            )
        elif operator == "Exists" and value:
            out.add(f"{p}.value", f"a toleration with operator Exists must not have a value (got {value!r})")
        elif operator == "Equal":
            if not key:
                out.add(f"{p}.operator", "a toleration with an empty key must use operator Exists")
            out.add(f"{p}.value", label_value(value) if value else None)
        if effect and effect not in TAINT_EFFECTS:
            out.add(
                f"{p}.effect",
                f"invalid taint effect {effect!r}: valid effects are {', '.join(TAINT_EFFECTS)} (or empty for all)",
            )
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            out.add(f"{p}.tolerationSeconds", "tolerationSeconds is only allowed with effect NoExecute")


def _resource_name_problem(name: str) -> str | None:
    if name in STANDARD_RESOURCES or name.startswith("hugepages-"):
        return None
    if "/" not in name:
        return f"unknown resource {name!r}: use cpu, memory, ephemeral-storage, hugepages-<size> or a domain-qualified extended resource (e.g. nvidia.com/gpu)"
    return qualified_name(name)


def _is_extended(name: str) -> bool:
    if "/" not in name:
        return False
    domain = name.split("/")[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io") or name.startswith("requests."))


def check_resources(out: _Collector, resources: Any, path: str) -> None:
    if not isinstance(resources, dict):
        return
    parsed: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
    for section in ("requests", "limits"):
        for name, value in (resources.get(section) or {}).items():
            p = f"{path}.{section}[{name!r}]"
            out.add(p, _resource_name_problem(name))
            if is_unknown(value):
                continue
            quantity = parse_quantity(value)
            if quantity is None:
                out.add(p, quantity_problem(value))
                continue
            if quantity < 0:
                out.add(p, f"{value!r} must not be negative")
                continue
            if _is_extended(name) and quantity != quantity.to_integral_value():
                out.add(p, f"extended resource {name} must be a whole number, got {value!r}")
            parsed[section][name] = quantity
    requests, limits = parsed["requests"], parsed["limits"]
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is not None and request > limit:
            out.add(
                f"{path}.requests[{name!r}]",
                f"request {resources['requests'][name]!r} exceeds limit {resources['limits'][name]!r}: requests must be <= limits",
            )
        if _is_extended(name) or name.startswith("hugepages-"):
            if limit is None:
                out.add(
                    f"{path}.limits[{name!r}]",
                    f"{name} cannot be overcommitted: set a limit equal to the request {resources['requests'][name]!r}",
                )
            elif limit != request:
                out.add(
                    f"{path}.requests[{name!r}]",
                    f"{name} cannot be overcommitted: request {resources['requests'][name]!r} must equal limit {resources['limits'][name]!r}",
                )


def _check_port_value(out: _Collector, port: Any, path: str, names: set[str] | None, what: str) -> None:
    if port is None or is_unknown(port):
        return
    if isinstance(port, bool):
        out.add(path, f"{what} must be a number or a port name, got {port!r}")
    elif isinstance(port, int):
        if not 1 <= port <= 65535:
            out.add(path, f"{what} {port} is outside 1-65535")
    elif isinstance(port, str):
        problem = iana_svc_name(port)
        if problem:
            out.add(path, f"{what}: {problem}")
        elif names is not None and port not in names:
            out.add(
                path,
                f"{what} names port {port!r}, which the container does not declare; its ports are {sorted(names) or 'none'}",
            )


def _check_probe(out: _Collector, probe: Any, path: str, port_names: set[str]) -> None:
    if not isinstance(probe, dict):
        return
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(h) is not None]
    if len(handlers) != 1:
        out.add(path, f"a probe needs exactly one handler (exec, httpGet, tcpSocket or grpc), got {handlers or 'none'}")
    for handler in ("httpGet", "tcpSocket"):
        if isinstance(probe.get(handler), dict):
            if "port" not in probe[handler]:
                out.add(f"{path}.{handler}.port", "port is required")
            _check_port_value(out, probe[handler].get("port"), f"{path}.{handler}.port", port_names, "probe port")
    if isinstance(probe.get("grpc"), dict):
        port = probe["grpc"].get("port")
        if isinstance(port, int) and not isinstance(port, bool) and not 1 <= port <= 65535:
            out.add(f"{path}.grpc.port", f"grpc probe port {port} is outside 1-65535")
    for key, minimum in (
        ("periodSeconds", 1),
        ("timeoutSeconds", 1),
        ("failureThreshold", 1),
        ("successThreshold", 1),
        ("initialDelaySeconds", 0),
    ):
        value = probe.get(key)
        if isinstance(value, int) and value < minimum:
            out.add(f"{path}.{key}", f"{key} must be >= {minimum}, got {value}")


def _check_pod_spec(out: _Collector, pod: dict, path: str) -> None:
    volumes = pod.get("volumes") or []
    volume_names: set[str] = set()
    for i, volume in enumerate(volumes):
        if not isinstance(volume, dict):
            continue
        name = volume.get("name")
        out.add(f"{path}.volumes[{i}].name", dns1123_label(name))
        if name in volume_names:
            out.add(f"{path}.volumes[{i}].name", f"duplicate volume name {name!r}")
        volume_names.add(name)
        empty_dir = volume.get("emptyDir")
        if isinstance(empty_dir, dict):
            size = empty_dir.get("sizeLimit")
            if size is not None and not is_unknown(size):
                quantity = parse_quantity(size)
                if quantity is None:
                    out.add(f"{path}.volumes[{i}].emptyDir.sizeLimit", quantity_problem(size))
                elif quantity <= 0:
                    out.add(f"{path}.volumes[{i}].emptyDir.sizeLimit", f"sizeLimit {size!r} must be positive")
            medium = empty_dir.get("medium")
            if medium not in (None, "", "Memory") and not str(medium).startswith("HugePages"):
                out.add(
                    f"{path}.volumes[{i}].emptyDir.medium",
                    f"invalid medium {medium!r}: use '' (node disk), Memory or HugePages[-<size>]",
                )
    container_names: set[str] = set()
    for section in ("initContainers", "containers", "ephemeralContainers"):
        containers = pod.get(section)
        if section == "containers" and not containers:
            out.add(f"{path}.containers", "at least one container is required")
        for i, container in enumerate(containers or []):
            if not isinstance(container, dict):
                continue
            p = f"{path}.{section}[{i}]"
            name = container.get("name")
            out.add(f"{p}.name", dns1123_label(name))
            if name in container_names:
                out.add(f"{p}.name", f"duplicate container name {name!r}: container names must be unique in a pod")
            container_names.add(name)
            _check_container(out, container, p, volume_names, section)
    check_affinity(out, pod.get("affinity"), f"{path}.affinity")
    check_tolerations(out, pod.get("tolerations"), f"{path}.tolerations")
    node_selector = pod.get("nodeSelector")
    if isinstance(node_selector, dict):
        _check_labels(out, node_selector, f"{path}.nodeSelector")
    for i, constraint in enumerate(pod.get("topologySpreadConstraints") or []):
        p = f"{path}.topologySpreadConstraints[{i}]"
        if not isinstance(constraint, dict):
            continue
        if isinstance(constraint.get("maxSkew"), int) and constraint["maxSkew"] < 1:
            out.add(f"{p}.maxSkew", "maxSkew must be >= 1")
        if constraint.get("whenUnsatisfiable") not in ("DoNotSchedule", "ScheduleAnyway"):
            out.add(
                f"{p}.whenUnsatisfiable",
                f"{constraint.get('whenUnsatisfiable')!r} is not DoNotSchedule or ScheduleAnyway",
            )
        out.add(f"{p}.topologyKey", qualified_name(constraint.get("topologyKey")))
        _check_label_selector(out, constraint.get("labelSelector"), f"{p}.labelSelector")
    for key in ("restartPolicy",):
        if pod.get(key) not in (None, "Always", "OnFailure", "Never"):
            out.add(f"{path}.{key}", f"{pod[key]!r} is not Always, OnFailure or Never")
    if pod.get("dnsPolicy") not in (None, "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"):
        out.add(
            f"{path}.dnsPolicy", f"{pod['dnsPolicy']!r} is not ClusterFirst, ClusterFirstWithHostNet, Default or None"
        )
    for key in ("schedulerName", "priorityClassName", "runtimeClassName"):
        if isinstance(pod.get(key), str) and pod[key] and key != "schedulerName":
            out.add(f"{path}.{key}", dns1123_subdomain(pod[key]))
    if isinstance(pod.get("serviceAccountName"), str) and pod["serviceAccountName"]:
        out.add(f"{path}.serviceAccountName", dns1123_subdomain(pod["serviceAccountName"]))


def _check_container(out: _Collector, container: dict, path: str, volume_names: set[str], section: str) -> None:
    if not container.get("image"):
        out.add(f"{path}.image", "image is required")
    port_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(container.get("ports") or []):
        if not isinstance(port, dict):
            continue
        p = f"{path}.ports[{i}]"
        number = port.get("containerPort")
        if isinstance(number, int) and not isinstance(number, bool) and not 1 <= number <= 65535:
            out.add(f"{p}.containerPort", f"containerPort {number} is outside 1-65535")
        if isinstance(port.get("hostPort"), int) and port["hostPort"] and not 1 <= port["hostPort"] <= 65535:
            out.add(f"{p}.hostPort", f"hostPort {port['hostPort']} is outside 1-65535")
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            out.add(f"{p}.protocol", f"invalid protocol {protocol!r}: valid protocols are {', '.join(PROTOCOLS)}")
        if (number, protocol) in seen_ports:
            out.add(f"{p}.containerPort", f"duplicate port {number}/{protocol}")
        seen_ports.add((number, protocol))
        if port.get("name") is not None:
            out.add(f"{p}.name", iana_svc_name(port["name"]))
            if port["name"] in port_names:
                out.add(f"{p}.name", f"duplicate port name {port['name']!r}")
            port_names.add(port["name"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if container.get(probe) is not None:
            if section == "ephemeralContainers":
                out.add(f"{path}.{probe}", "ephemeral containers may not have probes")
            _check_probe(out, container[probe], f"{path}.{probe}", port_names)
    if (
        isinstance((container.get("livenessProbe") or {}).get("successThreshold"), int)
        and container["livenessProbe"]["successThreshold"] != 1
    ):
        out.add(f"{path}.livenessProbe.successThreshold", "must be 1 for liveness probes")
    if (
        isinstance((container.get("startupProbe") or {}).get("successThreshold"), int)
        and container["startupProbe"]["successThreshold"] != 1
    ):
        out.add(f"{path}.startupProbe.successThreshold", "must be 1 for startup probes")
    for i, env in enumerate(container.get("env") or []):
        if isinstance(env, dict):
            name = env.get("name")
            if not isinstance(name, str) or not _ENV_VAR_NAME.match(name):
                out.add(
                    f"{path}.env[{i}].name",
                    f"{name!r} is not a valid environment variable name: letters, digits, '_', '-' and '.', not starting with a digit",
                )
            if env.get("value") is not None and env.get("valueFrom") is not None:
                out.add(f"{path}.env[{i}]", "value and valueFrom are mutually exclusive")
    for i, source in enumerate(container.get("envFrom") or []):
        prefix = (source or {}).get("prefix")
        if prefix and not _ENV_VAR_NAME.match(prefix):
            out.add(f"{path}.envFrom[{i}].prefix", f"{prefix!r} is not a valid environment variable prefix")
    check_resources(out, container.get("resources"), f"{path}.resources")
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.get("volumeMounts") or []):
        if not isinstance(mount, dict):
            continue
        if mount.get("name") not in volume_names:
            out.add(
                f"{path}.volumeMounts[{i}].name",
                f"mounts volume {mount.get('name')!r}, which the pod does not define; its volumes are {sorted(v for v in volume_names if v) or 'none'}",
            )
        mount_path = mount.get("mountPath")
        if mount_path in mount_paths:
            out.add(f"{path}.volumeMounts[{i}].mountPath", f"{mount_path!r} is mounted twice")
        mount_paths.add(mount_path)
        if isinstance(mount_path, str) and not mount_path:
            out.add(f"{path}.volumeMounts[{i}].mountPath", "mountPath must not be empty")
    policy = container.get("imagePullPolicy")
    if policy not in (None, "Always", "IfNotPresent", "Never"):
        out.add(f"{path}.imagePullPolicy", f"{policy!r} is not Always, IfNotPresent or Never")


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics (matchLabels AND matchExpressions); empty selects everything."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in LABEL_SELECTOR_OPERATORS:
            return False
    return True


def _check_workload_selector(out: _Collector, spec: dict) -> None:
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        out.add("spec.selector", "a non-empty selector is required (e.g. matchLabels of the template's labels)")
        return
    _check_label_selector(out, selector, "spec.selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector, labels):
        out.add(
            "spec.selector",
            f"selector {json.dumps(selector, sort_keys=True)} does not match the template's labels "
            f"{json.dumps(labels, sort_keys=True)}: the selector must select the pods the template creates",
        )


def _check_int_or_percent(out: _Collector, value: Any, path: str) -> None:
    if isinstance(value, str) and not is_unknown(value):
        if not re.fullmatch(r"[0-9]+%", value):
            out.add(path, f"{value!r} must be an integer or a percentage like '25%'")
        elif int(value[:-1]) > 100:
            out.add(path, f"{value!r} must not exceed 100%")
    elif isinstance(value, int) and value < 0:
        out.add(path, f"{value} must not be negative")


def _check_deployment_strategy(out: _Collector, strategy: dict) -> None:
    kind = strategy.get("type", "RollingUpdate")
    if kind not in ("RollingUpdate", "Recreate"):
        out.add("spec.strategy.type", f"{kind!r} is not RollingUpdate or Recreate")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate" and rolling is not None:
        out.add("spec.strategy.rollingUpdate", "may not be specified when strategy type is Recreate")
    if isinstance(rolling, dict):
        for key in ("maxSurge", "maxUnavailable"):
            _check_int_or_percent(out, rolling.get(key), f"spec.strategy.rollingUpdate.{key}")
        if str(rolling.get("maxSurge", "25%")) in ("0", "0%") and str(rolling.get("maxUnavailable", "25%")) in (
            "0",
            "0%",
        ):
            out.add("spec.strategy.rollingUpdate", "maxSurge and maxUnavailable may not both be 0")


def _check_service(out: _Collector, spec: dict) -> None:
    service_type = spec.get("type", "ClusterIP")
    if service_type not in SERVICE_TYPES:
        out.add("spec.type", f"invalid Service type {service_type!r}: valid types are {', '.join(SERVICE_TYPES)}")
    _check_labels(out, spec.get("selector"), "spec.selector")
    ports = spec.get("ports") or []
    if not ports and service_type != "ExternalName" and spec.get("clusterIP") != "None":
        out.add("spec.ports", "at least one port is required")
    names: set[str] = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        p = f"spec.ports[{i}]"
        _check_port_value(out, port.get("port"), f"{p}.port", None, "port")
        if isinstance(port.get("port"), str):
            out.add(f"{p}.port", "port must be a number")
        _check_port_value(out, port.get("targetPort"), f"{p}.targetPort", None, "targetPort")
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            out.add(f"{p}.protocol", f"invalid protocol {protocol!r}: valid protocols are {', '.join(PROTOCOLS)}")
        name = port.get("name")
        if len(ports) > 1 and not name:
            out.add(f"{p}.name", "a name is required when a Service has more than one port")
        if name:
            out.add(f"{p}.name", dns1123_label(name))
            if name in names:
                out.add(f"{p}.name", f"duplicate port name {name!r}")
            names.add(name)


def _check_network_policy(out: _Collector, spec: dict) -> None:
    _check_label_selector(out, spec.get("podSelector"), "spec.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            p = f"spec.{direction}[{i}]"
            for j, peer in enumerate((rule or {}).get(peers_key) or []):
                for key in ("podSelector", "namespaceSelector"):
                    _check_label_selector(out, (peer or {}).get(key), f"{p}.{peers_key}[{j}].{key}")
            for j, port in enumerate((rule or {}).get("ports") or []):
                _check_port_value(out, (port or {}).get("port"), f"{p}.ports[{j}].port", None, "port")
                protocol = (port or {}).get("protocol", "TCP")
                if protocol not in PROTOCOLS:
                    out.add(
                        f"{p}.ports[{j}].protocol",
                        f"invalid protocol {protocol!r}: valid protocols are {', '.join(PROTOCOLS)}",
                    )
    for i, policy_type in enumerate(spec.get("policyTypes") or []):
        if policy_type not in ("Ingress", "Egress"):
            out.add(f"spec.policyTypes[{i}]", f"{policy_type!r} is not Ingress or Egress")


# --- across objects -----------------------------------------------------------------------------


def _pods(objects: list[dict]) -> list[tuple[str, str | None, dict[str, str], dict]]:
    """(owner, namespace, labels the pods carry, pod spec) for every template of the objects."""
    pods = []
    for obj in objects:
        if not isinstance(obj, dict) or "kind" not in obj:
            continue
        namespace = (obj.get("metadata") or {}).get("namespace")
        for path, template in pod_templates(obj):
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            if obj.get("kind") == "LeaderWorkerSet":
                # Labels the LWS controller adds (leaderworkerset_types.go): the set's name and the
                # worker index (leader 0, workers 1..size-1); group index/key and revision vary.
                labels["leaderworkerset.sigs.k8s.io/name"] = (obj.get("metadata") or {}).get("name")
                labels["leaderworkerset.sigs.k8s.io/worker-index"] = "0" if path.endswith("leaderTemplate") else "*"
                labels.setdefault("leaderworkerset.sigs.k8s.io/group-index", "*")
                labels.setdefault("leaderworkerset.sigs.k8s.io/group-key", "*")
                labels.setdefault("leaderworkerset.sigs.k8s.io/template-revision-hash", "*")
            pods.append((f"{describe(obj)} {path}", namespace, labels, template.get("spec") or {}))
    return pods


def _map_selects(selector: dict, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v or (labels.get(k) == "*" and k in labels) for k, v in selector.items())


def check_objects(objects: list[dict]) -> list[Violation]:
    """Rules across objects: Service, PodDisruptionBudget and NetworkPolicy selectors each match some
    pod template rendered in their namespace; a Service's named targetPort is declared by them."""
    objects = [plain(o) for o in objects]  # type: ignore[misc]
    pods = _pods(objects)
    violations: list[Violation] = []
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        namespace = (obj.get("metadata") or {}).get("namespace")
        here = [p for p in pods if p[1] == namespace]
        where = f"namespace {namespace!r}" if namespace else "the default namespace"
        available = (
            "; ".join(f"{owner}: {json.dumps(labels, sort_keys=True)}" for owner, _, labels, _ in here) or "none"
        )
        if kind == "Service" and isinstance(spec.get("selector"), dict) and spec["selector"]:
            selected = [p for p in here if _map_selects(spec["selector"], p[2])]
            if not selected:
                violations.append(
                    Violation(
                        describe(obj),
                        "spec.selector",
                        f"selector {json.dumps(spec['selector'], sort_keys=True)} matches no pod template rendered in {where}; pod labels there: {available}",
                    )
                )
            for i, port in enumerate(spec.get("ports") or []):
                target = (port or {}).get("targetPort")
                if isinstance(target, str) and selected and not is_unknown(target):
                    declared = {
                        cp.get("name")
                        for _, _, _, pod in selected
                        for c in pod.get("containers") or []
                        for cp in c.get("ports") or []
                    }
                    if target not in declared:
                        violations.append(
                            Violation(
                                describe(obj),
                                f"spec.ports[{i}].targetPort",
                                f"targetPort {target!r} is not a container port name of the selected pods (they declare {sorted(n for n in declared if n) or 'none'})",
                            )
                        )
        if kind == "PodDisruptionBudget" and isinstance(spec.get("selector"), dict):
            if not any(selector_matches(spec["selector"], _concrete(p[2])) for p in here):
                violations.append(
                    Violation(
                        describe(obj),
                        "spec.selector",
                        f"selector {json.dumps(spec['selector'], sort_keys=True)} matches no pod template rendered in {where}: the budget protects nothing; pod labels there: {available}",
                    )
                )
        if kind == "NetworkPolicy":
            selector = spec.get("podSelector")
            if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")):
                if not any(selector_matches(selector, _concrete(p[2])) for p in here):
                    violations.append(
                        Violation(
                            describe(obj),
                            "spec.podSelector",
                            f"podSelector {json.dumps(selector, sort_keys=True)} matches no pod template rendered in {where}; pod labels there: {available}",
                        )
                    )
    return violations


def _concrete(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if v != "*"}


# --- Helm releases ------------------------------------------------------------------------------

# Top-level keys of each chart's values.yaml (plus Helm's own "global"). Helm ignores unknown keys
# silently, so a misspelled one would quietly fall back to the chart's default.
CHART_VALUE_KEYS: dict[str, frozenset[str]] = {
    # NVIDIA/k8s-device-plugin deployments/helm/nvidia-device-plugin/values.yaml (0.17-0.19)
    "nvidia-device-plugin": frozenset(
        {
            "config",
            "compatWithCPUManager",
            "migStrategy",
            "failOnInitError",
            "deviceListStrategy",
            "deviceIDStrategy",
            "nvidiaDriverRoot",
            "gdrcopyEnabled",
            "gdsEnabled",
            "mofedEnabled",
            "deviceDiscoveryStrategy",
            "nameOverride",
            "fullnameOverride",
            "namespaceOverride",
            "selectorLabelsOverride",
            "componentSelectorLabels",
            "allowDefaultNamespace",
            "imagePullSecrets",
            "image",
            "updateStrategy",
            "podAnnotations",
            "podSecurityContext",
            "securityContext",
            "resources",
            "nodeSelector",
            "affinity",
            "tolerations",
            "priorityClassName",
            "runtimeClassName",
            "devicePlugin",
            "gfd",
            "nfd",
            "mps",
            "cdi",
            "global",
        }
    ),
    # aws/eks-charts stable/aws-efa-k8s-device-plugin/values.yaml
    "aws-efa-k8s-device-plugin": frozenset(
        {
            "image",
            "securityContext",
            "supportedInstanceLabels",
            "resources",
            "nodeSelector",
            "tolerations",
            "affinity",
            "additionalPodAnnotations",
            "additionalPodLabels",
            "nameOverride",
            "fullnameOverride",
            "imagePullSecrets",
            "updateStrategy",
            "priorityClassName",
            "global",
        }
    ),
}

# Keys inside chart values whose value is a core Kubernetes type, wherever they appear.
_VALUES_TYPES = {
    "affinity": ("io.k8s.api.core.v1.Affinity", False),
    "tolerations": ("io.k8s.api.core.v1.Toleration", True),
    "resources": ("io.k8s.api.core.v1.ResourceRequirements", False),
}


def check_helm_release(props: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    props = plain(props)  # type: ignore[assignment]
    name = describe_release(props)
    out = _Collector(name)
    chart, version = props.get("chart"), props.get("version")
    if not chart:
        out.add("chart", "chart is required")
    if not version or is_unknown(version):
        out.add("version", "the chart version must be pinned (an unpinned chart changes under you at the next deploy)")
    release_name = props.get("name")
    if release_name is not None and not is_unknown(release_name):
        problem = dns1123_subdomain(release_name)
        if problem or len(release_name) > 53:
            out.add(
                "name", f"Helm release names must be DNS-1123 subdomains of at most 53 characters: {release_name!r}"
            )
    if props.get("namespace") is not None and not is_unknown(props["namespace"]):
        out.add("namespace", dns1123_label(props["namespace"]))
    values = props.get("values") or {}
    if not isinstance(values, dict):
        out.add("values", "values must be a mapping")
        return out.items
    known = CHART_VALUE_KEYS.get(str(chart))
    if known is not None:
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                out.add(
                    f"values.{key}",
                    f"unknown top-level value {key!r} for chart {chart}{hint}: Helm would ignore it; the chart's keys are {', '.join(sorted(known))}",
                )
    else:
        out.items.append(
            Violation(
                name,
                "values",
                f"no list of value keys for chart {chart!r}: only embedded affinity/tolerations/nodeSelector/resources were checked",
                "warning",
            )
        )

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            p = _join(path, key)
            if key in _VALUES_TYPES and value not in (None, {}, []):
                definition, array = _VALUES_TYPES[key]
                per_version = {v: _schema_errors(schemas(v).for_definition(definition, array), value) for v in versions}
                out.items.extend(_merge_versions(per_version, name, p))
                if key == "affinity":
                    check_affinity(out, value, p)
                elif key == "tolerations":
                    check_tolerations(out, value, p)
                else:
                    check_resources(out, value, p)
            elif key == "nodeSelector" and isinstance(value, dict):
                _check_labels(out, value, p)
            else:
                walk(value, p)

    walk(values, "values")
    return out.items


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
        return f"{_path(error.path)}: {error.message}"
    return None
