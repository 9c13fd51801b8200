"""Rollouts without an outage (issue 11 item 1): the strategy per replica count, the PDB that
agrees with it, a drain that lets in-flight requests finish, and awaits sized for the rollout."""

from __future__ import annotations

import pytest

from tests.harness import LWS, run_bad_config, run_config, run_stack, stack_config, workloads

PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def dev(replicas=1, **model):
    config = stack_config("dev")
    config["gpu-inference:models"] = [{**config["gpu-inference:models"][0], "replicas": replicas, **model}]
    return config


def deployment(run, name="llama-3-1-8b"):
    return workloads(run)[name]


def pdb(run, name="llama-3-1-8b"):
    return next(r.plain_inputs["spec"] for r in run.of_type(PDB) if r.inputs["metadata"]["name"] == name)


def budget_seconds(container):
    startup = container["startupProbe"]
    return startup["periodSeconds"] * startup["failureThreshold"]


def test_one_replica_is_recreated():
    run = run_config(dev(1))
    assert deployment(run).spec["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("replicas", [2, 4])
def test_more_replicas_roll_one_pod_at_a_time_without_surge(replicas):
    run = run_config(dev(replicas))
    spec = deployment(run).spec
    assert spec["strategy"]["type"] == "RollingUpdate"
    rolling = spec["strategy"]["rollingUpdate"]
    assert rolling["maxSurge"] == 0 and rolling["maxUnavailable"] == 1  # no spare GPU, all but one serve
    assert pdb(run)["maxUnavailable"] == rolling["maxUnavailable"]  # a drain takes no more than an update


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_pulumi_waits_for_every_step_of_the_rollout(replicas):
    run = run_config(dev(replicas))
    workload = deployment(run)
    pod = workload.templates["server"]["spec"]
    (container,) = pod["containers"]
    one_step = budget_seconds(container) + pod["terminationGracePeriodSeconds"]
    timeout = int(workload.registration.plain_inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"])
    assert timeout >= replicas * one_step
    # Kubernetes' own progress deadline (600 s by default) covers one step: loading is progress.
    assert workload.spec["progressDeadlineSeconds"] >= one_step


def test_the_drain_waits_for_the_endpoint_to_leave_then_for_in_flight_requests():
    run = run_config(dev(2))
    pod = deployment(run).templates["server"]["spec"]
    (container,) = pod["containers"]
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and int(sleep[1]) >= container["readinessProbe"]["periodSeconds"]
    drain = pod["terminationGracePeriodSeconds"] - int(sleep[1])
    assert drain > 0
    longer = run_config(dev(2, maxModelLen=131072))
    assert deployment(longer).templates["server"]["spec"]["terminationGracePeriodSeconds"] > drain + int(sleep[1])


def test_drain_seconds_from_the_config():
    run = run_config(dev(2, drainSeconds=45))
    pod = deployment(run).templates["server"]["spec"]
    sleep = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] == sleep + 45


def test_a_negative_drain_is_refused_with_its_path():
    run = run_bad_config(dev(1, drainSeconds=-1))
    assert "models[0].drainSeconds: -1 is invalid" in str(run.error)


def test_readiness_stays_false_until_the_model_is_loaded():
    """vLLM answers /health only once its engine is up; readiness and startup both probe it."""
    (container,) = deployment(run_config(dev(2))).templates["server"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == container["startupProbe"]["httpGet"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"


@pytest.mark.parametrize("replicas", [1, 2])
def test_leader_worker_set_groups_roll_one_at_a_time_and_workers_outlast_their_leader(replicas):
    config = stack_config("multinode")
    config["gpu-inference:models"][0]["replicas"] = replicas
    config["gpu-inference:nodeGroups"][0]["maxNodes"] = 2 * replicas
    run = run_config(config) if replicas > 1 else run_stack("multinode", False)
    (lws,) = run.of_type(LWS)
    spec = lws.plain_inputs["spec"]
    assert spec["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxUnavailable": 1, "maxSurge": 0}
    assert pdb(run, "llama-3-1-405b")["maxUnavailable"] == 1
    group = spec["leaderWorkerTemplate"]
    leader, worker = group["leaderTemplate"]["spec"], group["workerTemplate"]["spec"]
    assert leader["terminationGracePeriodSeconds"] == worker["terminationGracePeriodSeconds"]
    wait = " ".join(worker["containers"][0]["lifecycle"]["preStop"]["exec"]["command"])
    assert "LWS_LEADER_ADDRESS" in wait and "8000" in wait
    timeout = int(lws.plain_inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"])
    one_step = budget_seconds(leader["containers"][0]) + leader["terminationGracePeriodSeconds"]
    assert timeout >= replicas * one_step


# --- rollout: surge ---------------------------------------------------------------------------------


def dev_both(**eight_b):
    config = stack_config("dev")
    config["gpu-inference:models"][0].update(eight_b)
    return config


@pytest.mark.parametrize("replicas", [1, 3])
def test_surge_starts_the_new_pod_before_stopping_an_old_one(replicas):
    run = run_config(dev_both(rollout="surge", replicas=replicas))
    strategy = deployment(run).spec["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert pdb(run)["maxUnavailable"] == 1  # drains stay possible: a budget of 0 blocks node updates


def test_surge_is_refused_without_room_for_one_more_replica_with_the_numbers():
    config = stack_config("dev")
    config["gpu-inference:models"][1]["rollout"] = "surge"  # the 70B's 4 GPUs beside 5 of 8 in use
    run = run_bad_config(config)
    message = str(run.error)
    assert "nodeGroups[0].maxNodes: 1 leaves no room for rollout: surge of models[1]" in message
    assert "serving needs 1 p5.48xlarge nodes and one extra replica each needs 2" in message
    assert "raise maxNodes to at least 2" in message


def test_surge_room_is_kept_in_the_node_group():
    config = stack_config("dev")
    config["gpu-inference:models"][1]["rollout"] = "surge"
    config["gpu-inference:nodeGroups"][0]["maxNodes"] = 2
    run = run_config(config)
    (group,) = run.outputs["plan"]["nodeGroups"]
    assert group["neededNodes"] == group["desiredNodes"] == 2


def test_a_leader_worker_set_surges_one_group():
    config = stack_config("multinode")
    config["gpu-inference:models"][0]["rollout"] = "surge"
    refused = run_bad_config(config)
    assert "leaves no room for rollout: surge" in str(refused.error)
    config["gpu-inference:nodeGroups"][0]["maxNodes"] = 4
    (lws,) = run_config(config).of_type(LWS)
    rolling = lws.plain_inputs["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]
    assert rolling == {"maxUnavailable": 0, "maxSurge": 1}


def test_the_drain_is_the_longest_request_at_the_plans_predicted_decode_speed():
    """A larger model decodes each token slower at the same context, so it gets a longer drain."""
    config = stack_config("dev")
    for model in config["gpu-inference:models"]:
        model["replicas"] = 2
    config["gpu-inference:nodeGroups"][0]["maxNodes"] = 2
    run = run_config(config)

    def drain(name):
        pod = deployment(run, name).templates["server"]["spec"]
        sleep = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
        return pod["terminationGracePeriodSeconds"] - sleep

    length = config["gpu-inference:models"][0]["maxModelLen"]
    assert config["gpu-inference:models"][1]["maxModelLen"] == length
    assert drain("llama-3-1-70b") > drain("llama-3-1-8b")
    # Above the fastest an H100 could decode an 8B (its 15 GiB of weights read once per token at
    # 3.35 TB/s: 4.8 ms) and below a generous ceiling: the drain is a prediction, not a constant.
    assert length * 0.0048 < drain("llama-3-1-8b") < length * 0.1
