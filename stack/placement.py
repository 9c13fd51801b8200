"""Stack config -> one sizing plan per model, the node group each model runs in, node counts.

Everything here is pure Python and runs before the program declares any resource, so a model
that fits nowhere, a context longer than the model supports or a node group too small for its
models stops ``pulumi preview`` with one message and nothing registered.

For each model the planner is asked with the instance types of the node group the model names
(or of every configured group when it names none) and chooses TP and PP; the model is then
assigned to the first group (in config order) of the instance type the planner chose, an EFA
group first when the plan spans nodes. A plan with PP > 1 is served across nodes: one pod per
pipeline stage, each pod a whole node (TP = the node's GPUs), as a LeaderWorkerSet group; such a
model needs a group with ``efa: true`` (NCCL between the stages goes over EFA, never silently over
TCP) and an image that carries the EFA userspace. A group's node count is the whole nodes its
multi-node replicas take plus the nodes its single-node pods need packed by GPUs (first-fit
decreasing, one pod never spans nodes), at least ``minNodes``; above ``maxNodes`` it is an error
that says what to raise.

Every engine is planned the same way; its options (``stack.config.EngineOptions``) may restrict
the tensor-parallel sizes (NIM: those its declared profile offers) and keep it on one node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sizing.architecture import ModelArchitecture
from sizing.errors import NoFitError, SizingError
from sizing.instances import InstanceType
from sizing.models import load_model, model_names
from sizing.plan import Plan
from sizing.quantization import check_quantization
from sizing.settings import ServingSettings
from sizing.traffic import TrafficPlan
from stack.config import ConfigError, ModelConfig, ModelScheduling, NodeGroupConfig, StackConfig
from stack.engine_release import SizingAccounting
from stack.serving_settings import BY_FIELD, serving_settings
from stack.traffic_plan import plan_traffic, with_bounds

HF_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelPlacement:
    """One configured model: its plan (one replica) and where its pods go."""

    index: int
    config: ModelConfig
    architecture: ModelArchitecture
    plan: Plan
    node_group: str
    hf_repo_id: str | None
    scheduling: ModelScheduling = ModelScheduling()
    sizing: SizingAccounting | None = None  # the vLLM release's accounting the plan follows
    explanation: dict[str, Any] | None = None  # sizing.explain: why this layout, what a cheaper one needs
    traffic: TrafficPlan | None = None  # sizing.traffic: the layout and replicas for the model's traffic target

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def pods(self) -> int:
        """Pods of all replicas: one per pipeline stage per replica."""
        return self.plan.pods * self.config.replicas

    @property
    def multi_node(self) -> bool:
        """One replica spans nodes (PP > 1): a LeaderWorkerSet group of ``plan.pods`` pods."""
        return self.plan.pods > 1

    @property
    def engine(self) -> str:
        """The engine's name (``engine.type``); its options are ``config.engine``."""
        return self.config.engine.type

    @property
    def served_model_name(self) -> str:
        return self.config.served_model_name or self.config.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.config.model,
            "nodeGroup": self.node_group,
            "replicas": self.config.replicas,
            "servedModelName": self.served_model_name,
            "engine": self.engine,
            "topology": "leaderWorkerSet" if self.multi_node else "deployment",
            "scheduler": self.scheduling.scheduler,
            "plan": self.plan.to_dict(),
            **({"sizingAccounting": self.sizing.to_dict()} if self.sizing else {}),
            **({"why": self.explanation} if self.explanation is not None else {}),
            **({"traffic": self.traffic.to_dict()} if self.traffic is not None else {}),
        }


@dataclass(frozen=True)
class NodeGroupPlacement:
    index: int
    config: NodeGroupConfig
    instance: InstanceType
    needed_nodes: int
    desired_nodes: int
    models: tuple[str, ...]
    idle_gpus: int = 0  # on the nodes the group needs, after every replica is placed

    @property
    def name(self) -> str:
        return self.config.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instanceType": self.instance.name,
            "gpu": self.instance.gpu_name,
            "neededNodes": self.needed_nodes,
            "desiredNodes": self.desired_nodes,
            "minNodes": self.config.min_nodes,
            "maxNodes": self.config.max_nodes,
            "efa": self.config.efa,
            "models": list(self.models),
            "idleGpus": self.idle_gpus,
        }


@dataclass(frozen=True)
class Placement:
    config: StackConfig
    models: tuple[ModelPlacement, ...]
    node_groups: tuple[NodeGroupPlacement, ...]

    def node_group(self, name: str) -> NodeGroupPlacement:
        return next(group for group in self.node_groups if group.name == name)

    @property
    def needs_leader_worker_set(self) -> bool:
        return any(m.multi_node for m in self.models)

    @property
    def efa_node_groups(self) -> list[str]:
        return [g.name for g in self.node_groups if g.config.efa]

    @property
    def gfd_node_groups(self) -> list[str]:
        """Groups where the device-plugin chart, hence GPU feature discovery, runs: Bottlerocket
        NVIDIA nodes ship their own plugin, so they get neither (nor GFD's labels)."""
        return sorted(g.name for g in self.node_groups if not g.config.ami_type.startswith("BOTTLEROCKET"))

    @property
    def kai_queues(self) -> list[str]:
        """Queues to create when the stack installs KAI Scheduler: the cluster's and the models'."""
        queues = {m.scheduling.queue for m in self.models if m.scheduling.kai}
        return sorted(queues | {self.config.cluster.scheduling.queue})

    def client_namespaces(self, model: ModelPlacement) -> list[str]:
        """Namespaces admitted to a model's port: its own list, else the cluster's."""
        own = model.config.client_namespaces
        return list(own if own is not None else self.config.cluster.client_namespaces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": [m.to_dict() for m in self.models],
            "nodeGroups": [g.to_dict() for g in self.node_groups],
        }


def resolve_model(index: int, model: ModelConfig) -> tuple[ModelArchitecture, str | None]:
    """The architecture the planner sizes, and the Hugging Face repo id to download (if any)."""
    path = f"models[{index}]"
    catalog = model_names()
    if model.model.strip().lower() in catalog:
        if model.architecture is not None:
            raise ConfigError(
                [
                    f"{path}.architecture: not allowed for catalog model {model.model!r} "
                    "(its config.json ships with the sizing)"
                ]
            )
        architecture = load_model(model.model)
        return architecture, architecture.hf_repo_id
    if not HF_REPO_ID.match(model.model):
        raise ConfigError(
            [
                f"{path}.model: {model.model!r} is neither a catalog model ({', '.join(catalog)}) "
                "nor a Hugging Face repo id (owner/name)"
            ]
        )
    if model.architecture is None:
        raise ConfigError(
            [
                f"{path}.architecture: required for {model.model!r}, which is not in the catalog: "
                "copy the fields of its config.json (hidden_size, num_hidden_layers, num_attention_heads, "
                "num_key_value_heads, intermediate_size, vocab_size, max_position_embeddings, ...)"
            ]
        )
    try:
        architecture = ModelArchitecture.from_config(model.architecture, name=model.model)
    except SizingError as error:
        raise ConfigError([f"{path}.architecture: {error}"]) from None
    return architecture, model.model


def _settings(index: int, model: ModelConfig) -> ServingSettings:
    try:
        return serving_settings(model.model_dump(include=set(BY_FIELD)))
    except SizingError as error:
        raise ConfigError([f"models[{index}]: {error}"]) from None


def _scheduling(model: ModelConfig, config: StackConfig) -> ModelScheduling:
    if model.scheduling is not None:
        return model.scheduling
    cluster = config.cluster.scheduling
    return ModelScheduling(scheduler=cluster.scheduler, queue=cluster.queue)


def _engine_tensor_parallel_sizes(index: int, model: ModelConfig) -> list[int] | None:
    """The TP sizes the model's engine may use (None: any), and the layouts it cannot serve."""
    path = f"models[{index}]"
    engine = model.engine
    where = f"{path}.{model.engine_field_path('')}".rstrip(".")
    offered = engine.allowed_tensor_parallel_sizes(where)
    if engine.single_node_only and model.pipeline_parallel_size is not None and model.pipeline_parallel_size > 1:
        raise ConfigError(
            [
                f"{path}.pipelineParallelSize: {model.pipeline_parallel_size} would span nodes; this stack serves "
                f"{engine.display_name} on one node: remove it, or use "
                "engine: vllm for multi-node serving"
            ]
        )
    if offered is not None and model.tensor_parallel_size is not None and model.tensor_parallel_size not in offered:
        profile = getattr(engine, "profile", None)
        named = getattr(engine, "profile_tensor_parallel_size", None)
        source = f"profile {profile!r}" if named is not None else "its profiles"
        raise ConfigError(
            [
                f"{path}.tensorParallelSize: {model.tensor_parallel_size} is not offered by the "
                f"{engine.display_name} image's {source} (offered: {', '.join(f'tp{tp}' for tp in offered)}); "
                f"{engine.display_name} would refuse the profile or pick another layout: "
                f"give one of {offered} or leave it to the planner"
            ]
        )
    return offered


CONFIG_NAMES = {
    "min_concurrency": "minConcurrency",
    "max_model_len": "maxModelLen",
    "kv_cache_dtype": "kvCacheDtype",
    "quantization": "quantization",
}


def _plan_one(index: int, model: ModelConfig, config: StackConfig) -> ModelPlacement:
    path = f"models[{index}]"
    architecture, repo_id = resolve_model(index, model)
    limit = architecture.max_position_embeddings
    if model.max_model_len > limit:
        raise ConfigError(
            [
                f"{path}.maxModelLen: {model.max_model_len} exceeds {model.model}'s limit of {limit} tokens "
                f"(max_position_embeddings); give at most {limit}"
            ]
        )
    pp = model.pipeline_parallel_size
    if pp is not None and pp > 1 and not architecture.supports_pipeline_parallel:
        raise ConfigError(
            [
                f"{path}.pipelineParallelSize: {pp} needs pipeline parallelism, which vLLM does not implement for "
                f"{architecture.architecture} ({model.model}); remove it and serve from one node (larger GPUs, "
                "quantization or an fp8 KV cache)"
            ]
        )
    engine_tps = _engine_tensor_parallel_sizes(index, model)
    settings = _settings(index, model)
    try:
        sizing = model.engine.sizing(f"{path}.engine")
    except ValueError as error:
        raise ConfigError([str(error)]) from None
    try:
        check_quantization(architecture.quantization, settings.quantization, model.model)
    except SizingError as error:
        raise ConfigError([f"{path}.quantization: {error}"]) from None
    groups = [config.node_group(model.node_group)] if model.node_group else list(config.node_groups)
    if model.engine.single_node_only:
        pp = 1
    if model.traffic is not None:
        traffic = plan_traffic(
            index,
            model,
            architecture,
            settings,
            sizing.accounting,
            groups,
            config,
            engine_tensor_parallel_sizes=engine_tps,
            pipeline_parallel_size=pp,
        )
        plan, why = traffic.plan, None
        model = with_bounds(index, model, traffic)
    else:
        traffic = None
        plan, why = _first_fit(index, model, architecture, settings, sizing, groups, engine_tps, pp)
    instance = next(g.instance for g in groups if g.instance.name == plan.instance_type)
    if plan.pods > 1 and plan.gpus_per_pod != instance.gpus_per_node:
        raise ConfigError(
            [
                f"{path}.tensorParallelSize: {plan.tensor_parallel_size} with PP={plan.pipeline_parallel_size} "
                f"would put {plan.pods} pods of {plan.gpus_per_pod} GPUs per replica; pipeline stages span whole "
                f"nodes here (one pod per {instance.name} node): give tensorParallelSize {instance.gpus_per_node} "
                "or leave TP/PP to the planner"
            ]
        )
    candidates = [g for g in groups if g.instance.name == plan.instance_type]
    if plan.pods > 1:
        candidates.sort(key=lambda g: not g.efa)  # stable: config order among EFA groups first
    group = candidates[0]
    placement = ModelPlacement(
        index,
        model,
        architecture,
        plan,
        group.name,
        repo_id,
        _scheduling(model, config),
        explanation=why,
        sizing=sizing,
        traffic=traffic,
    )
    if placement.multi_node:
        _check_multi_node(placement, group, config)
    return placement


def _first_fit(
    index: int,
    model: ModelConfig,
    architecture: ModelArchitecture,
    settings: ServingSettings,
    sizing: SizingAccounting,
    groups: list[NodeGroupConfig],
    engine_tps: list[int] | None,
    pp: int | None,
) -> tuple[Plan, dict[str, Any]]:
    """The memory planner's first layout that fits (trying each TP the engine offers in turn), and
    why it was chosen (``sizing.explain``)."""
    from sizing.explain import explain_plan
    from sizing.planner import plan_model

    path = f"models[{index}]"
    instance_types = list(dict.fromkeys(group.instance.name for group in groups))
    where = f"node group {model.node_group!r}" if model.node_group else "the configured node groups"
    if model.tensor_parallel_size is not None:
        tensor_parallel_sizes: list[int | None] = [model.tensor_parallel_size]
    elif pp is not None and pp > 1:
        # Pipeline stages span whole nodes: TP fills a node.
        tensor_parallel_sizes = sorted({g.instance.gpus_per_node for g in groups})
    else:
        tensor_parallel_sizes = list(engine_tps or [None])
    errors: list[SizingError] = []
    for tp in tensor_parallel_sizes:
        try:
            plan = plan_model(
                architecture,
                settings,
                instance_types=instance_types,
                min_concurrency=model.min_concurrency,
                tensor_parallel_size=tp,
                pipeline_parallel_size=pp,
                accounting=sizing.accounting,
            )
        except SizingError as error:
            errors.append(error)
            continue
        why = explain_plan(
            architecture,
            settings,
            plan,
            instance_types=instance_types,
            min_concurrency=model.min_concurrency,
            tensor_parallel_size=tp,
            pipeline_parallel_size=pp,
            names=CONFIG_NAMES,
            accounting=sizing.accounting,
        )
        return plan, why.to_dict()
    error = errors[-1]
    kind = "does not fit" if isinstance(error, NoFitError) else "cannot be planned"
    note = ""
    if model.engine.single_node_only:
        note = f"\n  ({model.engine.display_name} is served on one node"
        note += f", with the TP its profile offers: {engine_tps})" if engine_tps else ")"
    raise ConfigError(
        [f"{path} ({model.name}): {model.model} {kind} on {where} ({', '.join(instance_types)}): {error}{note}"]
    ) from None


def _check_multi_node(model: ModelPlacement, group: NodeGroupConfig, config: StackConfig) -> None:
    path = f"models[{model.index}]"
    plan = model.plan
    layout = (
        f"the plan needs {plan.nodes} {plan.instance_type} nodes per replica "
        f"(TP={plan.tensor_parallel_size} x PP={plan.pipeline_parallel_size}, {plan.gpus} GPUs)"
    )
    problems = []
    group_index = next(i for i, g in enumerate(config.node_groups) if g.name == group.name)
    if not group.efa:
        problems.append(
            f"{path} ({model.name}): {layout}, so its pipeline stages talk across nodes, but node group "
            f"{group.name!r} has efa: false and NCCL would crawl over TCP; set nodeGroups[{group_index}].efa: true "
            f"({group.instance.efa_interfaces} EFA interfaces per node, in a cluster placement group), or serve it "
            "from larger GPUs (fewer nodes)"
        )
    if getattr(model.config.engine, "image", None) is None:
        problems.append(
            f"{path}.{model.config.engine_field_path('image')}: required for {model.name}, which spans nodes "
            f"({layout}): the default vllm/vllm-openai image ships no EFA userspace (libfabric, aws-ofi-nccl) "
            'and NCCL is pinned to EFA (NCCL_NET="AWS Libfabric"), so it would fail to start; give a vLLM image '
            "built with the AWS EFA installer"
        )
    if problems:
        raise ConfigError(problems)


def pack_free(pod_gpus: list[int], gpus_per_node: int) -> list[int]:
    """Free GPUs per node after first-fit-decreasing packing (a pod never spans nodes)."""
    free: list[int] = []
    for gpus in sorted(pod_gpus, reverse=True):
        if gpus > gpus_per_node:
            raise ValueError(f"a pod of {gpus} GPUs cannot fit a node of {gpus_per_node}")
        for i, room in enumerate(free):
            if room >= gpus:
                free[i] -= gpus
                break
        else:
            free.append(gpus_per_node - gpus)
    return free


def pack_nodes(pod_gpus: list[int], gpus_per_node: int) -> int:
    """Nodes needed for pods of the given GPU counts (first-fit decreasing; a pod never spans nodes)."""
    if all(gpus_per_node % gpus == 0 for gpus in pod_gpus if gpus > 0):
        # Sizes dividing the node (TP 1, 2, 4, 8 on 8 GPUs): first-fit decreasing leaves no gap.
        return -(-sum(pod_gpus) // gpus_per_node)
    return len(pack_free(pod_gpus, gpus_per_node))


def _demand(model: ModelPlacement) -> str:
    plan = model.plan
    if model.multi_node:
        return (
            f"{model.name} ({model.config.replicas} x {plan.nodes} whole nodes per replica, "
            f"TP={plan.tensor_parallel_size} x PP={plan.pipeline_parallel_size})"
        )
    return f"{model.name} ({model.config.replicas} x {plan.gpus_per_pod} GPUs)"


def place(config: StackConfig) -> Placement:
    """Plan every model and size every node group; raise ConfigError naming each problem."""
    problems: list[str] = []
    models: list[ModelPlacement] = []
    for index, model in enumerate(config.models):
        try:
            models.append(_plan_one(index, model, config))
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)

    groups: list[NodeGroupPlacement] = []
    for index, group in enumerate(config.node_groups):
        instance = group.instance
        placed = [m for m in models if m.node_group == group.name]
        pods = sum(m.pods for m in placed if not m.multi_node)
        if pods > group.max_nodes * instance.gpus_per_node:  # before listing them: replicas can be absurd
            problems.append(
                f"nodeGroups[{index}].maxNodes: {group.max_nodes} is too small: {pods} pods of its models need more "
                f"than {group.max_nodes} {instance.name} nodes ({instance.gpus_per_node} GPUs each); lower the replicas"
            )
            continue
        single_node = [m.plan.gpus_per_pod for m in placed if not m.multi_node for _ in range(m.pods)]
        whole_nodes = sum(m.plan.nodes * m.config.replicas for m in placed if m.multi_node)
        needed = whole_nodes + pack_nodes(single_node, instance.gpus_per_node)
        if needed > group.max_nodes:
            demand = ", ".join(_demand(m) for m in placed if m.pods)
            problems.append(
                f"nodeGroups[{index}].maxNodes: {group.max_nodes} is too small: {demand} need {needed} "
                f"{instance.name} nodes ({instance.gpus_per_node} GPUs each); raise maxNodes to at least {needed} "
                "or lower the replicas"
            )
            continue
        surging = [m for m in placed if m.config.rollout == "surge" and m.config.replicas > 0]
        if surging:
            # Each surging model may start one extra replica while its update runs (Pulumi updates
            # models in parallel): the group keeps room for all of them at once.
            extra_pods = [m.plan.gpus_per_pod for m in surging if not m.multi_node]
            extra_whole = sum(m.plan.nodes for m in surging if m.multi_node)
            with_surge = whole_nodes + extra_whole + pack_nodes(single_node + extra_pods, instance.gpus_per_node)
            if with_surge > group.max_nodes:
                names = ", ".join(f"models[{m.index}] ({_demand(m)})" for m in surging)
                problems.append(
                    f"nodeGroups[{index}].maxNodes: {group.max_nodes} leaves no room for rollout: surge of {names}: "
                    f"serving needs {needed} {instance.name} nodes and one extra replica each needs {with_surge} "
                    f"({instance.gpus_per_node} GPUs per node); raise maxNodes to at least {with_surge} or use "
                    "rollout: noSurge (one replica down during an update)"
                )
                continue
            needed = with_surge
        groups.append(
            NodeGroupPlacement(
                index=index,
                config=group,
                instance=instance,
                needed_nodes=needed,
                desired_nodes=max(needed, group.min_nodes),
                models=tuple(m.name for m in placed),
                idle_gpus=needed * instance.gpus_per_node - sum(m.plan.gpus * m.config.replicas for m in placed),
            )
        )
    if problems:
        raise ConfigError(problems)
    return Placement(config, tuple(models), tuple(groups))
