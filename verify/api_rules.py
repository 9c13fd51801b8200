"""The API server's validation rules that the OpenAPI schemas leave to plain strings.

What ``kubernetes-validate``'s schemas type as strings or leave out, checked as the API server's
validation (``k8s.io/kubernetes/pkg/apis/*/validation``) does: node-selector operators and their
values, label-selector operators, toleration operators and effects, resource quantities (grammar,
requests <= limits, extended resources whole and requests == limits), DNS-1123/1035 names, label
and annotation keys and values, container/volume/port names (unique, IANA service names), probe and
Service ports (named ports must exist), emptyDir ``sizeLimit``, env var names, volume mounts naming
defined volumes, workload selectors matching their templates, Deployment strategies, and
LeaderWorkerSet's sub-group sizes (its webhook's rule). One object at a time; rules across objects
are ``verify.references``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from stack.kubernetes_names import (
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    iana_svc_name,
    label_value,
    parse_quantity,
    qualified_name,
    quantity_problem,
)
from verify import Violation, is_unknown
from verify.manifests import describe, join_path, pod_templates
from verify.selectors import LABEL_SELECTOR_OPERATORS, NODE_SELECTOR_OPERATORS, selector_matches

TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # strict form (relaxed only from 1.34 GA)


class Collector:
    def __init__(self, obj: str):
        self.obj = obj
        self.items: list[Violation] = []

    def add(self, path: str, message: str | None) -> None:
        if message:
            self.items.append(Violation(self.obj, path, message))


def check_rules(obj: dict) -> list[Violation]:
    out = Collector(describe(obj))
    kind = obj.get("kind")
    metadata = obj.get("metadata") or {}
    _check_metadata(out, metadata, kind, "metadata")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    for path, template in pod_templates(obj):
        check_labels(out, (template.get("metadata") or {}).get("labels"), join_path(path, "metadata.labels"))
        _check_annotations(
            out, (template.get("metadata") or {}).get("annotations"), join_path(path, "metadata.annotations")
        )
        if isinstance(template.get("spec"), dict):
            _check_pod_spec(out, template["spec"], join_path(path, "spec"))
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
        check_label_selector(out, spec.get("selector"), "spec.selector")
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


def _check_metadata(out: Collector, metadata: dict, kind: str | None, path: str) -> None:
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
    check_labels(out, metadata.get("labels"), f"{path}.labels")
    _check_annotations(out, metadata.get("annotations"), f"{path}.annotations")


def check_labels(out: Collector, labels: Any, path: str) -> None:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        out.add(f"{path}[{key!r}]", qualified_name(key))
        if not is_unknown(value):
            out.add(f"{path}[{key!r}]", label_value(value))


def _check_annotations(out: Collector, annotations: Any, path: str) -> None:
    if not isinstance(annotations, dict):
        return
    for key in annotations:
        out.add(f"{path}[{key!r}]", qualified_name(str(key).lower()))
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > 256 * 1024:
        out.add(path, f"annotations total {size} bytes, more than the 262144 the API server accepts")


def check_label_selector(out: Collector, selector: Any, path: str) -> None:
    if not isinstance(selector, dict):
        return
    check_labels(out, selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expression in enumerate(selector.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(expression, dict):
            continue
        out.add(f"{p}.key", qualified_name(expression.get("key")))
        operator, values = expression.get("operator"), expression.get("values") or []
        if operator not in LABEL_SELECTOR_OPERATORS:
            out.add(
                f"{p}.operator",
                f"invalid label selector operator {operator!r}: valid operators are "
                f"{', '.join(LABEL_SELECTOR_OPERATORS)}",
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


def _check_node_selector_term(out: Collector, term: Any, path: str) -> None:
    if not isinstance(term, dict):
        return
    for i, expression in enumerate(term.get("matchExpressions") or []):
        for p, m in check_node_selector_requirement(expression, f"{path}.matchExpressions[{i}]"):
            out.add(p, m)
    for i, expression in enumerate(term.get("matchFields") or []):
        for p, m in check_node_selector_requirement(expression, f"{path}.matchFields[{i}]", fields=True):
            out.add(p, m)


def check_affinity(out: Collector, affinity: Any, path: str) -> None:
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


def _check_pod_affinity_term(out: Collector, term: Any, path: str) -> None:
    if not isinstance(term, dict):
        return
    if not term.get("topologyKey"):
        out.add(f"{path}.topologyKey", "topologyKey is required and must not be empty")
    else:
        out.add(f"{path}.topologyKey", qualified_name(term["topologyKey"]))
    check_label_selector(out, term.get("labelSelector"), f"{path}.labelSelector")
    check_label_selector(out, term.get("namespaceSelector"), f"{path}.namespaceSelector")


def check_tolerations(out: Collector, tolerations: Any, path: str) -> None:
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
        return (
            f"unknown resource {name!r}: use cpu, memory, ephemeral-storage, hugepages-<size> or a "
            "domain-qualified extended resource (e.g. nvidia.com/gpu)"
        )
    return qualified_name(name)


def _is_extended(name: str) -> bool:
    if "/" not in name:
        return False
    domain = name.split("/")[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io") or name.startswith("requests."))


def check_resources(out: Collector, resources: Any, path: str) -> None:
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
                f"request {resources['requests'][name]!r} exceeds limit {resources['limits'][name]!r}: requests must "
                "be <= limits",
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
                    f"{name} cannot be overcommitted: request {resources['requests'][name]!r} must equal limit "
                    f"{resources['limits'][name]!r}",
                )


def _check_port_value(out: Collector, port: Any, path: str, names: set[str] | None, what: str) -> None:
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
                f"{what} names port {port!r}, which the container does not declare; its ports are "
                f"{sorted(names) or 'none'}",
            )


def _check_probe(out: Collector, probe: Any, path: str, port_names: set[str]) -> None:
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


def _check_pod_spec(out: Collector, pod: dict, path: str) -> None:
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
        check_labels(out, node_selector, f"{path}.nodeSelector")
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
        check_label_selector(out, constraint.get("labelSelector"), f"{p}.labelSelector")
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


def _check_container(out: Collector, container: dict, path: str, volume_names: set[str], section: str) -> None:
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
                    f"{name!r} is not a valid environment variable name: letters, digits, '_', '-' and '.', not "
                    "starting with a digit",
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
                f"mounts volume {mount.get('name')!r}, which the pod does not define; its volumes are "
                f"{sorted(v for v in volume_names if v) or 'none'}",
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


def _check_workload_selector(out: Collector, spec: dict) -> None:
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        out.add("spec.selector", "a non-empty selector is required (e.g. matchLabels of the template's labels)")
        return
    check_label_selector(out, selector, "spec.selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector, labels):
        out.add(
            "spec.selector",
            f"selector {json.dumps(selector, sort_keys=True)} does not match the template's labels "
            f"{json.dumps(labels, sort_keys=True)}: the selector must select the pods the template creates",
        )


def _check_int_or_percent(out: Collector, value: Any, path: str) -> None:
    if isinstance(value, str) and not is_unknown(value):
        if not re.fullmatch(r"[0-9]+%", value):
            out.add(path, f"{value!r} must be an integer or a percentage like '25%'")
        elif int(value[:-1]) > 100:
            out.add(path, f"{value!r} must not exceed 100%")
    elif isinstance(value, int) and value < 0:
        out.add(path, f"{value} must not be negative")


def _check_deployment_strategy(out: Collector, strategy: dict) -> None:
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


def _check_service(out: Collector, spec: dict) -> None:
    service_type = spec.get("type", "ClusterIP")
    if service_type not in SERVICE_TYPES:
        out.add("spec.type", f"invalid Service type {service_type!r}: valid types are {', '.join(SERVICE_TYPES)}")
    check_labels(out, spec.get("selector"), "spec.selector")
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


def _check_network_policy(out: Collector, spec: dict) -> None:
    check_label_selector(out, spec.get("podSelector"), "spec.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            p = f"spec.{direction}[{i}]"
            for j, peer in enumerate((rule or {}).get(peers_key) or []):
                for key in ("podSelector", "namespaceSelector"):
                    check_label_selector(out, (peer or {}).get(key), f"{p}.{peers_key}[{j}].{key}")
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
