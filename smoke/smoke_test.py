#!/usr/bin/env python3
"""Smoke test of a deployed OpenAI-compatible vLLM server: one completion, checked.

    python smoke_test.py --base-url http://<svc>.<ns>.svc.cluster.local:8000/v1 --model <served-model-name>
                         [--timeout S] [--prompt-token-ids 1,2,3 | --prompt "..."] [--max-tokens N]
                         [--health-path /health]

1. Waits for ``GET <server><health-path>`` (the server root is ``--base-url`` without its
   trailing ``/v1``; vLLM answers ``/health``, NIM ``/v1/health/ready``) to answer 200,
   retrying every 2 s, for at most ``--timeout`` seconds.
2. Sends one ``POST <base-url>/completions`` with the prompt (text, or a list of token ids for a
   server started with ``--skip-tokenizer-init``), ``max_tokens``, ``temperature`` 0 and
   ``return_token_ids`` (vLLM returns the generated ids; other servers ignore it).
3. Fails, printing the server's answer, on: an HTTP error, a body that is not a JSON object,
   a ``model`` other than ``--model``, no ``choices``, a choice with neither text nor tokens,
   or a choice without ``finish_reason``. Prints one line starting ``SMOKE OK`` otherwise.

4. With ``--min-concurrency`` and ``--max-model-len`` (the plan's guarantee) and
   ``--expect-kv-tokens`` (the plan's KV cache), reads ``GET <server>/metrics``, compares vLLM's
   ``vllm:cache_config_info`` with the prediction (``live_check.py``, beside this file), prints
   measured against predicted (GiB, blocks, tokens, concurrency) and fails when the engine has
   fewer KV blocks than ``min_concurrency`` requests of ``max_model_len`` tokens need. With
   ``--report-configmap NAME`` it writes the comparison to that ConfigMap in its own namespace
   (in-cluster API, the pod's service-account token; the verdict and a failure to write both
   fail the test).

Exit codes: 0 success; 1 wrong or failed answer, or the plan's guarantee broken on the engine;
2 bad usage; 3 server never healthy in time; 4 the report could not be written.
Standard library only: it runs from a plain ``python`` image (mounted from a ConfigMap, with
``live_check.py`` beside it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_UNHEALTHY, EXIT_REPORT = 0, 1, 2, 3, 4
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REPORT_KEY = "live-check.json"
HEALTH_RETRY_SECONDS = 2.0
MAX_SHOWN = 4000  # characters of a server answer printed on failure


class SmokeFailure(Exception):
    def __init__(self, message: str, code: int = EXIT_WRONG):
        super().__init__(message)
        self.code = code


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"... ({len(text)} characters)"


def server_root(base_url: str) -> str:
    """``http://host:8000/v1`` -> ``http://host:8000`` (where vLLM serves ``/health``)."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _request(url: str, timeout: float, body: dict[str, Any] | None = None) -> tuple[int, str]:
    """(status, body text); HTTP error statuses are returned, connection errors raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=max(timeout, 0.1)) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def wait_healthy(base_url: str, deadline: float, health_path: str = "/health") -> float:
    """Poll the health path (vLLM ``/health``, NIM ``/v1/health/ready``) until 200 or the
    deadline; return the seconds waited."""
    url = server_root(base_url) + health_path
    start = time.monotonic()
    last = "no answer yet"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SmokeFailure(
                f"{url} not healthy after {time.monotonic() - start:.0f} s; last: {_shorten(last)}", EXIT_UNHEALTHY
            )
        try:
            status, text = _request(url, timeout=min(10.0, remaining))
            if status == 200:
                return time.monotonic() - start
            last = f"HTTP {status}: {text.strip()}"
        except (urllib.error.URLError, OSError) as error:  # refused, DNS not yet there, reset, timeout
            last = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        time.sleep(max(0.0, min(HEALTH_RETRY_SECONDS, deadline - time.monotonic())))


def completion_body(model: str, prompt: Any, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "return_token_ids": True,
    }


def check_completion(status: int, text: str, model: str) -> str:
    """Judge the server's answer; return a one-line summary or raise SmokeFailure."""
    shown = _shorten(text.strip())
    if status != 200:
        raise SmokeFailure(f"HTTP {status} from /completions: {shown}")
    try:
        answer = json.loads(text)
    except ValueError:
        raise SmokeFailure(f"answer is not JSON: {shown}") from None
    if not isinstance(answer, dict):
        raise SmokeFailure(f"answer is not a JSON object: {shown}")
    if answer.get("model") != model:
        raise SmokeFailure(f"answer names model {answer.get('model')!r}, expected {model!r}: {shown}")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        raise SmokeFailure(f"answer has no choices: {shown}")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise SmokeFailure(f"choice is not an object: {shown}")
    generated = choice.get("text") if isinstance(choice.get("text"), str) else ""
    token_ids = choice.get("token_ids") if isinstance(choice.get("token_ids"), list) else []
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    if not generated and not token_ids:
        raise SmokeFailure(f"choice has neither text nor tokens: {shown}")
    if not choice.get("finish_reason"):
        raise SmokeFailure(f"choice has no finish_reason: {shown}")
    tokens = len(token_ids) or usage.get("completion_tokens") or "?"
    return f"model={model} tokens={tokens} finish_reason={choice['finish_reason']} text={json.dumps(generated[:60])}"


def load_live_check() -> ModuleType:
    """``live_check.py`` from this file's folder: the Job's ConfigMap mounts both files there, and
    ``python -I`` leaves that folder off ``sys.path``, so it is loaded by path."""
    path = Path(__file__).resolve().with_name("live_check.py")
    if not path.is_file():
        raise SmokeFailure(f"{path} is missing: the live check needs live_check.py beside smoke_test.py", EXIT_USAGE)
    spec = importlib.util.spec_from_file_location("live_check", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("live_check", module)
    spec.loader.exec_module(module)
    return module


def live_check(args: argparse.Namespace, deadline: float) -> Any:
    """The engine's KV cache against the plan: a Comparison, or SmokeFailure when it cannot be read."""
    check = load_live_check()
    url = server_root(args.base_url) + args.metrics_path
    try:
        expected = check.Expectation(
            model=args.model,
            kv_cache_tokens=args.expect_kv_tokens,
            min_concurrency=args.min_concurrency,
            max_model_len=args.max_model_len,
            kv_cache_gib_per_gpu=args.expect_kv_gib,
            kv_cache_bytes_per_token_per_gpu=args.kv_bytes_per_token,
            max_concurrency=args.expect_max_concurrency,
            block_size=args.block_size,
            kv_cache_dtype=args.kv_cache_dtype,
            gpu_memory_utilization=args.gpu_memory_utilization,
        )
        text = check.read_metrics(url, timeout_s=max(min(30.0, deadline - time.monotonic()), 0.1))
        return check.compare(expected, check.engine_cache(text))
    except check.LiveCheckError as error:
        raise SmokeFailure(f"live check: {error}") from None


class KubeApi:
    """The in-cluster API server, with the pod's service-account token (standard library only)."""

    def __init__(self, base_url: str, token: str, namespace: str, context: ssl.SSLContext | None = None):
        self.base_url, self.token, self.namespace, self.context = base_url.rstrip("/"), token, namespace, context

    @classmethod
    def in_cluster(cls, directory: Path = SERVICE_ACCOUNT_DIR) -> KubeApi:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        token = directory / "token"
        if not host or not token.is_file():
            raise SmokeFailure(
                f"cannot write the report: no in-cluster API "
                f"({'no token at ' + str(token) if host else 'not in a pod'}); the Job needs "
                "automountServiceAccountToken: true and a ServiceAccount that may create, get and patch ConfigMaps",
                EXIT_REPORT,
            )
        host = f"[{host}]" if ":" in host else host
        context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
        return cls(
            f"https://{host}:{port}", token.read_text().strip(), (directory / "namespace").read_text().strip(), context
        )

    def request(self, method: str, path: str, body: dict[str, Any], content_type: str) -> tuple[int, str]:
        request = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", content_type)
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as error:
            raise SmokeFailure(
                f"cannot write the report: {method} {path}: {getattr(error, 'reason', error)}", EXIT_REPORT
            ) from None


def write_report(api: KubeApi, name: str, data: dict[str, str], labels: dict[str, str]) -> str:
    """Merge-patch the ConfigMap, creating it when absent; return what was done."""
    collection = f"/api/v1/namespaces/{urllib.parse.quote(api.namespace)}/configmaps"
    patch = {"metadata": {"labels": labels}, "data": data}
    for _ in range(2):
        status, text = api.request(
            "PATCH", f"{collection}/{urllib.parse.quote(name)}", patch, "application/merge-patch+json"
        )
        if status == 200:
            return f"patched ConfigMap {api.namespace}/{name}"
        if status != 404:
            break
        created = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": data}
        status, text = api.request("POST", collection, created, "application/json")
        if status == 201:
            return f"created ConfigMap {api.namespace}/{name}"
        if status != 409:  # 409: created meanwhile, patch it
            break
    raise SmokeFailure(
        f"cannot write the report to ConfigMap {api.namespace}/{name}: HTTP {status}: {_shorten(text.strip())}",
        EXIT_REPORT,
    )


def report_data(comparison: Any, base_url: str) -> dict[str, str]:
    document = {
        **comparison.to_dict(),
        "server": base_url,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return {REPORT_KEY: json.dumps(document, indent=2, sort_keys=True), "summary": "\n".join(comparison.lines())}


def parse_token_ids(value: str) -> list[int]:
    try:
        ids = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of integers") from None
    if not ids or any(i < 0 for i in ids):
        raise argparse.ArgumentTypeError(f"{value!r}: give at least one non-negative token id")
    return ids


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--base-url", required=True, help="OpenAI base URL, e.g. http://svc.ns.svc.cluster.local:8000/v1"
    )
    parser.add_argument("--model", required=True, help="the served model name the answer must carry")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds for the whole test (health wait included)"
    )
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument("--prompt-token-ids", type=parse_token_ids, help="comma-separated prompt token ids")
    prompt.add_argument("--prompt", help="prompt text (default: 'The capital of France is')")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--health-path", default="/health", help="under the server root; NIM: /v1/health/ready")
    live = parser.add_argument_group("live check of the plan (vLLM): all three of the first turn it on")
    live.add_argument("--min-concurrency", type=float, help="the plan's guarantee: requests of --max-model-len at once")
    live.add_argument("--max-model-len", type=int, help="the server's max_model_len")
    live.add_argument("--expect-kv-tokens", type=int, help="the plan's KV cache tokens (kv_cache_tokens)")
    live.add_argument("--expect-kv-gib", type=float, help="the plan's KV cache GiB per GPU")
    live.add_argument("--kv-bytes-per-token", type=int, help="the plan's KV bytes per token per GPU (for measured GiB)")
    live.add_argument("--expect-max-concurrency", type=float, help="the plan's max concurrency")
    live.add_argument("--block-size", type=int, help="the KV block size the plan assumed")
    live.add_argument("--kv-cache-dtype", help="the KV cache dtype the plan assumed")
    live.add_argument("--gpu-memory-utilization", type=float, help="the gpu_memory_utilization the plan assumed")
    live.add_argument("--metrics-path", default="/metrics", help="under the server root")
    live.add_argument("--report-configmap", help="write the comparison to this ConfigMap (the pod's namespace)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.max_tokens < 1:
        parser.error("--max-tokens must be at least 1")
    guarantee = (args.min_concurrency, args.max_model_len, args.expect_kv_tokens)
    checking = all(value is not None for value in guarantee)
    if any(value is not None for value in guarantee) and not checking:
        parser.error("--min-concurrency, --max-model-len and --expect-kv-tokens go together (the live check)")
    if args.report_configmap and not checking:
        parser.error(
            "--report-configmap reports the live check: give --min-concurrency, --max-model-len and --expect-kv-tokens"
        )
    prompt: Any = (
        args.prompt_token_ids if args.prompt_token_ids is not None else (args.prompt or "The capital of France is")
    )
    deadline = time.monotonic() + args.timeout
    url = args.base_url.rstrip("/") + "/completions"
    try:
        waited = wait_healthy(args.base_url, deadline, args.health_path)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SmokeFailure(f"no time left for the completion after {waited:.0f} s of health wait", EXIT_UNHEALTHY)
        start = time.monotonic()
        try:
            status, text = _request(url, timeout=remaining, body=completion_body(args.model, prompt, args.max_tokens))
        except (urllib.error.URLError, OSError) as error:
            raise SmokeFailure(
                f"POST {url} failed: {type(error).__name__}: {getattr(error, 'reason', error)}"
            ) from None
        summary = check_completion(status, text, args.model)
        if checking:
            comparison = live_check(args, deadline)
            print("\n".join(comparison.lines()), flush=True)
            if args.report_configmap:
                labels = {"app.kubernetes.io/component": "smoke-test-report"}
                print(
                    write_report(
                        KubeApi.in_cluster(), args.report_configmap, report_data(comparison, args.base_url), labels
                    )
                )
            if not comparison.holds:
                raise SmokeFailure(comparison.verdict())
    except SmokeFailure as failure:
        print(f"SMOKE FAILED ({args.base_url}): {failure}", flush=True)
        return failure.code
    elapsed = time.monotonic() - start
    print(f"SMOKE OK {args.base_url}: {summary} (healthy after {waited:.1f} s, completion {elapsed:.2f} s)", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
