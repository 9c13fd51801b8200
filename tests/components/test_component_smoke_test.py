"""The post-deploy smoke test: one Job per served model, run through the real program."""

import copy
import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.smoke_test import LIVE_CHECK, SCRIPT, SMOKE_IMAGE, smoke_labels
from sizing.gpus import resolve_gpu
from sizing.kv_cache import block_size_tokens
from sizing.models import load_model
from tests.harness import model_plans, run_config, run_stack, stack_config
from tests.smoke.test_live_check import RECORDS
from tests.smoke.vllm_metrics import metrics_text

JOB, CONFIG_MAP, NETWORK_POLICY, SERVICE = (
    "kubernetes:batch/v1:Job",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:core/v1:Service",
)
SERVICE_ACCOUNT, ROLE, ROLE_BINDING = (
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
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
    assert pod["restartPolicy"] == "Never"
    live = "--report-configmap" in pod["containers"][0]["command"]
    assert pod["automountServiceAccountToken"] is live, "a token only where the live check writes its report"
    assert ("live_check.py" in mounted.plain_inputs["data"]) is live
    if live:
        assert mounted.plain_inputs["data"]["live_check.py"] == LIVE_CHECK.read_text()


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


# The live KV check (issue 14): the plan's guarantee travels in the Job's arguments.


def live_jobs(run):
    served = run.outputs["models"]
    return {name: job for name, job in jobs(run).items() if served[name]["engine"] == "vllm"}


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", ["dev", "prod", "multinode"])
def test_the_live_check_holds_each_vllm_server_to_its_plan(stack, preview):
    run = run_stack(stack, preview)
    plans = model_plans(run)
    served = run.outputs["models"]
    for name, job in jobs(run).items():
        command = job.plain_inputs["spec"]["template"]["spec"]["containers"][0]["command"]
        if served[name]["engine"] != "vllm":
            assert "--min-concurrency" not in command and "--report-configmap" not in command
            continue
        plan = plans[name]["plan"]
        settings = plan["settings"]
        assert float(flag(command, "--min-concurrency")) == plan["min_concurrency"]
        assert int(flag(command, "--max-model-len")) == settings["max_model_len"]
        assert int(flag(command, "--expect-kv-tokens")) == plan["kv_cache_tokens"]
        assert float(flag(command, "--expect-kv-gib")) == pytest.approx(plan["kv_cache_gib_per_gpu"], abs=1e-4)
        assert int(flag(command, "--kv-bytes-per-token")) == plan["kv_cache_bytes_per_token_per_gpu"]
        assert float(flag(command, "--expect-max-concurrency")) == pytest.approx(plan["max_concurrency"], abs=1e-4)
        assert flag(command, "--kv-cache-dtype") == settings["kv_cache_dtype"]
        assert float(flag(command, "--gpu-memory-utilization")) == settings["gpu_memory_utilization"]
        dtype_bytes = 1 if settings["kv_cache_dtype"] == "fp8" else 2
        block = block_size_tokens(load_model(plans[name]["model"]), resolve_gpu(plan["gpu"]), dtype_bytes)
        assert int(flag(command, "--block-size")) == block
        assert flag(command, "--report-configmap") == f"{name}-smoke-report"


@pytest.mark.parametrize("preview", MODES)
def test_the_report_writer_may_touch_its_own_report_only(preview):
    run = run_stack("dev", preview)
    assert live_jobs(run), "dev serves vLLM"
    namespace = stack_config("dev")["gpu-inference:cluster"]["namespace"]
    config_maps = {r.plain_inputs["metadata"]["name"]: r for r in run.of_type(CONFIG_MAP)}
    accounts = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(SERVICE_ACCOUNT)}
    roles = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(ROLE)}
    bindings = [r.plain_inputs for r in run.of_type(ROLE_BINDING)]
    for job in live_jobs(run).values():
        pod = job.plain_inputs["spec"]["template"]["spec"]
        report = flag(pod["containers"][0]["command"], "--report-configmap")
        assert config_maps[report].plain_inputs.get("data") in ({}, None), "Pulumi owns it empty; the Job fills it"
        assert config_maps[report].urn in job.dependencies
        account = pod["serviceAccountName"]
        assert accounts[account]["automountServiceAccountToken"] is False, "no token for other pods of the account"
        granted = [
            b for b in bindings if {"kind": "ServiceAccount", "name": account, "namespace": namespace} in b["subjects"]
        ]
        assert len(granted) == 1 and granted[0]["roleRef"]["kind"] == "Role"
        role = roles[granted[0]["roleRef"]["name"]]
        assert role["metadata"]["namespace"] == namespace == granted[0]["metadata"]["namespace"]
        assert role["rules"] == [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [report], "verbs": ["get", "patch"]}
        ]


class FakeServerAndApi:
    """The vLLM server the Job calls (health, completion, /metrics) and the API server, which
    allows what the rendered Role allows and nothing else."""

    def __init__(self, served_model_name, metrics, role, namespace, report):
        self.configmaps = {report: {"data": {}}}  # Pulumi created it, empty
        self.denied: list[str] = []
        fake = self

        def allowed(verb, resource, name):
            return any(
                verb in rule["verbs"] and resource in rule["resources"] and name in rule.get("resourceNames", [name])
                for rule in role["rules"]
            )

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def do_GET(self):
                if self.path == "/health":
                    return self._send(200, b"")
                if self.path == "/metrics":
                    return self._send(200, metrics.encode())
                self._send(404, {})

            def do_POST(self):
                body = self._body()
                if self.path == "/v1/completions":
                    choice = {"index": 0, "text": " Paris", "token_ids": [1], "finish_reason": "length"}
                    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
                    answer = {"id": "c", "object": "text_completion", "model": served_model_name, "choices": [choice]}
                    return self._send(200, {**answer, "usage": usage})
                fake.denied.append(f"create {body['metadata']['name']}")  # the Role grants no create
                self._send(403, {"kind": "Status", "message": "forbidden"})

            def do_PATCH(self):
                body = self._body()
                prefix, name = self.path.rsplit("/", 1)
                if prefix != f"/api/v1/namespaces/{namespace}/configmaps" or not allowed("patch", "configmaps", name):
                    fake.denied.append(f"patch {self.path}")
                    return self._send(403, {"kind": "Status", "message": "forbidden"})
                fake.configmaps[name]["data"].update(body["data"])
                self._send(200, fake.configmaps[name])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("short_by_blocks", [0, 1], ids=["guarantee-holds", "one-block-short"])
def test_the_rendered_job_fails_when_the_engine_has_fewer_blocks_than_the_guarantee(
    tmp_path, monkeypatch, capsys, short_by_blocks
):
    """The rendered ConfigMap's two files and the rendered command, against /metrics made from a
    calibration record whose block count is set to the plan's guarantee (or one block less)."""
    run = run_stack("dev", False)
    namespace = stack_config("dev")["gpu-inference:cluster"]["namespace"]
    name, job = next(iter(live_jobs(run).items()))
    pod = job.plain_inputs["spec"]["template"]["spec"]
    config_maps = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(CONFIG_MAP)}
    for file, text in config_maps[pod["volumes"][0]["configMap"]["name"]]["data"].items():
        (tmp_path / file).write_text(text)
    command = pod["containers"][0]["command"]
    assert command[:3] == ["python", "-I", "/smoke/smoke_test.py"]
    args = command[3:]
    max_model_len, block = int(flag(args, "--max-model-len")), int(flag(args, "--block-size"))
    guaranteed = int(float(flag(args, "--min-concurrency")) * -(-max_model_len // block))
    record = copy.deepcopy(RECORDS[0])
    record["engine"]["num_gpu_blocks"] = guaranteed - short_by_blocks
    record["kv_tokens"] = record["engine"]["num_gpu_blocks"] * block
    metrics = metrics_text(record, block_size=block)
    report = flag(args, "--report-configmap")
    roles = {r.plain_inputs["metadata"]["name"]: r.plain_inputs for r in run.of_type(ROLE)}
    role = roles[f"{pod['serviceAccountName']}-report"]
    fake = FakeServerAndApi(flag(args, "--model"), metrics, role, namespace, report)
    spec = importlib.util.spec_from_file_location("rendered_smoke_test", tmp_path / "smoke_test.py")
    rendered = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rendered)
    monkeypatch.setattr(rendered.KubeApi, "in_cluster", classmethod(lambda cls: cls(fake.url, "sa-token", namespace)))
    args[args.index("--base-url") + 1] = f"{fake.url}/v1"
    args[args.index("--timeout") + 1] = "10"
    try:
        code = rendered.main(args)
    finally:
        fake.close()
    out = capsys.readouterr().out
    assert not fake.denied, fake.denied
    written = json.loads(fake.configmaps[report]["data"][rendered.REPORT_KEY])
    assert written["measured"]["num_gpu_blocks"] == guaranteed - short_by_blocks
    if short_by_blocks:
        assert code != 0 and "GUARANTEE BROKEN" in out and written["holds"] is False
    else:
        assert code == 0 and "GUARANTEE HOLDS" in out and written["holds"] is True
