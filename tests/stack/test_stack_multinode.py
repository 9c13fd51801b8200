"""Issue 5: the planner's topology decides the objects. Multi-node vLLM as a LeaderWorkerSet over
EFA, the same config on H200 as one Deployment, NIM as an engine, KAI scheduling. Every test runs
the real ``__main__.py`` under the mocks, in update and preview mode."""

import base64
import copy
import json

import pytest

from stack.mockrun import Secret
from tests.harness import (
    DEPLOYMENT,
    KAI_QUEUE_TYPE,
    LAUNCH_TEMPLATE,
    LWS,
    NGC_API_KEY,
    PLACEMENT_GROUP,
    SECRET,
    SERVICE,
    arg_value,
    check_invariants,
    node_group_registrations,
    pod_container,
    releases_of,
    run_config,
    run_stack,
    stack_config,
    workloads,
)

MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


def masked(data, key):
    """The value reaches the engine as a secret (the map itself, or the entry)."""
    return isinstance(data, Secret) or isinstance(data[key], Secret)


def env(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("preview", MODES)
def test_405b_on_h100_is_a_leader_worker_set_of_two_full_nodes(preview):
    run = run_stack("multinode", preview)
    assert check_invariants(run) == []
    model = run.outputs["models"]["llama-3-1-405b"]
    assert (model["tensorParallelSize"], model["pipelineParallelSize"], model["gpusPerPod"]) == (8, 2, 8)
    assert model["topology"] == "leaderWorkerSet" and model["nodesPerReplica"] == 2
    assert not run.of_type(DEPLOYMENT)
    (lws,) = run.of_type(LWS)
    spec = lws.plain_inputs["spec"]
    assert lws.plain_inputs["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert spec["replicas"] == 1
    group = spec["leaderWorkerTemplate"]
    assert group["size"] == 2  # one pod per pipeline stage, leader included
    assert group["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader = pod_container(group["leaderTemplate"])
    worker = pod_container(group["workerTemplate"])
    args = leader["args"]
    assert arg_value(args, "--tensor-parallel-size") == "8"
    assert arg_value(args, "--pipeline-parallel-size") == "2"
    assert arg_value(args, "--distributed-executor-backend") == "ray"
    assert leader["command"][-1] == "meta-llama/Llama-3.1-405B-Instruct"
    assert "ray start --head --port=6379" in leader["command"][2]
    assert 'ray start --address="${LWS_LEADER_ADDRESS}:6379"' in worker["command"][2]
    for c in (leader, worker):
        for kind in ("requests", "limits"):
            assert c["resources"][kind]["nvidia.com/gpu"] == "8"
            assert c["resources"][kind]["vpc.amazonaws.com/efa"] == "32"
        assert env(c)["FI_PROVIDER"] == "efa" and env(c)["FI_EFA_USE_DEVICE_RDMA"] == "1"
    # The Services (the model's, and its current revision's for the smoke test) reach leaders only.
    services = run.of_type(SERVICE)
    assert {s.plain_inputs["metadata"]["name"] for s in services} >= {"llama-3-1-405b"} and len(services) == 2
    for service in services:
        assert service.plain_inputs["spec"]["selector"]["gpu-inference.io/lws-role"] == "leader"
    # The node group: placement group, every EFA interface of a p5, two nodes.
    ng = node_group_registrations(run)["h100-efa"]
    assert int(ng.plain_inputs["scalingConfig"]["desiredSize"]) == 2
    (template,) = [r for r in run.of_type(LAUNCH_TEMPLATE) if r.parent == ng.parent]
    assert len(template.plain_inputs["networkInterfaces"]) == 32
    (placement_group,) = [r for r in run.of_type(PLACEMENT_GROUP) if r.parent == ng.parent]
    assert placement_group.plain_inputs["strategy"] == "cluster"
    # The controller and the EFA plugin are installed, and the LWS waits for them.
    (lws_release,) = releases_of(run, "oci://registry.k8s.io/lws/charts/lws")
    (efa_release,) = releases_of(run, "aws-efa-k8s-device-plugin")
    assert lws_release.urn in lws.dependencies and efa_release.urn in lws.dependencies


def on_h200(config):
    config = copy.deepcopy(config)
    config["gpu-inference:nodeGroups"][0]["instanceType"] = "p5e.48xlarge"
    return config


@pytest.mark.parametrize("preview", MODES)
def test_the_same_config_on_h200_is_one_deployment_with_tp8(preview):
    run = run_config(on_h200(stack_config("multinode")), preview=preview)
    assert check_invariants(run) == []
    model = run.outputs["models"]["llama-3-1-405b"]
    assert (model["tensorParallelSize"], model["pipelineParallelSize"], model["topology"]) == (8, 1, "deployment")
    assert not run.of_type(LWS)
    assert not releases_of(run, "oci://registry.k8s.io/lws/charts/lws")  # nothing needs the controller
    (deployment,) = run.of_type(DEPLOYMENT)
    c = pod_container(deployment.plain_inputs["spec"]["template"])
    assert arg_value(c["args"], "--tensor-parallel-size") == "8"
    assert "--pipeline-parallel-size" not in c["args"] and "--distributed-executor-backend" not in c["args"]
    assert "vpc.amazonaws.com/efa" not in c["resources"]["limits"]  # NVLink inside the node
    assert "FI_PROVIDER" not in env(c)
    assert run.outputs["nodeGroups"]["h100-efa"]["nodes"] == 1


@pytest.mark.parametrize("preview", MODES)
def test_kai_places_every_pod_of_a_group_through_its_queue(preview):
    run = run_stack("multinode", preview)
    lws = workloads(run)["llama-3-1-405b"]
    for template in lws.templates.values():
        assert template["spec"]["schedulerName"] == "kai-scheduler"
        assert template["metadata"]["labels"]["kai.scheduler/queue"] == "inference"
    assert lws.registration.plain_inputs["metadata"]["labels"]["kai.scheduler/queue"] == "inference"
    (kai,) = releases_of(run, "oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler")
    queues = {q.plain_inputs["metadata"]["name"]: q.plain_inputs["spec"] for q in run.of_type(KAI_QUEUE_TYPE)}
    assert queues["inference"]["parentQueue"] == "gpu-inference" and "parentQueue" not in queues["gpu-inference"]
    assert kai.urn in lws.registration.dependencies


@pytest.mark.parametrize("preview", MODES)
def test_a_model_can_leave_kai_and_without_install_nothing_is_installed(preview):
    config = stack_config("multinode")
    config["gpu-inference:cluster"]["scheduling"] = {"scheduler": "kai", "queue": "team-a"}  # KAI runs already
    config["gpu-inference:models"][0]["scheduling"] = {"scheduler": "default"}
    run = run_config(config, preview=preview)
    assert check_invariants(run) == []
    assert not releases_of(run, "oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler")
    for template in workloads(run)["llama-3-1-405b"].templates.values():
        assert "schedulerName" not in template["spec"]


def nim_config(**nim):
    config = stack_config("dev")
    config["gpu-inference:nodeGroups"][0]["maxNodes"] = 2
    model = config["gpu-inference:models"][1]  # llama-3.1-70b, no source
    model.update(engine="nim", nim={"image": "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.4", **nim})
    return config


@pytest.mark.parametrize("preview", MODES)
def test_nim_takes_the_plan_as_its_own_variables(preview):
    run = run_config(nim_config(profile="vllm-bf16-tp8-pp1"), preview=preview)
    assert check_invariants(run) == []
    workload = workloads(run)["llama-3-1-70b"]
    c = workload.server
    values = env(c)
    assert values["NIM_TENSOR_PARALLEL_SIZE"] == "8"  # the profile's TP, not the planner's smaller default
    assert values["NIM_PIPELINE_PARALLEL_SIZE"] == "1"
    assert values["NIM_MAX_MODEL_LEN"] == "32768"
    assert values["NIM_SERVED_MODEL_NAME"] == "llama-3-1-70b"
    assert values["NIM_MODEL_PROFILE"] == "vllm-bf16-tp8-pp1"
    assert values["NIM_CACHE_PATH"] == "/opt/nim/.cache"
    assert "--gpu-memory-utilization 0.9" in values["NIM_PASSTHROUGH_ARGS"]
    assert "NIM_TP_SIZE" not in values
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v1/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v1/health/live"
    pod = workload.templates["server"]["spec"]
    assert pod["securityContext"]["fsGroup"] == 1000
    secrets = {r.plain_inputs["metadata"]["name"]: r for r in run.of_type(SECRET)}
    pull = secrets[pod["imagePullSecrets"][0]["name"]]
    assert pull.inputs["type"] == "kubernetes.io/dockerconfigjson"
    assert masked(pull.inputs["stringData"], ".dockerconfigjson")  # masked in previews and state
    auth = json.loads(pull.plain_inputs["stringData"][".dockerconfigjson"])["auths"]["nvcr.io"]
    assert auth["username"] == "$oauthtoken" and auth["password"] == NGC_API_KEY
    assert base64.b64decode(auth["auth"]).decode() == f"$oauthtoken:{NGC_API_KEY}"
    key = secrets[c["env"][0]["valueFrom"]["secretKeyRef"]["name"]]
    assert masked(key.inputs["stringData"], "NGC_API_KEY")
    assert run.outputs["models"]["llama-3-1-70b"]["engine"] == "nim"


@pytest.mark.parametrize("preview", MODES)
def test_nim_restricted_to_its_profiles_tp_list(preview):
    run = run_config(
        nim_config(profileTensorParallelSizes=[4, 8], cache={"type": "pvc", "claimName": "nim-cache"}), preview=preview
    )
    assert check_invariants(run) == []
    assert run.outputs["models"]["llama-3-1-70b"]["tensorParallelSize"] in (4, 8)
    pod = workloads(run)["llama-3-1-70b"].templates["server"]["spec"]
    assert {"name": "nim-cache", "persistentVolumeClaim": {"claimName": "nim-cache"}} in pod["volumes"]


def test_outputs_of_a_multinode_stack_parse_for_consumers():
    from stack.outputs import parse_outputs

    outputs = parse_outputs(run_stack("multinode", False).outputs)
    endpoint = outputs.models["llama-3-1-405b"]
    assert endpoint.url == "http://llama-3-1-405b.inference.svc.cluster.local:8000/v1"
    assert endpoint.gpus == 16 and endpoint.nodes_per_replica == 2 and outputs.node_groups["h100-efa"].efa


def test_efa_group_in_the_clusters_subnets_is_warned_about():
    config = stack_config("multinode")
    del config["gpu-inference:nodeGroups"][0]["subnetIds"]
    run = run_config(config, preview=True)
    assert any("a cluster placement group lives in one Availability Zone" in message for _, message in run.logs)
    assert not any("Availability Zone" in message for _, message in run_stack("multinode", True).logs)
