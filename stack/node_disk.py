"""Whether a GPU node's disk holds the weights its pods download.

A vLLM server with a Hugging Face source and a NIM server with an emptyDir cache download the
whole checkpoint into an emptyDir at start; emptyDirs live on the kubelet's directory, which on these
node groups is the EBS volume of ``diskSizeGib`` (the instance-store NVMe array is not set up by the
node groups' launch templates: ``components.node_user_data`` builds it but nothing applies it yet).
The scheduler may put any pods that fit a node's GPUs together, so a node must hold the largest
sum of weights of pods whose GPUs fit on it. A disk too small is refused at preview: on a real node
the download fills the disk and the kubelet evicts the pod (DiskPressure), again and again.
"""

from __future__ import annotations

import math

from stack.placement import ModelPlacement, Placement

# What the root volume holds besides the downloads: the OS, the server image (vllm/vllm-openai is
# ~10 GB compressed, about twice that unpacked) and logs. A floor, not a measurement.
SYSTEM_AND_IMAGES_GIB = 40


def downloads_weights(model: ModelPlacement) -> bool:
    source = getattr(model.config.source, "type", None)
    if not model.config.engine.takes_source:
        cache = getattr(model.config.engine, "cache", None)
        return getattr(cache, "type", "emptyDir") == "emptyDir"
    return source == "huggingFace"


def largest_node_download_gib(pods: list[tuple[int, float]], gpus_per_node: int) -> float:
    """The most weights (GiB) the pods that fit one node's GPUs together can download (0/1 knapsack on GPUs)."""
    best = [0.0] * (gpus_per_node + 1)
    for gpus, gib in pods:
        for room in range(gpus_per_node, gpus - 1, -1):
            best[room] = max(best[room], best[room - gpus] + gib)
    return best[gpus_per_node]


def disk_problems(placement: Placement) -> list[str]:
    problems = []
    for group in placement.node_groups:
        placed = [m for m in placement.models if m.node_group == group.name and m.config.replicas > 0]
        downloading = [m for m in placed if downloads_weights(m)]
        if not downloading:
            continue
        pods = [(m.plan.gpus_per_pod, m.plan.weights_gib_total) for m in downloading for _ in range(m.pods)]
        worst = largest_node_download_gib(pods, group.instance.gpus_per_node)
        needed = math.ceil(worst + SYSTEM_AND_IMAGES_GIB)
        disk = group.config.disk_size_gib
        if needed <= disk:
            continue
        models = ", ".join(f"{m.name} {m.plan.weights_gib_total:.1f} GiB per pod" for m in downloading)
        problems.append(
            f"nodeGroups[{group.index}].diskSizeGib: {disk} GiB is too small: one {group.instance.name} node may "
            f"download {worst:.1f} GiB of weights into its pods' emptyDirs ({models}), on the root volume beside "
            f"~{SYSTEM_AND_IMAGES_GIB} GiB of OS and images; the kubelet would evict the pods for DiskPressure. "
            f"Give at least {needed}, or serve the weights from a volume (source type volume)"
        )
    return problems
