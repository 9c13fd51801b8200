"""``python -m smoke.compare``: exit 0 when the plan's guarantee holds on the engine, 1 when not, 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smoke.compare import EXIT_BAD_INPUT, EXIT_BROKEN, EXIT_HOLDS, main
from tests.smoke.test_live_check import RECORDS, bytes_per_token_per_gpu
from tests.smoke.vllm_metrics import metrics_text

RECORD = next(r for r in RECORDS if r["case"].startswith("c1_"))
PER_REQUEST = RECORD["max_model_len"] // 16


def plan_for(record, min_concurrency: float) -> dict:
    """A plan.json whose prediction is what the engine measured (keys as sizing's Plan writes them)."""
    return {
        "models": [
            {
                "name": "llama",
                "model": "llama-3.1-8b",
                "servedModelName": "llama",
                "plan": {
                    "kv_cache_tokens": record["kv_tokens"],
                    "kv_cache_gib_per_gpu": record["kv_available_gib"],
                    "kv_cache_bytes_per_token_per_gpu": bytes_per_token_per_gpu(record),
                    "max_concurrency": record["max_concurrency"],
                    "min_concurrency": min_concurrency,
                    "settings": {
                        "max_model_len": record["max_model_len"],
                        "kv_cache_dtype": "auto",
                        "gpu_memory_utilization": record["gpu_memory_utilization"],
                    },
                },
            }
        ]
    }


@pytest.fixture
def files(tmp_path):
    def write(min_concurrency: float, metrics: str | None = None):
        plan, saved = tmp_path / "plan.json", tmp_path / "metrics.txt"
        plan.write_text(json.dumps(plan_for(RECORD, min_concurrency)))
        saved.write_text(metrics_text(RECORD) if metrics is None else metrics)
        return str(plan), str(saved)

    return write


def test_holds_exit_0_and_prints_the_difference(files, capsys):
    plan, metrics = files(min_concurrency=RECORD["engine"]["num_gpu_blocks"] // PER_REQUEST)
    assert main(["--plan", plan, "--model", "llama", "--metrics", metrics]) == EXIT_HOLDS
    out = capsys.readouterr().out
    assert "GUARANTEE HOLDS" in out and f"{RECORD['engine']['num_gpu_blocks']:,}" in out


def test_fewer_blocks_than_the_guarantee_exit_1(files, capsys):
    plan, metrics = files(min_concurrency=RECORD["engine"]["num_gpu_blocks"] // PER_REQUEST + 1)
    assert main(["--plan", plan, "--model", "llama", "--metrics", metrics]) == EXIT_BROKEN
    assert "GUARANTEE BROKEN" in capsys.readouterr().out


def test_json_output(files, capsys):
    plan, metrics = files(min_concurrency=1)
    assert main(["--plan", plan, "--model", "llama", "--metrics", metrics, "--json"]) == EXIT_HOLDS
    report = json.loads(capsys.readouterr().out)
    assert report["measured"]["num_gpu_blocks"] == RECORD["engine"]["num_gpu_blocks"]
    assert report["measured"]["max_concurrency"] == pytest.approx(RECORD["max_concurrency"], abs=0.005)
    assert report["difference"]["kv_cache_tokens"] == 0


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda p, m: ["--plan", p + ".missing", "--model", "llama", "--metrics", m], "run `make synth"),
        (lambda p, m: ["--plan", p, "--model", "other", "--metrics", m], "'other' is not in the plan"),
        (lambda p, m: ["--plan", p, "--model", "llama", "--metrics", m + ".missing"], "no such file"),
        (lambda p, m: ["--plan", p, "--model", "llama"], "--metrics"),
        (lambda p, m: ["--plan", m, "--model", "llama", "--metrics", m], "is not JSON"),
    ],
)
def test_bad_input_exit_2_with_one_line(files, capsys, change, expected):
    plan, metrics = files(min_concurrency=1)
    assert main(change(plan, metrics)) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_metrics_without_the_gauge_exit_2(files, capsys):
    plan, metrics = files(min_concurrency=1, metrics="vllm:num_requests_running 0.0\n")
    assert main(["--plan", plan, "--model", "llama", "--metrics", metrics]) == EXIT_BAD_INPUT
    assert "no vllm:cache_config_info" in capsys.readouterr().err


def test_reads_a_live_metrics_url(files, capsys):
    body = metrics_text(RECORD).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            status = 200 if self.path == "/metrics" else 404
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body if status == 200 else b"not found")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        plan, _ = files(min_concurrency=1)
        assert main(["--plan", plan, "--model", "llama", "--metrics", url + "/metrics"]) == EXIT_HOLDS
        assert main(["--plan", plan, "--model", "llama", "--metrics", url + "/nope"]) == EXIT_BAD_INPUT
    finally:
        server.shutdown()
        server.server_close()
    assert "HTTP 404" in capsys.readouterr().err


def test_runs_as_a_module(files):
    plan, metrics = files(min_concurrency=10**6)
    result = subprocess.run(
        [sys.executable, "-m", "smoke.compare", "--plan", plan, "--model", "llama", "--metrics", metrics],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_BROKEN, result.stderr
    assert "GUARANTEE BROKEN" in result.stdout


@pytest.mark.parametrize("module", ["smoke.compare", "sizing"])
def test_sizing_compare_is_the_same_check(files, module):
    """``python -m sizing compare`` (the issue's command) runs the smoke Job's own comparison."""
    plan, metrics = files(min_concurrency=RECORD["engine"]["num_gpu_blocks"] // PER_REQUEST)
    prefix = ["compare"] if module == "sizing" else []
    holds = subprocess.run(
        [sys.executable, "-m", module, *prefix, "--plan", plan, "--model", "llama", "--metrics", metrics],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert holds.returncode == EXIT_HOLDS, holds.stderr
    assert "GUARANTEE HOLDS" in holds.stdout
    broken_plan, _ = files(min_concurrency=RECORD["engine"]["num_gpu_blocks"] // PER_REQUEST + 1)
    broken = subprocess.run(
        [sys.executable, "-m", module, *prefix, "--plan", broken_plan, "--model", "llama", "--metrics", metrics],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == EXIT_BROKEN and "GUARANTEE BROKEN" in broken.stdout
