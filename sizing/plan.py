"""A placement the planner chose: GPU, instance, TP, PP, and what vLLM will report for it."""

from __future__ import annotations

from dataclasses import dataclass

from sizing.estimate import MemoryEstimate
from sizing.settings import ServingSettings


@dataclass(frozen=True)
class Plan:
    """One replica of one model. ``gpus = tensor_parallel_size * pipeline_parallel_size``.

    With PP > 1 each pipeline stage is one whole node (``gpus_per_pod`` = TP = GPUs per node),
    because one Kubernetes pod cannot span nodes; with PP = 1 one pod holds all ``gpus``.
    ``marginal`` means the KV cache is predicted to be barely above what the requested
    concurrency needs, so a drift between the calibrated vLLM release and the deployed one
    could stop the server from starting.
    """

    model: str
    gpu: str
    instance_type: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    gpus: int
    nodes: int
    gpus_per_pod: int
    pods: int
    weights_gib_total: float
    min_concurrency: float
    marginal: bool
    estimate: MemoryEstimate
    notes: tuple[str, ...] = ()

    @property
    def settings(self) -> ServingSettings:
        return self.estimate.settings

    def to_dict(self) -> dict:
        data = self.estimate.to_dict()
        data.update(
            model=self.model,
            gpu=self.gpu,
            instance_type=self.instance_type,
            tensor_parallel_size=self.tensor_parallel_size,
            pipeline_parallel_size=self.pipeline_parallel_size,
            gpus=self.gpus,
            nodes=self.nodes,
            gpus_per_pod=self.gpus_per_pod,
            pods=self.pods,
            weights_gib_total=round(self.weights_gib_total, 2),
            min_concurrency=self.min_concurrency,
            marginal=self.marginal,
            notes=list(self.notes),
        )
        return data
