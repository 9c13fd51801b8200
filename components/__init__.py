"""Pulumi components of the gpu-inference stack (type tokens ``gpu-inference:components:*``)."""

from components.cluster import Cluster, ClusterArgs
from components.gpu_enablement import GpuEnablement, GpuEnablementArgs
from components.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.vllm_model import VLLM_CALIBRATED_VERSION, VLLM_IMAGE, VllmModel, VllmModelArgs

__all__ = [
    "Cluster",
    "ClusterArgs",
    "GpuEnablement",
    "GpuEnablementArgs",
    "GpuNodeGroup",
    "GpuNodeGroupArgs",
    "VLLM_CALIBRATED_VERSION",
    "VLLM_IMAGE",
    "VllmModel",
    "VllmModelArgs",
]
