"""The post-deploy smoke test: one Job per served model, run through the real program."""

import pytest

from components.smoke_test import SCRIPT, SMOKE_IMAGE, smoke_labels
from tests.harness import run_config, run_stack, stack_config

JOB, CONFIG_MAP, NETWORK_POLICY, SERVICE = (
    "kubernetes:batch/v1:Job",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:core/v1:Service",
)
MODES = [pytest.param(False, id="update"), pytest.param(True, id="preview")]


def jobs(run):
    return {r.name.removesuffix("-smoke"): r for r in run.of_type(JOB)}


def flag(command, name):
    return command[command.index(name) + 1]


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", ["dev", "prod", "multinode"])
def test_every_served_model_gets_a_smoke_test_after_its_server(stack, preview):
    run = run_stack(stack, preview)
    served = run.outputs["models"]
    assert set(jobs(run)) == {name for name, model in served.items() if model["replicas"] > 0}
    urns = {r.name: r.urn for r in run.registrations}
    for name, job in jobs(run).items():
        model = served[name]
        spec = job.plain_inputs["spec"]
        container = spec["template"]["spec"]["containers"][0]
        command = container["command"]
        if model["topology"] == "deployment":
            assert flag(command, "--base-url") == model["url"]
        else:  # this revision's leaders: the model's Service narrowed to the revision the Job tests
            services = {r.plain_inputs["metadata"]["name"]: r for r in run.of_type(SERVICE)}
            called = flag(command, "--base-url").removeprefix("http://").split(".", 1)[0]
            narrowed = services[called].plain_inputs["spec"]["selector"]
            client = services[model["service"]].plain_inputs["spec"]["selector"]
            assert client.items() < narrowed.items()
            assert flag(command, "--base-url") == model["url"].replace(model["service"], called, 1)
            assert services[called].urn in job.dependencies
        assert flag(command, "--model") == model["servedModelName"]
        assert flag(command, "--health-path") == ("/health" if model["engine"] == "vllm" else "/v1/health/ready")
        assert container["image"] == SMOKE_IMAGE and ":" in SMOKE_IMAGE
        assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] > int(flag(command, "--timeout"))
        assert urns[name] in job.dependencies, "the Job waits for the server (Pulumi awaits it ready)"
        assert urns[f"{name}-svc"] in job.dependencies
        assert job.custom_timeouts, "pulumi up waits for the Job to finish, bounded"


@pytest.mark.parametrize("preview", MODES)
def test_the_script_comes_from_the_repository_and_runs_unprivileged(preview):
    run = run_stack("dev", preview)
    (job, *_) = jobs(run).values()
    pod = job.plain_inputs["spec"]["template"]["spec"]
    config_maps = {r.plain_inputs["metadata"]["name"]: r for r in run.of_type(CONFIG_MAP)}
    mounted = config_maps[pod["volumes"][0]["configMap"]["name"]]
    assert mounted.plain_inputs["data"]["smoke_test.py"] == SCRIPT.read_text()
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]} and pod["securityContext"]["runAsNonRoot"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"


@pytest.mark.parametrize("preview", MODES)
def test_the_servers_network_policy_admits_its_smoke_test(preview):
    run = run_stack("dev", preview)
    policies = {r.plain_inputs["metadata"]["name"]: r.plain_inputs["spec"] for r in run.of_type(NETWORK_POLICY)}
    for name, job in jobs(run).items():
        labels = job.plain_inputs["spec"]["template"]["metadata"]["labels"]
        assert labels == smoke_labels(name)
        admitted = [
            peer["podSelector"]["matchLabels"]
            for rule in policies[name]["ingress"]
            for peer in rule["from"]
            if "podSelector" in peer and rule.get("ports") == [{"protocol": "TCP", "port": 8000}]
        ]
        assert any(selector.items() <= labels.items() for selector in admitted)


def test_a_changed_server_is_tested_again_and_an_unchanged_one_is_not():
    config = stack_config("dev")
    before = {n: j.plain_inputs["metadata"]["name"] for n, j in jobs(run_config(config)).items()}
    again = {n: j.plain_inputs["metadata"]["name"] for n, j in jobs(run_config(config)).items()}
    assert before == again
    config["gpu-inference:models"][0]["maxModelLen"] = 16384
    changed_name = config["gpu-inference:models"][0]["name"]
    after = {n: j.plain_inputs["metadata"]["name"] for n, j in jobs(run_config(config)).items()}
    assert after[changed_name] != before[changed_name]
    assert all(after[n] == before[n] for n in before if n != changed_name)


def test_a_model_scaled_to_zero_has_no_smoke_test():
    config = stack_config("dev")
    config["gpu-inference:models"][0]["replicas"] = 0
    assert config["gpu-inference:models"][0]["name"] not in jobs(run_config(config))
