"""How Kubernetes matches: label selectors against pod labels (Services, PodDisruptionBudgets,
NetworkPolicies, workloads), node selectors and required node affinity against node labels, and
tolerations against taints, each with the semantics of the controller or scheduler that decides it.

Shared by the checks (``verify.api_rules``, ``verify.references``, ``verify.invariants``) and the
test harness, so a test and a check cannot disagree on what selects what.
"""

from __future__ import annotations

from typing import Any

LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")

# The EKS API spells taint effects its own way (CreateNodegroup's TaintEffect).
EKS_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


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


def map_selects(selector: dict, labels: dict[str, str]) -> bool:
    """A Service's plain map selector; a label value ``*`` stands for any value a controller sets."""
    return all(labels.get(k) == v or (labels.get(k) == "*" and k in labels) for k, v in selector.items())


def expression_matches(expression: dict, labels: dict[str, str]) -> bool:
    """Whether a node with ``labels`` satisfies one node-selector requirement, as the scheduler
    decides it (an invalid operator or a non-integer Gt/Lt bound matches nothing)."""
    key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels and len(values) == 1:
        try:
            node, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return node > bound if operator == "Gt" else node < bound
    return False


def affinity_matches(pod: dict, labels: dict[str, str]) -> bool:
    """nodeSelector AND required node affinity (terms ORed, expressions ANDed)."""
    if any(labels.get(k) != v for k, v in (pod.get("nodeSelector") or {}).items()):
        return False
    required = ((pod.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(
        all(expression_matches(e, labels) for e in term.get("matchExpressions") or [])
        for term in required.get("nodeSelectorTerms") or []
    )


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    """Whether a pod with ``tolerations`` may run on a node with ``taint`` (EKS effect spelling too)."""
    effect = EKS_EFFECTS.get(taint.get("effect"), taint.get("effect"))
    for toleration in tolerations or []:
        if toleration.get("effect") not in (None, "", effect):
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if toleration.get("key") in (None, "", taint.get("key")):
                return True
        elif toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False
