"""Cross-resource invariants that need only the resources' inputs (what a policy pack sees).

GPU pods against the GPU node groups declared beside them, with the scheduler's semantics:
- a pod template that requests ``nvidia.com/gpu`` has a required node affinity matching the nodes
  of at least one GPU node group (node labels = the group's labels + the kubelet's
  ``node.kubernetes.io/instance-type`` + GPU feature discovery's ``nvidia.com/gpu.count`` and
  ``nvidia.com/gpu.product`` from the catalog), tolerates every taint of that group (EKS effect
  spelling translated), and requests no more GPUs than one node of it has.

The tests in ``tests/`` check many more invariants against a whole mocked run (the sizing plan
included); these are the ones a ``pulumi preview --policy-pack`` can enforce from inputs alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from verify import Violation, is_unknown, plain
from verify.aws import NODE_GROUP_TYPES
from verify.manifests import describe, pod_templates
from verify.selectors import affinity_matches, tolerates


def node_labels(props: dict) -> dict[str, str]:
    from sizing.instances import INSTANCES

    labels = {k: v for k, v in (props.get("labels") or {}).items() if isinstance(v, str)}
    types = [t for t in props.get("instanceTypes") or [] if isinstance(t, str) and not is_unknown(t)]
    if types:
        labels["node.kubernetes.io/instance-type"] = types[0]
        instance = INSTANCES.get(types[0])
        if instance is not None:
            labels.setdefault("nvidia.com/gpu.count", str(instance.gpus_per_node))
            labels.setdefault("nvidia.com/gpu.product", instance.gpu.product_label)
    return labels


def check_scheduling(resources: Iterable[tuple[str, str, dict]]) -> list[Violation]:
    """``resources``: (Pulumi type, name, inputs). GPU pod templates vs the GPU node groups."""
    from sizing.instances import INSTANCES

    resources = [(t, n, plain(p)) for t, n, p in resources]
    groups = [
        (name, props)
        for type_, name, props in resources
        if type_ in NODE_GROUP_TYPES and str(props.get("amiType", "")).endswith("_NVIDIA")
    ]
    if not groups:
        return []  # GPU nodes come from elsewhere: nothing to check them against
    out = []
    for type_, _, obj in resources:
        if not type_.startswith("kubernetes:") or not isinstance(obj, dict) or "kind" not in obj:
            continue
        for path, template in pod_templates(obj):
            pod = template.get("spec") or {}
            gpus = 0
            for container in pod.get("containers") or []:
                limits = (container.get("resources") or {}).get("limits") or {}
                value = limits.get("nvidia.com/gpu")
                if value is not None and not is_unknown(value):
                    try:
                        gpus += int(str(value))
                    except ValueError:
                        pass  # verify.api_rules reports the bad quantity
            if not gpus:
                continue
            matching = [(n, p) for n, p in groups if affinity_matches(pod, node_labels(p))]
            where = f"{path}.spec"
            if not matching:
                out.append(
                    Violation(
                        describe(obj),
                        f"{where}.affinity",
                        f"the pods request {gpus} GPU(s) but their node affinity matches no GPU node group's nodes "
                        f"({', '.join(n for n, _ in groups)}): they would stay Pending",
                    )
                )
                continue
            for name, props in matching:
                for taint in props.get("taints") or []:
                    if not tolerates(pod.get("tolerations") or [], taint):
                        out.append(
                            Violation(
                                describe(obj),
                                f"{where}.tolerations",
                                f"does not tolerate taint {taint} of node group {name}: the pods would stay Pending",
                            )
                        )
                instance = INSTANCES.get((props.get("instanceTypes") or [None])[0])
                if instance is not None and gpus > instance.gpus_per_node:
                    out.append(
                        Violation(
                            describe(obj),
                            f"{where}.containers",
                            f"requests {gpus} GPUs; a node of {name} ({instance.name}) has {instance.gpus_per_node}",
                        )
                    )
    return out


def check_all(resources: list[tuple[str, str, Any]]) -> list[Violation]:
    return check_scheduling(resources)
