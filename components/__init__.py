"""Pulumi components of the gpu-inference stack (type tokens ``gpu-inference:components:*``)."""

from components.addons import EfaEnablement, KaiScheduler, LeaderWorkerSetController
from components.cluster import Cluster, ClusterArgs
from components.gpu_enablement import GpuEnablement, GpuEnablementArgs
from components.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.nim_model import NimModel, NimModelArgs
from components.smoke_test import SmokeTest, SmokeTestArgs
from components.vllm_model import VLLM_CALIBRATED_VERSION, VLLM_IMAGE, VllmModel, VllmModelArgs

__all__ = [
    "Cluster",
    "ClusterArgs",
    "EfaEnablement",
    "KaiScheduler",
    "LeaderWorkerSetController",
    "NimModel",
    "NimModelArgs",
    "GpuEnablement",
    "GpuEnablementArgs",
    "GpuNodeGroup",
    "GpuNodeGroupArgs",
    "SmokeTest",
    "SmokeTestArgs",
    "VLLM_CALIBRATED_VERSION",
    "VLLM_IMAGE",
    "VllmModel",
    "VllmModelArgs",
]
