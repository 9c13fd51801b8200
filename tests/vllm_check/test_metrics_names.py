"""vllm_check.metrics_names: the live /metrics check make verify-vllm runs, over real HTTP."""

import http.server
import threading
from contextlib import contextmanager

from components.monitoring import VLLM_METRICS, VLLM_PREEMPTIONS
from vllm_check.metrics_names import FIXTURE, exposed_names, live_check, missing, used_vllm_metrics


@contextmanager
def serving(text):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = text.encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sample_names_are_read_from_the_exposition_not_its_comments():
    text = '# HELP vllm:x_total X\n# TYPE vllm:x_total counter\nvllm:x_total{a="1"} 1.0\nup 1\n'
    assert exposed_names(text) == {"vllm:x_total", "up"}
    assert missing({"vllm:x_total", "vllm:y"}, text) == ["vllm:y"]


def test_the_used_names_are_the_components_list_and_all_in_the_captured_exposition():
    assert used_vllm_metrics() == set(VLLM_METRICS)
    assert missing(used_vllm_metrics(), FIXTURE.read_text()) == []


def test_live_check_passes_on_the_real_exposition_and_names_what_a_server_lacks():
    text = FIXTURE.read_text()
    with serving(text) as url:
        assert live_check(url) == []
    without = "\n".join(line for line in text.splitlines() if not line.startswith(VLLM_PREEMPTIONS))
    with serving(without) as url:
        (problem,) = live_check(url)
    assert problem.startswith(VLLM_PREEMPTIONS) and "not exported by vLLM 0.32.0" in problem


def test_live_check_reports_an_unreachable_server():
    with serving("") as url:
        pass
    (problem,) = live_check(url)
    assert problem.startswith(f"GET {url}/metrics failed")
