"""Pulumi's Helm releases (``kubernetes:helm.sh/v3:Release``, not Kubernetes objects) before Helm sees them.

The chart must be pinned, the release name valid, and every top-level key of ``values`` one the
chart declares: Helm ignores unknown keys silently, so a misspelt one quietly falls back to the
chart's default. The keys come from the chart's own ``values.yaml`` at the version the project pins
(vendored under ``verify/vendor/``, see ``VALUES_FILES``), plus Helm's ``global``. Every
``affinity``/``tolerations``/``resources`` inside ``values`` is checked against the core schema of
each Kubernetes version and the API server's rules, every ``nodeSelector`` as labels. The chart's
rendered manifests themselves are checked by Helm (and the API server) at deploy time, not here.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from typing import Any

import yaml

from stack.kubernetes_names import dns1123_label, dns1123_subdomain
from verify import Violation, is_unknown, plain
from verify.api_rules import Collector, check_affinity, check_labels, check_resources, check_tolerations
from verify.crds import VENDOR
from verify.json_schema import schema_errors
from verify.manifests import join_path
from verify.schemas import SUPPORTED_VERSIONS, merge_versions, schemas

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"

# (chart name, the version components/ pins) -> the chart's values.yaml at that version, vendored.
VALUES_FILES: dict[tuple[str, str], str] = {
    ("nvidia-device-plugin", "0.19.0"): "nvidia-device-plugin-0.19.0-values.yaml",
    ("aws-efa-k8s-device-plugin", "v0.5.20"): "aws-efa-k8s-device-plugin-v0.5.20-values.yaml",
    ("kai-scheduler", "v0.9.3"): "kai-scheduler-v0.9.3-values.yaml",
    ("lws", "0.8.0"): "lws-chart-0.8.0-values.yaml",
    ("kube-prometheus-stack", "88.5.3"): "kube-prometheus-stack-88.5.3/values.yaml",
    ("keda", "2.20.2"): "keda-chart-2.20.2-values.yaml",
    ("cluster-autoscaler", "9.51.0"): "cluster-autoscaler-chart-9.51.0-values.yaml",
}


def chart_name(chart: Any) -> str:
    """``oci://registry.k8s.io/lws/charts/lws`` -> ``lws``; a repository chart's name as it is."""
    return str(chart).rstrip("/").rsplit("/", 1)[-1]


@functools.cache
def chart_value_keys(chart: str, version: str) -> frozenset[str] | None:
    """The top-level keys of the chart's vendored values.yaml (plus Helm's ``global``); None if
    that chart version is not vendored."""
    name = VALUES_FILES.get((chart_name(chart), version))
    if name is None:
        return None
    values = yaml.safe_load((VENDOR / name).read_text()) or {}
    return frozenset(values) | {"global"}


def describe_release(props: dict) -> str:
    namespace, name = props.get("namespace", "<default>"), props.get("name", "<unnamed>")
    return f"helm Release {namespace}/{name} (chart {props.get('chart')} {props.get('version', '<unpinned>')})"


# Keys inside chart values whose value is a core Kubernetes type, wherever they appear.
_VALUES_TYPES = {
    "affinity": ("io.k8s.api.core.v1.Affinity", False),
    "tolerations": ("io.k8s.api.core.v1.Toleration", True),
    "resources": ("io.k8s.api.core.v1.ResourceRequirements", False),
}


def check_helm_release(props: dict, versions: Iterable[str] = SUPPORTED_VERSIONS) -> list[Violation]:
    props = plain(props)  # type: ignore[assignment]
    name = describe_release(props)
    out = Collector(name)
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
    pinned = bool(version) and not is_unknown(version)
    vendored = sorted(v for c, v in VALUES_FILES if c == chart_name(chart))
    # Unpinned (reported above): the keys of the vendored version still catch a misspelt value.
    known = chart_value_keys(str(chart), str(version) if pinned else (vendored or [""])[-1])
    if known is not None:
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                out.add(
                    f"values.{key}",
                    f"unknown top-level value {key!r} for chart {chart} {version}{hint}: Helm would ignore it; "
                    f"the chart's keys are {', '.join(sorted(known))}",
                )
    elif vendored:
        out.add(
            "version",
            f"chart {chart} {version} has no vendored values.yaml (vendored: {', '.join(vendored)}): vendor the "
            "pinned version's values.yaml under verify/vendor/ and list it in verify.charts.VALUES_FILES",
        )
    else:
        out.items.append(
            Violation(
                name,
                "values",
                f"no vendored values.yaml for chart {chart!r}: only embedded affinity/tolerations/nodeSelector/"
                "resources were checked",
                "warning",
            )
        )

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            p = join_path(path, key)
            if key in _VALUES_TYPES and value not in (None, {}, []):
                definition, array = _VALUES_TYPES[key]
                per_version = {v: schema_errors(schemas(v).for_definition(definition, array), value) for v in versions}
                out.items.extend(merge_versions(per_version, name, p))
                if key == "affinity":
                    check_affinity(out, value, p)
                elif key == "tolerations":
                    check_tolerations(out, value, p)
                else:
                    check_resources(out, value, p)
            elif key == "nodeSelector" and isinstance(value, dict):
                check_labels(out, value, p)
            else:
                walk(value, p)

    walk(values, "values")
    return out.items
