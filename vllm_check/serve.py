"""Start a rendered TP=2 ``vllm serve`` line for real on the CPU, in a /dev/shm of its rendered size.

The rendered flags and values are kept; ``cpu_substitutions`` makes (and lists) only what a CPU,
a tiny model with dummy weights and a loopback test need. The server runs in a private mount
namespace (``unshare -m --propagation private``) whose /dev/shm is a tmpfs of exactly the pod's
``sizeLimit``, in its own session/process group on 127.0.0.1 and a free port, with its own
TMPDIR and caches. Every wait is bounded; the group is always ended (SIGTERM, then SIGKILL) and
the namespace, hence its tmpfs, goes with its last process. ``Cleanup`` checks that no process,
host /dev/shm entry, mount or temporary directory is left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stack.kubernetes_names import quantity_value
from vllm_check import install
from vllm_check.engine import DEFAULT_WORK, vllm_env
from vllm_check.rendered import PROJECT, ServeCommand, flag_value, replace_flag

SMOKE_SCRIPT = install.ROOT / "smoke" / "smoke_test.py"
NEGATIVE_SHM = "64Mi"

# A tiny Llama: 4 heads of 32 (vLLM's CPU fp8 KV cache needs head_size % 32 == 0), 2 KV heads
# (divisible by TP=2), 2 layers, 512-token vocabulary. max_position_embeddings is set to the
# rendered --max-model-len so that flag keeps its value.
TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "hidden_act": "silu",
    "rope_theta": 10000.0,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
CPU_KVCACHE_GIB = "1"


def cpu_has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def parse_quantity(value: str) -> int:
    """A Kubernetes quantity in bytes, by the project's one quantity grammar."""
    return int(quantity_value(value))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- which server -------------------------------------------------------------------------------


def rendered_tp2(commands: list[ServeCommand]) -> ServeCommand | None:
    """A rendered single-pod TP=2 server with a /dev/shm volume, if any."""
    candidates = [c for c in commands if c.tensor_parallel_size == 2 and c.role == "pod" and c.shm_size_limit]
    # The one that exercises the most: most flags, then an fp8 KV cache, then quantization.
    return max(
        candidates,
        key=lambda c: (
            len(c.args),
            c.flag("--kv-cache-dtype") not in (None, "auto"),
            c.flag("--quantization") is not None,
        ),
        default=None,
    )


def _engine_type(model: dict) -> str:
    """``engine: {type: ...}``, or the older ``engine: <name>`` (stack.config reads both)."""
    engine = model.get("engine", "vllm")
    return engine.get("type", "vllm") if isinstance(engine, dict) else engine


def generated_server(stack: str = "dev", tensor_parallel_size: int = 1, suffix: str = "") -> ServeCommand:
    """The stack's first vLLM model at ``tensor_parallel_size``, through the project's own code path.

    Planned by ``stack.config.parse_config`` + ``stack.placement.place``, its flags from
    ``components.engines.vllm.server_args`` and its /dev/shm from ``components.server_pod.shm_size_mib``.
    """
    from components.engines.vllm import model_reference, server_args
    from components.server_pod import shm_size_mib
    from stack.config import parse_config
    from stack.mockrun import load_stack_config
    from stack.placement import place

    raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith(f"{PROJECT}:")}
    raw = {k: v for k, v in raw.items() if k in ("cluster", "nodeGroups", "models")}
    models = [m for m in raw.get("models") or [] if _engine_type(m) == "vllm"]
    if not models:
        raise LookupError(f"stack {stack} has no vLLM model to render at TP={tensor_parallel_size}")
    model = {
        **models[0],
        "name": f"{models[0]['name']}{suffix}",
        "tensorParallelSize": tensor_parallel_size,
        "replicas": 1,
    }
    raw["models"] = [model]
    placed = place(parse_config(raw)).models[0]
    if placed.plan.tensor_parallel_size != tensor_parallel_size:
        raise LookupError(f"the planner gave TP={placed.plan.tensor_parallel_size} for {model['name']}")
    return ServeCommand(
        stack=f"{stack} (generated, tensorParallelSize {tensor_parallel_size})",
        file="-",
        kind="Deployment",
        name=placed.name,
        role="pod",
        container="vllm",
        model_ref=model_reference(placed),
        args=list(server_args(placed)),
        env={},
        shm_size_limit=f"{shm_size_mib(placed.plan.gpus_per_pod)}Mi",
        source="command",
    )


def generated_tp2(stack: str = "dev") -> ServeCommand:
    """A TP=2 server through the project's own code path, when no stack renders one."""
    return generated_server(stack, tensor_parallel_size=2, suffix="-tp2")


# --- what a CPU needs -----------------------------------------------------------------------------


def cpu_substitutions(
    command: ServeCommand, model_dir: Path, port: int, avx512: bool | None = None
) -> tuple[list[str], dict[str, str], list[str]]:
    """(argv after ``vllm``, extra env, the list of substitutions made) for the CPU run."""
    avx512 = cpu_has_avx512() if avx512 is None else avx512
    made: list[str] = [
        f"model {command.model_ref} -> a tiny Llama config.json (hidden 128, 2 layers, 4x32 heads, 2 KV heads, "
        "vocab 512) with --load-format dummy --skip-tokenizer-init (no weights or tokenizer here)",
    ]
    args = list(command.args)
    host = flag_value(args, "--host")
    args = replace_flag(args, "--host", "127.0.0.1")
    made.append(f"--host {host} -> 127.0.0.1 (loopback only)")
    old_port = flag_value(args, "--port")
    args = replace_flag(args, "--port", str(port))
    made.append(f"--port {old_port} -> {port} (a free port)")
    if "--enforce-eager" not in args:
        args.append("--enforce-eager")
        made.append("--enforce-eager added (CPU: no torch.compile, which takes minutes on 2 cores)")
    if flag_value(args, "--revision") is not None:
        made.append(f"--revision {flag_value(args, '--revision')} dropped (local model directory)")
        args = replace_flag(args, "--revision", None)
    quantization = flag_value(args, "--quantization", "-q")
    if quantization is not None:
        made.append(f"--quantization {quantization} dropped (dummy unquantized tiny model, GPU kernels)")
        args = replace_flag(args, "--quantization", None, ("-q",))
    kv = flag_value(args, "--kv-cache-dtype")
    if kv is not None and kv.startswith("fp8") and not avx512:
        made.append(f"--kv-cache-dtype {kv} -> auto (fp8 KV cache fails on CPUs without AVX-512)")
        args = replace_flag(args, "--kv-cache-dtype", "auto")
    backend = flag_value(args, "--distributed-executor-backend")
    if backend not in (None, "mp"):
        made.append(f"--distributed-executor-backend {backend} -> mp (one host, no Ray here)")
        args = replace_flag(args, "--distributed-executor-backend", "mp")
    args += ["--load-format", "dummy", "--skip-tokenizer-init"]
    tp = command.tensor_parallel_size
    cores = os.cpu_count() or 1
    per_rank = max(1, cores // max(tp, 1))
    bind = "|".join(
        f"{r * per_rank}-{r * per_rank + per_rank - 1}" if per_rank > 1 else str(r * per_rank % cores)
        for r in range(tp)
    )
    env = {
        "VLLM_CPU_OMP_THREADS_BIND": bind,
        "VLLM_CPU_KVCACHE_SPACE": CPU_KVCACHE_GIB,
    }
    made.append(f"env VLLM_CPU_OMP_THREADS_BIND={bind!r} (one core set per TP rank)")
    made.append(
        f"env VLLM_CPU_KVCACHE_SPACE={CPU_KVCACHE_GIB} (GiB of KV cache: the CPU's stand-in for "
        f"--gpu-memory-utilization {flag_value(args, '--gpu-memory-utilization')}, which is kept but unused on CPU)"
    )
    return ["serve", str(model_dir), *args], env, made


# --- processes ------------------------------------------------------------------------------------


def _stat(pid: str) -> tuple[int, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[2]), int(fields[3])  # pgrp, session


def group_members(leader: int) -> list[int]:
    """Live processes in the leader's process group or session (zombies included)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(entry)
            if stat and leader in stat:
                members.append(int(entry))
    return members


def end_group(proc: subprocess.Popen, term_seconds: float = 20, kill_seconds: float = 10) -> list[int]:
    """SIGTERM the group, wait, SIGKILL what is left; return pids still alive at the end."""
    leader = proc.pid
    for sig, seconds in ((signal.SIGTERM, term_seconds), (signal.SIGKILL, kill_seconds)):
        try:
            os.killpg(leader, sig)
        except ProcessLookupError:
            pass
        for pid in group_members(leader):  # members that moved to their own group, same session
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if not group_members(leader):
                return []
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        pass
    return group_members(leader)


def _shm_mounts() -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if " /dev/shm " in line]


def _shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


@dataclass
class ServerRun:
    label: str
    shm_size_limit: str
    argv: list[str]
    env: dict[str, str]
    substitutions: list[str]
    log: Path
    shm_bytes_seen: int | None = None
    ready: bool = False
    ready_seconds: float | None = None
    exit_code: int | None = None
    pid: int | None = None  # the group/session leader
    error_lines: list[str] = field(default_factory=list)
    smoke: list[tuple[str, int, str]] = field(default_factory=list)  # (what, exit code, output)
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _key_errors(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    wanted = [
        line for line in lines if re.search(r"(Error|Exception):|Insufficient space", line) and "Traceback" not in line
    ]
    out = []
    for line in wanted:
        short = re.sub(r"^\(\w+ pid=\d+\) (ERROR|WARNING|INFO) \S+ \S+ \[[^\]]+\] ", "", line).strip()
        if short not in out:
            out.append(short)
    return out[-6:]


def run_server(
    command: ServeCommand,
    shm_size_limit: str,
    label: str,
    work: Path = DEFAULT_WORK,
    venv: Path = install.VENV,
    ready_timeout: float = 300,
    smoke: bool = True,
    on_ready: Callable[[str], None] | None = None,
) -> ServerRun:
    """Start the server in a private /dev/shm of ``shm_size_limit``; wait for /health (bounded);
    if ready and ``smoke``, run smoke/smoke_test.py against it, then ``on_ready(server_url)``;
    always end it and check cleanup."""
    start = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vllm-serve-"))
    model_dir = tmp / "tiny-llama"
    model_dir.mkdir()
    max_model_len = int(flag_value(command.args, "--max-model-len") or 4096)
    (model_dir / "config.json").write_text(
        json.dumps({**TINY_LLAMA, "max_position_embeddings": max(max_model_len, 2048)}, indent=1)
    )
    port = free_port()
    argv, extra_env, made = cpu_substitutions(command, model_dir, port)
    made.append(f"/dev/shm: private tmpfs of exactly {shm_size_limit} ({parse_quantity(shm_size_limit)} bytes)")
    env = {**vllm_env(work, tmp), **{k: v for k, v in command.env.items() if k not in ("HF_HOME",)}, **extra_env}
    size = parse_quantity(shm_size_limit)
    log = work / f"serve-{label}.log"
    run = ServerRun(label, shm_size_limit, argv, extra_env, made, log)
    shm_before, mounts_before = _shm_entries(), _shm_mounts()
    wrapper = (
        'mount -t tmpfs -o "size=$1" tmpfs /dev/shm || exit 97; '
        'echo "vllm-check-shm-bytes $(df -B1 --output=size /dev/shm | tail -n 1)"; '
        'shift; exec "$@"'
    )
    full = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        wrapper,
        "sh",
        str(size),
        str(install.venv_python(venv)),
        "-m",
        "vllm.entrypoints.cli.main",
        *argv,
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    served = flag_value(command.args, "--served-model-name") or command.model_ref
    with open(log, "w") as log_file:
        log_file.write("$ " + " ".join(full) + "\n" + "".join(f"# {m}\n" for m in made))
        log_file.flush()
        proc = subprocess.Popen(
            full,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(tmp),
            start_new_session=True,
        )
        run.pid = proc.pid
        try:
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                        if response.status == 200:
                            run.ready = True
                            run.ready_seconds = round(time.monotonic() - start, 1)
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(1)
            if run.ready and smoke:
                for what, model, _expect in (
                    ("smoke test", served, 0),
                    ("smoke test, wrong --model (must fail)", served + "-wrong", 1),
                ):
                    result = subprocess.run(
                        [
                            sys.executable,
                            "-I",
                            "-S",
                            str(SMOKE_SCRIPT),
                            "--base-url",
                            base_url,
                            "--model",
                            model,
                            "--prompt-token-ids",
                            "1,2,3",
                            "--max-tokens",
                            "4",
                            "--timeout",
                            "90",
                        ],
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    run.smoke.append((what, result.returncode, (result.stdout + result.stderr).strip()))
            if run.ready and on_ready is not None:
                on_ready(f"http://127.0.0.1:{port}")
        finally:
            alive = end_group(proc)
            run.exit_code = proc.returncode
            if alive:
                run.leftovers.append(f"processes still alive after SIGKILL: {alive}")
    text = log.read_text(errors="replace")
    match = re.search(r"^vllm-check-shm-bytes\s+(\d+)\s*$", text, re.MULTILINE)
    run.shm_bytes_seen = int(match.group(1)) if match else None
    run.error_lines = _key_errors(log)
    new_shm = sorted(_shm_entries() - shm_before)
    if new_shm:
        run.leftovers.append(f"new entries in the host's /dev/shm: {new_shm}")
    if _shm_mounts() != mounts_before:
        run.leftovers.append("the host's /dev/shm mounts changed")
    shutil.rmtree(tmp, ignore_errors=True)
    if tmp.exists():
        run.leftovers.append(f"{tmp} could not be removed")
    run.seconds = round(time.monotonic() - start, 1)
    return run


def judge_positive(run: ServerRun) -> list[str]:
    problems = []
    if run.shm_bytes_seen != parse_quantity(run.shm_size_limit):
        problems.append(f"/dev/shm inside the namespace was {run.shm_bytes_seen} bytes, not {run.shm_size_limit}")
    if not run.ready:
        problems.append(f"server never answered /health (exit {run.exit_code}): " + " | ".join(run.error_lines))
    else:
        if not run.smoke or run.smoke[0][1] != 0:
            problems.append(f"smoke test failed: {run.smoke[0][2] if run.smoke else 'not run'}")
        if len(run.smoke) > 1 and run.smoke[1][1] == 0:
            problems.append(f"smoke test with a wrong model name passed: {run.smoke[1][2]}")
    problems += run.leftovers
    return problems


def judge_negative(run: ServerRun) -> list[str]:
    problems = []
    if run.ready:
        problems.append(f"the server started with a {run.shm_size_limit} /dev/shm; the check cannot fail")
    elif not any("Insufficient space in /dev/shm" in line for line in run.error_lines):
        problems.append(
            f"failed without vLLM's /dev/shm message (exit {run.exit_code}): " + " | ".join(run.error_lines)
        )
    problems += run.leftovers
    return problems
