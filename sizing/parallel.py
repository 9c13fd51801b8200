"""How vLLM splits a model across tensor- and pipeline-parallel ranks."""

from __future__ import annotations

from sizing.architecture import ModelArchitecture


def kv_heads_per_rank(model: ModelArchitecture, tensor_parallel_size: int) -> int:
    """KV heads one rank holds; when TP exceeds them each rank keeps a replica of one head."""
    return max(1, model.num_kv_heads // tensor_parallel_size)


def pipeline_stage_layers(num_layers: int, pipeline_parallel_size: int) -> list[range]:
    """vLLM's ``get_pp_indices``: equal shares, the remainder going to the stages before the
    last (the last stage also holds the LM head and the sampler)."""
    per_stage = num_layers // pipeline_parallel_size
    sizes = [per_stage] * pipeline_parallel_size
    for i in range(2, num_layers % pipeline_parallel_size + 2):
        sizes[-i] += 1
    stages, start = [], 0
    for size in sizes:
        stages.append(range(start, start + size))
        start += size
    return stages
