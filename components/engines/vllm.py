"""vLLM's OpenAI-compatible server (``engine: {type: vllm}``, the default).

Everything the memory plan depends on is passed to ``vllm serve`` explicitly, so the server
starts with the settings the plan was computed for, not with defaults that vary by release and
GPU. A multi-node replica (a LeaderWorkerSet group, see ``components.server_pod``): the leader
starts a Ray head, waits until every worker's GPUs have joined, then runs ``vllm serve`` with
``--tensor-parallel-size TP --pipeline-parallel-size PP --distributed-executor-backend ray``;
workers join the leader's Ray cluster and block. ``NCCL_NET`` is pinned to the OFI plugin so a
missing plugin fails loudly instead of falling back to TCP.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pulumi

from components import s3_streamer, server_pod
from components.engines import register
from components.engines.base import Engine, EngineSecret, Env, Mounts, Volumes
from sizing.instances import INSTANCES
from stack.config import HuggingFaceSource, VolumeSource
from stack.engine_release import DEFAULT_VLLM_IMAGE
from stack.model_source_s3 import S3Source
from stack.outputs import PORT
from stack.placement import ModelPlacement
from stack.serving_settings import vllm_args

# The server image (declared once, in stack.engine_release, so the plan can read its release). The
# sizing's measured accounting is vLLM 0.26.0's; plans for the deployed release say which they used.
VLLM_IMAGE = DEFAULT_VLLM_IMAGE
VLLM_CALIBRATED_VERSION = "0.26.0"

MODELS_MOUNT = "/models"
CACHE_MOUNT = "/cache"
RAY_PORT = 6379


def model_reference(model: ModelPlacement) -> str:
    """What ``vllm serve`` loads: the directory in the volume, or the Hugging Face repo id."""
    source = model.config.source
    if isinstance(source, VolumeSource):
        return f"{MODELS_MOUNT}/{source.path}"
    if isinstance(source, S3Source):
        return s3_streamer.model_reference(source)
    if source.repo is not None:
        return source.repo
    if model.hf_repo_id is None:
        raise ValueError(f"{model.name}: no Hugging Face repo id to download")
    return model.hf_repo_id


def server_args(model: ModelPlacement) -> list[str]:
    """``vllm serve`` flags: every setting the memory plan depends on, explicitly."""
    plan = model.plan
    settings = plan.settings
    args = [
        "--tensor-parallel-size",
        str(plan.tensor_parallel_size),
    ]
    if plan.pipeline_parallel_size > 1:
        args += ["--pipeline-parallel-size", str(plan.pipeline_parallel_size)]
    if model.multi_node:
        args += ["--distributed-executor-backend", "ray"]
    args += vllm_args(settings)  # every serving setting (stack.serving_settings), explicitly
    args += [
        "--served-model-name",
        model.served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]
    source = model.config.source
    if isinstance(source, HuggingFaceSource) and source.revision:
        args += ["--revision", source.revision]
    if isinstance(source, S3Source):
        args += s3_streamer.load_args(streamer_settings(model))
    return args


def streamer_settings(model: ModelPlacement) -> s3_streamer.StreamerSettings:
    """The Run:ai streamer's threads and buffer from the pod's CPU and memory (one worker per GPU)."""
    plan = model.plan
    resources = server_pod.pod_resources(INSTANCES[plan.instance_type], plan.gpus_per_pod)
    return s3_streamer.streamer_settings(
        pod_vcpus=int(resources["requests"]["cpu"].removesuffix("m")) / 1000,
        pod_memory_gib=int(resources["limits"]["memory"].removesuffix("Gi")),
        shm_gib=server_pod.shm_size_mib(plan.gpus_per_pod) / 1024,
        workers=plan.gpus_per_pod,
    )


def stack_region() -> str | None:
    """The stack's AWS region as the AWS provider finds it (``aws:region``, else ``AWS_REGION`` or
    ``AWS_DEFAULT_REGION``): where the streamer's S3 client signs its requests. None only outside
    a deployable program (the provider refuses to run without a region)."""
    return pulumi.Config("aws").get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def leader_script(model: ModelPlacement) -> str:
    """The leader's shell: Ray head, wait for every node and GPU of the group, then serve.

    Run as ``bash -c <script> vllm-leader <model>`` with the ``vllm serve`` flags as the
    container's args, so ``"$@"`` is exactly the argument list the plan produced.
    """
    plan = model.plan
    check = (
        'import ray, sys; ray.init(address="auto", logging_level="ERROR"); '
        'alive = [n for n in ray.nodes() if n["Alive"]]; '
        f'sys.exit(0 if len(alive) >= {plan.pods} and ray.cluster_resources().get("GPU", 0) >= {plan.gpus} else 1)'
    )
    return "\n".join(
        [
            "set -euo pipefail",
            f"ray start --head --port={RAY_PORT} --disable-usage-stats",
            f'echo "waiting for {plan.pods} Ray nodes with {plan.gpus} GPUs '
            f'(TP={plan.tensor_parallel_size} x PP={plan.pipeline_parallel_size})"',
            f"until python3 -c '{check}'; do sleep 5; done",
            'model="$1"; shift',
            'exec vllm serve "$model" "$@"',
        ]
    )


def worker_script() -> str:
    """A worker joins its leader's Ray cluster (``LWS_LEADER_ADDRESS``, set by LWS) and blocks."""
    return "\n".join(
        [
            "set -uo pipefail",
            f'until ray start --address="${{LWS_LEADER_ADDRESS}}:{RAY_PORT}" --disable-usage-stats --block; do',
            '  echo "Ray head ${LWS_LEADER_ADDRESS} not reachable yet"; sleep 5',
            "done",
        ]
    )


class Vllm(Engine):
    name = "vllm"
    component = "VllmModel"
    label = "vllm"
    ready_path = "/health"
    live_path = "/health"
    supports_multi_node = True
    checkov_skips = {
        "CKV_K8S_23": (
            "the upstream vllm/vllm-openai image is built to run as root (no other user, HOME /root); the container "
            "has no capabilities, no privilege escalation and the RuntimeDefault seccomp profile"
        ),
        "CKV_K8S_40": (
            "the upstream vllm/vllm-openai image runs as UID 0: another UID has no writable HOME for the caches "
            "vLLM, torch and triton keep there"
        ),
        "CKV_K8S_22": (
            "vLLM, torch inductor, triton and flashinfer write compile caches under HOME and /tmp and ZMQ sockets "
            "in TMPDIR; a read-only root would need every such path redirected and was not run on a GPU node"
        ),
    }

    def image(self, model: ModelPlacement) -> str:
        return model.config.engine.image or VLLM_IMAGE

    def downloads_weights(self, model: ModelPlacement) -> bool:
        return isinstance(model.config.source, HuggingFaceSource)

    def service_account(self, model: ModelPlacement) -> str | None:
        source = model.config.source
        return s3_streamer.service_account_name(model.name, source) if isinstance(source, S3Source) else None

    def command(self, model: ModelPlacement, role: str) -> tuple[list[str] | None, list[str] | None]:
        if role == "worker":
            return ["/bin/bash", "-c", worker_script()], None
        if role == "leader":
            return ["/bin/bash", "-c", leader_script(model), "vllm-leader", model_reference(model)], server_args(model)
        return ["vllm", "serve", model_reference(model)], server_args(model)

    def secrets(self, model: ModelPlacement, values: dict[str, pulumi.Input[str] | None]) -> list[EngineSecret]:
        token = values.get("hfToken")
        if not isinstance(model.config.source, HuggingFaceSource) or token is None:
            return []
        return [EngineSecret("hf-token", "Opaque", {"token": pulumi.Output.secret(token)})]

    def pod_environment(self, model: ModelPlacement, secrets: dict[str, str]) -> tuple[Env, Volumes, Mounts]:
        """/dev/shm, the cache (room for the download), the model source; EFA across nodes."""
        plan = model.plan
        source = model.config.source
        download = isinstance(source, HuggingFaceSource)
        env: list[dict[str, Any]] = [
            {"name": "NCCL_DEBUG", "value": "WARN"},
            {"name": "HF_HOME", "value": f"{CACHE_MOUNT}/huggingface"},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        ]
        if model.multi_node:
            env += server_pod.efa_env()
        volumes: list[dict[str, Any]] = [server_pod.shm_volume(plan.gpus_per_pod)]
        mounts: list[dict[str, Any]] = [dict(server_pod.SHM_MOUNT)]
        cache_gib = 20 + (math.ceil(plan.weights_gib_total * 1.1) if download else 0)
        volumes.append({"name": "cache", "emptyDir": {"sizeLimit": f"{cache_gib}Gi"}})
        mounts.append({"name": "cache", "mountPath": CACHE_MOUNT})
        if isinstance(source, VolumeSource):
            env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
            volumes.append(
                {"name": "models", "persistentVolumeClaim": {"claimName": source.claim_name, "readOnly": True}}
            )
            mounts.append({"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True})
        elif isinstance(source, S3Source):
            region = stack_region()
            env += [
                e
                for e in s3_streamer.server_env(region=region or "", assets_cache_dir=f"{CACHE_MOUNT}/vllm-assets")
                if region or not e["name"].endswith("REGION")
            ]
        elif "hf-token" in secrets:
            env.append(
                {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": secrets["hf-token"], "key": "token"}}}
            )
        return env, volumes, mounts


ENGINE = register(Vllm())
