"""verify.crds: custom resources against the vendored CRDs of the operator versions the project pins,
strict the way the API server prunes: a rendered object passes, a misspelt field fails with its path."""

import copy

import pytest

from tests.verify.conftest import leader_worker_set, rendered
from verify import crds


@pytest.fixture
def lws(runs):
    return rendered(runs, "multinode", "LeaderWorkerSet")


def test_every_listed_kind_is_defined_by_its_vendored_file_which_names_its_source():
    for (api_version, kind), name in crds.CRD_FILES.items():
        crd = crds.load_file(name).get((api_version, kind))
        assert crd is not None, f"{name} does not define {api_version} {kind}"
        assert crd.source.startswith("github.com/") and " at " in crd.source, crd
    assert sorted(p.name for p in crds.VENDOR.glob("*-crd.yaml")) == sorted(crds.CRD_FILES.values())


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


# A valid object of each vendored kind the next components will render, and one misspelling each
# (path to the parent mapping, the misspelt key, the key it stands for).
EXAMPLES = {
    "PodMonitor": (
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "vllm", "namespace": "inference"},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}},
                "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
            },
        },
        ("spec", "podMetricsEndpoints", 0),
        "interval",
    ),
    "ServiceMonitor": (
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "vllm", "namespace": "inference"},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "vllm"}},
                "endpoints": [{"port": "http", "path": "/metrics", "scrapeTimeout": "10s"}],
            },
        },
        ("spec",),
        "endpoints",
    ),
    "PrometheusRule": (
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "vllm", "namespace": "inference"},
            "spec": {
                "groups": [
                    {
                        "name": "vllm",
                        "rules": [
                            {
                                "alert": "VllmQueueBacklog",
                                "expr": "sum(vllm:num_requests_waiting) > 10",
                                "for": "5m",
                                "labels": {"severity": "warning"},
                            }
                        ],
                    }
                ]
            },
        },
        ("spec", "groups", 0, "rules", 0),
        "labels",
    ),
    "ScaledObject": (
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "vllm", "namespace": "inference"},
            "spec": {
                "scaleTargetRef": {"name": "llama-3-1-70b"},
                "minReplicaCount": 1,
                "maxReplicaCount": 4,
                "triggers": [
                    {
                        "type": "prometheus",
                        "metadata": {"serverAddress": "http://prometheus:9090", "threshold": "10", "query": "1"},
                        "authenticationRef": {"name": "prometheus"},
                    }
                ],
            },
        },
        ("spec",),
        "maxReplicaCount",
    ),
    "TriggerAuthentication": (
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": "prometheus", "namespace": "inference"},
            "spec": {"secretTargetRef": [{"parameter": "bearerToken", "name": "prometheus", "key": "token"}]},
        },
        ("spec", "secretTargetRef", 0),
        "parameter",
    ),
    "NodePool": (
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "h100"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                        "requirements": [
                            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p5.48xlarge"]}
                        ],
                        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                    }
                },
                "limits": {"nvidia.com/gpu": 16},
            },
        },
        ("spec", "template", "spec"),
        "taints",
    ),
    "EC2NodeClass": (
        {
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": "gpu"},
            "spec": {
                "role": "KarpenterNodeRole-gpu-inference",
                "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "gpu-inference"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "gpu-inference"}}],
            },
        },
        ("spec",),
        "subnetSelectorTerms",
    ),
}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_a_valid_example_passes_and_a_misspelt_field_fails(kind):
    obj, parent_path, field = copy.deepcopy(EXAMPLES[kind])
    assert crds.validate_custom_resource(obj) == []
    parent = obj
    for step in parent_path:
        parent = parent[step]
    misspelt = field[:-1] + field[-1].upper() if field[-1].islower() else field + "s"
    parent[misspelt] = parent.pop(field)
    where = ".".join(str(s) for s in parent_path).replace(".0", "[0]")
    problems = crds.validate_custom_resource(obj)
    assert any(p.startswith(f"{where}.{misspelt}: unknown field {misspelt!r}") for p in problems), problems
