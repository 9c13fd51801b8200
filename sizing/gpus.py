"""GPUs the stack can place servers on.

``torch_total_memory_gib`` is what ``torch.cuda.mem_get_info`` reports as total, the base vLLM
multiplies by ``gpu_memory_utilization``. It is less than the marketing size and less than
``nvidia-smi``'s total: H100 80GB HBM3 measured at 79.18 GiB (nvidia-smi 81,559 MiB); H200
139.8 GiB (nvidia-smi 143,771 MiB); A100-SXM4-80GB 79.15 GiB; A100-SXM4-40GB 39.39 GiB
(vLLM and PyTorch logs, ../shared/calibration/README.md).

``product_label`` is the value NVIDIA GPU feature discovery writes to ``nvidia.com/gpu.product``
(it is the CUDA device name with spaces replaced by dashes), not a marketing name: the seed
recipe's ``NVIDIA-H100-SXM5-80GB`` matches no node.

Performance facts are the NVIDIA datasheets' (A100 Tensor Core GPU datasheet, SXM4 40GB/80GB; H100
Tensor Core GPU datasheet, SXM5; H200 Tensor Core GPU datasheet, SXM): ``hbm_bandwidth_gb_s`` the
peak memory bandwidth, ``dense_bf16_tflops``/``dense_fp8_tflops`` the tensor-core peaks *without*
sparsity (the datasheets print the sparse figure, twice these; Ampere has no fp8 tensor cores) at
the boost clock ``boost_clock_mhz``. What a server reaches of them is ``sizing.throughput``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.errors import SizingError


@dataclass(frozen=True)
class Gpu:
    name: str
    product_label: str
    torch_total_memory_gib: float
    memory_gb: int
    nvlink_generation: int
    nvlink_bandwidth_gb_s: int
    compute_capability: tuple[int, int]
    hbm_bandwidth_gb_s: float = 0.0
    dense_bf16_tflops: float = 0.0
    dense_fp8_tflops: float | None = None
    boost_clock_mhz: int = 0

    @property
    def native_fp8(self) -> bool:
        """Hopper has fp8 tensor cores; Ampere runs fp8 checkpoints weight-only (Marlin)."""
        return self.compute_capability >= (8, 9)


GPUS: dict[str, Gpu] = {
    gpu.name: gpu
    for gpu in (
        Gpu("A100-40GB", "NVIDIA-A100-SXM4-40GB", 39.39, 40, 3, 600, (8, 0), 1555, 312, None, 1410),
        Gpu("A100-80GB", "NVIDIA-A100-SXM4-80GB", 79.15, 80, 3, 600, (8, 0), 2039, 312, None, 1410),
        Gpu("H100-80GB", "NVIDIA-H100-80GB-HBM3", 79.18, 80, 4, 900, (9, 0), 3350, 989.4, 1978.9, 1980),
        Gpu("H200-141GB", "NVIDIA-H200", 139.8, 141, 4, 900, (9, 0), 4800, 989.4, 1978.9, 1980),
    )
}


def resolve_gpu(name: str) -> Gpu:
    """Accept the catalog names case-insensitively; anything else names what is accepted."""
    for key, gpu in GPUS.items():
        if key.lower() == name.strip().lower():
            return gpu
    raise SizingError(f"unknown GPU {name!r}: accepted GPUs are {', '.join(GPUS)}")
