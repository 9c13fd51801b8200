"""One served model: a vLLM OpenAI-compatible server, with Service, PDB and NetworkPolicy.

A replica that fits one node is a Deployment pod. A replica the planner splits across nodes
(PP > 1) is a LeaderWorkerSet group of PP pods, one whole node each (TP = the node's GPUs): the
leader starts a Ray head, waits until every worker's GPUs have joined, then runs ``vllm serve``
with ``--tensor-parallel-size TP --pipeline-parallel-size PP --distributed-executor-backend ray``;
workers join the leader's Ray cluster and block. The group restarts as a whole when any pod
fails (``RecreateGroupOnPodRestart``), the Service selects leaders only, and the pods of a group
reach each other over EFA (``vpc.amazonaws.com/efa`` devices, libfabric's ``efa`` provider,
``NCCL_NET`` pinned to the OFI plugin so a missing plugin fails loudly instead of falling back
to TCP). Single-node servers keep NVLink and get none of that.

Everything the memory plan depends on is passed to ``vllm serve`` explicitly, so the server
starts with the settings the plan was computed for, not with defaults that vary by release and
GPU. The manifests are built by pure functions (``deployment_spec``, ``leader_worker_set_spec``
and friends) so they can be read and tested without Pulumi; ``components.nim_model`` reuses the
pod-level ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.labels import (
    EFA_RESOURCE,
    GPU_COUNT_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    INSTANCE_TYPE_LABEL,
    KAI_QUEUE_LABEL,
    LWS_ROLE_LABEL,
    NODE_GROUP_LABEL,
    gpu_toleration,
)
from components.smoke_test import smoke_labels
from sizing.instances import InstanceType
from stack.config import KAI_SCHEDULER_NAME, HuggingFaceSource, ModelScheduling, VolumeSource
from stack.outputs import PORT  # part of the outputs contract (the URLs' port)
from stack.placement import ModelPlacement
from stack.project import PROJECT

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

# Multi-node (LeaderWorkerSet) serving.
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_KIND = "LeaderWorkerSet"
LWS_RESTART_POLICY = "RecreateGroupOnPodRestart"
RAY_PORT = 6379
# Workers pull the image and start Ray while the leader waits for them; on top of the leader's
# own image pull the budget gives them this long before the load itself starts.
RAY_JOIN_SECONDS = 900


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
        raise ValueError(
            f"{instance.name}: {memory_gib} GiB per pod leaves too little beside {shm_gib} GiB of /dev/shm"
        )
    gpus = str(gpus_per_pod)
    return {
        "requests": {"cpu": f"{millicpu}m", "memory": f"{memory_gib}Gi", GPU_RESOURCE: gpus},
        "limits": {"memory": f"{memory_gib}Gi", GPU_RESOURCE: gpus},
    }


def efa_env() -> list[dict[str, str]]:
    """What makes NCCL use EFA between the nodes of a group (and fail loudly when it cannot).

    ``FI_PROVIDER=efa`` selects libfabric's EFA provider; ``FI_EFA_USE_DEVICE_RDMA=1`` turns on
    RDMA reads on the RDMA-capable p4d/p4de/p5/p5e/p5en NICs (GPUDirect RDMA, no bounce through
    host memory). ``NCCL_NET="AWS Libfabric"`` pins NCCL to the aws-ofi-nccl plugin (every plugin
    release answers to that name): without the plugin NCCL refuses to start instead of silently
    using sockets. ``NCCL_SOCKET_IFNAME`` keeps NCCL's bootstrap off loopback and docker bridges.
    NCCL_PROTO and NCCL_NET_GDR_LEVEL are left to NCCL and the plugin, whose defaults are tuned
    for EFA (the old advice to force NCCL_PROTO=simple predates aws-ofi-nccl 1.x).
    """
    return [
        {"name": "FI_PROVIDER", "value": "efa"},
        {"name": "FI_EFA_USE_DEVICE_RDMA", "value": "1"},
        {"name": "NCCL_NET", "value": "AWS Libfabric"},
        {"name": "NCCL_SOCKET_IFNAME", "value": "^lo,docker"},
    ]


def with_efa(resources: dict[str, dict[str, str]], instance: InstanceType) -> dict[str, dict[str, str]]:
    """Every EFA interface of the node, requested = limited (a multi-node pod owns its node)."""
    count = str(instance.efa_interfaces)
    return {
        "requests": {**resources["requests"], EFA_RESOURCE: count},
        "limits": {**resources["limits"], EFA_RESOURCE: count},
    }


def startup_seconds(model: ModelPlacement) -> int:
    """The startup probe's budget: the weights' load, plus the Ray cluster forming across nodes."""
    download = model.engine == "vllm" and isinstance(model.config.source, HuggingFaceSource)
    if model.engine == "nim":
        download = True  # NIM downloads from NGC into its cache on first start
    seconds = load_seconds(model.plan.weights_gib_total, download)
    return seconds + (RAY_JOIN_SECONDS if model.multi_node else 0)


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


def memory_args(model: ModelPlacement) -> list[str]:
    """The flags the memory plan depends on (shared with NIM's passthrough arguments)."""
    settings = model.plan.settings
    args = [
        "--max-model-len",
        str(settings.max_model_len),
        "--gpu-memory-utilization",
        str(settings.gpu_memory_utilization),
        "--max-num-seqs",
        str(settings.max_num_seqs),
        "--max-num-batched-tokens",
        str(settings.max_num_batched_tokens),
        "--dtype",
        settings.dtype,
    ]
    if settings.quantization != "none":
        args += ["--quantization", VLLM_QUANTIZATION[settings.quantization]]
    args += ["--kv-cache-dtype", settings.kv_cache_dtype]
    return args


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
    args += memory_args(model)
    args += [
        "--served-model-name",
        model.served_model_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]
    if settings.enforce_eager:
        args.append("--enforce-eager")
    source = model.config.source
    if isinstance(source, HuggingFaceSource) and source.revision:
        args += ["--revision", source.revision]
    return args


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
            f'echo "waiting for {plan.pods} Ray nodes with {plan.gpus} GPUs (TP={plan.tensor_parallel_size} x PP={plan.pipeline_parallel_size})"',
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


def probes(path_ready: str, path_live: str, startup: int) -> dict[str, Any]:
    """Startup budget from the load estimate, then readiness and liveness on the server port."""
    ready = {"httpGet": {"path": path_ready, "port": "http"}}
    live = {"httpGet": {"path": path_live, "port": "http"}}
    return {
        "startupProbe": {
            **ready,
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": startup_failure_threshold(startup),
        },
        "readinessProbe": {**ready, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**live, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
    }


CONTAINER_SECURITY = {"privileged": False, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_template(
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    labels: dict[str, str],
    annotations: dict[str, str],
    security_context: dict[str, Any] | None = None,
    image_pull_secrets: list[str] | None = None,
) -> dict[str, Any]:
    """The pod template every server pod shares: affinity, tolerations, no host namespaces, the
    scheduler (KAI with its queue label when configured)."""
    spec: dict[str, Any] = {
        "containers": containers,
        "volumes": volumes,
        "affinity": node_affinity(model, instance, gfd),
        "tolerations": [gpu_toleration()],
        "hostNetwork": False,
        "hostIPC": False,
        "hostPID": False,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 120,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, **(security_context or {})},
    }
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    labels = {**labels, NODE_GROUP_LABEL: model.node_group, **scheduling_labels(model.scheduling)}
    if model.scheduling.kai:
        spec["schedulerName"] = KAI_SCHEDULER_NAME
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}


def scheduling_labels(scheduling: ModelScheduling) -> dict[str, str]:
    return {KAI_QUEUE_LABEL: scheduling.queue} if scheduling.kai and scheduling.queue else {}


def vllm_volumes(model: ModelPlacement, hf_token_secret: str | None) -> tuple[list, list, list]:
    """(env, volumes, mounts) of a vLLM container: /dev/shm, the cache, the model source."""
    plan = model.plan
    source = model.config.source
    download = isinstance(source, HuggingFaceSource)
    env = [
        {"name": "NCCL_DEBUG", "value": "WARN"},
        {"name": "HF_HOME", "value": f"{CACHE_MOUNT}/huggingface"},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
    ]
    if model.multi_node:
        env += efa_env()
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
    return env, volumes, mounts


def vllm_container(
    model: ModelPlacement, instance: InstanceType, *, image: str, env: list, mounts: list, role: str
) -> dict[str, Any]:
    """The vLLM container of a pod: ``server`` (Deployment), ``leader`` or ``worker`` (LWS)."""
    resources = pod_resources(instance, model.plan.gpus_per_pod)
    if model.multi_node:
        resources = with_efa(resources, instance)
    container: dict[str, Any] = {
        "name": "vllm" if role == "server" else f"vllm-{role}",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
        "securityContext": dict(CONTAINER_SECURITY),
    }
    if role == "worker":
        container["command"] = ["/bin/bash", "-c", worker_script()]
        return container
    if role == "leader":
        container["command"] = ["/bin/bash", "-c", leader_script(model), "vllm-leader", model_reference(model)]
    else:
        container["command"] = ["vllm", "serve", model_reference(model)]
    container["args"] = server_args(model)
    container["ports"] = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    container.update(probes("/health", "/health", startup_seconds(model)))
    return container


def deployment_spec(
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    image: str,
    hf_token_secret: str | None,
) -> dict[str, Any]:
    """One pod per replica, every GPU of the plan in it (single-node plans)."""
    env, volumes, mounts = vllm_volumes(model, hf_token_secret)
    container = vllm_container(model, instance, image=image, env=env, mounts=mounts, role="server")
    labels = selector_labels(model.name)
    template = pod_template(
        model,
        instance,
        gfd=gfd,
        containers=[container],
        volumes=volumes,
        labels=labels,
        annotations={"gpu-inference.io/startup-budget-seconds": str(startup_seconds(model))},
    )
    return {
        "replicas": model.config.replicas,
        "selector": {"matchLabels": labels},
        # Recreate: an update frees the GPUs before the new pod needs them (no spare GPUs).
        "strategy": {"type": "Recreate"},
        "template": template,
    }


def leader_worker_set_spec(
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    image: str,
    hf_token_secret: str | None,
) -> dict[str, Any]:
    """One LeaderWorkerSet group per replica: ``size`` = PP pods, each one whole node."""
    plan = model.plan
    env, volumes, mounts = vllm_volumes(model, hf_token_secret)
    labels = selector_labels(model.name)
    annotations = {"gpu-inference.io/startup-budget-seconds": str(startup_seconds(model))}
    templates = {}
    for role in ("leader", "worker"):
        container = vllm_container(model, instance, image=image, env=list(env), mounts=list(mounts), role=role)
        templates[role] = pod_template(
            model,
            instance,
            gfd=gfd,
            containers=[container],
            volumes=volumes,
            labels={**labels, LWS_ROLE_LABEL: role},
            annotations=annotations,
        )
    return {
        "replicas": model.config.replicas,
        # Workers start with the leader (they retry until its Ray head answers).
        "startupPolicy": "LeaderCreated",
        # One group at a time, never a surge: no spare GPUs are needed for an update.
        "rolloutStrategy": {
            "type": "RollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
        },
        "leaderWorkerTemplate": {
            "size": plan.pipeline_parallel_size,
            "restartPolicy": LWS_RESTART_POLICY,
            "leaderTemplate": templates["leader"],
            "workerTemplate": templates["worker"],
        },
    }


def service_selector(model: ModelPlacement) -> dict[str, str]:
    """Only pods that answer HTTP: every server pod, or only the leaders of LWS groups."""
    selector = selector_labels(model.name)
    if model.multi_node:
        selector[LWS_ROLE_LABEL] = "leader"
    return selector


def network_policy_spec(
    name: str, client_namespaces: list[str], intra_group: bool = False, pod_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """Admit the server port only from the named namespaces (none named: admit nothing) and from
    the model's own smoke-test Job; a multi-node model's pods also admit each other on every
    port (Ray, NCCL bootstrap)."""
    pods = pod_labels or selector_labels(name)
    ingress = []
    if client_namespaces:
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/metadata.name",
                                    "operator": "In",
                                    "values": sorted(client_namespaces),
                                }
                            ]
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": PORT}],
            }
        )
    if intra_group:
        ingress.append({"from": [{"podSelector": {"matchLabels": pods}}]})
    ingress.append(
        {"from": [{"podSelector": {"matchLabels": smoke_labels(name)}}], "ports": [{"protocol": "TCP", "port": PORT}]}
    )
    return {"podSelector": {"matchLabels": pods}, "policyTypes": ["Ingress"], "ingress": ingress}


def await_annotations(timeout: int, multi_node: bool, replicas: int) -> dict[str, str]:
    """How long ``pulumi up`` waits; for a LeaderWorkerSet (a custom resource, which the provider
    does not await by itself) also what to wait for: every group ready."""
    annotations = {"pulumi.com/timeoutSeconds": str(timeout)}
    if multi_node and replicas > 0:
        annotations["pulumi.com/waitFor"] = "condition=Available"
    return annotations


@dataclass
class VllmModelArgs:
    """What one served model needs.

    ``model`` is its placement (config and plan); ``instance`` the node group's instance type;
    ``namespace`` and ``provider`` where it goes; ``gfd`` whether GPU feature discovery labels
    exist on its nodes; ``hf_token`` the Hugging Face token (a secret) when downloading;
    ``client_namespaces`` who may call it; ``depends_on`` its node group, GPU enablement and,
    for multi-node models, the LeaderWorkerSet controller and the EFA device plugin.
    """

    model: ModelPlacement
    instance: InstanceType
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    gfd: bool
    client_namespaces: list[str]
    hf_token: pulumi.Input[str] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def server_objects(
    component: pulumi.ComponentResource,
    name: str,
    model: ModelPlacement,
    *,
    namespace: pulumi.Input[str],
    provider: k8s.Provider,
    labels: dict[str, str],
    selector: dict[str, str],
    client_namespaces: list[str],
    pod_labels: dict[str, str] | None = None,
) -> k8s.core.v1.Service:
    """Service (leaders only for LWS), PodDisruptionBudget and NetworkPolicy of a model."""
    opts = pulumi.ResourceOptions(parent=component, provider=provider)
    server = model.name
    pods = pod_labels or selector_labels(server)

    def metadata() -> dict[str, Any]:
        return {"name": server, "namespace": namespace, "labels": labels}

    service = k8s.core.v1.Service(
        f"{name}-svc",
        metadata=metadata(),
        spec={
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
        opts=opts,
    )
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb",
        metadata=metadata(),
        spec={"maxUnavailable": 1, "selector": {"matchLabels": pods}},
        opts=opts,
    )
    k8s.networking.v1.NetworkPolicy(
        f"{name}-ingress",
        metadata=metadata(),
        spec=network_policy_spec(server, client_namespaces, intra_group=model.multi_node, pod_labels=pods),
        opts=opts,
    )
    return service


class VllmModel(pulumi.ComponentResource):
    """Deployment (or LeaderWorkerSet), Service, PodDisruptionBudget, NetworkPolicy (+ HF token Secret)."""

    workload: pulumi.CustomResource
    service: k8s.core.v1.Service
    fingerprint: dict[str, Any]  # what the server runs; its smoke test reruns when this changes

    def __init__(self, name: str, args: VllmModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:VllmModel", name, None, opts)
        model = args.model
        server = model.name
        labels = {
            **selector_labels(server),
            "app.kubernetes.io/component": "server",
            "app.kubernetes.io/part-of": PROJECT,
        }

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
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )

        image = model.config.image or VLLM_IMAGE
        timeout = await_timeout_seconds(startup_seconds(model))
        workload_opts = pulumi.ResourceOptions(
            parent=self,
            provider=args.provider,
            depends_on=args.depends_on,
            custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout}s", update=f"{timeout}s"),
        )
        annotations = await_annotations(timeout, model.multi_node, model.config.replicas)
        if model.multi_node:
            spec = leader_worker_set_spec(model, args.instance, gfd=args.gfd, image=image, hf_token_secret=secret_name)
            self.fingerprint = {"image": image, "spec": spec}
            self.workload = k8s.apiextensions.CustomResource(
                name,
                api_version=LWS_API_VERSION,
                kind=LWS_KIND,
                metadata=metadata(
                    server, annotations=annotations, labels={**labels, **scheduling_labels(model.scheduling)}
                ),
                spec=spec,
                opts=workload_opts,
            )
        else:
            spec = deployment_spec(model, args.instance, gfd=args.gfd, image=image, hf_token_secret=secret_name)
            self.fingerprint = {"image": image, "spec": spec}
            self.workload = k8s.apps.v1.Deployment(
                name,
                metadata=metadata(server, annotations=annotations),
                spec=spec,
                opts=workload_opts,
            )
        self.service = server_objects(
            self,
            name,
            model,
            namespace=args.namespace,
            provider=args.provider,
            labels=labels,
            selector=service_selector(model),
            client_namespaces=args.client_namespaces,
        )
        self.register_outputs({"workload": self.workload.metadata["name"], "service": self.service.metadata["name"]})
