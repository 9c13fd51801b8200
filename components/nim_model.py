"""One served model on NVIDIA NIM for LLMs instead of vLLM (``engine: nim``).

The same plan, expressed the way NIM takes it: ``NIM_TENSOR_PARALLEL_SIZE`` and
``NIM_PIPELINE_PARALLEL_SIZE`` (not the ``NIM_TP_SIZE`` some recipes use, which NIM ignores),
``NIM_MAX_MODEL_LEN``, ``NIM_SERVED_MODEL_NAME``, ``NIM_MODEL_PROFILE`` when the config names a
profile, and the memory settings the sizing depends on as ``NIM_PASSTHROUGH_ARGS`` (NIM's vLLM
backend takes them as ``vllm serve`` flags). The pod is the vLLM server's pod: the same GPU
requests, /dev/shm, affinity, tolerations, startup budget and await timeout (see
``components.vllm_model``, whose pod-level functions are used through the module so the
invariant tests can break them for both engines), with NIM's port 8000 and its health endpoints
(``/v1/health/ready`` for startup and readiness, ``/v1/health/live`` for liveness).

NIM pulls its image from nvcr.io and its model from NGC with the NGC API key
(``gpu-inference:ngcApiKey``, a Pulumi secret): it reaches the pod as ``NGC_API_KEY`` from a
Kubernetes Secret, and the kubelet pulls with a ``kubernetes.io/dockerconfigjson`` Secret whose
user is ``$oauthtoken`` and whose password is the key, built inside ``Output.secret``. What NIM
downloads lands in ``NIM_CACHE_PATH=/opt/nim/.cache``: an emptyDir sized from the weights, or an
existing claim. NIM runs as uid 1000; ``fsGroup`` makes the cache writable to it.

This stack serves NIM on one node: its multi-node launcher is not wired here, and the planner
is asked for PP=1 (see ``stack.placement``).
"""

from __future__ import annotations

import base64
import json
import math
import shlex
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import vllm_model as base
from sizing.instances import InstanceType
from stack.outputs import PORT
from stack.placement import ModelPlacement
from stack.project import PROJECT

NIM_CACHE_PATH = "/opt/nim/.cache"
NIM_UID = 1000
NGC_REGISTRY = "nvcr.io"
NGC_USERNAME = "$oauthtoken"
READY_PATH = "/v1/health/ready"
LIVE_PATH = "/v1/health/live"


def nim_selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "nim", "app.kubernetes.io/instance": name}


def nim_env(model: ModelPlacement, ngc_secret: str) -> list[dict[str, Any]]:
    """NIM's own variables for the plan (names from the NIM for LLMs configuration reference)."""
    plan = model.plan
    nim = model.config.nim
    assert nim is not None
    env: list[dict[str, Any]] = [
        {"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": ngc_secret, "key": "NGC_API_KEY"}}},
        {"name": "NIM_CACHE_PATH", "value": NIM_CACHE_PATH},
        {"name": "NIM_SERVER_PORT", "value": str(PORT)},
        {"name": "NIM_SERVED_MODEL_NAME", "value": model.served_model_name},
        {"name": "NIM_MAX_MODEL_LEN", "value": str(plan.settings.max_model_len)},
        {"name": "NIM_TENSOR_PARALLEL_SIZE", "value": str(plan.tensor_parallel_size)},
        {"name": "NIM_PIPELINE_PARALLEL_SIZE", "value": str(plan.pipeline_parallel_size)},
        {"name": "NCCL_DEBUG", "value": "WARN"},
    ]
    if nim.profile:
        env.append({"name": "NIM_MODEL_PROFILE", "value": nim.profile})
    if nim.passthrough_args:
        # max-model-len and the parallel sizes already travel as NIM_* variables.
        args = base.memory_args(model)
        i = args.index("--max-model-len")
        del args[i : i + 2]
        env.append({"name": "NIM_PASSTHROUGH_ARGS", "value": shlex.join(args)})
    return env


def nim_cache_gib(model: ModelPlacement) -> int:
    nim = model.config.nim
    assert nim is not None
    return nim.cache.size_gib or 20 + math.ceil(model.plan.weights_gib_total * 1.2)


def nim_pod_spec(
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    ngc_secret: str,
    pull_secret: str,
) -> dict[str, Any]:
    """The Deployment spec of a NIM server: one pod per replica, every GPU of the plan in it."""
    plan = model.plan
    nim = model.config.nim
    assert nim is not None
    startup = base.startup_seconds(model)
    volumes: list[dict[str, Any]] = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{base.shm_size_mib(plan.gpus_per_pod)}Mi"}},
    ]
    if nim.cache.type == "pvc":
        volumes.append({"name": "nim-cache", "persistentVolumeClaim": {"claimName": nim.cache.claim_name}})
    else:
        volumes.append({"name": "nim-cache", "emptyDir": {"sizeLimit": f"{nim_cache_gib(model)}Gi"}})
    container = {
        "name": "nim",
        "image": nim.image,
        "imagePullPolicy": "IfNotPresent",
        "env": nim_env(model, ngc_secret),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": base.pod_resources(instance, plan.gpus_per_pod),
        "volumeMounts": [
            {"name": "shm", "mountPath": "/dev/shm"},
            {"name": "nim-cache", "mountPath": NIM_CACHE_PATH},
        ],
        **base.probes(READY_PATH, LIVE_PATH, startup),
        "securityContext": dict(base.CONTAINER_SECURITY),
    }
    labels = nim_selector_labels(model.name)
    template = base.pod_template(
        model,
        instance,
        gfd=gfd,
        containers=[container],
        volumes=volumes,
        labels=labels,
        annotations={"gpu-inference.io/startup-budget-seconds": str(startup)},
        security_context={"runAsNonRoot": True, "runAsUser": NIM_UID, "runAsGroup": NIM_UID, "fsGroup": NIM_UID},
        image_pull_secrets=[pull_secret],
    )
    return {
        "replicas": model.config.replicas,
        "selector": {"matchLabels": labels},
        "strategy": {"type": "Recreate"},
        "template": template,
    }


def docker_config_json(api_key: str) -> str:
    """The pull secret's ``.dockerconfigjson`` for nvcr.io (call inside an Output that is secret)."""
    auth = base64.b64encode(f"{NGC_USERNAME}:{api_key}".encode()).decode()
    return json.dumps(
        {"auths": {NGC_REGISTRY: {"username": NGC_USERNAME, "password": api_key, "auth": auth}}}, sort_keys=True
    )


@dataclass
class NimModelArgs:
    """Like ``VllmModelArgs``, with the NGC API key (a secret) instead of the HF token."""

    model: ModelPlacement
    instance: InstanceType
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    gfd: bool
    client_namespaces: list[str]
    ngc_api_key: pulumi.Input[str]
    depends_on: list = None  # type: ignore[assignment]


class NimModel(pulumi.ComponentResource):
    """Deployment, Service, PodDisruptionBudget, NetworkPolicy, NGC key and nvcr.io pull Secrets."""

    workload: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    fingerprint: dict[str, Any]  # what the server runs; its smoke test reruns when this changes

    def __init__(self, name: str, args: NimModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:NimModel", name, None, opts)
        model = args.model
        if model.multi_node:
            raise ValueError(f"{model.name}: NIM is served on one node in this stack")
        server = model.name
        selector = nim_selector_labels(server)
        labels = {**selector, "app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": PROJECT}
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)

        def metadata(object_name: str, **extra: Any) -> dict[str, Any]:
            return {"name": object_name, "namespace": args.namespace, "labels": labels, **extra}

        key = pulumi.Output.secret(args.ngc_api_key)
        ngc_secret = f"{server}-ngc-api-key"
        pull_secret = f"{server}-nvcr-pull"
        k8s.core.v1.Secret(
            f"{name}-ngc-api-key",
            metadata=metadata(ngc_secret),
            type="Opaque",
            string_data={"NGC_API_KEY": key},
            opts=k8s_opts,
        )
        k8s.core.v1.Secret(
            f"{name}-nvcr-pull",
            metadata=metadata(pull_secret),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": pulumi.Output.secret(key.apply(docker_config_json))},
            opts=k8s_opts,
        )
        timeout = base.await_timeout_seconds(base.startup_seconds(model))
        spec = nim_pod_spec(model, args.instance, gfd=args.gfd, ngc_secret=ngc_secret, pull_secret=pull_secret)
        self.fingerprint = {"spec": spec}
        self.workload = k8s.apps.v1.Deployment(
            name,
            metadata=metadata(server, annotations=base.await_annotations(timeout, False, model.config.replicas)),
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=list(args.depends_on or []),
                custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout}s", update=f"{timeout}s"),
            ),
        )
        self.service = base.server_objects(
            self,
            name,
            model,
            namespace=args.namespace,
            provider=args.provider,
            labels=labels,
            selector=selector,
            client_namespaces=args.client_namespaces,
            pod_labels=selector,
        )
        self.register_outputs({"workload": self.workload.metadata["name"], "service": self.service.metadata["name"]})
