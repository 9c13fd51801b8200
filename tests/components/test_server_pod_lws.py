"""A multi-node model under LeaderWorkerSet's real rules (issue 17 items 1 and 2), on the rendered
multinode stack and on a generated one with two multi-node models."""

from __future__ import annotations

import pytest

from tests.harness import LWS, SERVICE, run_config, run_stack, stack_config

JOB = "kubernetes:batch/v1:Job"
REVISION = "gpu-inference.io/revision"  # a label naming the revision of the LeaderWorkerSet's spec
MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]
HEADLESS_SOURCE = (
    "LWS v0.8.0 creates the headless Service behind its pods' subdomain only when no Service of the "
    "LeaderWorkerSet's name exists (pkg/utils/controller/controller_utils.go CreateHeadlessServiceIfNotExists, "
    "called with lws.Name by reconcileHeadlessServices)"
)
STALE_SOURCE = (
    "LWS v0.8.0 conditions and status carry no observedGeneration (pkg/controllers/leaderworkerset_controller.go "
    "makeCondition), and pulumi-kubernetes' waitFor checks status.observedGeneration only when present "
    "(provider/pkg/await/condition/jsonpath.go Satisfied), so condition=Available passes on the previous revision"
)


def two_multi_node_models():
    config = stack_config("multinode")
    first = config["gpu-inference:models"][0]
    second = {**first, "name": "llama-3-1-405b-b", "replicas": 2}
    config["gpu-inference:models"] = [first, second]
    config["gpu-inference:nodeGroups"][0]["maxNodes"] = 6
    return config


def runs():
    yield "multinode", run_stack("multinode", False)
    yield "two models", run_config(two_multi_node_models())


def shadowing_services(run) -> list[str]:
    problems = []
    services = {(s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]) for s in run.of_type(SERVICE)}
    for lws in run.of_type(LWS):
        key = (lws.inputs["metadata"]["namespace"], lws.inputs["metadata"]["name"])
        if key in services:
            problems.append(
                f"Service {key[1]} in {key[0]} shadows LeaderWorkerSet {key[1]}'s headless Service: {HEADLESS_SOURCE}"
            )
    return problems


def stale_awaits(run) -> list[str]:
    """Each LeaderWorkerSet's update is proved by its smoke Job on its own revision: the Job calls a
    Service that selects only leaders of the rendered revision, and waits as long as a group loads."""
    problems = []
    services = {s.plain_inputs["metadata"]["name"]: s.plain_inputs for s in run.of_type(SERVICE)}
    jobs = [j.plain_inputs for j in run.of_type(JOB)]
    for lws in run.of_type(LWS):
        inputs = lws.plain_inputs
        if not inputs["spec"]["replicas"]:
            continue
        leader = inputs["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]
        worker = inputs["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"]["labels"]
        instance = leader["app.kubernetes.io/instance"]
        job = next(j for j in jobs if j["metadata"]["labels"]["app.kubernetes.io/instance"] == instance)
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        url = command[command.index("--base-url") + 1]
        service = services.get(url.removeprefix("http://").split(".", 1)[0])
        selector = (service or {}).get("spec", {}).get("selector", {})
        this_revision = selector.items() <= leader.items() and REVISION in selector
        if not this_revision or selector.items() <= worker.items():  # leaders only: workers serve no HTTP
            problems.append(f"{instance}: the smoke Job calls {url}, not this revision's leaders: {STALE_SOURCE}")
            continue
        budget = int(inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"])
        wait = float(command[command.index("--timeout") + 1])
        if wait < budget or int(job["spec"]["activeDeadlineSeconds"]) < wait:
            problems.append(f"{instance}: the smoke Job waits {wait}s, less than the group's {budget}s await budget")
    return problems


@pytest.mark.parametrize("name, run", list(runs()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_service_takes_the_name_of_a_leader_worker_set(name, run):
    assert run.of_type(LWS)
    assert shadowing_services(run) == []


@pytest.mark.parametrize("name, run", list(runs()), ids=lambda v: v if isinstance(v, str) else "")
def test_an_update_is_awaited_on_the_new_revision_not_on_stale_status(name, run):
    assert stale_awaits(run) == []


def test_a_changed_spec_is_a_new_revision_with_its_own_smoke_target():
    before = run_stack("multinode", False)
    config = stack_config("multinode")
    config["gpu-inference:models"][0]["maxModelLen"] = 16384
    after = run_config(config)
    urls = []
    for run in (before, after):
        (job,) = run.of_type(JOB)
        command = job.plain_inputs["spec"]["template"]["spec"]["containers"][0]["command"]
        urls.append(command[command.index("--base-url") + 1])
    assert urls[0] != urls[1]


@pytest.mark.parametrize("preview", MODES)
def test_the_client_service_keeps_the_models_name_and_selects_leaders(preview):
    run = run_stack("multinode", preview)
    names = {s.inputs["metadata"]["name"] for s in run.of_type(SERVICE)}
    assert "llama-3-1-405b" in names  # the outputs' URL (stack.outputs.service_url)
    assert run.outputs["models"]["llama-3-1-405b"]["service"] == "llama-3-1-405b"
