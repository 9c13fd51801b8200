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
import sys
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.gpu_enablement import CHART_REPO, CHART_VERSION  # noqa: E402
from components.labels import NODE_POLICY_ARNS, NODE_SELECTOR_OPERATORS  # noqa: E402
from components.vllm_model import load_seconds, shm_size_mib  # noqa: E402
from sizing.instances import INSTANCES  # noqa: E402
from stack.mockrun import Registration, Run, Secret, Unknown, load_stack_config, reveal, run_program  # noqa: E402

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
COMPONENT_PREFIX = "gpu-inference:components:"

HF_TOKEN = "hf_TESTTOKEN_do_not_leak_0123456789"
KUBECONFIG = '{"apiVersion": "v1", "kind": "Config", "users": [{"name": "secret-user-token-xyz"}]}'
SECRETS = {"hfToken": HF_TOKEN}


def stack_config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(load_stack_config(stack))


@functools.lru_cache(maxsize=None)
def _cached_stack_run(stack: str, preview: bool) -> Run:
    return run_program(stack_config(stack), stack=stack, preview=preview, secrets=SECRETS)


def run_stack(stack: str, preview: bool) -> Run:
    """The run of ``Pulumi.<stack>.yaml`` (cached per process: runs are deterministic)."""
    return _cached_stack_run(stack, preview)


def run_config(config: dict[str, Any], *, preview: bool = False, secrets: Optional[dict[str, str]] = None, **kwargs) -> Run:
    return run_program(config, stack="test", preview=preview, secrets=SECRETS if secrets is None else secrets, **kwargs)


def run_bad_config(config: dict[str, Any], *, preview: bool = False, secrets: Optional[dict[str, str]] = None) -> Run:
    """Run a config expected to be rejected; the run carries the error and what was registered."""
    return run_config(config, preview=preview, secrets=secrets, capture_errors=True)


# --- reading a run ------------------------------------------------------------------------------


def deployments(run: Run) -> dict[str, Registration]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(DEPLOYMENT)}


def container(deployment: Registration) -> dict[str, Any]:
    containers = deployment.plain_inputs["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def arg_value(args: list[str], flag: str) -> Optional[str]:
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
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / (1024 * 1024)


def node_labels(run: Run, group: str) -> dict[str, str]:
    """The labels a node of the group carries once running: the group's, the kubelet's, GFD's."""
    registration = node_group_registrations(run)[group]
    inputs = registration.plain_inputs
    instance_type = inputs["instanceTypes"][0]
    labels = dict(inputs["labels"])
    labels["node.kubernetes.io/instance-type"] = instance_type
    if inputs["amiType"] != "BOTTLEROCKET_x86_64_NVIDIA" and run.of_type(RELEASE):
        instance = INSTANCES[instance_type]
        labels["nvidia.com/gpu.count"] = str(instance.gpus_per_node)
        labels["nvidia.com/gpu.product"] = instance.gpu.product_label
    return labels


def expression_matches(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        if key not in labels:
            return False
        node_value, bound = int(labels[key]), int(values[0])
        return node_value > bound if operator == "Gt" else node_value < bound
    return False  # the API server rejects the pod: it never lands anywhere


def required_terms(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]


def affinity_matches(pod_spec: dict[str, Any], labels: dict[str, str]) -> bool:
    """Terms are ORed, expressions within a term ANDed (the scheduler's semantics)."""
    return any(all(expression_matches(e, labels) for e in term["matchExpressions"]) for term in required_terms(pod_spec))


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes' toleration semantics, with the EKS API's effect spelling translated."""
    effect = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}[taint["effect"]]
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", effect):
            continue
        operator = toleration.get("operator", "Equal")
        if operator == "Exists":
            if toleration.get("key") in (None, "", taint["key"]):
                return True
        elif toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


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
    problems += check_graph(run)
    problems += check_outputs(run)
    problems += check_secrets(run, secrets)
    return problems


def check_servers(run: Run) -> list[str]:
    problems = []
    plans = model_plans(run)
    found = deployments(run)
    if sorted(found) != sorted(plans):
        problems.append(f"deployments {sorted(found)} != planned models {sorted(plans)}")
    for name, deployment in found.items():
        model = plans[name]
        plan = model["plan"]
        spec = deployment.plain_inputs["spec"]
        pod = spec["template"]["spec"]
        c = container(deployment)
        gpus = str(plan["gpus_per_pod"])
        resources = c["resources"]
        if resources["limits"].get("nvidia.com/gpu") != gpus or resources["requests"].get("nvidia.com/gpu") != gpus:
            problems.append(f"{name}: GPU requests/limits {resources} != plan's {gpus} GPUs per pod")
        if int(spec["replicas"]) != model["replicas"]:
            problems.append(f"{name}: replicas {spec['replicas']} != {model['replicas']}")
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
        if (pp > 1) != ("--pipeline-parallel-size" in args):
            problems.append(f"{name}: --pipeline-parallel-size presence wrong for PP={pp}")
        if ("--enforce-eager" in args) != bool(plan["settings"]["enforce_eager"]):
            problems.append(f"{name}: --enforce-eager presence wrong")
        if c["command"][:2] != ["vllm", "serve"] or len(c["command"]) != 3:
            problems.append(f"{name}: command {c['command']}")
        image = c["image"]
        if ("@" not in image and ":" not in image.rsplit("/", 1)[-1]) or image.endswith(":latest"):
            problems.append(f"{name}: image {image} is not pinned")
        # /dev/shm: memory-backed, big enough, counted in the memory limit.
        shm_volumes = {v["name"]: v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"}
        mounts = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
        if len(mounts) != 1 or mounts[0]["name"] not in shm_volumes:
            problems.append(f"{name}: /dev/shm is not mounted from a memory-backed emptyDir")
        else:
            shm = quantity_mib(shm_volumes[mounts[0]["name"]]["emptyDir"]["sizeLimit"])
            vllm_need = 160 + 240 * plan["gpus_per_pod"]
            if shm < max(1024, vllm_need + 256):
                problems.append(f"{name}: /dev/shm {shm} MiB is below what vLLM and NCCL need at TP={gpus}")
            if quantity_mib(resources["limits"]["memory"]) < shm + 16 * 1024:
                problems.append(f"{name}: memory limit {resources['limits']['memory']} does not leave room beside /dev/shm")
        # Probes.
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if c.get(probe, {}).get("httpGet", {}).get("path") != "/health":
                problems.append(f"{name}: {probe} missing or not on /health")
        startup = c.get("startupProbe", {})
        budget = int(startup.get("failureThreshold", 0) * startup.get("periodSeconds", 0))
        needed = load_seconds(plan["weights_gib_total"], download=False)
        if budget < needed:
            problems.append(f"{name}: startup budget {budget}s < load estimate {needed}s")
        timeout = int(deployment.plain_inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"])
        if timeout < budget:
            problems.append(f"{name}: Pulumi await timeout {timeout}s is shorter than the startup budget {budget}s")
        if deployment.custom_timeouts.get("create") != f"{timeout}s":
            problems.append(f"{name}: custom timeouts {deployment.custom_timeouts} do not match {timeout}s")
        # Update strategy without spare GPUs.
        strategy = spec["strategy"]
        if strategy["type"] != "Recreate" and str(strategy.get("rollingUpdate", {}).get("maxSurge")) not in ("0", "0%"):
            problems.append(f"{name}: update strategy {strategy} needs spare GPUs")
        # No privilege.
        security = c["securityContext"]
        if security.get("privileged") or security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: container may be privileged or escalate")
        if security.get("capabilities", {}).get("add") or "ALL" not in security.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: capabilities not dropped")
        if pod.get("hostNetwork") or pod.get("hostIPC") or pod.get("hostPID"):
            problems.append(f"{name}: uses host namespaces")
        env = {e["name"]: e for e in c["env"]}
        if env.get("NCCL_DEBUG", {}).get("value") != "WARN":
            problems.append(f"{name}: NCCL_DEBUG not WARN")
        volume_claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        if volume_claims:
            if env.get("HF_HUB_OFFLINE", {}).get("value") != "1":
                problems.append(f"{name}: served from a volume without HF_HUB_OFFLINE=1")
            model_mounts = [m for m in c["volumeMounts"] if m["name"] == volume_claims[0]["name"]]
            if not model_mounts or not model_mounts[0].get("readOnly") or not volume_claims[0]["persistentVolumeClaim"].get("readOnly"):
                problems.append(f"{name}: model volume not read-only")
            if not c["command"][2].startswith(model_mounts[0]["mountPath"] + "/") if model_mounts else True:
                problems.append(f"{name}: serves {c['command'][2]}, not the volume")
        # Service, PDB, NetworkPolicy.
        for kind in (SERVICE, PDB, NETPOL):
            objects = [r for r in run.of_type(kind) if r.inputs["metadata"]["name"] == name]
            if len(objects) != 1:
                problems.append(f"{name}: {len(objects)} {kind}")
        service = next((r for r in run.of_type(SERVICE) if r.inputs["metadata"]["name"] == name), None)
        if service is not None:
            selector = service.plain_inputs["spec"]["selector"]
            pod_labels = spec["template"]["metadata"]["labels"]
            if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
                problems.append(f"{name}: Service selector {selector} does not select the pods {pod_labels}")
            if [p["port"] for p in service.plain_inputs["spec"]["ports"]] != [8000]:
                problems.append(f"{name}: Service port is not 8000")
    return problems


def check_scheduling(run: Run) -> list[str]:
    problems = []
    plans = model_plans(run)
    groups = node_group_registrations(run)
    for name, deployment in deployments(run).items():
        pod = deployment.plain_inputs["spec"]["template"]["spec"]
        group = plans[name]["nodeGroup"]
        for term in required_terms(pod):
            for expression in term["matchExpressions"]:
                operator = expression["operator"]
                if operator not in NODE_SELECTOR_OPERATORS:
                    problems.append(f"{name}: invalid node affinity operator {operator!r}")
                    continue
                values = expression.get("values") or []
                if operator in ("Gt", "Lt") and (len(values) != 1 or not str(values[0]).lstrip("-").isdigit()):
                    problems.append(f"{name}: {operator} needs exactly one integer, got {values}")
                if operator in ("Exists", "DoesNotExist") and values:
                    problems.append(f"{name}: {operator} takes no values")
                if operator in ("In", "NotIn") and not values:
                    problems.append(f"{name}: {operator} needs values")
        if not affinity_matches(pod, node_labels(run, group)):
            problems.append(f"{name}: required affinity does not match the nodes of its group {group}")
        for other in groups:
            if other != group and affinity_matches(pod, node_labels(run, other)):
                problems.append(f"{name}: required affinity also matches nodes of group {other}")
        for taint in groups[group].plain_inputs["taints"]:
            if not tolerates(pod.get("tolerations", []), taint):
                problems.append(f"{name}: does not tolerate {taint} of its node group")
    return problems


def check_node_groups(run: Run) -> list[str]:
    problems = []
    outputs = run.outputs["nodeGroups"]
    groups = node_group_registrations(run)
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
        if len(roles) != 1 or attachments != set(NODE_POLICY_ARNS):
            problems.append(f"{name}: node role/policies {len(roles)} roles, {sorted(attachments)}")
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
            if not lt.get("capacityReservationSpecification", {}).get("capacityReservationTarget", {}).get("capacityReservationId"):
                problems.append(f"{name}: capacity block without a reservation in its launch template")
    return problems


def check_gpu_enablement(run: Run) -> list[str]:
    problems = []
    releases = run.of_type(RELEASE)
    groups = node_group_registrations(run)
    al2023 = sorted(n for n, r in groups.items() if r.plain_inputs["amiType"] == "AL2023_x86_64_NVIDIA")
    if not al2023:
        return [f"device plugin installed although every group is Bottlerocket"] if releases else []
    if len(releases) != 1:
        return [f"{len(releases)} device plugin releases"]
    release = releases[0].plain_inputs
    if release["chart"] != "nvidia-device-plugin" or release["version"] != CHART_VERSION or release["repositoryOpts"]["repo"] != CHART_REPO:
        problems.append(f"device plugin chart not pinned: {release['chart']} {release.get('version')}")
    values = release["values"]
    if values.get("gfd", {}).get("enabled") is not True:
        problems.append("GPU feature discovery not enabled")
    taint = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    for where, tolerations in (("plugin/GFD", values.get("tolerations", [])), ("NFD worker", values.get("nfd", {}).get("worker", {}).get("tolerations", []))):
        if not tolerates(tolerations, taint):
            problems.append(f"{where} does not tolerate the GPU taint")
    for where, affinity in (("plugin/GFD", values.get("affinity")), ("NFD worker", values.get("nfd", {}).get("worker", {}).get("affinity"))):
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
    releases = run.of_type(RELEASE)
    for name, deployment in deployments(run).items():
        group = groups[plans[name]["nodeGroup"]]
        if group.urn not in deployment.dependencies:
            problems.append(f"{name}: Deployment does not depend on its node group")
        for release in releases:
            if release.urn not in deployment.dependencies:
                problems.append(f"{name}: Deployment does not depend on GPU enablement")
    return problems


def check_outputs(run: Run) -> list[str]:
    from stack.outputs import parse_outputs

    problems = []
    outputs = run.outputs
    for key in ("clusterName", "namespace", "models", "nodeGroups", "plan", "kubeconfig", "contractVersion"):
        if key not in outputs:
            problems.append(f"output {key} missing")
    if problems:
        return problems
    if "kubeconfig" not in run.secret_outputs:
        problems.append("kubeconfig is not a secret output")
    for key in set(outputs) - {"kubeconfig"}:
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
            plan["tensor_parallel_size"], plan["pipeline_parallel_size"], plan["gpus"], plan["gpu"]
        ):
            problems.append(f"{name}: endpoint {endpoint} disagrees with the plan")
        service = [r for r in run.of_type(SERVICE) if r.inputs["metadata"]["name"] == endpoint.service]
        if not service or service[0].inputs["metadata"]["namespace"] != namespace:
            problems.append(f"{name}: no Service {endpoint.service} in {namespace}")
        served = arg_value(container(deployments(run)[name])["args"], "--served-model-name")
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
                problems.append(f"secret {key} appears unmasked in the inputs of {registration.type} {registration.name}")
    return problems
