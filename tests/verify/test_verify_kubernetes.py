"""verify.kubernetes catches each kind of broken object, naming the object, the field path and
what would be valid. Each case starts from a real rendered manifest and breaks one thing."""

import pytest

from tests.verify.conftest import leader_worker_set, only, rendered
from verify import errors
from verify import kubernetes as k8s

TERM = "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"


@pytest.fixture
def deployment(runs):
    return rendered(runs, "dev", "Deployment", "llama-3-1-70b")


def pod(obj):
    return obj["spec"]["template"]["spec"]


def test_rendered_deployment_passes(deployment):
    assert errors(k8s.check_object(deployment)) == []


def test_invalid_node_affinity_operator(deployment):
    pod(deployment)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][
        0
    ]["matchExpressions"][3]["operator"] = "Gte"
    found = only(
        k8s.check_object(deployment),
        f"{TERM}.matchExpressions[3].operator",
        "'Gte'",
        "In, NotIn, Exists, DoesNotExist, Gt, Lt",
    )
    assert str(found[0]).startswith("Deployment inference/llama-3-1-70b: ")


def test_gt_with_two_values(deployment):
    expression = pod(deployment)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][3]
    expression["values"] = ["3", "4"]
    only(k8s.check_object(deployment), f"{TERM}.matchExpressions[3].values", "Gt", "exactly one integer")


def test_gt_with_non_integer(deployment):
    pod(deployment)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][
        0
    ]["matchExpressions"][3]["values"] = ["three"]
    only(k8s.check_object(deployment), f"{TERM}.matchExpressions[3].values[0]", "integer")


@pytest.mark.parametrize(
    "operator,values,word",
    [("In", [], "at least one"), ("Exists", ["x"], "no values"), ("DoesNotExist", ["x"], "no values")],
)
def test_operator_value_counts(deployment, operator, values, word):
    expression = pod(deployment)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]
    expression["operator"], expression["values"] = operator, values
    only(k8s.check_object(deployment), f"{TERM}.matchExpressions[0].values", operator, word)


def test_unknown_field(deployment):
    pod(deployment)["containers"][0]["gpuCount"] = 4
    only(
        k8s.check_object(deployment),
        "spec.template.spec.containers[0].gpuCount",
        "unknown field 'gpuCount'",
        "known fields here",
        "resources",
        "1.31, 1.32, 1.33, 1.34",
    )


def test_misspelled_field_suggests_the_right_one(deployment):
    pod(deployment)["tolerations"][0]["efect"] = pod(deployment)["tolerations"][0].pop("effect")
    only(k8s.check_object(deployment), "spec.template.spec.tolerations[0].efect", "did you mean 'effect'?")


def test_wrong_type(deployment):
    deployment["spec"]["replicas"] = "one"
    only(k8s.check_object(deployment), "spec.replicas", "'one'")


def test_wrong_toleration_effect_and_operator(deployment):
    pod(deployment)["tolerations"][0]["effect"] = "NO_SCHEDULE_X"
    pod(deployment)["tolerations"].append({"key": "a", "operator": "Exists", "value": "b"})
    pod(deployment)["tolerations"].append({"key": "a", "operator": "Equals", "value": "b"})
    violations = k8s.check_object(deployment)
    only(
        violations,
        "spec.template.spec.tolerations[0].effect",
        "'NO_SCHEDULE_X'",
        "NoSchedule, PreferNoSchedule, NoExecute",
    )
    only(violations, "spec.template.spec.tolerations[1].value", "Exists must not have a value")
    only(violations, "spec.template.spec.tolerations[2].operator", "'Equals'", "Equal (the default) and Exists")


@pytest.mark.parametrize("bad", ["12GB", "4 Gi", "1.5.2Gi", "-1Gi", "Gi"])
def test_bad_quantity(deployment, bad):
    pod(deployment)["containers"][0]["resources"]["limits"]["memory"] = bad
    pod(deployment)["containers"][0]["resources"]["requests"]["memory"] = "1Gi"
    only(k8s.check_object(deployment), "spec.template.spec.containers[0].resources.limits['memory']", repr(bad))


def test_request_above_limit_and_gpu_rules(deployment):
    resources = pod(deployment)["containers"][0]["resources"]
    resources["requests"]["memory"] = "1000Gi"
    resources["requests"]["nvidia.com/gpu"] = "2"
    violations = k8s.check_object(deployment)
    only(
        violations,
        "spec.template.spec.containers[0].resources.requests['memory']",
        "exceeds limit",
        "requests must be <= limits",
    )
    only(
        violations,
        "spec.template.spec.containers[0].resources.requests['nvidia.com/gpu']",
        "cannot be overcommitted",
        "must equal limit",
    )


def test_fractional_gpu(deployment):
    resources = pod(deployment)["containers"][0]["resources"]
    resources["requests"]["nvidia.com/gpu"] = resources["limits"]["nvidia.com/gpu"] = "500m"
    only(
        k8s.check_object(deployment),
        "spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']",
        "whole number",
    )


def test_gpu_request_without_limit(deployment):
    del pod(deployment)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    only(
        k8s.check_object(deployment),
        "spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']",
        "set a limit",
    )


def test_bad_empty_dir_size(deployment):
    pod(deployment)["volumes"][0]["emptyDir"]["sizeLimit"] = "4 GiB"
    only(
        k8s.check_object(deployment), "spec.template.spec.volumes[0].emptyDir.sizeLimit", "'4 GiB'", "did you mean 4Gi"
    )


@pytest.mark.parametrize(
    "name,kind,word",
    [
        ("Llama_70B", "Deployment", "DNS-1123 subdomain"),
        ("x" * 254, "Deployment", "DNS-1123 subdomain"),
        ("7llama", "Service", "DNS-1035"),
        ("a" * 64, "Service", "DNS-1035"),
    ],
)
def test_non_dns_names(runs, deployment, name, kind, word):
    obj = deployment if kind == "Deployment" else rendered(runs, "dev", "Service", "llama-3-1-70b")
    obj["metadata"]["name"] = name
    only(k8s.check_object(obj), "metadata.name", word)


def test_bad_label_keys_and_values(deployment):
    deployment["metadata"]["labels"]["gpu-inference.io/" + "n" * 64] = "x"
    deployment["metadata"]["labels"]["team"] = "a" * 64
    deployment["metadata"]["labels"]["bad key"] = "x"
    violations = k8s.check_object(deployment)
    only(violations, f"metadata.labels['gpu-inference.io/{'n' * 64}']", "at most 63")
    only(violations, "metadata.labels['team']", "at most 63")
    only(violations, "metadata.labels['bad key']", "not a valid key")


def test_selector_not_matching_template(deployment):
    deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "vllm-server"
    only(k8s.check_object(deployment), "spec.selector", "does not match the template's labels")


def test_probe_on_missing_named_port(deployment):
    pod(deployment)["containers"][0]["readinessProbe"]["httpGet"]["port"] = "metrics"
    pod(deployment)["containers"][0]["livenessProbe"]["httpGet"]["port"] = 70000
    violations = k8s.check_object(deployment)
    only(
        violations,
        "spec.template.spec.containers[0].readinessProbe.httpGet.port",
        "'metrics'",
        "does not declare",
        "['http']",
    )
    only(violations, "spec.template.spec.containers[0].livenessProbe.httpGet.port", "70000", "1-65535")


def test_duplicate_container_names_env_names_and_mounts(deployment):
    containers = pod(deployment)["containers"]
    containers.append(dict(containers[0]))
    containers[0]["env"].append({"name": "1BAD=NAME", "value": "x"})
    containers[0]["volumeMounts"].append({"name": "weights", "mountPath": "/weights"})
    violations = k8s.check_object(deployment)
    only(violations, "spec.template.spec.containers[1].name", "duplicate container name 'vllm'")
    only(violations, "spec.template.spec.containers[0].env[3].name", "not a valid environment variable name")
    only(violations, "spec.template.spec.containers[0].volumeMounts[2].name", "'weights'", "shm")


def test_leader_worker_set_pod_templates_are_checked_against_the_core_schema(deployment):
    obj = leader_worker_set(deployment)
    assert errors(k8s.check_object(obj)) == []
    obj["spec"]["leaderWorkerTemplate"]["workerTemplate"] = __import__("copy").deepcopy(
        obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    )
    worker = obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    worker["containers"][0]["resourcez"] = {}
    worker["tolerations"][0]["operator"] = "Gte"
    obj["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    violations = k8s.check_object(obj)
    only(
        violations, "spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].resourcez", "did you mean 'resources'?"
    )
    only(violations, "spec.leaderWorkerTemplate.workerTemplate.spec.tolerations[0].operator", "'Gte'")
    only(violations, "spec.leaderWorkerTemplate.restartPolicy", "'Always'", "RecreateGroupOnPodRestart")


def test_unknown_custom_resource_checks_its_pod_templates(deployment):
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "InferenceServer",
        "metadata": {"name": "x", "namespace": "inference"},
        "spec": {"serverTemplate": deployment["spec"]["template"]},
    }
    violations = k8s.check_object(obj)
    assert errors(violations) == [] and any("no schema" in v.message for v in violations)
    obj["spec"]["serverTemplate"]["spec"]["containers"][0]["imagee"] = "x"
    only(k8s.check_object(obj), "spec.serverTemplate.spec.containers[0].imagee", "did you mean 'image'?")
