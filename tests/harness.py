"""Test helpers: run the real program under mocks, and the invariants every run must satisfy.

``run_stack``/``run_config`` run ``__main__.py`` (via ``stack.mockrun``) and return a ``Run``: what
was registered (type, name, parent, dependencies, inputs with unknowns and secrets visible) and
the resolved stack outputs. Values are checked after the run, never inside ``Output.apply``
(in preview mode callbacks on unknown values do not run, so an assertion there passes
silently).

``check_invariants(run, secrets)`` is the list of properties users rely on; each returns a
list of violations so a failing test names all of them.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from components.addons import (  # noqa: E402
    EFA_CHART,
    EFA_CHART_REPO,
    EFA_CHART_VERSION,
    KAI_CHART,
    KAI_CHART_VERSION,
    LWS_CHART,
    LWS_CHART_VERSION,
)
from components.engines import ENGINES  # noqa: E402
from components.gpu_enablement import CHART_REPO, CHART_VERSION  # noqa: E402
from components.labels import CNI_POLICY_ARN, NODE_POLICY_ARNS, NODE_SELECTOR_OPERATORS  # noqa: E402
from sizing.instances import INSTANCES  # noqa: E402
from sizing.startup import estimate_startup  # noqa: E402
from stack.kubernetes_names import quantity_value  # noqa: E402
from stack.mockrun import Registration, Run, Secret, load_stack_config, run_program  # noqa: E402
from verify.selectors import affinity_matches, tolerates  # noqa: E402

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SECRET = "kubernetes:core/v1:Secret"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
KAI_QUEUE_TYPE = "kubernetes:scheduling.run.ai/v2:Queue"
COMPONENT_PREFIX = "gpu-inference:components:"
EFA = "vpc.amazonaws.com/efa"
KAI_QUEUE = "kai.scheduler/queue"

HF_TOKEN = "hf_TESTTOKEN_do_not_leak_0123456789"
NGC_API_KEY = "nvapi-TESTKEY_do_not_leak_9876543210"
KUBECONFIG = '{"apiVersion": "v1", "kind": "Config", "users": [{"name": "secret-user-token-xyz"}]}'
SECRETS = {"hfToken": HF_TOKEN, "ngcApiKey": NGC_API_KEY}


def stack_config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(load_stack_config(stack))


@functools.cache
def _cached_stack_run(stack: str, preview: bool) -> Run:
    return run_program(stack_config(stack), stack=stack, preview=preview, secrets=SECRETS)


def run_stack(stack: str, preview: bool) -> Run:
    """The run of ``Pulumi.<stack>.yaml`` (cached per process: runs are deterministic)."""
    return _cached_stack_run(stack, preview)


def run_config(
    config: dict[str, Any], *, preview: bool = False, secrets: dict[str, str] | None = None, **kwargs
) -> Run:
    return run_program(config, stack="test", preview=preview, secrets=SECRETS if secrets is None else secrets, **kwargs)


def run_bad_config(config: dict[str, Any], *, preview: bool = False, secrets: dict[str, str] | None = None) -> Run:
    """Run a config expected to be rejected; the run carries the error and what was registered."""
    return run_config(config, preview=preview, secrets=secrets, capture_errors=True)


# --- reading a run ------------------------------------------------------------------------------


def deployments(run: Run) -> dict[str, Registration]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(DEPLOYMENT)}


def leader_worker_sets(run: Run) -> dict[str, Registration]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(LWS)}


@dataclass
class Workload:
    """A model's pods: a Deployment (template ``server``) or a LeaderWorkerSet (``leader``, ``worker``)."""

    name: str
    kind: str
    registration: Registration

    @property
    def spec(self) -> dict[str, Any]:
        return self.registration.plain_inputs["spec"]

    @property
    def templates(self) -> dict[str, dict[str, Any]]:
        if self.kind == "Deployment":
            return {"server": self.spec["template"]}
        lws = self.spec["leaderWorkerTemplate"]
        return {"leader": lws["leaderTemplate"], "worker": lws["workerTemplate"]}

    @property
    def server(self) -> dict[str, Any]:
        """The container answering HTTP (the Deployment's, or the leader's)."""
        return pod_container(self.templates["server" if self.kind == "Deployment" else "leader"])


def workloads(run: Run) -> dict[str, Workload]:
    """By model (its ``app.kubernetes.io/instance`` label): a LeaderWorkerSet is not named after its
    model (the model's name is the client Service's, and LWS needs its own for the headless one)."""
    out = {}
    for kind, found in (("Deployment", deployments(run)), ("LeaderWorkerSet", leader_worker_sets(run))):
        for name, r in found.items():
            model = (r.inputs["metadata"].get("labels") or {}).get("app.kubernetes.io/instance", name)
            out[model] = Workload(model, kind, r)
    return out


def pod_container(template: dict[str, Any]) -> dict[str, Any]:
    containers = template["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def container(deployment: Registration) -> dict[str, Any]:
    return pod_container(deployment.plain_inputs["spec"]["template"])


def arg_value(args: list[str], flag: str) -> str | None:
    if flag not in args:
        return None
    return args[args.index(flag) + 1]


def model_plans(run: Run) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in run.outputs["plan"]["models"]}


def node_group_registrations(run: Run) -> dict[str, Registration]:
    """GPU node groups by their config name (the system node group excluded)."""
    groups = {}
    for registration in run.of_type(NODE_GROUP):
        labels = registration.plain_inputs.get("labels") or {}
        name = labels.get("gpu-inference.io/node-group")
        if name is not None:
            groups[name] = registration
    return groups


def quantity_mib(quantity: str) -> float:
    return float(quantity_value(quantity)) / 2**20


def node_labels(run: Run, group: str) -> dict[str, str]:
    """The labels a node of the group carries once running: the group's, the kubelet's, GFD's."""
    registration = node_group_registrations(run)[group]
    inputs = registration.plain_inputs
    instance_type = inputs["instanceTypes"][0]
    labels = dict(inputs["labels"])
    labels["node.kubernetes.io/instance-type"] = instance_type
    if inputs["amiType"] != "BOTTLEROCKET_x86_64_NVIDIA" and releases_of(run, "nvidia-device-plugin"):
        instance = INSTANCES[instance_type]
        labels["nvidia.com/gpu.count"] = str(instance.gpus_per_node)
        labels["nvidia.com/gpu.product"] = instance.gpu.product_label
    return labels


def required_terms(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]


def contains_text(value: Any, needle: str) -> bool:
    """Whether ``needle`` appears in a plain (non-Secret) part of value."""
    if isinstance(value, Secret):
        return False
    if isinstance(value, str):
        return needle in value
    if isinstance(value, list):
        return any(contains_text(v, needle) for v in value)
    if isinstance(value, dict):
        return any(contains_text(v, needle) for v in value.values())
    return False


# --- invariants ---------------------------------------------------------------------------------


def check_invariants(run: Run, secrets: dict[str, str] = SECRETS) -> list[str]:
    problems: list[str] = []
    problems += check_servers(run)
    problems += check_scheduling(run)
    problems += check_node_groups(run)
    problems += check_gpu_enablement(run)
    problems += check_addons(run)
    problems += check_graph(run)
    problems += check_outputs(run)
    problems += check_secrets(run, secrets)
    return problems


def _env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def _check_pod(name: str, role: str, template: dict[str, Any], model: dict[str, Any], instance) -> list[str]:
    """What every server pod needs, whatever the engine and role."""
    problems = []
    where = name if role == "server" else f"{name} ({role})"
    plan = model["plan"]
    pod = template["spec"]
    c = pod_container(template)
    gpus = str(plan["gpus_per_pod"])
    resources = c["resources"]
    if resources["limits"].get("nvidia.com/gpu") != gpus or resources["requests"].get("nvidia.com/gpu") != gpus:
        problems.append(f"{where}: GPU requests/limits {resources} != plan's {gpus} GPUs per pod")
    env = _env(c)
    multi_node = plan["pods"] > 1
    efa = str(instance.efa_interfaces)
    has_efa = EFA in resources["limits"] or EFA in resources["requests"]
    if multi_node:
        if resources["limits"].get(EFA) != efa or resources["requests"].get(EFA) != efa:
            problems.append(f"{where}: EFA requests/limits {resources} != the node's {efa} interfaces")
        for key, value in (("FI_PROVIDER", "efa"), ("FI_EFA_USE_DEVICE_RDMA", "1"), ("NCCL_NET", "AWS Libfabric")):
            if env.get(key, {}).get("value") != value:
                problems.append(f"{where}: {key} is not {value!r} on a multi-node pod")
        if not str(env.get("NCCL_SOCKET_IFNAME", {}).get("value", "")).startswith("^lo"):
            problems.append(f"{where}: NCCL_SOCKET_IFNAME does not exclude loopback")
    elif has_efa or "FI_PROVIDER" in env or "NCCL_NET" in env:
        problems.append(f"{where}: single-node pod asks for EFA (it talks over NVLink only)")
    # /dev/shm: memory-backed, big enough, counted in the memory limit.
    shm_volumes = {v["name"]: v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"}
    mounts = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    if len(mounts) != 1 or mounts[0]["name"] not in shm_volumes:
        problems.append(f"{where}: /dev/shm is not mounted from a memory-backed emptyDir")
    else:
        shm = quantity_mib(shm_volumes[mounts[0]["name"]]["emptyDir"]["sizeLimit"])
        vllm_need = 160 + 240 * plan["gpus_per_pod"]
        if shm < max(1024, vllm_need + 256):
            problems.append(f"{where}: /dev/shm {shm} MiB is below what vLLM and NCCL need at TP={gpus}")
        if quantity_mib(resources["limits"]["memory"]) < shm + 16 * 1024:
            problems.append(
                f"{where}: memory limit {resources['limits']['memory']} does not leave room beside /dev/shm"
            )
    # No privilege.
    security = c["securityContext"]
    if security.get("privileged") or security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: container may be privileged or escalate")
    if security.get("capabilities", {}).get("add") or "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: capabilities not dropped")
    if pod.get("hostNetwork") or pod.get("hostIPC") or pod.get("hostPID"):
        problems.append(f"{where}: uses host namespaces")
    if env.get("NCCL_DEBUG", {}).get("value") != "WARN":
        problems.append(f"{where}: NCCL_DEBUG not WARN")
    # The scheduler the plan names: KAI with its queue, or the default one.
    scheduler = model.get("scheduler", "default")
    labels = template["metadata"]["labels"]
    if scheduler == "kai":
        if pod.get("schedulerName") != "kai-scheduler" or not labels.get(KAI_QUEUE):
            problems.append(
                f"{where}: scheduler kai but schedulerName {pod.get('schedulerName')!r}, queue "
                f"{labels.get(KAI_QUEUE)!r}"
            )
    elif pod.get("schedulerName") not in (None, "default-scheduler") or KAI_QUEUE in labels:
        problems.append(f"{where}: not scheduled by the default scheduler")
    return problems


def _check_probes(
    where: str, c: dict[str, Any], plan: dict[str, Any], registration: Registration, ready: str, live: str
) -> list[str]:
    problems = []
    for probe, path in (("startupProbe", ready), ("readinessProbe", ready), ("livenessProbe", live)):
        if c.get(probe, {}).get("httpGet", {}).get("path") != path:
            problems.append(f"{where}: {probe} missing or not on {path}")
    startup = c.get("startupProbe", {})
    budget = int(startup.get("failureThreshold", 0) * startup.get("periodSeconds", 0))
    # The expected load (no margin) from the source the pod shows: the streamer's flag, a claim, or a download.
    pod = registration.plain_inputs["spec"]
    source = (
        "s3"
        if "runai_streamer" in (c.get("args") or [])
        else "volume"
        if "persistentVolumeClaim" in json.dumps(pod, default=str) and "NGC_API_KEY" not in _env(c)  # NIM: a cache
        else "huggingFace"
    )
    expected = estimate_startup(plan["weights_gib_total"], source, prepulled=True, local_nvme=True)
    needed = int(expected.weights_load_s + expected.compile_s)
    if plan["pods"] > 1:
        needed += 600  # the Ray cluster forming across nodes comes first
    if budget < needed:
        problems.append(f"{where}: startup budget {budget}s < load estimate {needed}s")
    annotations = registration.plain_inputs["metadata"].get("annotations") or {}
    timeout = int(annotations.get("pulumi.com/timeoutSeconds", 0))
    if timeout < budget:
        problems.append(f"{where}: Pulumi await timeout {timeout}s is shorter than the startup budget {budget}s")
    if registration.custom_timeouts.get("create") != f"{timeout}s":
        problems.append(f"{where}: custom timeouts {registration.custom_timeouts} do not match {timeout}s")
    return problems


def _check_vllm_server(name: str, c: dict[str, Any], model: dict[str, Any], role: str) -> list[str]:
    problems = []
    plan = model["plan"]
    args = c["args"]
    expected = {
        "--tensor-parallel-size": str(plan["tensor_parallel_size"]),
        "--max-model-len": str(plan["settings"]["max_model_len"]),
        "--gpu-memory-utilization": str(plan["settings"]["gpu_memory_utilization"]),
        "--max-num-seqs": str(plan["settings"]["max_num_seqs"]),
        "--max-num-batched-tokens": str(plan["settings"]["max_num_batched_tokens"]),
        "--dtype": plan["settings"]["dtype"],
        "--kv-cache-dtype": plan["settings"]["kv_cache_dtype"],
        "--served-model-name": model["servedModelName"],
        "--port": "8000",
    }
    for flag, value in expected.items():
        if arg_value(args, flag) != value:
            problems.append(f"{name}: {flag} is {arg_value(args, flag)!r}, plan says {value!r}")
    quantization = plan["settings"]["quantization"]
    rendered = {"awq_marlin": "awq", "gptq_marlin": "gptq"}.get(arg_value(args, "--quantization") or "none")
    if (rendered or arg_value(args, "--quantization") or "none") != quantization:
        problems.append(f"{name}: --quantization {arg_value(args, '--quantization')!r} != {quantization!r}")
    if quantization == "none" and "--quantization" in args:
        problems.append(f"{name}: --quantization given for an unquantized model")
    pp = plan["pipeline_parallel_size"]
    if (pp > 1) != ("--pipeline-parallel-size" in args) or (
        pp > 1 and arg_value(args, "--pipeline-parallel-size") != str(pp)
    ):
        problems.append(f"{name}: --pipeline-parallel-size wrong for PP={pp}")
    multi_node = plan["pods"] > 1
    if multi_node != (arg_value(args, "--distributed-executor-backend") == "ray"):
        problems.append(f"{name}: --distributed-executor-backend ray must be set exactly when the replica spans nodes")
    if ("--enforce-eager" in args) != bool(plan["settings"]["enforce_eager"]):
        problems.append(f"{name}: --enforce-eager presence wrong")
    command = c["command"]
    if role == "leader":
        script = command[2] if len(command) > 2 else ""
        if command[:2] != ["/bin/bash", "-c"] or len(command) != 5:
            problems.append(f"{name}: leader command {command[:2]}... is not bash -c <script> <name> <model>")
        for needle in (
            "ray start --head --port=6379",
            f">= {plan['pods']}",
            f">= {plan['gpus']}",
            'exec vllm serve "$model" "$@"',
        ):
            if needle not in script:
                problems.append(f"{name}: leader script lacks {needle!r}")
    elif command[:2] != ["vllm", "serve"] or len(command) != 3:
        problems.append(f"{name}: command {command}")
    image = c["image"]
    if ("@" not in image and ":" not in image.rsplit("/", 1)[-1]) or image.endswith(":latest"):
        problems.append(f"{name}: image {image} is not pinned")
    return problems


def _check_vllm_source(where: str, pod: dict[str, Any], c: dict[str, Any], serves: bool) -> list[str]:
    problems = []
    env = _env(c)
    volume_claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    if volume_claims:
        if env.get("HF_HUB_OFFLINE", {}).get("value") != "1":
            problems.append(f"{where}: served from a volume without HF_HUB_OFFLINE=1")
        model_mounts = [m for m in c["volumeMounts"] if m["name"] == volume_claims[0]["name"]]
        if (
            not model_mounts
            or not model_mounts[0].get("readOnly")
            or not volume_claims[0]["persistentVolumeClaim"].get("readOnly")
        ):
            problems.append(f"{where}: model volume not read-only")
        if serves and (not model_mounts or not c["command"][-1].startswith(model_mounts[0]["mountPath"] + "/")):
            problems.append(f"{where}: serves {c['command'][-1]}, not the volume")
    if "runai_streamer" in (c.get("args") or []):
        if not pod.get("serviceAccountName") or "HF_TOKEN" in env or env.get("HF_HUB_OFFLINE", {}).get("value") != "1":
            problems.append(f"{where}: streamed from S3 without its ServiceAccount, or with a Hugging Face token")
        if serves and not c["command"][-1].startswith("s3://"):
            problems.append(f"{where}: streams {c['command'][-1]}, not an s3:// prefix")
    return problems


def _check_nim_server(name: str, c: dict[str, Any], pod: dict[str, Any], model: dict[str, Any], run: Run) -> list[str]:
    problems = []
    plan = model["plan"]
    env = _env(c)
    expected = {
        "NIM_TENSOR_PARALLEL_SIZE": str(plan["tensor_parallel_size"]),
        "NIM_PIPELINE_PARALLEL_SIZE": str(plan["pipeline_parallel_size"]),
        "NIM_MAX_MODEL_LEN": str(plan["settings"]["max_model_len"]),
        "NIM_SERVED_MODEL_NAME": model["servedModelName"],
        "NIM_CACHE_PATH": "/opt/nim/.cache",
    }
    for key, value in expected.items():
        if env.get(key, {}).get("value") != value:
            problems.append(f"{name}: {key} is {env.get(key, {}).get('value')!r}, plan says {value!r}")
    for stale in ("NIM_TP_SIZE", "NIM_PP_SIZE"):
        if stale in env:
            problems.append(
                f"{name}: {stale} is not a NIM variable (NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE)"
            )
    if not any(m["mountPath"] == "/opt/nim/.cache" for m in c["volumeMounts"]):
        problems.append(f"{name}: the NIM cache is not mounted at /opt/nim/.cache")
    if (
        not c["image"].startswith("nvcr.io/nim/")
        or c["image"].endswith(":latest")
        or ":" not in c["image"].rsplit("/", 1)[-1]
    ):
        problems.append(f"{name}: NIM image {c['image']} not a pinned nvcr.io/nim image")
    if [p["containerPort"] for p in c.get("ports", [])] != [8000]:
        problems.append(f"{name}: NIM port is not 8000")
    namespace_secrets = {r.plain_inputs["metadata"]["name"]: r for r in run.of_type(SECRET)}
    key_ref = env.get("NGC_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
    secret = namespace_secrets.get(key_ref.get("name"))
    if secret is None or key_ref.get("key") not in (secret.plain_inputs.get("stringData") or {}):
        problems.append(f"{name}: NGC_API_KEY does not come from a Secret holding it")
    pulls = [p["name"] for p in pod.get("imagePullSecrets", [])]
    pull = [namespace_secrets.get(p) for p in pulls]
    if not pull or any(r is None or r.plain_inputs.get("type") != "kubernetes.io/dockerconfigjson" for r in pull):
        problems.append(f"{name}: no nvcr.io dockerconfigjson pull secret")
    else:
        config = json.loads(pull[0].plain_inputs["stringData"][".dockerconfigjson"])
        if config["auths"].get("nvcr.io", {}).get("username") != "$oauthtoken":
            problems.append(f"{name}: the nvcr.io pull secret's user is not $oauthtoken")
    return problems


def check_servers(run: Run) -> list[str]:
    problems = []
    plans = model_plans(run)
    found = workloads(run)
    if sorted(found) != sorted(plans):
        problems.append(f"workloads {sorted(found)} != planned models {sorted(plans)}")
    instances = {g: INSTANCES[r.plain_inputs["instanceTypes"][0]] for g, r in node_group_registrations(run).items()}
    for name, workload in found.items():
        if name not in plans:
            continue
        model = plans[name]
        plan = model["plan"]
        engine = model.get("engine", "vllm")
        instance = instances[model["nodeGroup"]]
        multi_node = plan["pods"] > 1
        if workload.kind != ("LeaderWorkerSet" if multi_node else "Deployment"):
            problems.append(f"{name}: {workload.kind} for a plan of {plan['pods']} pod(s) per replica")
            continue
        if int(workload.spec["replicas"]) != model["replicas"]:
            problems.append(f"{name}: replicas {workload.spec['replicas']} != {model['replicas']}")
        for role, template in workload.templates.items():
            problems += _check_pod(name, role, template, model, instance)
        server_role = "leader" if multi_node else "server"
        server_template = workload.templates[server_role]
        c = pod_container(server_template)
        if engine == "nim":
            problems += _check_nim_server(name, c, server_template["spec"], model, run)
            problems += _check_probes(name, c, plan, workload.registration, "/v1/health/ready", "/v1/health/live")
        elif engine != "vllm":  # an engine the tests register: the shared pod checks, its own probe paths
            registered = ENGINES[engine]
            problems += _check_probes(name, c, plan, workload.registration, registered.ready_path, registered.live_path)
        else:
            problems += _check_vllm_server(name, c, model, server_role)
            problems += _check_probes(name, c, plan, workload.registration, "/health", "/health")
            for role, template in workload.templates.items():
                problems += _check_vllm_source(
                    f"{name} ({role})", template["spec"], pod_container(template), role != "worker"
                )
        if multi_node:
            lws = workload.spec["leaderWorkerTemplate"]
            if int(lws["size"]) != plan["pipeline_parallel_size"] or int(lws["size"]) != plan["pods"]:
                problems.append(
                    f"{name}: group size {int(lws['size'])} != PP={plan['pipeline_parallel_size']} (one pod per stage)"
                )
            if lws.get("restartPolicy") != "RecreateGroupOnPodRestart":
                problems.append(
                    f"{name}: restartPolicy {lws.get('restartPolicy')!r}: one failed pod must recreate the group"
                )
            rollout = workload.spec.get("rolloutStrategy", {}).get("rollingUpdateConfiguration", {})
            if rollout.get("maxSurge") not in (0, "0", "0%"):
                problems.append(f"{name}: rollout surges (needs spare GPUs)")
            worker = pod_container(workload.templates["worker"])
            script = " ".join(worker.get("command", []))
            if "ray start --address=" not in script or "LWS_LEADER_ADDRESS" not in script or "--block" not in script:
                problems.append(f"{name}: workers do not join the leader's Ray cluster")
            if "readinessProbe" in worker or "startupProbe" in worker:
                problems.append(f"{name}: workers serve no HTTP; a probe on them would never pass")
            annotations = workload.registration.plain_inputs["metadata"].get("annotations") or {}
            if model["replicas"] and annotations.get("pulumi.com/waitFor") != "condition=Available":
                problems.append(f"{name}: pulumi up does not wait for the LeaderWorkerSet's groups to be ready")
        else:
            strategy = workload.spec["strategy"]
            surge = strategy.get("rollingUpdate", {}).get("maxSurge")  # numbers arrive as floats
            if strategy["type"] != "Recreate" and surge not in (0, "0", "0%"):
                problems.append(f"{name}: update strategy {strategy} needs spare GPUs")
        # Service, PDB, NetworkPolicy.
        for kind in (SERVICE, PDB, NETPOL):
            objects = [r for r in run.of_type(kind) if r.inputs["metadata"]["name"] == name]
            if len(objects) != 1:
                problems.append(f"{name}: {len(objects)} {kind}")
        service = next((r for r in run.of_type(SERVICE) if r.inputs["metadata"]["name"] == name), None)
        if service is not None:
            selector = service.plain_inputs["spec"]["selector"]
            serving = server_template["metadata"]["labels"]
            if not selector or any(serving.get(k) != v for k, v in selector.items()):
                problems.append(f"{name}: Service selector {selector} does not select the pods {serving}")
            if multi_node:
                worker_labels = workload.templates["worker"]["metadata"]["labels"]
                if all(worker_labels.get(k) == v for k, v in selector.items()):
                    problems.append(f"{name}: Service selects workers too (only leaders serve HTTP)")
            if [p["port"] for p in service.plain_inputs["spec"]["ports"]] != [8000]:
                problems.append(f"{name}: Service port is not 8000")
        for kind, key in ((PDB, "selector"), (NETPOL, "podSelector")):
            obj = next((r for r in run.of_type(kind) if r.inputs["metadata"]["name"] == name), None)
            if obj is None:
                continue
            match = obj.plain_inputs["spec"][key]["matchLabels"]
            for role, template in workload.templates.items():
                if any(template["metadata"]["labels"].get(k) != v for k, v in match.items()):
                    problems.append(f"{name}: {kind.rsplit(':', 1)[-1]} does not select the {role} pods")
        netpol = next((r for r in run.of_type(NETPOL) if r.inputs["metadata"]["name"] == name), None)
        if netpol is not None and multi_node:
            pods = netpol.plain_inputs["spec"]["podSelector"]["matchLabels"]
            peers = [
                f.get("podSelector", {}).get("matchLabels")
                for rule in netpol.plain_inputs["spec"]["ingress"]
                for f in rule.get("from", [])
            ]
            if pods not in peers:
                problems.append(f"{name}: NetworkPolicy blocks Ray/NCCL between the pods of a group")
    return problems


def check_scheduling(run: Run) -> list[str]:
    problems = []
    plans = model_plans(run)
    groups = node_group_registrations(run)
    for name, workload in workloads(run).items():
        group = plans[name]["nodeGroup"]
        for role, template in workload.templates.items():
            where = name if role == "server" else f"{name} ({role})"
            pod = template["spec"]
            for term in required_terms(pod):
                for expression in term["matchExpressions"]:
                    operator = expression["operator"]
                    if operator not in NODE_SELECTOR_OPERATORS:
                        problems.append(f"{where}: invalid node affinity operator {operator!r}")
                        continue
                    values = expression.get("values") or []
                    if operator in ("Gt", "Lt") and (len(values) != 1 or not str(values[0]).lstrip("-").isdigit()):
                        problems.append(f"{where}: {operator} needs exactly one integer, got {values}")
                    if operator in ("Exists", "DoesNotExist") and values:
                        problems.append(f"{where}: {operator} takes no values")
                    if operator in ("In", "NotIn") and not values:
                        problems.append(f"{where}: {operator} needs values")
            if not affinity_matches(pod, node_labels(run, group)):
                problems.append(f"{where}: required affinity does not match the nodes of its group {group}")
            for other in groups:
                if other != group and affinity_matches(pod, node_labels(run, other)):
                    problems.append(f"{where}: required affinity also matches nodes of group {other}")
            for taint in groups[group].plain_inputs["taints"]:
                if not tolerates(pod.get("tolerations", []), taint):
                    problems.append(f"{where}: does not tolerate {taint} of its node group")
    return problems


def check_node_groups(run: Run) -> list[str]:
    problems = []
    outputs = run.outputs["nodeGroups"]
    groups = node_group_registrations(run)
    created_cluster = bool(run.of_type("eks:index:Cluster"))
    if sorted(groups) != sorted(outputs):
        problems.append(f"node groups {sorted(groups)} != outputs {sorted(outputs)}")
    for name, registration in groups.items():
        inputs = registration.plain_inputs
        scaling = inputs["scalingConfig"]
        expected = outputs[name]
        if int(scaling["desiredSize"]) != expected["nodes"]:
            problems.append(f"{name}: desired size {scaling['desiredSize']} != {expected['nodes']}")
        if not int(scaling["minSize"]) <= int(scaling["desiredSize"]) <= int(scaling["maxSize"]):
            problems.append(f"{name}: desired size outside min/max {scaling}")
        if inputs["instanceTypes"] != [expected["instanceType"]]:
            problems.append(f"{name}: instance types {inputs['instanceTypes']}")
        if inputs["amiType"] not in ("AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"):
            problems.append(f"{name}: AMI type {inputs['amiType']}")
        instance = INSTANCES[expected["instanceType"]]
        labels = inputs["labels"]
        want = {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": instance.gpu.product_label,
            "gpu-inference.io/gpu": instance.gpu_name,
            "gpu-inference.io/node-group": name,
        }
        for key, value in want.items():
            if labels.get(key) != value:
                problems.append(f"{name}: label {key}={labels.get(key)!r}, want {value!r}")
        if inputs["taints"] != [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]:
            problems.append(f"{name}: taints {inputs['taints']}")
        # Node role with the three policies.
        component = registration.parent
        roles = [r for r in run.of_type(ROLE) if r.parent == component]
        attachments = {r.plain_inputs["policyArn"] for r in run.of_type(ATTACHMENT) if r.parent == component}
        if len(roles) != 1 or not set(NODE_POLICY_ARNS) <= attachments <= {*NODE_POLICY_ARNS, CNI_POLICY_ARN}:
            problems.append(f"{name}: node role/policies {len(roles)} roles, {sorted(attachments)}")
        if created_cluster and CNI_POLICY_ARN in attachments:
            problems.append(f"{name}: CNI policy on the node role of a created cluster (aws-node has its own)")
        # Disk: on the node group, or in the launch template when there is one.
        templates = [r for r in run.of_type(LAUNCH_TEMPLATE) if r.parent == component]
        if templates:
            if "diskSize" in inputs:
                problems.append(f"{name}: diskSize set with a launch template (EKS rejects that)")
            if "launchTemplate" not in inputs:
                problems.append(f"{name}: launch template not used by the node group")
        elif not inputs.get("diskSize"):
            problems.append(f"{name}: no disk size")
        if inputs["capacityType"] == "CAPACITY_BLOCK":
            lt = templates[0].plain_inputs if templates else {}
            if lt.get("instanceMarketOptions", {}).get("marketType") != "capacity-block":
                problems.append(f"{name}: capacity block without instance market type capacity-block")
            if (
                not lt.get("capacityReservationSpecification", {})
                .get("capacityReservationTarget", {})
                .get("capacityReservationId")
            ):
                problems.append(f"{name}: capacity block without a reservation in its launch template")
        # EFA: every interface of the instance, in the launch template, and a cluster placement group.
        efa = next(g["efa"] for g in run.outputs["plan"]["nodeGroups"] if g["name"] == name)
        lt = templates[0].plain_inputs if templates else {}
        interfaces = lt.get("networkInterfaces") or []
        placement_groups = [r for r in run.of_type(PLACEMENT_GROUP) if r.parent == component]
        if efa:
            cards = [int(i.get("networkCardIndex", -1)) for i in interfaces]
            devices = [int(i.get("deviceIndex", -1)) for i in interfaces]
            kinds = [i.get("interfaceType") for i in interfaces]
            if cards != list(range(instance.efa_interfaces)) or kinds[:1] != ["efa"] or set(kinds[1:]) - {"efa-only"}:
                problems.append(
                    f"{name}: launch template has {len(interfaces)} EFA interfaces, {instance.name} has "
                    f"{instance.efa_interfaces}"
                )
            elif devices != [0] + [1] * (len(devices) - 1):
                problems.append(f"{name}: EFA device indexes {devices}: 0 on the first card, 1 on the others")
            if lt.get("vpcSecurityGroupIds"):
                problems.append(
                    f"{name}: security groups at the top level and on interfaces (AWS takes one or the other)"
                )
            reserved = "capacityReservationSpecification" in lt or inputs["capacityType"] == "CAPACITY_BLOCK"
            named = not placement_groups and (lt.get("placement") or {}).get("groupName")
            if (
                not reserved
                and not named
                and (len(placement_groups) != 1 or placement_groups[0].plain_inputs.get("strategy") != "cluster")
            ):
                problems.append(f"{name}: EFA group without a cluster placement group")
            elif placement_groups and "groupName" not in (lt.get("placement") or {}):
                problems.append(f"{name}: launch template does not launch into the placement group")
        elif interfaces:
            problems.append(f"{name}: EFA interfaces on a group with efa off")
        if placement_groups and (
            "capacityReservationSpecification" in lt or inputs["capacityType"] == "CAPACITY_BLOCK"
        ):
            problems.append(f"{name}: a created placement group with a capacity reservation or Capacity Block")
        metadata = lt.get("metadataOptions") or {}
        if metadata.get("httpTokens") != "required" or int(metadata.get("httpPutResponseHopLimit", 0)) != 1:
            problems.append(f"{name}: instance metadata {metadata}: pods could reach the node's credentials")
    return problems


def releases_of(run: Run, chart: str) -> list[Registration]:
    return [r for r in run.of_type(RELEASE) if r.plain_inputs.get("chart") == chart]


def check_gpu_enablement(run: Run) -> list[str]:
    problems = []
    releases = releases_of(run, "nvidia-device-plugin")
    groups = node_group_registrations(run)
    al2023 = sorted(n for n, r in groups.items() if r.plain_inputs["amiType"] == "AL2023_x86_64_NVIDIA")
    if not al2023:
        return ["device plugin installed although every group is Bottlerocket"] if releases else []
    if len(releases) != 1:
        return [f"{len(releases)} device plugin releases"]
    release = releases[0].plain_inputs
    if (
        release["chart"] != "nvidia-device-plugin"
        or release["version"] != CHART_VERSION
        or release["repositoryOpts"]["repo"] != CHART_REPO
    ):
        problems.append(f"device plugin chart not pinned: {release['chart']} {release.get('version')}")
    values = release["values"]
    if values.get("gfd", {}).get("enabled") is not True:
        problems.append("GPU feature discovery not enabled")
    taint = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    for where, tolerations in (
        ("plugin/GFD", values.get("tolerations", [])),
        ("NFD worker", values.get("nfd", {}).get("worker", {}).get("tolerations", [])),
    ):
        if not tolerates(tolerations, taint):
            problems.append(f"{where} does not tolerate the GPU taint")
    for where, affinity in (
        ("plugin/GFD", values.get("affinity")),
        ("NFD worker", values.get("nfd", {}).get("worker", {}).get("affinity")),
    ):
        if affinity is None:
            problems.append(f"{where} has no affinity (would run on every node)")
            continue
        for name in groups:
            matches = affinity_matches({"affinity": affinity}, node_labels(run, name))
            if matches != (name in al2023):
                problems.append(f"{where}: affinity {'matches' if matches else 'misses'} node group {name}")
        if affinity_matches({"affinity": affinity}, {"gpu-inference.io/role": "system"}):
            problems.append(f"{where}: affinity matches system nodes")
    return problems


def check_addons(run: Run) -> list[str]:
    """LWS controller iff a model spans nodes; EFA plugin iff a group has EFA, on those groups
    only; KAI and its queues iff the config installs it. Each chart pinned."""
    problems = []
    plans = model_plans(run)
    multi_node = [n for n, m in plans.items() if m["plan"]["pods"] > 1]
    lws = releases_of(run, LWS_CHART)
    if bool(multi_node) != bool(lws) or len(lws) > 1:
        problems.append(f"{len(lws)} LeaderWorkerSet controller releases for multi-node models {multi_node}")
    for release in lws:
        if release.plain_inputs.get("version") != LWS_CHART_VERSION:
            problems.append(f"LeaderWorkerSet chart not pinned to {LWS_CHART_VERSION}")
    efa_groups = sorted(g["name"] for g in run.outputs["plan"]["nodeGroups"] if g["efa"])
    efa = releases_of(run, EFA_CHART)
    if bool(efa_groups) != bool(efa) or len(efa) > 1:
        problems.append(f"{len(efa)} EFA device plugin releases for EFA groups {efa_groups}")
    for release in efa:
        inputs = release.plain_inputs
        if inputs.get("version") != EFA_CHART_VERSION or inputs.get("repositoryOpts", {}).get("repo") != EFA_CHART_REPO:
            problems.append("EFA device plugin chart not pinned")
        values = inputs["values"]
        supported = values.get("supportedInstanceLabels", {})
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": key, "operator": "In", "values": supported.get("values", [])}]}
                        for key in supported.get("keys", [])
                    ]
                }
            }
        }
        for name in node_group_registrations(run):
            if affinity_matches({"affinity": affinity}, node_labels(run, name)) != (name in efa_groups):
                problems.append(f"EFA device plugin affinity wrong for node group {name}")
        if not tolerates(
            values.get("tolerations", []), {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
        ):
            problems.append("EFA device plugin does not tolerate the GPU taint")
    kai = releases_of(run, KAI_CHART)
    for release in kai:
        if release.plain_inputs.get("version") != KAI_CHART_VERSION:
            problems.append("KAI Scheduler chart not pinned")
    if kai:
        queues = {r.plain_inputs["metadata"]["name"] for r in run.of_type(KAI_QUEUE_TYPE)}
        for name, model in plans.items():
            if model.get("scheduler") == "kai":
                queue = workloads(run)[name].templates
                used = {t["metadata"]["labels"].get(KAI_QUEUE) for t in queue.values()}
                if not used <= queues:
                    problems.append(f"{name}: KAI queue {used} is not created with the scheduler")
    return problems


def check_graph(run: Run) -> list[str]:
    problems = []
    urns = {r.urn: r for r in run.registrations}
    for registration in run.registrations:
        if registration.type.startswith(COMPONENT_PREFIX):
            if registration.parent in urns:
                problems.append(f"component {registration.name} is not at the top level")
            continue
        parent = urns.get(registration.parent)
        if parent is None or not parent.type.startswith(COMPONENT_PREFIX):
            problems.append(f"{registration.type} {registration.name} is not a child of a component")
        if registration.type.startswith("kubernetes:") and registration.custom and not registration.provider:
            problems.append(f"{registration.name} does not use the cluster's Kubernetes provider")
    plans = model_plans(run)
    groups = node_group_registrations(run)
    device_plugin = releases_of(run, "nvidia-device-plugin")
    for name, workload in workloads(run).items():
        kind = workload.kind
        dependencies = workload.registration.dependencies
        group = groups[plans[name]["nodeGroup"]]
        if group.urn not in dependencies:
            problems.append(f"{name}: {kind} does not depend on its node group")
        for release in device_plugin:
            if release.urn not in dependencies:
                problems.append(f"{name}: {kind} does not depend on GPU enablement")
        if kind == "LeaderWorkerSet":
            for chart, what in ((LWS_CHART, "the LeaderWorkerSet controller"), (EFA_CHART, "the EFA device plugin")):
                releases = releases_of(run, chart)
                if not releases or any(r.urn not in dependencies for r in releases):
                    problems.append(f"{name}: LeaderWorkerSet does not depend on {what}")
    return problems


def check_outputs(run: Run) -> list[str]:
    from stack.outputs import parse_outputs

    problems = []
    outputs = run.outputs
    for key in ("clusterName", "namespace", "models", "nodeGroups", "plan", "contractVersion"):
        if key not in outputs:
            problems.append(f"output {key} missing")
    if problems:
        return problems
    if "kubeconfig" in outputs:
        problems.append("kubeconfig is exported: consumers get endpoints only, operators use aws eks update-kubeconfig")
    for key in outputs:
        if key in run.secret_outputs:
            problems.append(f"output {key} is secret but should be plain")
        if key in run.unknown_outputs:
            problems.append(f"output {key} is unknown")
    parsed = parse_outputs(outputs)
    plans = model_plans(run)
    namespace = outputs["namespace"]
    for name, endpoint in parsed.models.items():
        plan = plans[name]["plan"]
        if endpoint.url != f"http://{name}.{namespace}.svc.cluster.local:8000/v1":
            problems.append(f"{name}: url {endpoint.url}")
        if (endpoint.tensor_parallel_size, endpoint.pipeline_parallel_size, endpoint.gpus, endpoint.gpu) != (
            plan["tensor_parallel_size"],
            plan["pipeline_parallel_size"],
            plan["gpus"],
            plan["gpu"],
        ):
            problems.append(f"{name}: endpoint {endpoint} disagrees with the plan")
        service = [r for r in run.of_type(SERVICE) if r.inputs["metadata"]["name"] == endpoint.service]
        if not service or service[0].inputs["metadata"]["namespace"] != namespace:
            problems.append(f"{name}: no Service {endpoint.service} in {namespace}")
        server = workloads(run)[name].server
        served = (
            _env(server).get("NIM_SERVED_MODEL_NAME", {}).get("value")
            if endpoint.engine == "nim"
            else arg_value(server["args"], "--served-model-name")
        )
        if served != endpoint.served_model_name:
            problems.append(f"{name}: served model name {served} != output {endpoint.served_model_name}")
    return problems


def check_secrets(run: Run, secrets: dict[str, str]) -> list[str]:
    problems = []
    for key, value in secrets.items():
        for name, output in run.outputs.items():
            if name not in run.secret_outputs and value in json.dumps(output, default=str):
                problems.append(f"secret {key} appears in plain output {name}")
        for registration in run.registrations:
            if contains_text(registration.inputs, value):
                problems.append(
                    f"secret {key} appears unmasked in the inputs of {registration.type} {registration.name}"
                )
    return problems
