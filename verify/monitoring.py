"""Checks of the monitoring objects by the rules of what will read them.

- Custom resources (PodMonitor, ServiceMonitor, PrometheusRule) against the ``openAPIV3Schema``
  of the pinned prometheus-operator release's CRDs (vendored from kube-prometheus-stack 88.5.3,
  ``verify/vendor/kube-prometheus-stack-88.5.3``), strictly: a field the schema does not declare
  is an error, as the API server's strict field validation (kubectl's default) makes it. The
  chart values the stack passes into the Prometheus resource (``remoteWrite``) against the
  Prometheus CRD likewise.
- Helm values: every key the stack sets exists in the pinned chart's ``values.yaml`` or is read by
  its templates (vendored), since Helm silently ignores a misspelled key.
- Every PromQL expression, in the rules and in the dashboards' targets, parsed by
  ``promql-parser`` (a Rust port of Prometheus's own grammar).
- Every metric name those expressions select: ``vllm:*`` against the ``/metrics`` a real vLLM
  0.32.0 server exported (``verify/vendor/vllm-0.32.0-cpu-metrics.txt``, captured by
  ``vllm_check.metrics_names``), ``DCGM_*`` against the counters DCGM exporter is configured
  with (its pinned release's ``default-counters.csv`` plus the ones the stack enables), ``up``
  as Prometheus's own; anything else is unknown.
- Labels the dashboards read off ``vllm:cache_config_info`` exist on it.

``python -m verify.monitoring`` builds the objects of every stack with each Prometheus mode and
checks them; ``check_manifests`` is what a synthesised stack's objects go through.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import yaml

from components import monitoring
from verify import Violation

VENDOR = Path(__file__).resolve().parent / "vendor"
CRDS = VENDOR / "kube-prometheus-stack-88.5.3" / "crds"
VLLM_METRICS_FIXTURE = VENDOR / "vllm-0.32.0-cpu-metrics.txt"
PROMETHEUS_BUILTIN = {"up"}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')


# --- CRD schemas ------------------------------------------------------------------------------------


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of each served version of each vendored CRD."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the structural schema does not declare (the API server prunes or, strictly, rejects them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                found += _unknown_fields(item, properties[key], where)
            elif isinstance(additional, dict):
                found += _unknown_fields(item, additional, where)
            elif properties is not None and path != "metadata":
                found.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


def describe(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    return f"{manifest.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name')}"


def check_custom_resource(manifest: dict[str, Any]) -> list[Violation]:
    """A monitoring.coreos.com object against its vendored CRD schema."""
    what = describe(manifest)
    key = (manifest.get("apiVersion"), manifest.get("kind"))
    schema = crd_schemas().get(key)  # type: ignore[arg-type]
    if schema is None:
        known = ", ".join(f"{v} {k}" for v, k in sorted(crd_schemas()))
        return [Violation(what, "kind", f"{key[0]} {key[1]} is not served by the vendored CRDs ({known})")]
    violations = []
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        violations.append(Violation(what, path, error.message))
    for path in _unknown_fields(manifest, schema, ""):
        violations.append(Violation(what, path, "unknown field: the CRD's schema does not declare it"))
    return violations


def check_prometheus_spec_values(values: dict[str, Any]) -> list[Violation]:
    """kube-prometheus-stack's ``prometheus.prometheusSpec`` keys the stack sets, which the chart
    copies into the Prometheus resource's spec (``remoteWrite`` for Amazon Managed Prometheus),
    against that CRD's schema."""
    what = "kube-prometheus-stack values prometheus.prometheusSpec"
    spec_schema = crd_schemas()[("monitoring.coreos.com/v1", "Prometheus")]["properties"]["spec"]
    violations = []
    for key, value in ((values.get("prometheus") or {}).get("prometheusSpec") or {}).items():
        schema = spec_schema["properties"].get(key)
        if schema is None:
            violations.append(Violation(what, key, "not a field of the Prometheus resource's spec"))
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(value):
            path = ".".join([key, *(str(p) for p in error.absolute_path)])
            violations.append(Violation(what, path, error.message))
        violations += [
            Violation(what, path, "unknown field: the CRD's schema does not declare it")
            for path in _unknown_fields(value, schema, key)
        ]
    return violations


CHART_DEFAULTS = {
    monitoring.KUBE_PROMETHEUS_STACK_CHART: VENDOR / "kube-prometheus-stack-88.5.3",
    monitoring.DCGM_CHART: VENDOR / "dcgm-exporter-4.8.2",
}


@functools.cache
def _chart(chart: str) -> tuple[dict[str, Any], str]:
    """The chart's default values and the text of its templates (when vendored)."""
    directory = CHART_DEFAULTS[chart]
    defaults = yaml.load((directory / "values.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    templates = "\n".join(p.read_text() for p in sorted((directory / "templates").glob("*")))
    return defaults, templates


def check_chart_values(chart: str, values: dict[str, Any]) -> list[Violation]:
    """Every key path the stack sets exists in the pinned chart's ``values.yaml`` or is read by one of
    its templates; below a default that is empty or not a mapping (``affinity: {}``) any key goes."""
    defaults, templates = _chart(chart)
    what = f"helm values of {chart}"
    violations = []

    def walk(node: dict[str, Any], default: Any, path: str) -> None:
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            if isinstance(default, dict) and key in default:
                inner = default[key]
                if isinstance(value, dict) and isinstance(inner, dict) and inner:
                    walk(value, inner, where)
            elif re.search(rf"\.Values\.{re.escape(where)}(?![\w])", templates):
                continue
            else:
                violations.append(Violation(what, where, f"not a value of chart {chart}: Helm would ignore it"))

    walk(values, defaults, "")
    return violations


# --- PromQL -------------------------------------------------------------------------------------------


def expressions(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) of every PromQL expression in a PrometheusRule or a dashboard ConfigMap."""
    found = []
    if manifest.get("kind") == "PrometheusRule":
        for group in manifest["spec"]["groups"]:
            for index, rule in enumerate(group["rules"]):
                name = rule.get("alert") or rule.get("record") or str(index)
                found.append((f"spec.groups[{group['name']}].rules[{name}].expr", rule["expr"]))
    elif manifest.get("kind") == "ConfigMap":
        for key, text in (manifest.get("data") or {}).items():
            if key.endswith(".json"):
                for panel in json.loads(text).get("panels", []):
                    for target in panel.get("targets", []):
                        found.append((f"data[{key}].panels[{panel['title']}].{target['refId']}", target["expr"]))
    return found


def selected_metrics(expr: str) -> set[str]:
    """Metric names an expression selects (raises ValueError when it does not parse)."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(matcher.value)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


@functools.cache
def vllm_exposition() -> dict[str, set[str]]:
    """Sample name -> label names, from the captured /metrics of the real vLLM server."""
    samples: dict[str, set[str]] = {}
    for line in VLLM_METRICS_FIXTURE.read_text().splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples.setdefault(match.group(1), set()).update(LABEL.findall(match.group(2) or ""))
    return samples


def metric_problem(name: str) -> str | None:
    if name.startswith("vllm:"):
        if name not in vllm_exposition():
            return f"{name} is not exported by vLLM 0.32.0 ({VLLM_METRICS_FIXTURE.name})"
        if name not in monitoring.VLLM_METRICS:
            return (
                f"{name} is used but not listed in components.monitoring.VLLM_METRICS "
                "(the list make verify-vllm checks against the live server)"
            )
        return None
    if name.startswith("DCGM_"):
        if name not in monitoring.dcgm_counter_names():
            return (
                f"{name} is not among DCGM exporter {monitoring.DCGM_IMAGE_TAG}'s configured counters "
                f"(default-counters.csv + {', '.join(monitoring.DCGM_EXTRA_COUNTERS)})"
            )
        return None
    if name in PROMETHEUS_BUILTIN:
        return None
    return f"{name}: no known exporter of this metric (vLLM, DCGM exporter, Prometheus's up)"


def check_expressions(manifest: dict[str, Any]) -> list[Violation]:
    what = describe(manifest)
    violations = []
    for where, expr in expressions(manifest):
        try:
            names = selected_metrics(expr)
        except ValueError as error:
            violations.append(Violation(what, where, f"PromQL does not parse: {error}: {expr}"))
            continue
        violations += [Violation(what, where, problem) for problem in filter(None, map(metric_problem, sorted(names)))]
    return violations


def check_dashboard_labels(manifest: dict[str, Any]) -> list[Violation]:
    """The cache table's ``by (...)`` labels exist on vllm:cache_config_info."""
    have = vllm_exposition().get(monitoring.VLLM_CACHE_CONFIG_INFO, set())
    missing = sorted(set(monitoring.VLLM_CACHE_CONFIG_LABELS) - have)
    if manifest.get("kind") != "ConfigMap" or not missing:
        return []
    return [Violation(describe(manifest), "data", f"{monitoring.VLLM_CACHE_CONFIG_INFO} has no label(s) {missing}")]


def check_manifests(manifests: list[dict[str, Any]]) -> list[Violation]:
    violations = []
    for manifest in manifests:
        if str(manifest.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
            violations += check_custom_resource(manifest)
        violations += check_expressions(manifest)
        violations += check_dashboard_labels(manifest)
    return violations


# --- every stack, every mode --------------------------------------------------------------------------

MODES = {
    "install": {"prometheus": {"mode": "install"}},
    "existing": {
        "prometheus": {"mode": "existing", "namespace": "observability", "selectorLabels": {"prometheus": "k8s"}}
    },
    "amazonManaged": {
        "prometheus": {
            "mode": "amazonManaged",
            "workspaceId": "ws-12345678-1234-1234-1234-123456789012",
            "region": "us-east-1",
            "roleArn": "arn:aws:iam::123456789012:role/amp-remote-write",
        }
    },
}


def stack_manifests(stack: str, monitoring_config: dict[str, Any]) -> list[dict[str, Any]]:
    """The monitoring objects a stack's plan gives with this ``monitoring`` section (over the stack's own)."""
    from stack.config import parse_config
    from stack.mockrun import load_stack_config
    from stack.monitoring_config import MonitoringConfig
    from stack.placement import place
    from stack.project import PROJECT

    raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith(f"{PROJECT}:")}
    placement = place(parse_config({k: v for k, v in raw.items() if k in ("cluster", "nodeGroups", "models")}))
    # The stack's own section (its alerts' service levels) with the Prometheus of the mode checked.
    config = MonitoringConfig.model_validate({**(raw.get("monitoring") or {}), **monitoring_config})
    server_ns = placement.config.cluster.namespace
    ns = monitoring.monitoring_namespace(config)
    selector = monitoring.prometheus_selector_labels(config)
    manifests: list[dict[str, Any]] = [
        monitoring.pod_monitor(m, server_ns, selector) for m in monitoring.monitored_models(placement)
    ]
    manifests.append(monitoring.prometheus_rule(placement, config, server_namespace=server_ns, rule_namespace=ns))
    for name, board in monitoring.dashboards(placement, config, server_ns).items():
        manifests.append(monitoring.dashboard_config_map(name, board, ns))
    return manifests


def main(argv: list[str] | None = None) -> int:
    from stack.monitoring_config import MonitoringConfig
    from verify.stacks import stack_names

    parser = argparse.ArgumentParser(prog="python -m verify.monitoring", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", action="append")
    args = parser.parse_args(argv)
    failed = False
    for stack in args.stack or stack_names():
        for mode, config in MODES.items():
            manifests = stack_manifests(stack, config)
            violations = check_manifests(manifests)
            parsed = MonitoringConfig.model_validate(config)
            if parsed.prometheus.installs_chart:
                values = monitoring.kube_prometheus_stack_values(parsed)
                violations += check_prometheus_spec_values(values)
                violations += check_chart_values(monitoring.KUBE_PROMETHEUS_STACK_CHART, values)
            dcgm = monitoring.dcgm_values(["gpu"], monitoring.prometheus_selector_labels(parsed))
            violations += check_chart_values(monitoring.DCGM_CHART, dcgm)
            exprs = sum(len(expressions(m)) for m in manifests)
            status = "FAIL" if violations else "ok  "
            print(f"{status} {stack} ({mode}): {len(manifests)} objects, {exprs} PromQL expressions")
            for violation in violations:
                print(f"     - {violation}")
            failed = failed or bool(violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
