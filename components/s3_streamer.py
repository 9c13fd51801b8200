"""What ``vllm serve`` needs to stream a model from S3: flags, environment, streamer sizing.

vLLM 0.32 (``model_executor/model_loader/runai_streamer_loader.py``) loads ``*.safetensors``
from an ``s3://`` model path with ``--load-format runai_streamer`` and takes the streamer's
settings as ``--model-loader-extra-config '{"concurrency": N, "memory_limit": BYTES}'``, which it
validates and exports as ``RUNAI_STREAMER_CONCURRENCY``/``RUNAI_STREAMER_MEMORY_LIMIT``. Before
that, ``ModelConfig.maybe_pull_model_tokenizer_for_runai`` copies config.json and the tokenizer
files from the same prefix into ``$VLLM_ASSETS_CACHE/model_streamer/<hash>``, so the pod needs a
writable cache there and nothing from the Hugging Face Hub.

The streamer (runai-model-streamer 0.15, docs/src/env-vars.md) reads with
``RUNAI_STREAMER_CONCURRENCY`` OS threads (default 8 for object storage) into a CPU buffer capped
by ``RUNAI_STREAMER_MEMORY_LIMIT`` bytes (default 40 GB, or unlimited for distributed streaming),
in 8 MiB chunks (``RUNAI_STREAMER_CHUNK_BYTESIZE``, minimum 5 MiB for object storage). It
authenticates through a boto3 session, so the Pod Identity credentials the agent injects
(``AWS_CONTAINER_CREDENTIALS_FULL_URI``) are used as they are. ``AWS_ENDPOINT_URL`` overrides the
endpoint (vLLM copies it to ``RUNAI_STREAMER_S3_ENDPOINT``), with
``RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0`` for S3-compatible servers: used only in tests.

Pure functions, no Pulumi: the server pod builders call them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from stack.model_source_s3 import S3Source

LOAD_FORMAT = "runai_streamer"
# The streamer's object-storage defaults (runai-model-streamer docs/src/env-vars.md).
OBJECT_STORE_DEFAULT_CONCURRENCY = 8
DEFAULT_MEMORY_LIMIT_BYTES = 40_000_000_000
OBJECT_STORE_CHUNK_BYTES = 8 * 1024 * 1024
# Ours: one reader thread per vCPU of a worker's share, within [8, 64]; a quarter of the worker's
# share of the pod's memory (after /dev/shm) for the buffer, never above the streamer's default.
MAX_CONCURRENCY = 64
BUFFER_MEMORY_FRACTION = 0.25
GIB = 1024**3


@dataclass(frozen=True)
class StreamerSettings:
    concurrency: int
    memory_limit_bytes: int

    def extra_config(self) -> str:
        return json.dumps({"concurrency": self.concurrency, "memory_limit": self.memory_limit_bytes})


def streamer_settings(pod_vcpus: float, pod_memory_gib: float, shm_gib: float, workers: int) -> StreamerSettings:
    """Concurrency and buffer per worker process (each of the pod's ``workers`` GPU ranks streams)."""
    if workers < 1:
        raise ValueError(f"workers = {workers}: a pod has at least one GPU worker")
    vcpus_per_worker = pod_vcpus / workers
    concurrency = max(OBJECT_STORE_DEFAULT_CONCURRENCY, min(MAX_CONCURRENCY, int(vcpus_per_worker)))
    share_bytes = (pod_memory_gib - shm_gib) * GIB / workers
    memory_limit = int(min(DEFAULT_MEMORY_LIMIT_BYTES, share_bytes * BUFFER_MEMORY_FRACTION))
    floor = concurrency * OBJECT_STORE_CHUNK_BYTES
    if memory_limit < floor:
        raise ValueError(
            f"{pod_memory_gib} GiB per pod ({workers} workers, {shm_gib} GiB of /dev/shm) leaves "
            f"{memory_limit} bytes of streamer buffer per worker, below {floor} ({concurrency} threads x 8 MiB): "
            "give the pod more memory or fewer GPUs"
        )
    return StreamerSettings(concurrency=concurrency, memory_limit_bytes=memory_limit)


NAMESPACE_READER = "model-weights-reader"  # the shared ServiceAccount of roleScope: namespace


def service_account_name(server: str, source: S3Source) -> str:
    """The pods' ServiceAccount, which the Pod Identity association binds to the read role."""
    return NAMESPACE_READER if source.role_scope == "namespace" else server


def model_reference(source: S3Source) -> str:
    """The model path ``vllm serve`` gets: the prefix as an s3:// URI."""
    return source.uri


def load_args(settings: StreamerSettings) -> list[str]:
    return ["--load-format", LOAD_FORMAT, "--model-loader-extra-config", settings.extra_config()]


def server_env(region: str, assets_cache_dir: str) -> list[dict[str, str]]:
    """The server container's environment for an S3 source (credentials come from Pod Identity)."""
    return [
        {"name": "AWS_REGION", "value": region},
        {"name": "AWS_DEFAULT_REGION", "value": region},
        {"name": "VLLM_ASSETS_CACHE", "value": assets_cache_dir},
        {"name": "HF_HUB_OFFLINE", "value": "1"},
    ]


def endpoint_override_env(endpoint_url: str) -> list[dict[str, str]]:
    """Only for an S3-compatible server (tests against moto): path-style addressing at that URL."""
    return [
        {"name": "AWS_ENDPOINT_URL", "value": endpoint_url},
        {"name": "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING", "value": "0"},
        {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
    ]
