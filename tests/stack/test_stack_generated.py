"""The program with generated configs: every accepted config satisfies every invariant, and
every rejected one is a RunError naming config fields, with nothing registered."""

import pulumi
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sizing.gpus import GPUS
from sizing.instances import INSTANCES
from tests.harness import (
    RELEASE,
    check_invariants,
    deployments,
    node_group_registrations,
    run_config,
    workloads,
)

CATALOG = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "mistral-7b-v0.1",
    "qwen2.5-7b",
    "qwen2.5-32b",
    "mixtral-8x7b",
    "gemma-2-27b",
    "phi-3-medium",
    "llama-3.1-405b",
]
NGC = "nvapi-GENERATED_do_not_leak_55"
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: kube-SECRET-token-42\n"


@st.composite
def node_groups(draw):
    count = draw(st.integers(1, 3))
    groups = []
    for i in range(count):
        group = {"name": f"g{i}", "maxNodes": draw(st.integers(1, 4))}
        group["minNodes"] = draw(st.integers(0, group["maxNodes"]))
        if draw(st.booleans()):
            group["instanceType"] = draw(st.sampled_from(sorted(INSTANCES)))
        else:
            group["gpu"] = draw(st.sampled_from(sorted(GPUS)))
        capacity = draw(st.sampled_from(["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"]))
        group["capacityType"] = capacity
        if capacity == "CAPACITY_BLOCK" or (capacity == "ON_DEMAND" and draw(st.booleans())):
            group["capacityReservationId"] = f"cr-{i:017x}"
        group["efa"] = draw(st.booleans())
        group["amiType"] = draw(st.sampled_from(["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"]))
        groups.append(group)
    return groups


@st.composite
def configs(draw):
    groups = draw(node_groups())
    models = []
    for i in range(draw(st.integers(0, 3))):
        m = {
            "name": f"m{i}",
            "model": draw(st.sampled_from(CATALOG)),
            "maxModelLen": draw(st.sampled_from([2048, 8192, 32768])),
            "minConcurrency": draw(st.sampled_from([1, 4, 16])),
            "replicas": draw(st.integers(0, 2)),
            "kvCacheDtype": draw(st.sampled_from(["auto", "fp8"])),
            "quantization": draw(st.sampled_from(["none", "none", "fp8"])),
            "enforceEager": draw(st.booleans()),
        }
        if draw(st.booleans()):
            m["nodeGroup"] = draw(st.sampled_from([g["name"] for g in groups]))
        engine = draw(st.sampled_from(["vllm", "vllm", "vllm", "nim"]))
        if engine == "nim":
            m["engine"] = "nim"
            m["nim"] = {"image": "nvcr.io/nim/meta/model:1.8.4"}
            if draw(st.booleans()):
                m["nim"]["profileTensorParallelSizes"] = draw(
                    st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3, unique=True)
                )
            if draw(st.booleans()):
                m["nim"]["cache"] = {"type": "pvc", "claimName": "nim-cache"}
        else:
            if draw(st.booleans()):
                m["source"] = {"type": "volume", "claimName": "weights", "path": f"models/{m['model']}"}
            if draw(st.booleans()):
                m["image"] = "acme/vllm-openai-efa:v0.32.0"  # an image with the EFA userspace
        if draw(st.booleans()):
            m["scheduling"] = draw(st.sampled_from([{"scheduler": "default"}, {"scheduler": "kai", "queue": "team-a"}]))
        models.append(m)
    cluster_kind = draw(st.sampled_from(["create", "network-stack", "platform-stack", "kubeconfig"]))
    if cluster_kind == "create":
        cluster = {"create": {"name": "gen", "vpcId": "vpc-1", "subnetIds": ["subnet-1", "subnet-2"]}}
    elif cluster_kind == "network-stack":
        cluster = {"create": {"name": "gen", "networkStack": {"name": "acme/network/dev"}}}
    elif cluster_kind == "platform-stack":
        cluster = {"existing": {"source": "stackReference", "stack": "acme/platform/prod"}}
    else:
        cluster = {"existing": {"source": "kubeconfig", "clusterName": "team", "subnetIds": ["subnet-9"]}}
    cluster["clientNamespaces"] = draw(st.lists(st.sampled_from(["apps", "gateway", "batch"]), unique=True, max_size=2))
    cluster["scheduling"] = draw(
        st.sampled_from(
            [
                {},
                {"scheduler": "kai", "queue": "inference"},
                {"scheduler": "kai", "queue": "inference", "install": True},
            ]
        )
    )
    return {"gpu-inference:cluster": cluster, "gpu-inference:nodeGroups": groups, "gpu-inference:models": models}


NETWORK = {"acme/network/dev": {"vpcId": "vpc-net", "privateSubnetIds": ["subnet-a", "subnet-b"]}}


def run(config, preview):
    secrets = {"hfToken": "hf_TESTTOKEN_do_not_leak_0123456789", "kubeconfig": KUBECONFIG, "ngcApiKey": NGC}
    return run_config(config, preview=preview, secrets=secrets, stack_references=NETWORK, capture_errors=True)


MULTI_NODE = {
    "gpu-inference:cluster": {
        "create": {"name": "gen", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]},
        "scheduling": {"scheduler": "kai", "queue": "inference", "install": True},
    },
    "gpu-inference:nodeGroups": [
        {"name": "g0", "gpu": "A100-80GB", "maxNodes": 4, "efa": True, "capacityType": "ON_DEMAND"},
        {"name": "g1", "instanceType": "p5.48xlarge", "maxNodes": 1},
    ],
    "gpu-inference:models": [
        {
            "name": "m0",
            "model": "llama-3.1-405b",
            "maxModelLen": 8192,
            "image": "acme/vllm-openai-efa:v0.32.0",
            "nodeGroup": "g0",
            "source": {"type": "volume", "claimName": "weights", "path": "models/405b"},
        },
        {
            "name": "m1",
            "model": "llama-3.1-8b",
            "maxModelLen": 8192,
            "engine": "nim",
            "nodeGroup": "g1",
            "nim": {"image": "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4", "profileTensorParallelSizes": [2]},
        },
    ],
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(config=configs(), preview=st.booleans())
@example(config=MULTI_NODE, preview=False)
@example(config=MULTI_NODE, preview=True)
def test_generated_configs(config, preview):
    result = run(config, preview)
    if result.error is not None:
        assert isinstance(result.error, pulumi.RunError), repr(result.error)
        assert str(result.error).startswith("invalid stack configuration:")
        assert result.registrations == []
        return
    secrets = {"hfToken": "hf_TESTTOKEN_do_not_leak_0123456789", "kubeconfig": "kube-SECRET-token-42", "ngcApiKey": NGC}
    assert check_invariants(result, secrets) == []
    assert sorted(node_group_registrations(result)) == sorted(g["name"] for g in config["gpu-inference:nodeGroups"])
    assert sorted(workloads(result)) == sorted(m["name"] for m in config["gpu-inference:models"])
    TOPOLOGIES.update((m["engine"], m["topology"]) for m in result.outputs["plan"]["models"])


TOPOLOGIES: set = set()


def test_generated_configs_reach_every_engine_and_topology():
    """Run after test_generated_configs (file order): the generator is not stuck on one kind."""
    if not TOPOLOGIES:
        pytest.skip("run together with test_generated_configs")
    assert {("vllm", "deployment"), ("vllm", "leaderWorkerSet"), ("nim", "deployment")} <= TOPOLOGIES


def _config(groups, models, cluster=None):
    return {
        "gpu-inference:cluster": cluster or {"create": {"name": "c", "vpcId": "vpc-1", "subnetIds": ["subnet-1"]}},
        "gpu-inference:nodeGroups": groups,
        "gpu-inference:models": models,
    }


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_bottlerocket_only_skips_the_chart_and_gfd_labels(preview):
    result = run(
        _config(
            [{"name": "br", "instanceType": "p5.48xlarge", "maxNodes": 1, "amiType": "BOTTLEROCKET_x86_64_NVIDIA"}],
            [{"name": "m", "model": "llama-3.1-70b", "maxModelLen": 8192}],
        ),
        preview,
    )
    assert result.error is None
    assert result.of_type(RELEASE) == []
    pod = deployments(result)["m"].plain_inputs["spec"]["template"]["spec"]
    keys = [
        e["key"]
        for t in pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        for e in t["matchExpressions"]
    ]
    assert "nvidia.com/gpu.count" not in keys  # GFD does not run there
    assert "node.kubernetes.io/instance-type" in keys
    assert check_invariants(result) == []


def test_mixed_groups_keep_the_device_plugin_off_bottlerocket():
    result = run(
        _config(
            [
                {"name": "al", "instanceType": "p5.48xlarge", "maxNodes": 1},
                {"name": "br", "instanceType": "p5e.48xlarge", "maxNodes": 1, "amiType": "BOTTLEROCKET_x86_64_NVIDIA"},
            ],
            [
                {"name": "a", "model": "llama-3.1-8b", "maxModelLen": 8192, "nodeGroup": "al"},
                {"name": "b", "model": "llama-3.1-8b", "maxModelLen": 8192, "nodeGroup": "br"},
            ],
        ),
        False,
    )
    (release,) = result.of_type(RELEASE)
    term = release.plain_inputs["values"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]
    assert {"key": "gpu-inference.io/node-group", "operator": "In", "values": ["al"]} in term["matchExpressions"]
    assert check_invariants(result) == []


def test_unplaced_model_goes_to_a_group_of_the_planned_instance_type():
    result = run(
        _config(
            [
                {"name": "a100", "instanceType": "p4d.24xlarge", "maxNodes": 2},
                {"name": "h200", "gpu": "H200-141GB", "maxNodes": 2},
            ],
            [{"name": "big", "model": "llama-3.1-70b", "maxModelLen": 32768, "minConcurrency": 4}],
        ),
        False,
    )
    plan = result.outputs["plan"]["models"][0]
    group = {"a100": "p4d.24xlarge", "h200": "p5e.48xlarge"}[plan["nodeGroup"]]
    assert plan["plan"]["instance_type"] == group
    assert result.outputs["nodeGroups"][plan["nodeGroup"]]["nodes"] == 1
    assert check_invariants(result) == []


def test_nodes_are_packed_by_gpus_and_desired_size_follows_replicas():
    models = [{"name": "small", "model": "llama-3.1-8b", "maxModelLen": 8192, "replicas": 9, "tensorParallelSize": 1}]
    result = run(
        _config([{"name": "h100", "instanceType": "p5.48xlarge", "minNodes": 0, "maxNodes": 3}], models), False
    )
    assert result.outputs["nodeGroups"]["h100"]["nodes"] == 2  # 9 one-GPU pods on 8-GPU nodes
    idle = run(_config([{"name": "h100", "instanceType": "p5.48xlarge", "minNodes": 1, "maxNodes": 3}], []), False)
    assert idle.outputs["nodeGroups"]["h100"]["nodes"] == 1  # minNodes holds when nothing is placed


def test_kubeconfig_secret_adoption_keeps_the_kubeconfig_secret():
    result = run(
        _config(
            [{"name": "g", "instanceType": "p5.48xlarge", "maxNodes": 1}],
            [{"name": "m", "model": "llama-3.1-8b", "maxModelLen": 8192}],
            cluster={"existing": {"source": "kubeconfig", "clusterName": "team", "subnetIds": ["subnet-9"]}},
        ),
        False,
    )
    assert result.error is None
    assert "kubeconfig" not in result.outputs  # consumers get endpoints, never the cluster's credentials
    assert result.outputs["clusterName"] == "team"
    (provider,) = result.of_type("pulumi:providers:kubernetes")
    assert "kube-SECRET-token-42" in str(provider.inputs["kubeconfig"])
    assert check_invariants(result, {"kubeconfig": "kube-SECRET-token-42"}) == []


def test_network_from_a_stack_reference():
    result = run(
        _config(
            [{"name": "g", "instanceType": "p5.48xlarge", "maxNodes": 1}],
            [],
            cluster={"create": {"name": "c", "networkStack": {"name": "acme/network/dev"}}},
        ),
        False,
    )
    (cluster,) = result.of_type("eks:index:Cluster")
    assert cluster.inputs["vpcId"] == "vpc-net" and cluster.inputs["subnetIds"] == ["subnet-a", "subnet-b"]
    assert node_group_registrations(result)["g"].inputs["subnetIds"] == ["subnet-a", "subnet-b"]
