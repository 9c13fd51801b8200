"""Every Kubernetes object a model's name becomes, at its real length, checked against the rule that object's kind has.

A model named ``n`` is served as: Service ``n`` (a DNS-1035 label: it must start with a letter),
Deployment, PodDisruptionBudget and NetworkPolicy ``n``, ConfigMap ``n-smoke-test`` and Job
``n-smoke-<8 hex>`` (components.smoke_test), and the value of the pods' labels. A model that spans
nodes is a LeaderWorkerSet ``n-lws`` (components.server_pod.LWS_NAME_SUFFIX) with a revision
Service ``n-rev-<8 hex>``. The LeaderWorkerSet controller makes a headless Service named after it and
one StatefulSet ``n-lws-<group>`` per replica. The limits that bite are not the 253 characters of an
object name but the 63 of a label value: a Job puts its name in the ``batch.kubernetes.io/job-name``
label, and a StatefulSet puts ``<name>-<10-character hash>`` in each pod's ``controller-revision-hash``
label, which caps StatefulSet names at 52. ``tests/stack/test_derived_names.py`` compares these names
with what the components render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stack.kubernetes_names import dns1035_label, dns1123_label, dns1123_subdomain

DIGEST_LENGTH = 8  # components.smoke_test.digest
LWS_NAME_SUFFIX = "-lws"  # components.server_pod.LWS_NAME_SUFFIX
STATEFULSET_NAME_MAX = 52  # 63 - len("-") - the 10-character controller-revision-hash suffix
HASH = "0" * DIGEST_LENGTH


@dataclass(frozen=True)
class DerivedName:
    kind: str
    name: str
    check: Callable[[str], str | None]
    rule: str


def _label_and_subdomain(name: str) -> str | None:
    return dns1123_label(name) or dns1123_subdomain(name)


def _statefulset(name: str) -> str | None:
    return dns1123_label(name, STATEFULSET_NAME_MAX)


def derived_names(name: str, *, multi_node: bool, replicas: int) -> list[DerivedName]:
    """The objects ``name`` becomes, with each kind's rule (digests as placeholders of their real length)."""
    label = DerivedName("pod label value", name, dns1123_label, "label values are at most 63 characters")
    names = [
        DerivedName("Service", name, dns1035_label, "Service names are DNS-1035 labels"),
        label,
        DerivedName("PodDisruptionBudget", name, dns1123_subdomain, "object names are DNS-1123 subdomains"),
        DerivedName("NetworkPolicy", name, dns1123_subdomain, "object names are DNS-1123 subdomains"),
        DerivedName("ConfigMap", f"{name}-smoke-test", dns1123_subdomain, "object names are DNS-1123 subdomains"),
        DerivedName(
            "Job",
            f"{name}-smoke-{HASH}",
            _label_and_subdomain,
            "a Job's name is its pods' batch.kubernetes.io/job-name label value (at most 63 characters)",
        ),
    ]
    if not multi_node:
        names.append(DerivedName("Deployment", name, dns1123_subdomain, "object names are DNS-1123 subdomains"))
        return names
    lws = f"{name}{LWS_NAME_SUFFIX}"
    last_group = max(replicas - 1, 0)
    names += [
        DerivedName("LeaderWorkerSet", lws, dns1035_label, "the LeaderWorkerSet's headless Service is named after it"),
        DerivedName(
            "StatefulSet (made by the LeaderWorkerSet)",
            f"{lws}-{last_group}",
            _statefulset,
            "its pods carry <StatefulSet>-<10-character hash> as the controller-revision-hash label",
        ),
        DerivedName("Service", f"{name}-rev-{HASH}", dns1035_label, "Service names are DNS-1035 labels"),
    ]
    return names


def derived_name_problems(path: str, name: str, *, multi_node: bool, replicas: int) -> list[str]:
    """One sentence per derived object the name makes invalid, naming the object, its real name and length."""
    problems = []
    seen = set()
    for derived in derived_names(name, multi_node=multi_node, replicas=replicas):
        problem = derived.check(derived.name)
        if problem is None or (derived.kind, derived.name) in seen:
            continue
        seen.add((derived.kind, derived.name))
        problems.append(
            f"{path}: {name!r} becomes the {derived.kind} {derived.name!r} ({len(derived.name)} characters), "
            f"which Kubernetes refuses: {derived.rule}; {problem}"
        )
    if problems:
        problems.append(
            f"{path}: give a name starting with a letter, of lowercase letters, digits and '-', "
            f"at most {longest_valid_name(multi_node=multi_node, replicas=replicas)} characters (e.g. 'llama-3-1-8b')"
        )
    return problems


def longest_valid_name(*, multi_node: bool, replicas: int) -> int:
    for length in range(63, 0, -1):
        name = "a" * length
        if all(d.check(d.name) is None for d in derived_names(name, multi_node=multi_node, replicas=replicas)):
            return length
    return 0


def placement_name_problems(placement) -> list[str]:
    """Every model's derived names, once the plan says which models span nodes."""
    problems = []
    for model in placement.models:
        problems += derived_name_problems(
            f"models[{model.index}].name", model.name, multi_node=model.multi_node, replicas=model.config.replicas
        )
    return problems
