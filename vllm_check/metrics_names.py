"""The metric names vLLM really exports, read from a real server's ``/metrics``.

The alerts and dashboards (``components.monitoring``) name vLLM metrics; a renamed metric would
leave a rule that never fires and a panel that stays empty. Two uses:

- ``make verify-vllm`` reads the live ``/metrics`` of the TP=2 server it starts (after the smoke
  test, so counters and histograms carry samples) and checks every vLLM metric the rules and
  dashboards use is there (``live_check``).
- ``python -m vllm_check.metrics_names --capture`` starts a TP=1 server the same way (a stack's
  first vLLM model planned through the project's code path, on the CPU substitutions of
  ``vllm_check.serve``) and writes its ``/metrics`` to the vendored fixture the unit tests read
  (``verify/vendor/vllm-0.32.0-cpu-metrics.txt``), with a header saying how it was captured.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from vllm_check import install
from vllm_check.engine import DEFAULT_WORK
from vllm_check.serve import generated_server, run_server

FIXTURE = install.ROOT / "verify" / "vendor" / f"vllm-{install.VLLM_VERSION}-cpu-metrics.txt"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)")
# What a histogram or counter family exposes besides its own name (prometheus_client).
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def exposed_names(text: str) -> set[str]:
    """Sample names in a Prometheus text exposition (``name{labels} value`` lines)."""
    names = set()
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            names.add(match.group(1))
    return names


def missing(used: Iterable[str], text: str) -> list[str]:
    """The used sample names (``vllm:...``) the exposition does not have."""
    exposed = exposed_names(text)
    return sorted(name for name in set(used) if name not in exposed)


def fetch(server_url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(f"{server_url}/metrics", timeout=timeout) as response:
        return response.read().decode()


def used_vllm_metrics() -> set[str]:
    """Every vLLM sample name a rule or dashboard of any configured stack uses."""
    from components.monitoring import VLLM_METRICS

    return set(VLLM_METRICS)


def live_check(server_url: str) -> list[str]:
    """Problems: each used vLLM metric the live server does not export."""
    try:
        text = fetch(server_url)
    except OSError as error:
        return [f"GET {server_url}/metrics failed: {error}"]
    return [
        f"{name}: used by an alert or dashboard, not exported by vLLM {install.VLLM_VERSION}"
        for name in missing(used_vllm_metrics(), text)
    ]


def capture(path: Path = FIXTURE, stack: str = "dev", ready_timeout: float = 300) -> int:
    install.ensure(log=lambda m: print(f"[install] {m}", flush=True))
    server = generated_server(stack)
    captured: dict[str, str] = {}

    def read(server_url: str) -> None:
        captured["text"] = fetch(server_url)

    print(f"[capture] vllm {' '.join(server.argv)}", flush=True)
    run = run_server(
        server, server.shm_size_limit, "metrics-tp1", work=DEFAULT_WORK, ready_timeout=ready_timeout, on_ready=read
    )
    if "text" not in captured:
        print(
            f"[capture] FAILED: ready={run.ready} exit={run.exit_code}: {' | '.join(run.error_lines)} (log {run.log})"
        )
        return 1
    smoke = "; ".join(f"{what}: exit {code}" for what, code, _ in run.smoke)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    header = [
        f"# vLLM {install.VLLM_VERSION} (pip {install.VLLM_REQUIREMENT}) GET /metrics, captured {day}",
        "# by `python -m vllm_check.metrics_names --capture` (vllm_check/metrics_names.py): a real `vllm serve`",
        f"# on this CPU, TP=1, the flags components.engines.vllm renders for stack {stack}'s first model, with",
        "# vllm_check.serve's CPU substitutions (tiny Llama config, --load-format dummy, --skip-tokenizer-init,",
        f"# --enforce-eager); read after smoke/smoke_test.py ran against it ({smoke}).",
        "# CPU build: metrics vLLM registers only on GPU platforms would be absent here (none is used).",
        "# CPU substitutions made:",
        *(f"#   {line}" for line in run.substitutions),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + captured["text"])
    print(f"[capture] wrote {path} ({len(exposed_names(captured['text']))} sample names)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_check.metrics_names", description=__doc__.split("\n")[0])
    parser.add_argument("--capture", action="store_true", help=f"start a TP=1 server and write {FIXTURE.name}")
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    if args.capture:
        return capture(stack=args.stack)
    text = FIXTURE.read_text()
    gone = missing(used_vllm_metrics(), text)
    print("\n".join(gone) if gone else f"every used vLLM metric is in {FIXTURE.name}")
    return 1 if gone else 0


if __name__ == "__main__":
    sys.exit(main())
