"""What every GPU server shares, whatever the engine: its pod, its workload, its Service, PDB and
NetworkPolicy, and the ``ModelServer`` component that declares them.

A replica that fits one node is a Deployment pod. A replica the planner splits across nodes
(PP > 1) is a LeaderWorkerSet group of PP pods, one whole node each: the group restarts as a
whole when any pod fails (``RecreateGroupOnPodRestart``), the Service selects leaders only, and
the pods of a group reach each other over EFA (``vpc.amazonaws.com/efa`` devices). Every pod
requests = limits its GPUs, gets a memory-backed /dev/shm, the CPU and memory of its share of the
node, affinity to its node group's labels, the GPU taint's toleration, a startup budget from the
load estimate and no host namespaces or capabilities.

What differs between engines (the container's command, arguments and environment, its health
paths, its volumes and secrets) comes from the model's engine (``components.engines``). The
manifests are built by pure functions so they can be read and tested without Pulumi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components import checkov_skips
from components.checkov_skips import skip_annotations
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
from components.node_user_data import has_instance_store
from components.prepull import IMAGES_PREPULLED
from components.smoke_test import digest, smoke_labels
from sizing.instances import InstanceType
from sizing.startup import START_ESTIMATE_ANNOTATION, StartupEstimate, estimate_startup
from sizing.throughput import RequestShape, predict_for_plan
from stack.config import KAI_SCHEDULER_NAME, ModelScheduling
from stack.outputs import PORT  # part of the outputs contract (the URLs' port)
from stack.placement import ModelPlacement
from stack.project import PROJECT

if TYPE_CHECKING:
    from components.engines.base import Engine

# Per node, kept free of servers for the kubelet's reservation, DaemonSets (aws-node,
# kube-proxy, the device plugin, GFD, NFD) and the difference between the nominal memory and
# what the kernel reports.
NODE_RESERVED_VCPUS = 6
NODE_RESERVED_MEMORY_GIB = 8
NODE_RESERVED_MEMORY_FRACTION = 0.06

IMAGE_PULL_SECONDS = 600  # server images are ~10 GB compressed
STARTUP_PROBE_PERIOD_SECONDS = 10
READINESS_PROBE_PERIOD_SECONDS = 10

# Multi-node (LeaderWorkerSet) serving.
LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_KIND = "LeaderWorkerSet"
LWS_RESTART_POLICY = "RecreateGroupOnPodRestart"
# Workers pull the image and join the leader while it waits for them; on top of the leader's
# own image pull the budget gives them this long before the load itself starts.
GROUP_JOIN_SECONDS = 900

# The LeaderWorkerSet is not named after the model: LWS (v0.8.0, pkg/utils/controller/
# controller_utils.go CreateHeadlessServiceIfNotExists, called with the set's name) creates the
# headless Service behind its pods' subdomain only when no Service of the set's name exists, and
# the model's name belongs to the client Service (the outputs' URL). Sharing it, the workers'
# addresses never resolve and the group never forms.
LWS_NAME_SUFFIX = "-lws"
# A label on a LeaderWorkerSet's pods naming the revision of its spec: LWS status carries no
# observedGeneration, so the stack awaits an update through a Service of this revision's leaders.
REVISION_LABEL = "gpu-inference.io/revision"

CONTAINER_SECURITY = {"privileged": False, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def shm_size_mib(gpus_per_pod: int) -> int:
    """Size of the memory-backed /dev/shm.

    vLLM checks free space before it allocates its shared-memory rings (a 160 MiB broadcast ring
    plus 240 MiB per worker) and refuses to start below that even at TP=1; NCCL keeps its
    intra-node buffers there too, more per rank. 1 GiB plus 1 GiB per extra rank covers both
    with room to spare (8 GiB at TP=8), and never less than vLLM's own need plus 256 MiB.
    """
    vllm_rings = 160 + 240 * gpus_per_pod
    return max(1024 * gpus_per_pod, vllm_rings + 256)


def shm_volume(gpus_per_pod: int) -> dict[str, Any]:
    return {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_size_mib(gpus_per_pod)}Mi"}}


SHM_MOUNT = {"name": "shm", "mountPath": "/dev/shm"}


def startup_failure_threshold(seconds: int) -> int:
    return math.ceil(seconds / STARTUP_PROBE_PERIOD_SECONDS)


def await_timeout_seconds(startup_seconds: int, image_pull_seconds: float = IMAGE_PULL_SECONDS) -> int:
    """How long ``pulumi up`` waits for the workload: image pull, then the startup budget, +10%.

    A server still not ready by then is crash-looping or stuck, and the update fails instead
    of waiting forever (pulumi-kubernetes' default is 10 minutes, too short for a 70B load).
    """
    return int((image_pull_seconds + startup_seconds) * 1.1)


def weights_source(engine: Engine, model: ModelPlacement) -> str:
    """Where the pod reads its weights from, as ``sizing.startup`` rates it."""
    if engine.downloads_weights(model):
        return "huggingFace"  # NIM's download from NGC too
    return "s3" if getattr(model.config.source, "type", None) == "s3" else "volume"


def startup_estimate(engine: Engine, model: ModelPlacement) -> StartupEstimate:
    """One replica's start: image (pre-pulled on its GPU group), weights from its source (through
    the instance-store NVMe where the node has it), compile, and the group forming across nodes."""
    return estimate_startup(
        model.plan.weights_gib_total,
        weights_source(engine, model),
        prepulled=IMAGES_PREPULLED,
        local_nvme=has_instance_store(model.plan.instance_type),
        extra_s=GROUP_JOIN_SECONDS if model.multi_node else 0,
    )


def startup_seconds(engine: Engine, model: ModelPlacement) -> int:
    """The startup probe's budget: the estimate's load and compile (and group forming), with its margin."""
    return startup_estimate(engine, model).startup_probe_budget_s


def drain_seconds(model: ModelPlacement) -> int:
    """How long in-flight requests may take to finish once the pod stops taking new ones: the
    model's ``drainSeconds``, else the longest request its context allows (``maxModelLen`` tokens)
    decoding at the time per output token the plan predicts (sizing.throughput) with the server
    full: as many requests running as its KV cache holds at that length."""
    if model.config.drain_seconds is not None:
        return model.config.drain_seconds
    length = model.plan.settings.max_model_len
    full = max(1, math.floor(model.plan.estimate.max_concurrency))
    prediction = predict_for_plan(model.plan, model.architecture, RequestShape(1, max(1, length - 1)), full)
    return math.ceil(length * prediction.tpot_s)


def endpoint_removal_seconds() -> int:
    """The preStop wait: a terminating pod leaves the Services' endpoints at once, but kube-proxy,
    CoreDNS caches and load balancers see it up to a readiness period later; until then they may
    still send requests, which the server must take."""
    return READINESS_PROBE_PERIOD_SECONDS


def termination_grace_seconds(model: ModelPlacement) -> int:
    """The preStop wait, then the drain: the kubelet kills the server only after both."""
    return endpoint_removal_seconds() + drain_seconds(model)


def rollout_max_unavailable(model: ModelPlacement) -> int:
    """Replicas (pods or LWS groups) an update may take down at once: one without surge (no spare
    GPUs needed), none with ``rollout: surge`` (the new replica is ready before an old one stops)."""
    return 0 if surges(model) else 1


def rollout_max_surge(model: ModelPlacement) -> int:
    return 1 if surges(model) else 0


def surges(model: ModelPlacement) -> bool:
    return model.config.rollout == "surge"


def disruption_max_unavailable(model: ModelPlacement) -> int:
    """The PodDisruptionBudget: a node drain may take down what an update without surge does, one
    replica (never zero: a budget of zero blocks every node update of the group)."""
    return 1


def most_replicas(model: ModelPlacement) -> int:
    """The most replicas an update may find running: the autoscaler's ceiling, or the fixed count."""
    bounds = model.config.autoscaling
    return model.config.replicas if bounds is None else bounds.max_replicas


def rollout_steps(model: ModelPlacement) -> int:
    """Replicas replaced one after the other by an update (one replica: one step)."""
    return max(1, most_replicas(model))


def deployment_strategy(model: ModelPlacement) -> dict[str, Any]:
    """One replica: Recreate (the update frees the GPUs the new pod needs). More: a rolling update
    one pod at a time without surge, so all but one replica keep serving. ``rollout: surge``: a
    rolling update that starts each new pod before stopping an old one (the placement kept room)."""
    if most_replicas(model) > 1 or surges(model):
        return {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": rollout_max_surge(model), "maxUnavailable": rollout_max_unavailable(model)},
        }
    return {"type": "Recreate"}


def step_seconds(engine: Engine, model: ModelPlacement) -> int:
    """One replica replaced: the old pod drains, the new one pulls its image and loads (+10%)."""
    estimate = startup_estimate(engine, model)
    return await_timeout_seconds(
        startup_seconds(engine, model) + termination_grace_seconds(model), estimate.image_pull_s * estimate.margin
    )


def workload_timeout_seconds(engine: Engine, model: ModelPlacement) -> int:
    """How long ``pulumi up`` waits for the workload: every step of the rollout."""
    return step_seconds(engine, model) * rollout_steps(model)


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


def selector_labels(engine: Engine, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": engine.label, "app.kubernetes.io/instance": name}


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
        "readinessProbe": {
            **ready,
            "periodSeconds": READINESS_PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {**live, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
    }


def scheduling_labels(scheduling: ModelScheduling) -> dict[str, str]:
    return {KAI_QUEUE_LABEL: scheduling.queue} if scheduling.kai and scheduling.queue else {}


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
    service_account: str | None = None,
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
        "terminationGracePeriodSeconds": termination_grace_seconds(model),
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, **(security_context or {})},
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    labels = {**labels, NODE_GROUP_LABEL: model.node_group, **scheduling_labels(model.scheduling)}
    if model.scheduling.kai:
        spec["schedulerName"] = KAI_SCHEDULER_NAME
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}


def server_container(
    engine: Engine,
    model: ModelPlacement,
    instance: InstanceType,
    *,
    role: str,
    image: str,
    env: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The engine's container in a pod of role ``server`` (Deployment), ``leader`` or ``worker`` (LWS):
    GPUs (and EFA across nodes) requested = limited, no capabilities; the server port and probes
    on every pod that answers HTTP."""
    resources = pod_resources(instance, model.plan.gpus_per_pod)
    if model.multi_node:
        resources = with_efa(resources, instance)
    container: dict[str, Any] = {
        "name": engine.container_name(role),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
        "securityContext": dict(CONTAINER_SECURITY),
    }
    command, args = engine.command(model, role)
    if command is not None:
        container["command"] = command
    container["lifecycle"] = {"preStop": {"exec": {"command": pre_stop(model, role)}}}
    if role == "worker":
        return container
    if args is not None:
        container["args"] = args
    container["ports"] = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    container.update(probes(engine.ready_path, engine.live_path, startup_seconds(engine, model)))
    return container


def pre_stop(model: ModelPlacement, role: str) -> list[str]:
    """A server keeps serving while its endpoint leaves the Services (then SIGTERM: it stops
    taking requests and finishes those in flight). A worker stays until its leader's port closes,
    so the leader's in-flight requests keep their pipeline stages (the grace bounds both)."""
    if role == "worker":
        probe = f"exec 3<>/dev/tcp/${{LWS_LEADER_ADDRESS}}/{PORT}"
        return ["/bin/bash", "-c", f"while ({probe}) 2>/dev/null; do sleep 5; done"]
    return ["sleep", str(endpoint_removal_seconds())]


def pod_templates(
    engine: Engine,
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    image: str,
    secrets: dict[str, str],
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """One pod template per role: ``server`` for a Deployment, ``leader`` and ``worker`` for LWS."""
    env, volumes, mounts = engine.pod_environment(model, secrets)
    labels = selector_labels(engine, model.name)
    annotations = {
        "gpu-inference.io/startup-budget-seconds": str(startup_seconds(engine, model)),
        **(pod_annotations or {}),
    }
    roles = ("leader", "worker") if model.multi_node else ("server",)
    templates = {}
    for role in roles:
        container = server_container(
            engine, model, instance, role=role, image=image, env=list(env), mounts=list(mounts)
        )
        templates[role] = pod_template(
            model,
            instance,
            gfd=gfd,
            containers=[container],
            volumes=volumes,
            labels={**labels, LWS_ROLE_LABEL: role} if model.multi_node else labels,
            annotations=annotations,
            security_context=engine.pod_security_context(model),
            image_pull_secrets=engine.image_pull_secrets(secrets),
            service_account=engine.service_account(model),
        )
    return templates


def deployment_spec(
    engine: Engine,
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    image: str,
    secrets: dict[str, str],
    replicas: int | None = None,
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One pod per replica, every GPU of the plan in it (single-node plans); ``replicas`` when the
    workload is created with another count than the config's (autoscaled, or a Capacity Block's
    group outside its window)."""
    templates = pod_templates(
        engine, model, instance, gfd=gfd, image=image, secrets=secrets, pod_annotations=pod_annotations
    )
    template = templates["server"]
    return {
        "replicas": model.config.replicas if replicas is None else replicas,
        "selector": {"matchLabels": selector_labels(engine, model.name)},
        "strategy": deployment_strategy(model),
        # One step of the rollout; the default 600 s would call a loading 70B a failed rollout.
        "progressDeadlineSeconds": step_seconds(engine, model),
        "template": template,
    }


def leader_worker_set_spec(
    engine: Engine,
    model: ModelPlacement,
    instance: InstanceType,
    *,
    gfd: bool,
    image: str,
    secrets: dict[str, str],
    replicas: int | None = None,
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One LeaderWorkerSet group per replica: ``size`` = PP pods, each one whole node."""
    templates = pod_templates(
        engine, model, instance, gfd=gfd, image=image, secrets=secrets, pod_annotations=pod_annotations
    )
    return {
        "replicas": model.config.replicas if replicas is None else replicas,
        # Workers start with the leader (they retry until it answers).
        "startupPolicy": "LeaderCreated",
        # One group at a time: without surge no spare GPUs are needed for an update.
        "rolloutStrategy": {
            "type": "RollingUpdate",
            "rollingUpdateConfiguration": {
                "maxUnavailable": rollout_max_unavailable(model),
                "maxSurge": rollout_max_surge(model),
            },
        },
        "leaderWorkerTemplate": {
            "size": model.plan.pipeline_parallel_size,
            "restartPolicy": LWS_RESTART_POLICY,
            "leaderTemplate": templates["leader"],
            "workerTemplate": templates["worker"],
        },
    }


def service_selector(engine: Engine, model: ModelPlacement) -> dict[str, str]:
    """Only pods that answer HTTP: every server pod, or only the leaders of LWS groups."""
    selector = selector_labels(engine, model.name)
    if model.multi_node:
        selector[LWS_ROLE_LABEL] = "leader"
    return selector


def network_policy_spec(
    name: str, client_namespaces: list[str], pod_labels: dict[str, str], intra_group: bool = False
) -> dict[str, Any]:
    """Admit the server port only from the named namespaces (none named: admit nothing) and from
    the model's own smoke-test Job; a multi-node model's pods also admit each other on every
    port (the engine's group traffic, NCCL bootstrap)."""
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
        ingress.append({"from": [{"podSelector": {"matchLabels": pod_labels}}]})
    ingress.append(
        {"from": [{"podSelector": {"matchLabels": smoke_labels(name)}}], "ports": [{"protocol": "TCP", "port": PORT}]}
    )
    return {"podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Ingress"], "ingress": ingress}


def workload_name(model: ModelPlacement) -> str:
    """The Deployment is named after the model; a LeaderWorkerSet is not (see LWS_NAME_SUFFIX)."""
    return f"{model.name}{LWS_NAME_SUFFIX}" if model.multi_node else model.name


def with_revision(spec: dict[str, Any], revision: str) -> dict[str, Any]:
    """The LeaderWorkerSet spec with its revision label on every pod (the label follows the spec,
    so it adds no restart of its own)."""
    group = spec["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        template = group[role]
        group[role] = {
            **template,
            "metadata": {
                **template["metadata"],
                "labels": {**template["metadata"]["labels"], REVISION_LABEL: revision},
            },
        }
    return spec


def revision_service_name(model: ModelPlacement, revision: str) -> str:
    return f"{model.name}-rev-{revision}"


def await_annotations(timeout: int, multi_node: bool, replicas: int) -> dict[str, str]:
    """How long ``pulumi up`` waits; for a LeaderWorkerSet (a custom resource, which the provider
    does not await by itself) also what to wait for: every group ready."""
    annotations = {"pulumi.com/timeoutSeconds": str(timeout)}
    if multi_node and replicas > 0:
        annotations["pulumi.com/waitFor"] = "condition=Available"
    return annotations


def server_objects(
    component: pulumi.ComponentResource,
    name: str,
    engine: Engine,
    model: ModelPlacement,
    *,
    namespace: pulumi.Input[str],
    provider: k8s.Provider,
    labels: dict[str, str],
    client_namespaces: list[str],
    extra_ingress: list[dict[str, Any]] | None = None,
) -> k8s.core.v1.Service:
    """Service (leaders only for LWS), PodDisruptionBudget and NetworkPolicy of a model; ``extra_ingress``
    adds NetworkPolicy ingress rules (the monitoring namespace's scrape)."""
    opts = pulumi.ResourceOptions(parent=component, provider=provider)
    server = model.name
    pods = selector_labels(engine, server)

    def metadata() -> dict[str, Any]:
        return {"name": server, "namespace": namespace, "labels": labels}

    service = k8s.core.v1.Service(
        f"{name}-svc",
        metadata=metadata(),
        spec={
            "type": "ClusterIP",
            "selector": service_selector(engine, model),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
        opts=opts,
    )
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb",
        metadata=metadata(),
        spec={"maxUnavailable": disruption_max_unavailable(model), "selector": {"matchLabels": pods}},
        opts=opts,
    )
    policy = network_policy_spec(server, client_namespaces, pods, intra_group=model.multi_node)
    policy["ingress"] += extra_ingress or []
    k8s.networking.v1.NetworkPolicy(f"{name}-ingress", metadata=metadata(), spec=policy, opts=opts)
    return service


@dataclass
class ModelServerArgs:
    """What one served model needs.

    ``model`` is its placement (config and plan); ``instance`` the node group's instance type;
    ``namespace`` and ``provider`` where it goes; ``gfd`` whether GPU feature discovery labels
    exist on its nodes; ``secrets`` the stack's secret values by config key (``hfToken``,
    ``ngcApiKey``), of which the engine takes what it needs; ``client_namespaces`` who may call
    it; ``depends_on`` its node group, GPU enablement and, for multi-node models, the
    LeaderWorkerSet controller and the EFA device plugin; ``extra_ingress`` whom else its
    NetworkPolicy admits (the monitoring namespace's scrape).
    """

    model: ModelPlacement
    instance: InstanceType
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    gfd: bool
    client_namespaces: list[str]
    secrets: dict[str, pulumi.Input[str] | None] = field(default_factory=dict)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    extra_ingress: list[dict[str, Any]] = field(default_factory=list)
    # Autoscaled: created at ``replicas`` (the autoscaler's floor), then ``spec.replicas`` is the
    # autoscaler's (components.keda.workload_options); ``pod_annotations`` on every server pod.
    replicas: int | None = None
    autoscaled: bool = False
    pod_annotations: dict[str, str] = field(default_factory=dict)


class ModelServer(pulumi.ComponentResource):
    """Deployment (or LeaderWorkerSet), Service, PodDisruptionBudget, NetworkPolicy and the
    engine's Secrets; the type token names the engine (``gpu-inference:components:VllmModel``)."""

    workload: pulumi.CustomResource
    service: k8s.core.v1.Service
    fingerprint: dict[str, Any]  # what the server runs; its smoke test reruns when this changes
    # What the smoke test calls and how long it may wait: the model's Service and the default
    # wait, or for a LeaderWorkerSet a Service of the current revision's leaders and the group's
    # whole await budget (its status cannot tell an update apart from the revision before).
    smoke_service: str
    smoke_wait_seconds: int | None
    smoke_depends_on: list[pulumi.Resource]

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None):
        from components.engines import engine_for
        from components.keda import workload_options

        model = args.model
        engine = engine_for(model)
        super().__init__(f"gpu-inference:components:{engine.component}", name, None, opts)
        if model.multi_node and not engine.supports_multi_node:
            raise ValueError(f"{model.name}: {engine.name} is served on one node in this stack")
        server = model.name
        labels = {
            **selector_labels(engine, server),
            "app.kubernetes.io/component": "server",
            "app.kubernetes.io/part-of": PROJECT,
        }
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)

        def metadata(object_name: str, **extra: Any) -> dict[str, Any]:
            return {"name": object_name, "namespace": args.namespace, "labels": labels, **extra}

        secrets: dict[str, str] = {}
        self.secrets: dict[str, k8s.core.v1.Secret] = {}  # by name: the pre-pull reads the image's pull secret
        for secret in engine.secrets(model, args.secrets):
            secrets[secret.suffix] = f"{server}-{secret.suffix}"
            self.secrets[secrets[secret.suffix]] = k8s.core.v1.Secret(
                f"{name}-{secret.suffix}",
                metadata=metadata(secrets[secret.suffix]),
                type=secret.type,
                string_data=secret.string_data,
                opts=child,
            )

        image = engine.image(model)
        self.image, self.image_pull_secrets = image, engine.image_pull_secrets(secrets) or []
        self.startup = startup_estimate(engine, model)
        timeout = workload_timeout_seconds(engine, model)
        workload_opts = workload_options(
            pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=args.depends_on,
                custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout}s", update=f"{timeout}s"),
            ),
            args.autoscaled,
        )
        replicas = model.config.replicas if args.replicas is None else args.replicas
        shape = {"replicas": replicas, "pod_annotations": args.pod_annotations}
        annotations = {
            **await_annotations(timeout, model.multi_node, replicas),
            START_ESTIMATE_ANNOTATION: self.startup.describe(),
            **skip_annotations({**checkov_skips.SERVER, **engine.checkov_skips}),
        }
        self.smoke_service, self.smoke_wait_seconds, self.smoke_depends_on = server, None, []
        if model.multi_node:
            spec = leader_worker_set_spec(
                engine, model, args.instance, gfd=args.gfd, image=image, secrets=secrets, **shape
            )
            revision = digest(engine.fingerprint(image, spec))
            spec = with_revision(spec, revision)
            self.workload = k8s.apiextensions.CustomResource(
                name,
                api_version=LWS_API_VERSION,
                kind=LWS_KIND,
                metadata=metadata(
                    workload_name(model),
                    annotations=annotations,
                    labels={**labels, **scheduling_labels(model.scheduling)},
                ),
                spec=spec,
                opts=workload_opts,
            )
            self.smoke_service = revision_service_name(model, revision)
            self.smoke_wait_seconds = timeout
            self.smoke_depends_on = [
                k8s.core.v1.Service(
                    f"{name}-revision-svc",
                    metadata=metadata(self.smoke_service),
                    spec={
                        "type": "ClusterIP",
                        "selector": {**service_selector(engine, model), REVISION_LABEL: revision},
                        "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
                    },
                    opts=child,
                )
            ]
        else:
            spec = deployment_spec(engine, model, args.instance, gfd=args.gfd, image=image, secrets=secrets, **shape)
            self.workload = k8s.apps.v1.Deployment(
                name,
                metadata=metadata(server, annotations=annotations),
                spec=spec,
                opts=workload_opts,
            )
        self.fingerprint = engine.fingerprint(image, spec)
        self.service = server_objects(
            self,
            name,
            engine,
            model,
            namespace=args.namespace,
            provider=args.provider,
            labels=labels,
            client_namespaces=args.client_namespaces,
            extra_ingress=args.extra_ingress,
        )
        self.register_outputs({"workload": self.workload.metadata["name"], "service": self.service.metadata["name"]})
