"""smoke/smoke_test.py against a tiny fake server on 127.0.0.1: each failure mode, and success."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.smoke.test_live_check import RECORDS, bytes_per_token_per_gpu
from tests.smoke.vllm_metrics import metrics_text

SCRIPT = Path(__file__).resolve().parents[2] / "smoke" / "smoke_test.py"
spec = importlib.util.spec_from_file_location("smoke_test", SCRIPT)
smoke = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smoke)

MODEL = "tiny-model"
GOOD = {
    "id": "cmpl-1",
    "object": "text_completion",
    "model": MODEL,
    "choices": [{"index": 0, "text": "", "token_ids": [5, 6, 7], "finish_reason": "length"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
}


class Fake:
    """A fake vLLM: ``health`` is a list of statuses for successive /health calls (last repeats)."""

    def __init__(self, completion_status=200, completion_body=GOOD, health=(200,), health_path="/health", metrics=None):
        self.health_path = health_path
        self.metrics = metrics
        self.completion_status = completion_status
        self.completion_body = completion_body
        self.health = list(health)
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == fake.health_path:
                    status = fake.health.pop(0) if len(fake.health) > 1 else fake.health[0]
                    self._send(status, b"")
                elif self.path == "/metrics" and fake.metrics is not None:
                    self._send(200, fake.metrics.encode())
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                fake.requests.append({"path": self.path, "body": body})
                if self.path != "/v1/completions":
                    self._send(404, {"detail": "Not Found"})
                else:
                    self._send(fake.completion_status, fake.completion_body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def fast_retry(monkeypatch):
    monkeypatch.setattr(smoke, "HEALTH_RETRY_SECONDS", 0.05)


def run(fake: Fake, *extra: str, capsys) -> tuple[int, str]:
    code = smoke.main(["--base-url", fake.base_url, "--model", MODEL, "--timeout", "5", *extra])
    return code, capsys.readouterr().out


def test_success_with_token_ids(capsys):
    with Fake(health=(503, 503, 200)) as fake:
        code, out = run(fake, "--prompt-token-ids", "1,2,3", "--max-tokens", "3", capsys=capsys)
    assert code == 0, out
    assert out.startswith("SMOKE OK") and out.count("\n") == 1
    assert "tokens=3" in out and "finish_reason=length" in out
    body = fake.requests[0]["body"]
    assert body["prompt"] == [1, 2, 3] and body["max_tokens"] == 3 and body["model"] == MODEL


def test_nim_health_path(capsys):
    """NIM answers readiness on /v1/health/ready and has no /health: the Job passes the path."""
    with Fake(health=(503, 200), health_path="/v1/health/ready") as fake:
        code, out = run(fake, "--health-path", "/v1/health/ready", capsys=capsys)
        assert code == 0, out
        code, out = run(fake, "--timeout", "0.5", capsys=capsys)
    assert code == smoke.EXIT_UNHEALTHY and "/health not healthy" in out


def test_success_with_text(capsys):
    answer = {**GOOD, "choices": [{"index": 0, "text": " Paris", "finish_reason": "stop"}]}
    with Fake(completion_body=answer) as fake:
        code, out = run(fake, "--prompt", "The capital of France is", capsys=capsys)
    assert code == 0, out
    assert fake.requests[0]["body"]["prompt"] == "The capital of France is"


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (500, {"error": {"message": "engine dead"}}, "HTTP 500 from /completions"),
        (400, {"error": {"message": "max_tokens too large"}}, "max_tokens too large"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, [1, 2], "not a JSON object"),
        (200, {**GOOD, "choices": []}, "no choices"),
        (200, {k: v for k, v in GOOD.items() if k != "choices"}, "no choices"),
        (200, {**GOOD, "model": "other-model"}, "names model 'other-model', expected 'tiny-model'"),
        (200, {**GOOD, "choices": [{"index": 0, "text": "", "finish_reason": "length"}]}, "neither text nor tokens"),
        (
            200,
            {**GOOD, "choices": [{"index": 0, "text": "", "token_ids": [], "finish_reason": "stop"}]},
            "neither text nor tokens",
        ),
        (200, {**GOOD, "choices": [{"index": 0, "text": "hi"}]}, "no finish_reason"),
        (200, {**GOOD, "choices": [{"index": 0, "text": "hi", "finish_reason": None}]}, "no finish_reason"),
    ],
)
def test_wrong_answers_fail_with_the_answer(status, body, expected, capsys):
    with Fake(completion_status=status, completion_body=body) as fake:
        code, out = run(fake, "--prompt-token-ids", "1,2,3", capsys=capsys)
    assert code == smoke.EXIT_WRONG
    assert out.startswith("SMOKE FAILED") and expected in out
    shown = body.decode() if isinstance(body, bytes) else json.dumps(body)
    assert shown[:40] in out  # the server's answer is printed


def test_never_healthy_is_bounded(capsys):
    with Fake(health=(503,)) as fake:
        code = smoke.main(["--base-url", fake.base_url, "--model", MODEL, "--timeout", "0.5"])
    out = capsys.readouterr().out
    assert code == smoke.EXIT_UNHEALTHY
    assert "not healthy" in out and "HTTP 503" in out and not fake.requests


def test_nothing_listening_is_bounded(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = smoke.main(["--base-url", f"http://127.0.0.1:{port}/v1", "--model", MODEL, "--timeout", "0.5"])
    out = capsys.readouterr().out
    assert code == smoke.EXIT_UNHEALTHY and "Connection refused" in out


def test_usage_errors():
    with pytest.raises(SystemExit) as exit_:
        smoke.main(["--base-url", "http://x/v1", "--model", MODEL, "--prompt", "a", "--prompt-token-ids", "1"])
    assert exit_.value.code == smoke.EXIT_USAGE
    with pytest.raises(SystemExit):
        smoke.main(["--base-url", "http://x/v1", "--model", MODEL, "--prompt-token-ids", "1,x"])
    with pytest.raises(SystemExit):
        smoke.main(["--model", MODEL])


def test_server_root():
    assert smoke.server_root("http://svc.ns.svc.cluster.local:8000/v1") == "http://svc.ns.svc.cluster.local:8000"
    assert smoke.server_root("http://svc:8000/v1/") == "http://svc:8000"
    assert smoke.server_root("http://svc:8000") == "http://svc:8000"


def test_runs_standalone_with_the_standard_library_only():
    """As in the Job: a plain interpreter, no site-packages (-S), isolated (-I), the file alone."""
    with Fake() as fake:
        result = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                str(SCRIPT),
                "--base-url",
                fake.base_url,
                "--model",
                MODEL,
                "--prompt-token-ids",
                "1,2",
                "--timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("SMOKE OK")
    with Fake(completion_body={**GOOD, "model": "x"}) as fake:
        result = subprocess.run(
            [sys.executable, "-I", "-S", str(SCRIPT), "--base-url", fake.base_url, "--model", MODEL, "--timeout", "10"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1 and "SMOKE FAILED" in result.stdout


# The live check: the engine's KV cache (vllm:cache_config_info) against the plan, after the completion.

RECORD = next(r for r in RECORDS if r["case"].startswith("c1_"))
PER_REQUEST = RECORD["max_model_len"] // 16
MEASURED_CONCURRENCY = RECORD["engine"]["num_gpu_blocks"] // PER_REQUEST


def plan_args(min_concurrency: float, *extra: str) -> list[str]:
    """What the smoke component passes from the plan (here: the numbers vLLM measured)."""
    return [
        "--min-concurrency",
        str(min_concurrency),
        "--max-model-len",
        str(RECORD["max_model_len"]),
        "--expect-kv-tokens",
        str(RECORD["kv_tokens"]),
        "--expect-kv-gib",
        str(RECORD["kv_available_gib"]),
        "--kv-bytes-per-token",
        str(bytes_per_token_per_gpu(RECORD)),
        "--block-size",
        "16",
        *extra,
    ]


def test_live_check_holds_and_prints_measured_against_predicted(capsys):
    with Fake(metrics=metrics_text(RECORD)) as fake:
        code, out = run(fake, *plan_args(MEASURED_CONCURRENCY), capsys=capsys)
    assert code == smoke.EXIT_OK, out
    assert "GUARANTEE HOLDS" in out and out.rstrip().splitlines()[-1].startswith("SMOKE OK")
    assert f"{RECORD['engine']['num_gpu_blocks']:,}" in out and "KV GiB per GPU" in out


def test_live_check_fails_the_job_when_the_guarantee_is_broken(capsys):
    with Fake(metrics=metrics_text(RECORD)) as fake:
        code, out = run(fake, *plan_args(MEASURED_CONCURRENCY + 1), capsys=capsys)
    assert code == smoke.EXIT_WRONG
    assert "SMOKE FAILED" in out and "GUARANTEE BROKEN" in out
    assert "KV tokens" in out  # measured against predicted is printed either way


def test_live_check_fails_without_the_gauge(capsys):
    with Fake(metrics="vllm:num_requests_running 0.0\n") as fake:
        code, out = run(fake, *plan_args(1), capsys=capsys)
    assert code == smoke.EXIT_WRONG and "no vllm:cache_config_info" in out
    with Fake() as fake:  # /metrics answers 404
        code, out = run(fake, *plan_args(1), capsys=capsys)
    assert code == smoke.EXIT_WRONG and "HTTP 404" in out


def test_live_check_arguments_go_together():
    with pytest.raises(SystemExit) as exit_:
        smoke.main(["--base-url", "http://x/v1", "--model", MODEL, "--min-concurrency", "2"])
    assert exit_.value.code == smoke.EXIT_USAGE
    with pytest.raises(SystemExit):
        smoke.main(["--base-url", "http://x/v1", "--model", MODEL, "--report-configmap", "r"])


class FakeKubeApi:
    """The API server's ConfigMap endpoints, enough for a merge-patch or a create; ``deny`` answers 403."""

    def __init__(self, existing: dict | None = None, deny: bool = False):
        self.configmaps: dict[str, dict] = dict(existing or {})
        self.calls: list[tuple[str, str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def do_PATCH(self):
                body = self._body()
                api.calls.append(("PATCH", self.path, self.headers["Content-Type"], self.headers["Authorization"]))
                name = self.path.rsplit("/", 1)[-1]
                if deny:
                    return self._send(403, {"kind": "Status", "message": f'configmaps "{name}" is forbidden'})
                if name not in api.configmaps:
                    return self._send(404, {"kind": "Status", "reason": "NotFound"})
                api.configmaps[name]["data"].update(body["data"])
                self._send(200, api.configmaps[name])

            def do_POST(self):
                body = self._body()
                api.calls.append(("POST", self.path, self.headers["Content-Type"], self.headers["Authorization"]))
                api.configmaps[body["metadata"]["name"]] = body
                self._send(201, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def client(self):
        return smoke.KubeApi(f"http://127.0.0.1:{self.server.server_address[1]}", "sa-token", "inference")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("existing", [None, {"llm-smoke-report": {"data": {"old": "x"}}}], ids=["create", "patch"])
def test_report_written_to_a_configmap_either_way(monkeypatch, capsys, existing):
    api = FakeKubeApi(existing)
    monkeypatch.setattr(smoke.KubeApi, "in_cluster", classmethod(lambda cls: api.client()))
    try:
        with Fake(metrics=metrics_text(RECORD)) as fake:
            code, out = run(
                fake, *plan_args(MEASURED_CONCURRENCY + 1, "--report-configmap", "llm-smoke-report"), capsys=capsys
            )
    finally:
        api.close()
    assert code == smoke.EXIT_WRONG  # the broken guarantee still fails the Job, after the report
    assert ("created" if existing is None else "patched") + " ConfigMap inference/llm-smoke-report" in out
    report = json.loads(api.configmaps["llm-smoke-report"]["data"][smoke.REPORT_KEY])
    assert report["holds"] is False and report["measured"]["num_gpu_blocks"] == RECORD["engine"]["num_gpu_blocks"]
    assert report["server"] == fake.base_url
    assert "GUARANTEE BROKEN" in api.configmaps["llm-smoke-report"]["data"]["summary"]
    assert api.calls[0][:3] == (
        "PATCH",
        "/api/v1/namespaces/inference/configmaps/llm-smoke-report",
        "application/merge-patch+json",
    )
    assert all(call[3] == "Bearer sa-token" for call in api.calls)


def test_report_refused_by_rbac_fails_with_its_own_code(monkeypatch, capsys):
    api = FakeKubeApi(deny=True)
    monkeypatch.setattr(smoke.KubeApi, "in_cluster", classmethod(lambda cls: api.client()))
    try:
        with Fake(metrics=metrics_text(RECORD)) as fake:
            code, out = run(fake, *plan_args(1, "--report-configmap", "r"), capsys=capsys)
    finally:
        api.close()
    assert code == smoke.EXIT_REPORT and "HTTP 403" in out and "forbidden" in out


def test_no_service_account_token_says_what_the_job_needs(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
    with pytest.raises(smoke.SmokeFailure) as failure:
        smoke.KubeApi.in_cluster(tmp_path)
    assert failure.value.code == smoke.EXIT_REPORT
    assert "automountServiceAccountToken: true" in str(failure.value) and "patch ConfigMaps" in str(failure.value)


def test_in_cluster_api_from_the_mounted_token(monkeypatch, tmp_path):
    import ssl

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "namespace").write_text("inference")
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile: cafile)
    api = smoke.KubeApi.in_cluster(tmp_path)
    assert (api.base_url, api.token, api.namespace) == ("https://10.100.0.1:443", "tok", "inference")
    assert api.context == str(tmp_path / "ca.crt")


def test_the_configmap_pair_runs_alone(tmp_path):
    """As in the Job: smoke_test.py and live_check.py alone in a folder, ``python -I -S``."""
    for name in ("smoke_test.py", "live_check.py"):
        shutil.copy(SCRIPT.with_name(name), tmp_path / name)
    command = [sys.executable, "-I", "-S", str(tmp_path / "smoke_test.py")]
    with Fake(metrics=metrics_text(RECORD)) as fake:
        args = ["--base-url", fake.base_url, "--model", MODEL, "--timeout", "10"]
        held = subprocess.run([*command, *args, *plan_args(MEASURED_CONCURRENCY)], capture_output=True, text=True)
        broken = subprocess.run([*command, *args, *plan_args(MEASURED_CONCURRENCY + 1)], capture_output=True, text=True)
    assert held.returncode == 0, held.stdout + held.stderr
    assert "GUARANTEE HOLDS" in held.stdout
    assert broken.returncode == 1 and "GUARANTEE BROKEN" in broken.stdout
    (tmp_path / "live_check.py").unlink()
    with Fake(metrics=metrics_text(RECORD)) as fake:
        args = ["--base-url", fake.base_url, "--model", MODEL, "--timeout", "10"]
        alone = subprocess.run([*command, *args], capture_output=True, text=True)
        missing = subprocess.run([*command, *args, *plan_args(1)], capture_output=True, text=True)
    assert alone.returncode == 0, alone.stdout  # without the live check the script needs nothing beside it
    assert missing.returncode == smoke.EXIT_USAGE and "live_check.py is missing" in missing.stdout
