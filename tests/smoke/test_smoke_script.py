"""smoke/smoke_test.py against a tiny fake server on 127.0.0.1: each failure mode, and success."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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

    def __init__(self, completion_status=200, completion_body=GOOD, health=(200,), health_path="/health"):
        self.health_path = health_path
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
