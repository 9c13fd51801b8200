"""One served model: a vLLM OpenAI-compatible server as Deployment, Service, PDB, NetworkPolicy.

Everything the memory plan depends on is passed to ``vllm serve`` explicitly, so the server
starts with the settings the plan was computed for, not with defaults that vary by release and
GPU. The manifests are built by pure functions (``deployment_spec`` and friends) so they can be
read and tested without Pulumi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.labels import (
    GPU_COUNT_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    INSTANCE_TYPE_LABEL,
    NODE_GROUP_LABEL,
    gpu_toleration,
)
from sizing.instances import InstanceType
from stack.config import HuggingFaceSource, VolumeSource
from stack.outputs import PORT  # part of the outputs contract (the URLs' port)
from stack.placement import ModelPlacement

# The server image. The sizing's memory accounting is calibrated on vLLM 0.26.0 (see
# sizing/ and ../shared/calibration); 0.32.0 is what we deploy. Plans within a few percent of
# the limit are flagged ``marginal`` because of that gap: recalibrate before trusting them.
VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"
VLLM_CALIBRATED_VERSION = "0.26.0"

MODELS_MOUNT = "/models"
CACHE_MOUNT = "/cache"

# Per node, kept free of servers for the kubelet's reservation, DaemonSets (aws-node,
# kube-proxy, the device plugin, GFD, NFD) and the difference between the nominal memory and
# what the kernel reports.
NODE_RESERVED_VCPUS = 6
NODE_RESERVED_MEMORY_GIB = 8
NODE_RESERVED_MEMORY_FRACTION = 0.06

# Load-time model (see load_seconds).
LOAD_BASE_SECONDS = 120
LOAD_SECONDS_PER_GIB = 10
DOWNLOAD_SECONDS_PER_GIB = 5
IMAGE_PULL_SECONDS = 600  # the vllm-openai image is ~10 GB compressed
STARTUP_PROBE_PERIOD_SECONDS = 10


def shm_size_mib(gpus_per_pod: int) -> int:
    """Size of the memory-backed /dev/shm.

    vLLM checks free space before it allocates its shared-memory rings (a 160 MiB broadcast ring
    plus 240 MiB per worker) and refuses to start below that even at TP=1; NCCL keeps its
    intra-node buffers there too, more per rank. 1 GiB plus 1 GiB per extra rank covers both
    with room to spare (8 GiB at TP=8), and never less than vLLM's own need plus 256 MiB.
    """
    vllm_rings = 160 + 240 * gpus_per_pod
    return max(1024 * gpus_per_pod, vllm_rings + 256)


def load_seconds(weights_gib: float, download: bool) -> int:
    """Seconds from container start to ``/health`` answering, generously.

    120 s of base (CUDA init, profiling, CUDA graph capture) plus 10 s per GiB of weights the
    pod reads (about 100 MiB/s, modest EBS or network storage), plus 5 s per GiB when it first
    downloads them from the Hub. A 70B model in bf16 (131 GiB) gets about 24 minutes.
    """
    per_gib = LOAD_SECONDS_PER_GIB + (DOWNLOAD_SECONDS_PER_GIB if download else 0)
    return int(LOAD_BASE_SECONDS + math.ceil(weights_gib * per_gib))


def startup_failure_threshold(seconds: int) -> int:
    return math.ceil(seconds / STARTUP_PROBE_PERIOD_SECONDS)


def await_timeout_seconds(startup_seconds: int) -> int:
    """How long ``pulumi up`` waits for the Deployment: image pull, then the startup budget, +10%.

    A server still not ready by then is crash-looping or stuck, and the update fails instead
    of waiting forever (pulumi-kubernetes' default is 10 minutes, too short for a 70B load).
    """
    return int((IMAGE_PULL_SECONDS + startup_seconds) * 1.1)


def pod_resources(instance: InstanceType, gpus_per_pod: int) -> dict[str, dict[str, str]]:
    """CPU and memory: the pod's share of the node (by GPUs), after the node's reserve.

    Memory request = limit (the server is never squeezed by a neighbour); the limit includes
    the memory-backed /dev/shm, which the kernel charges to the container.
    """
    share = gpus_per_pod / instance.gpus_per_node
    millicpu = int((instance.vcpus - NODE_RESERVED_VCPUS) * share * 1000)
    reserved_gib = NODE_RESERVED_MEMORY_GIB + instance.memory_gib * NODE_RESERVED_MEMORY_FRACTION
    memory_gib = int((instance.memory_gib - reserved_gib) * share)
    shm_gib = shm_size_mib(gpus_per_pod) / 1024
    if memory_gib < shm_gib + 16:
        raise ValueError(f"{instance.name}: {memory_gib} GiB per pod leaves too little beside {shm_gib} GiB of /dev/shm")
    gpus = str(gpus_per_pod)
    return {
        "requests": {"cpu": f"{millicpu}m", "memory": f"{memory_gib}Gi", GPU_RESOURCE: gpus},
        "limits": {"memory": f"{memory_gib}Gi", GPU_RESOURCE: gpus},
    }


def model_reference(model: ModelPlacement) -> str:
    """What ``vllm serve`` loads: the directory in the volume, or the Hugging Face repo id."""
    source = model.config.source
    if isinstance(source, VolumeSource):
        return f"{MODELS_MOUNT}/{source.path}"
    if source.repo is not None:
        return source.repo
    if model.hf_repo_id is None:
        raise ValueError(f"{model.name}: no Hugging Face repo id to download")
    return model.hf_repo_id


# An explicit ``--quantization awq`` forces vLLM's old fp16-only AWQ kernel; the Marlin kernels
# are what the sizing's shape rules (sizing.rules) describe and what runs fast on A100/H100.
VLLM_QUANTIZATION = {"fp8": "fp8", "awq": "awq_marlin", "gptq": "gptq_marlin"}


def server_args(model: ModelPlacement) -> list[str]:
    """``vllm serve`` flags: every setting the memory plan depends on, explicitly."""
    plan = model.plan
    settings = plan.settings
    args = [
        "--tensor-parallel-size", str(plan.tensor_parallel_size),
    ]
    if plan.pipeline_parallel_size > 1:
        args += ["--pipeline-parallel-size", str(plan.pipeline_parallel_size)]
    args += [
        "--max-model-len", str(settings.max_model_len),
        "--gpu-memory-utilization", str(settings.gpu_memory_utilization),
        "--max-num-seqs", str(settings.max_num_seqs),
        "--max-num-batched-tokens", str(settings.max_num_batched_tokens),
        "--dtype", settings.dtype,
    ]
    if settings.quantization != "none":
        args += ["--quantization", VLLM_QUANTIZATION[settings.quantization]]
    args += [
        "--kv-cache-dtype", settings.kv_cache_dtype,
        "--served-model-name", model.served_model_name,
        "--host", "0.0.0.0",
        "--port", str(PORT),
    ]
    if settings.enforce_eager:
        args.append("--enforce-eager")
    source = model.config.source
    if isinstance(source, HuggingFaceSource) and source.revision:
        args += ["--revision", source.revision]
    return args


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": name}


def node_affinity(model: ModelPlacement, instance: InstanceType, gfd: bool) -> dict[str, Any]:
    """Required node affinity on the node group's own labels; GPU count only where GFD labels exist."""
    expressions = [
        {"key": NODE_GROUP_LABEL, "operator": "In", "values": [model.node_group]},
        {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [instance.gpu.product_label]},
        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [instance.name]},
    ]
    if gfd:
        # "At least N GPUs": Gt takes one integer and is strict.
        expressions.append({"key": GPU_COUNT_LABEL, "operator": "Gt", "values": [str(model.plan.gpus_per_pod - 1)]})
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
        }
    }


def deployment_spec(
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    image: str,
    hf_token_secret: Optional[str],
) -> dict[str, Any]:
    plan = model.plan
    name = model.name
    source = model.config.source
    download = isinstance(source, HuggingFaceSource)
    startup = load_seconds(plan.weights_gib_total, download)

    env = [
        {"name": "NCCL_DEBUG", "value": "WARN"},
        {"name": "HF_HOME", "value": f"{CACHE_MOUNT}/huggingface"},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_size_mib(plan.gpus_per_pod)}Mi"}},
    ]
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    cache_gib = 20 + (math.ceil(plan.weights_gib_total * 1.1) if download else 0)
    volumes.append({"name": "cache", "emptyDir": {"sizeLimit": f"{cache_gib}Gi"}})
    mounts.append({"name": "cache", "mountPath": CACHE_MOUNT})
    if isinstance(source, VolumeSource):
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": source.claim_name, "readOnly": True}})
        mounts.append({"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True})
    elif hf_token_secret is not None:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token_secret, "key": "token"}}})

    health = {"httpGet": {"path": "/health", "port": "http"}}
    container = {
        "name": "vllm",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["vllm", "serve", model_reference(model)],
        "args": server_args(model),
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": pod_resources(instance, plan.gpus_per_pod),
        "volumeMounts": mounts,
        "startupProbe": {
            **health,
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": startup_failure_threshold(startup),
        },
        "readinessProbe": {**health, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**health, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
        "securityContext": {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    labels = selector_labels(name)
    return {
        "replicas": model.config.replicas,
        "selector": {"matchLabels": labels},
        # Recreate: an update frees the GPUs before the new pod needs them (no spare GPUs).
        "strategy": {"type": "Recreate"},
        "template": {
            "metadata": {
                "labels": {**labels, NODE_GROUP_LABEL: model.node_group},
                "annotations": {"gpu-inference.io/startup-budget-seconds": str(startup)},
            },
            "spec": {
                "containers": [container],
                "volumes": volumes,
                "affinity": node_affinity(model, instance, gfd),
                "tolerations": [gpu_toleration()],
                "hostNetwork": False,
                "hostIPC": False,
                "hostPID": False,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 120,
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            },
        },
    }


def network_policy_spec(name: str, client_namespaces: list[str]) -> dict[str, Any]:
    """Admit the server port only from the named namespaces (none named: admit nothing)."""
    ingress = []
    if client_namespaces:
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(client_namespaces)}
                            ]
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": PORT}],
            }
        )
    return {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"], "ingress": ingress}


@dataclass
class VllmModelArgs:
    """What one served model needs.

    ``model`` is its placement (config and plan); ``instance`` the node group's instance type;
    ``namespace`` and ``provider`` where it goes; ``gfd`` whether GPU feature discovery labels
    exist on its nodes; ``hf_token`` the Hugging Face token (a secret) when downloading;
    ``client_namespaces`` who may call it; ``depends_on`` its node group and GPU enablement.
    """

    model: ModelPlacement
    instance: InstanceType
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    gfd: bool
    client_namespaces: list[str]
    hf_token: Optional[pulumi.Input[str]] = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class VllmModel(pulumi.ComponentResource):
    """Deployment, Service, PodDisruptionBudget, NetworkPolicy (+ Secret for the HF token)."""

    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service

    def __init__(self, name: str, args: VllmModelArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("gpu-inference:components:VllmModel", name, None, opts)
        model = args.model
        server = model.name
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        labels = {**selector_labels(server), "app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": "gpu-inference"}

        def metadata(object_name: str, **extra: Any) -> dict[str, Any]:
            return {"name": object_name, "namespace": args.namespace, "labels": labels, **extra}

        secret_name = None
        if isinstance(model.config.source, HuggingFaceSource) and args.hf_token is not None:
            secret_name = f"{server}-hf-token"
            k8s.core.v1.Secret(
                f"{name}-hf-token",
                metadata=metadata(secret_name),
                type="Opaque",
                string_data={"token": pulumi.Output.secret(args.hf_token)},
                opts=k8s_opts,
            )

        spec = deployment_spec(
            model, args.instance, gfd=args.gfd, image=model.config.image or VLLM_IMAGE, hf_token_secret=secret_name
        )
        startup = load_seconds(model.plan.weights_gib_total, isinstance(model.config.source, HuggingFaceSource))
        timeout = await_timeout_seconds(startup)
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=metadata(server, annotations={"pulumi.com/timeoutSeconds": str(timeout)}),
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=args.depends_on,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout}s", update=f"{timeout}s"),
            ),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-svc",
            metadata=metadata(server),
            spec={
                "type": "ClusterIP",
                "selector": selector_labels(server),
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
            opts=k8s_opts,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=metadata(server),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(server)}},
            opts=k8s_opts,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata=metadata(server),
            spec=network_policy_spec(server, args.client_namespaces),
            opts=k8s_opts,
        )
        self.register_outputs({"deployment": self.deployment.metadata["name"], "service": self.service.metadata["name"]})
