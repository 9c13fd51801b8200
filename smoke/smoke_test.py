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

Exit codes: 0 success; 1 wrong or failed answer; 2 bad usage; 3 server never healthy in time.
Standard library only: it runs from a plain ``python`` image (mounted from a ConfigMap).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_UNHEALTHY = 0, 1, 2, 3
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.max_tokens < 1:
        parser.error("--max-tokens must be at least 1")
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
    except SmokeFailure as failure:
        print(f"SMOKE FAILED ({args.base_url}): {failure}", flush=True)
        return failure.code
    print(
        f"SMOKE OK {args.base_url}: {summary} (healthy after {waited:.1f} s, completion {time.monotonic() - start:.2f} s)",
        flush=True,
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
