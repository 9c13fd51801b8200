"""Rules across the objects of one stack: what refers to what.

Every Service, PodDisruptionBudget and NetworkPolicy selector matches some pod template rendered in
its namespace (else the Service has no endpoints, the budget protects nothing, the policy applies
to nothing), and a Service's named ``targetPort`` is a container port name of the pods it selects.
Pods of a LeaderWorkerSet carry the labels its controller adds (the set's name, the worker index).
A KEDA ScaledObject's ``scaleTargetRef`` names a workload rendered in its namespace (else KEDA's
HPA scales nothing and the model keeps its creation count).
"""

from __future__ import annotations

import json

from verify import Violation, is_unknown, plain
from verify.manifests import describe, pod_templates
from verify.selectors import map_selects, selector_matches


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
            selected = [p for p in here if map_selects(spec["selector"], p[2])]
            if not selected:
                violations.append(
                    Violation(
                        describe(obj),
                        "spec.selector",
                        f"selector {json.dumps(spec['selector'], sort_keys=True)} matches no pod template rendered "
                        f"in {where}; pod labels there: {available}",
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
                                f"targetPort {target!r} is not a container port name of the selected pods (they "
                                f"declare {sorted(n for n in declared if n) or 'none'})",
                            )
                        )
        if kind == "PodDisruptionBudget" and isinstance(spec.get("selector"), dict):
            if not any(selector_matches(spec["selector"], _concrete(p[2])) for p in here):
                violations.append(
                    Violation(
                        describe(obj),
                        "spec.selector",
                        f"selector {json.dumps(spec['selector'], sort_keys=True)} matches no pod template rendered "
                        f"in {where}: the budget protects nothing; pod labels there: {available}",
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
                            f"podSelector {json.dumps(selector, sort_keys=True)} matches no pod template rendered in "
                            f"{where}; pod labels there: {available}",
                        )
                    )
        if kind == "ScaledObject" and isinstance(spec.get("scaleTargetRef"), dict):
            ref = spec["scaleTargetRef"]
            wanted = (ref.get("apiVersion", "apps/v1"), ref.get("kind", "Deployment"), ref.get("name"))
            rendered = {
                (o.get("apiVersion"), o.get("kind"), (o.get("metadata") or {}).get("name"))
                for o in objects
                if isinstance(o, dict) and (o.get("metadata") or {}).get("namespace") == namespace
            }
            if wanted not in rendered:
                workloads = sorted(f"{k} {n}" for _, k, n in rendered if k in SCALABLE_KINDS)
                violations.append(
                    Violation(
                        describe(obj),
                        "spec.scaleTargetRef",
                        f"{wanted[1]} {wanted[2]!r} ({wanted[0]}) is not rendered in {where}: the autoscaler would "
                        f"scale nothing; workloads there: {', '.join(workloads) or 'none'}",
                    )
                )
    return violations


SCALABLE_KINDS = ("Deployment", "StatefulSet", "LeaderWorkerSet")


def _concrete(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if v != "*"}
