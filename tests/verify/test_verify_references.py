"""verify.references catches selectors that select nothing rendered and Service ports naming no
container port, across the objects of a stack (LeaderWorkerSet pods with their controller's labels)."""

import pytest

from tests.verify.conftest import leader_worker_set, only, rendered
from verify import references


@pytest.fixture
def deployment(runs):
    return rendered(runs, "dev", "Deployment", "llama-3-1-70b")


def test_service_selector_matching_no_pod(runs, deployment):
    service = rendered(runs, "dev", "Service", "llama-3-1-70b")
    assert references.check_objects([deployment, service]) == []
    service["spec"]["selector"] = {"app.kubernetes.io/instance": "llama-3-1-70B"}
    only(
        references.check_objects([deployment, service]),
        "spec.selector",
        "matches no pod template",
        "namespace 'inference'",
        "llama-3-1-70b",
    )


def test_service_target_port_not_declared(runs, deployment):
    service = rendered(runs, "dev", "Service", "llama-3-1-70b")
    service["spec"]["ports"][0]["targetPort"] = "metrics"
    only(references.check_objects([deployment, service]), "spec.ports[0].targetPort", "'metrics'", "['http']")


def test_pdb_and_network_policy_matching_no_pod(runs, deployment):
    pdb = rendered(runs, "dev", "PodDisruptionBudget", "llama-3-1-70b")
    netpol = rendered(runs, "dev", "NetworkPolicy", "llama-3-1-70b")
    pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "other"
    netpol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "other"
    violations = references.check_objects([deployment, pdb, netpol])
    assert {v.object for v in violations} == {
        "PodDisruptionBudget inference/llama-3-1-70b",
        "NetworkPolicy inference/llama-3-1-70b",
    }


def test_service_selecting_leader_worker_set_pods(runs, deployment):
    obj = leader_worker_set(deployment)
    service = rendered(runs, "dev", "Service", "llama-3-1-70b")
    service["spec"]["selector"] = {
        "leaderworkerset.sigs.k8s.io/name": "llama-3-1-405b",
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    assert references.check_objects([obj, service]) == []
    service["spec"]["selector"]["leaderworkerset.sigs.k8s.io/name"] = "llama-3-1-70b"
    only(references.check_objects([obj, service]), "spec.selector", "matches no pod template")


def test_scaled_object_targets_a_rendered_workload(runs):
    deployment = rendered(runs, "prod", "Deployment", "llama-3-1-8b")
    scaled = rendered(runs, "prod", "ScaledObject", "llama-3-1-8b")
    assert references.check_objects([deployment, scaled]) == []
    scaled["spec"]["scaleTargetRef"]["name"] = "llama-3-1-8B"
    only(
        references.check_objects([deployment, scaled]),
        "spec.scaleTargetRef",
        "Deployment 'llama-3-1-8B'",
        "Deployment llama-3-1-8b",
    )
