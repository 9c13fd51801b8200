"""Stack config -> one sizing plan per model, the node group each model runs in, node counts.

Everything here is pure Python and runs before the program declares any resource, so a model
that fits nowhere, a context longer than the model supports or a node group too small for its
models stops ``pulumi preview`` with one message and nothing registered.

For each model the planner is asked once, with the instance types of the node group the model
names (or of every configured group when it names none); the model is then assigned to the
first group (in config order) of the instance type the planner chose. A group's node count is
the number of nodes its pods need, packed by GPUs (first-fit decreasing, one pod never spans
nodes), at least ``minNodes``; above ``maxNodes`` it is an error that says what to raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from sizing.architecture import ModelArchitecture
from sizing.errors import NoFitError, SizingError
from sizing.instances import InstanceType
from sizing.models import load_model, model_names
from sizing.plan import Plan
from sizing.settings import ServingSettings
from stack.config import ConfigError, ModelConfig, NodeGroupConfig, StackConfig

HF_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelPlacement:
    """One configured model: its plan (one replica) and where its pods go."""

    index: int
    config: ModelConfig
    architecture: ModelArchitecture
    plan: Plan
    node_group: str
    hf_repo_id: Optional[str]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def pods(self) -> int:
        """Pods of all replicas (one pod per replica: multi-node plans are rejected)."""
        return self.plan.pods * self.config.replicas

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
            "plan": self.plan.to_dict(),
        }


@dataclass(frozen=True)
class NodeGroupPlacement:
    index: int
    config: NodeGroupConfig
    instance: InstanceType
    needed_nodes: int
    desired_nodes: int
    models: tuple[str, ...]

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
            "models": list(self.models),
        }


@dataclass(frozen=True)
class Placement:
    config: StackConfig
    models: tuple[ModelPlacement, ...]
    node_groups: tuple[NodeGroupPlacement, ...]

    def node_group(self, name: str) -> NodeGroupPlacement:
        return next(group for group in self.node_groups if group.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": [m.to_dict() for m in self.models],
            "nodeGroups": [g.to_dict() for g in self.node_groups],
        }


def resolve_model(index: int, model: ModelConfig) -> tuple[ModelArchitecture, Optional[str]]:
    """The architecture the planner sizes, and the Hugging Face repo id to download (if any)."""
    path = f"models[{index}]"
    catalog = model_names()
    if model.model.strip().lower() in catalog:
        if model.architecture is not None:
            raise ConfigError([f"{path}.architecture: not allowed for catalog model {model.model!r} (its config.json ships with the sizing)"])
        architecture = load_model(model.model)
        return architecture, architecture.hf_repo_id
    if not HF_REPO_ID.match(model.model):
        raise ConfigError(
            [f"{path}.model: {model.model!r} is neither a catalog model ({', '.join(catalog)}) "
             "nor a Hugging Face repo id (owner/name)"]
        )
    if model.architecture is None:
        raise ConfigError(
            [f"{path}.architecture: required for {model.model!r}, which is not in the catalog: "
             "copy the fields of its config.json (hidden_size, num_hidden_layers, num_attention_heads, "
             "num_key_value_heads, intermediate_size, vocab_size, max_position_embeddings, ...)"]
        )
    try:
        architecture = ModelArchitecture.from_config(model.architecture, name=model.model)
    except SizingError as error:
        raise ConfigError([f"{path}.architecture: {error}"]) from None
    return architecture, model.model


def _settings(index: int, model: ModelConfig) -> ServingSettings:
    try:
        return ServingSettings(
            max_model_len=model.max_model_len,
            gpu_memory_utilization=model.gpu_memory_utilization,
            dtype=model.dtype,
            quantization=model.quantization,
            kv_cache_dtype=model.kv_cache_dtype,
            max_num_seqs=model.max_num_seqs,
            max_num_batched_tokens=model.max_num_batched_tokens,
            enforce_eager=model.enforce_eager,
        )
    except SizingError as error:
        raise ConfigError([f"models[{index}]: {error}"]) from None


def _plan_one(index: int, model: ModelConfig, config: StackConfig) -> ModelPlacement:
    from sizing.planner import plan_model

    path = f"models[{index}]"
    architecture, repo_id = resolve_model(index, model)
    limit = architecture.max_position_embeddings
    if model.max_model_len > limit:
        raise ConfigError(
            [f"{path}.maxModelLen: {model.max_model_len} exceeds {model.model}'s limit of {limit} tokens "
             f"(max_position_embeddings); give at most {limit}"]
        )
    if model.pipeline_parallel_size is not None and model.pipeline_parallel_size > 1:
        raise ConfigError(
            [f"{path}.pipelineParallelSize: {model.pipeline_parallel_size} would split each replica across "
             f"{model.pipeline_parallel_size} nodes (one pipeline stage per node); this stack serves each replica "
             "from one pod on one node: remove it, or use larger GPUs, quantization or an fp8 KV cache"]
        )
    settings = _settings(index, model)
    groups = [config.node_group(model.node_group)] if model.node_group else list(config.node_groups)
    instance_types = list(dict.fromkeys(group.instance.name for group in groups))
    try:
        plan = plan_model(
            architecture,
            settings,
            instance_types=instance_types,
            min_concurrency=model.min_concurrency,
            tensor_parallel_size=model.tensor_parallel_size,
            # One replica = one pod on one node: the planner's multi-node layouts are not deployed.
            pipeline_parallel_size=1,
        )
    except SizingError as error:
        where = f"node group {model.node_group!r}" if model.node_group else "the configured node groups"
        kind = "does not fit" if isinstance(error, NoFitError) else "cannot be planned"
        note = (
            "\n  (this stack serves each replica from one pod on one node, so layouts across nodes are not an option)"
            if isinstance(error, NoFitError)
            else ""
        )
        raise ConfigError(
            [f"{path} ({model.name}): {model.model} {kind} on {where} ({', '.join(instance_types)}): {error}{note}"]
        ) from None
    if plan.pods != 1:
        raise ConfigError(
            [f"{path} ({model.name}): the plan needs {plan.pods} pods per replica on {plan.nodes} nodes "
             f"(TP={plan.tensor_parallel_size}, PP={plan.pipeline_parallel_size}); this stack serves each replica "
             "from one pod on one node: use a node group with larger GPUs, quantization, an fp8 KV cache, "
             "or a shorter maxModelLen"]
        )
    group = next(g for g in groups if g.instance.name == plan.instance_type)
    return ModelPlacement(index, model, architecture, plan, group.name, repo_id)


def pack_nodes(pod_gpus: list[int], gpus_per_node: int) -> int:
    """Nodes needed for pods of the given GPU counts (first-fit decreasing; a pod never spans nodes)."""
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
    return len(free)


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
        pod_gpus = [m.plan.gpus_per_pod for m in placed for _ in range(m.pods)]
        needed = pack_nodes(pod_gpus, instance.gpus_per_node)
        if needed > group.max_nodes:
            demand = ", ".join(
                f"{m.name} ({m.config.replicas} x {m.plan.gpus_per_pod} GPUs)" for m in placed if m.pods
            )
            problems.append(
                f"nodeGroups[{index}].maxNodes: {group.max_nodes} is too small: {demand} need {needed} "
                f"{instance.name} nodes ({instance.gpus_per_node} GPUs each); raise maxNodes to at least {needed} "
                "or lower the replicas"
            )
            continue
        groups.append(
            NodeGroupPlacement(
                index=index,
                config=group,
                instance=instance,
                needed_nodes=needed,
                desired_nodes=max(needed, group.min_nodes),
                models=tuple(m.name for m in placed),
            )
        )
    if problems:
        raise ConfigError(problems)
    return Placement(config, tuple(models), tuple(groups))
