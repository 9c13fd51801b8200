"""Hardened pods in every stack: the seccomp profile on every pod, a NetworkPolicy over the smoke
and pre-pull pods, and checkov skip annotations that each name a check and say why."""

import pytest

from components.checkov_skips import CHECK_ID, SKIP_PREFIX, skip_annotations
from tests.harness import run_stack
from verify import plain
from verify.stacks import stack_names

WORKLOADS = {"Deployment", "Job", "DaemonSet", "LeaderWorkerSet"}


def kubernetes_objects(stack):
    run = run_stack(stack, preview=True)
    return [
        plain(r.inputs) for r in run.registrations if r.type.startswith("kubernetes:") and r.custom and not r.read_id
    ]


def pod_templates(manifest):
    spec = manifest.get("spec") or {}
    if manifest.get("kind") == "LeaderWorkerSet":
        lws = spec["leaderWorkerTemplate"]
        return [t for t in (lws.get("leaderTemplate"), lws["workerTemplate"]) if t]
    return [spec["template"]]


def selected(policy, labels):
    match = policy["spec"]["podSelector"].get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in match.items())


@pytest.mark.parametrize("stack", stack_names())
def test_every_rendered_pod_runs_under_the_runtime_default_seccomp_profile(stack):
    workloads = [m for m in kubernetes_objects(stack) if m.get("kind") in WORKLOADS]
    assert {"Deployment", "Job", "DaemonSet"} & {m["kind"] for m in workloads}
    for manifest in workloads:
        for template in pod_templates(manifest):
            profile = (template["spec"].get("securityContext") or {}).get("seccompProfile")
            assert profile == {"type": "RuntimeDefault"}, f"{manifest['kind']} {manifest['metadata']['name']}"


@pytest.mark.parametrize("stack", stack_names())
def test_every_checkov_skip_names_a_check_and_gives_a_reason(stack):
    skips = 0
    for manifest in kubernetes_objects(stack):
        for key, value in ((manifest.get("metadata") or {}).get("annotations") or {}).items():
            if not key.startswith(SKIP_PREFIX):
                continue
            skips += 1
            check_id, equals, reason = value.partition("=")
            where = f"{manifest['kind']} {manifest['metadata']['name']}: {key}"
            assert CHECK_ID.match(check_id) and equals and reason.strip(), where
            assert "=" not in reason, f"{where}: checkov would cut the reason at '='"
    assert skips


@pytest.mark.parametrize("stack", stack_names())
def test_smoke_and_prepull_pods_admit_no_ingress(stack):
    objects = kubernetes_objects(stack)
    policies = [m for m in objects if m.get("kind") == "NetworkPolicy"]
    pods = [m for m in objects if m.get("kind") in ("Job", "DaemonSet")]
    assert {"Job", "DaemonSet"} <= {m["kind"] for m in pods}
    for manifest in pods:
        labels = manifest["spec"]["template"]["metadata"]["labels"]
        closing = [
            p
            for p in policies
            if p["metadata"]["namespace"] == manifest["metadata"]["namespace"]
            and selected(p, labels)
            and "Ingress" in p["spec"]["policyTypes"]
        ]
        assert closing, f"{manifest['kind']} {manifest['metadata']['name']}: no NetworkPolicy selects its pods"
        admitted = [rule for p in closing for rule in p["spec"].get("ingress") or []]
        assert admitted == [], f"{manifest['kind']} {manifest['metadata']['name']} admits {admitted}"


def test_a_smoke_or_prepull_pod_runs_unprivileged_with_cpu_and_memory_limits():
    objects = kubernetes_objects("prod")
    for manifest in (m for m in objects if m.get("kind") in ("Job", "DaemonSet")):
        pod = manifest["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] >= 10000
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


@pytest.mark.parametrize(
    "reasons",
    [{"CKV_K8S_11": ""}, {"CKV_K8S_11": "  "}, {"CKV_K8S_11": "a=b"}, {"K8S_11": "why"}, {"CKV_AWS_1": "why"}],
)
def test_a_skip_without_a_check_id_or_a_plain_reason_is_refused(reasons):
    with pytest.raises(ValueError, match="checkov skip"):
        skip_annotations(reasons)


def test_skips_are_numbered_in_checkov_s_annotation_form():
    assert skip_annotations({"CKV_K8S_43": "pinned by tag", "CKV2_K8S_6": "no pods"}) == {
        "checkov.io/skip1": "CKV2_K8S_6=no pods",
        "checkov.io/skip2": "CKV_K8S_43=pinned by tag",
    }
