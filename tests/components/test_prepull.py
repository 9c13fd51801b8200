import kubernetes_validate
import pytest

from components.labels import GPU_RESOURCE, GPU_TAINT_EFFECT, GPU_TAINT_KEY, NODE_GROUP_LABEL
from components.prepull import images_by_node_group, prepull_daemonset
from verify.kubernetes import SUPPORTED_VERSIONS, check_object

VLLM = "vllm/vllm-openai:v0.32.0"
NIM = "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4"


@pytest.fixture
def daemonset():
    return prepull_daemonset("h100", [VLLM, NIM, VLLM], "inference", image_pull_secrets=["ngc-pull"])


def test_the_daemonset_is_valid_for_every_supported_kubernetes(daemonset):
    for version in SUPPORTED_VERSIONS:
        kubernetes_validate.validate(daemonset, version, strict=True)
    assert check_object(daemonset) == []


def test_the_strict_schema_catches_a_misspelled_field(daemonset):
    daemonset["spec"]["template"]["spec"]["initContainers"][0]["comand"] = ["true"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, SUPPORTED_VERSIONS[-1], strict=True)


def test_each_image_is_pulled_once_by_an_init_container_that_exits_at_once(daemonset):
    pod = daemonset["spec"]["template"]["spec"]
    assert sorted(c["image"] for c in pod["initContainers"]) == sorted([VLLM, NIM])
    for container in pod["initContainers"]:
        assert container["command"] == ["true"] and "args" not in container
        assert container["imagePullPolicy"] == "IfNotPresent"
    (main,) = pod["containers"]
    assert main["image"].startswith("registry.k8s.io/pause:")
    assert pod["imagePullSecrets"] == [{"name": "ngc-pull"}]


def test_it_runs_on_the_groups_gpu_nodes_only_and_takes_no_gpu(daemonset):
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {NODE_GROUP_LABEL: "h100"}
    assert {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": GPU_TAINT_EFFECT} in pod["tolerations"]
    for container in pod["initContainers"] + pod["containers"]:
        resources = container["resources"]
        assert GPU_RESOURCE not in resources["requests"] and GPU_RESOURCE not in resources["limits"]
        assert resources["requests"]["cpu"].endswith("m") and resources["requests"]["memory"].endswith("Mi")
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert daemonset["spec"]["selector"]["matchLabels"] == labels


def test_images_are_grouped_per_node_group_and_an_empty_group_is_an_error():
    groups = images_by_node_group([("a", VLLM), ("a", VLLM), ("b", NIM), ("a", NIM)])
    assert groups == {"a": [VLLM, NIM], "b": [NIM]}
    with pytest.raises(ValueError, match="'c'"):
        prepull_daemonset("c", [], "inference")


# Through the program: one DaemonSet per GPU node group, holding the images of that group's models.

DAEMON_SET = "kubernetes:apps/v1:DaemonSet"


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", ["dev", "prod", "multinode"])
def test_each_gpu_group_prepulls_the_images_of_its_models(stack, preview):
    from tests.harness import run_stack, workloads

    run = run_stack(stack, preview)
    expected: dict[str, set[str]] = {}
    for name, workload in workloads(run).items():
        group = run.outputs["models"][name]["nodeGroup"]
        for template in workload.templates.values():
            expected.setdefault(group, set()).update(c["image"] for c in template["spec"]["containers"])
    pulled = {}
    for daemon_set in run.of_type(DAEMON_SET):
        spec = daemon_set.plain_inputs["spec"]["template"]["spec"]
        group = spec["nodeSelector"][NODE_GROUP_LABEL]
        pulled[group] = {c["image"] for c in spec["initContainers"]}
        assert daemon_set.plain_inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert pulled == expected
