"""NVIDIA NIM for LLMs (``engine: {type: nim, image: nvcr.io/nim/...}``).

The same plan, expressed the way NIM takes it: ``NIM_TENSOR_PARALLEL_SIZE`` and
``NIM_PIPELINE_PARALLEL_SIZE`` (not the ``NIM_TP_SIZE`` some recipes use, which NIM ignores),
the settings that have a NIM variable (``NIM_MAX_MODEL_LEN``; see ``stack.serving_settings``),
``NIM_SERVED_MODEL_NAME``, ``NIM_MODEL_PROFILE`` when the config names a
profile, and the memory settings the sizing depends on as ``NIM_PASSTHROUGH_ARGS`` (NIM's vLLM
backend takes them as ``vllm serve`` flags). The pod is the shared server pod
(``components.server_pod``) with NIM's health endpoints (``/v1/health/ready`` for startup and
readiness, ``/v1/health/live`` for liveness) and the image's own entrypoint.

NIM pulls its image from nvcr.io and its model from NGC with the NGC API key
(``gpu-inference:ngcApiKey``, a Pulumi secret): it reaches the pod as ``NGC_API_KEY`` from a
Kubernetes Secret, and the kubelet pulls with a ``kubernetes.io/dockerconfigjson`` Secret whose
user is ``$oauthtoken`` and whose password is the key, built inside ``Output.secret``. What NIM
downloads lands in ``NIM_CACHE_PATH=/opt/nim/.cache``: an emptyDir sized from the weights, or an
existing claim. NIM runs as uid 1000; ``fsGroup`` makes the cache writable to it.

This stack serves NIM on one node: its multi-node launcher is not wired here, and the planner
is asked for PP=1 (``NimOptions.single_node_only``).
"""

from __future__ import annotations

import base64
import json
import math
import shlex
from typing import Any

import pulumi

from components import server_pod
from components.engines import register
from components.engines.base import Engine, EngineSecret, Env, Mounts, Volumes
from stack.outputs import PORT
from stack.placement import ModelPlacement
from stack.serving_settings import nim_passthrough_args, nim_variables

NIM_CACHE_PATH = "/opt/nim/.cache"
NIM_UID = 1000
NGC_REGISTRY = "nvcr.io"
NGC_USERNAME = "$oauthtoken"
READY_PATH = "/v1/health/ready"
LIVE_PATH = "/v1/health/live"


def nim_env(model: ModelPlacement, ngc_secret: str) -> list[dict[str, Any]]:
    """NIM's own variables for the plan (names from the NIM for LLMs configuration reference)."""
    plan = model.plan
    nim = model.config.engine
    env: list[dict[str, Any]] = [
        {"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": ngc_secret, "key": "NGC_API_KEY"}}},
        {"name": "NIM_CACHE_PATH", "value": NIM_CACHE_PATH},
        {"name": "NIM_SERVER_PORT", "value": str(PORT)},
        {"name": "NIM_SERVED_MODEL_NAME", "value": model.served_model_name},
        *({"name": name, "value": value} for name, value in nim_variables(plan.settings).items()),
        {"name": "NIM_TENSOR_PARALLEL_SIZE", "value": str(plan.tensor_parallel_size)},
        {"name": "NIM_PIPELINE_PARALLEL_SIZE", "value": str(plan.pipeline_parallel_size)},
        {"name": "NCCL_DEBUG", "value": "WARN"},
    ]
    if nim.profile:
        env.append({"name": "NIM_MODEL_PROFILE", "value": nim.profile})
    if nim.passthrough_args:
        # The settings without a NIM variable, as vLLM flags for NIM's vLLM backend.
        env.append({"name": "NIM_PASSTHROUGH_ARGS", "value": shlex.join(nim_passthrough_args(plan.settings))})
    return env


def nim_cache_gib(model: ModelPlacement) -> int:
    return model.config.engine.cache.size_gib or 20 + math.ceil(model.plan.weights_gib_total * 1.2)


def docker_config_json(api_key: str) -> str:
    """The pull secret's ``.dockerconfigjson`` for nvcr.io (call inside an Output that is secret)."""
    auth = base64.b64encode(f"{NGC_USERNAME}:{api_key}".encode()).decode()
    return json.dumps(
        {"auths": {NGC_REGISTRY: {"username": NGC_USERNAME, "password": api_key, "auth": auth}}}, sort_keys=True
    )


class Nim(Engine):
    name = "nim"
    component = "NimModel"
    label = "nim"
    ready_path = READY_PATH
    live_path = LIVE_PATH
    supports_multi_node = False
    checkov_skips = {
        "CKV_K8S_40": (
            "the pod runs as UID 1000 (NIM_UID), the user NVIDIA's NIM images and their /opt/nim cache are set up "
            "for; another UID was not run on a GPU node"
        ),
        "CKV_K8S_22": (
            "NIM selects or builds its TensorRT-LLM engine at start and is not documented to run with a read-only "
            "root beyond its cache mount; a read-only root was not run on a GPU node"
        ),
        "CKV_K8S_35": "NIM reads its NGC key only from the NGC_API_KEY environment variable, its documented interface",
    }

    def command(self, model: ModelPlacement, role: str) -> tuple[list[str] | None, list[str] | None]:
        return None, None  # the image's entrypoint reads the NIM_* variables

    def secrets(self, model: ModelPlacement, values: dict[str, pulumi.Input[str] | None]) -> list[EngineSecret]:
        if values.get("ngcApiKey") is None:
            raise ValueError(f"{model.name}: engine nim needs the NGC API key (gpu-inference:ngcApiKey)")
        key = pulumi.Output.secret(values["ngcApiKey"])
        return [
            EngineSecret("ngc-api-key", "Opaque", {"NGC_API_KEY": key}),
            EngineSecret(
                "nvcr-pull",
                "kubernetes.io/dockerconfigjson",
                {".dockerconfigjson": pulumi.Output.secret(key.apply(docker_config_json))},
            ),
        ]

    def pod_environment(self, model: ModelPlacement, secrets: dict[str, str]) -> tuple[Env, Volumes, Mounts]:
        cache = model.config.engine.cache
        volumes: list[dict[str, Any]] = [server_pod.shm_volume(model.plan.gpus_per_pod)]
        if cache.type == "pvc":
            volumes.append({"name": "nim-cache", "persistentVolumeClaim": {"claimName": cache.claim_name}})
        else:
            volumes.append({"name": "nim-cache", "emptyDir": {"sizeLimit": f"{nim_cache_gib(model)}Gi"}})
        mounts = [dict(server_pod.SHM_MOUNT), {"name": "nim-cache", "mountPath": NIM_CACHE_PATH}]
        return nim_env(model, secrets["ngc-api-key"]), volumes, mounts

    def pod_security_context(self, model: ModelPlacement) -> dict[str, Any] | None:
        return {"runAsNonRoot": True, "runAsUser": NIM_UID, "runAsGroup": NIM_UID, "fsGroup": NIM_UID}

    def image_pull_secrets(self, secrets: dict[str, str]) -> list[str] | None:
        return [secrets["nvcr-pull"]]

    def fingerprint(self, image: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"spec": spec}  # the image is in the spec


ENGINE = register(Nim())
