"""verify.crds: custom resources against the vendored CRDs of the operator versions the project pins,
strict the way the API server prunes: a rendered object passes, a misspelt field fails with its path."""

import copy

import pytest

from tests.verify.conftest import leader_worker_set, rendered
from verify import crds


@pytest.fixture
def lws(runs):
    return rendered(runs, "multinode", "LeaderWorkerSet")


def test_every_vendored_crd_names_its_source():
    assert crds.definitions()
    for crd in crds.definitions().values():
        assert crd.source.startswith("github.com/") and " at v" in crd.source, crd


def test_rendered_custom_resources_pass(runs, lws):
    assert crds.validate_custom_resource(lws) == []
    for queue in ("inference", "gpu-inference"):
        assert crds.validate_custom_resource(rendered(runs, "multinode", "Queue", queue)) == []


def test_a_misspelt_field_fails_naming_the_path_and_the_fix(lws):
    lws["spec"]["leaderWorkerTemplate"]["sise"] = lws["spec"]["leaderWorkerTemplate"].pop("size")
    problems = crds.validate_custom_resource(lws)
    assert len(problems) == 1
    assert problems[0].startswith("spec.leaderWorkerTemplate.sise: unknown field 'sise' (did you mean 'size'?)")
    assert "lws" in problems[0] and "v0.8.0" in problems[0]


def test_the_crds_own_pod_template_is_strict_too(lws):
    lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["imagee"] = "x"
    (problem,) = crds.validate_custom_resource(lws)
    assert "workerTemplate.spec.containers[0].imagee" in problem and "did you mean 'image'?" in problem


def test_types_enums_and_int_or_string(lws):
    broken = copy.deepcopy(lws)
    broken["spec"]["replicas"] = "two"
    broken["spec"]["startupPolicy"] = "LeaderFirst"
    problems = crds.validate_custom_resource(broken)
    assert any(p.startswith("spec.replicas: 'two' is not of type 'integer'") for p in problems), problems
    assert any(p.startswith("spec.startupPolicy: 'LeaderFirst' is not one of") for p in problems), problems
    lws["spec"]["rolloutStrategy"] = {
        "type": "RollingUpdate",
        "rollingUpdateConfiguration": {"maxUnavailable": "25%", "maxSurge": 1},
    }
    assert crds.validate_custom_resource(lws) == []
    lws["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]["maxSurge"] = 1.5
    assert crds.validate_custom_resource(lws)


def test_metadata_names_are_checked(lws):
    lws["metadata"]["name"] = "Llama_405B"
    (problem,) = crds.validate_custom_resource(lws)
    assert problem.startswith("metadata.name: 'Llama_405B' is not a DNS-1123 subdomain")


def test_a_kind_without_a_vendored_crd_is_reported_not_passed():
    (problem,) = crds.validate_custom_resource({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {}})
    assert "no vendored CRD for example.com/v1 Thing" in problem and "LeaderWorkerSet" in problem


def test_the_test_leader_worker_set_is_valid_too(runs):
    obj = leader_worker_set(rendered(runs, "dev", "Deployment", "llama-3-1-70b"))
    assert crds.validate_custom_resource(obj) == []
