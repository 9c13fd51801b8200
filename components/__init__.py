"""Pulumi components of the gpu-inference stack (type tokens ``gpu-inference:components:*``)."""

from components.addons import EfaEnablement, KaiScheduler, LeaderWorkerSetController
from components.cluster import Cluster, ClusterArgs
from components.engines import ENGINES, engine_for
from components.engines.vllm import VLLM_CALIBRATED_VERSION, VLLM_IMAGE
from components.gpu_enablement import GpuEnablement, GpuEnablementArgs
from components.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.server_pod import ModelServer, ModelServerArgs
from components.smoke_test import SmokeTest, SmokeTestArgs

__all__ = [
    "Cluster",
    "ClusterArgs",
    "EfaEnablement",
    "ENGINES",
    "engine_for",
    "KaiScheduler",
    "LeaderWorkerSetController",
    "GpuEnablement",
    "GpuEnablementArgs",
    "GpuNodeGroup",
    "GpuNodeGroupArgs",
    "ModelServer",
    "ModelServerArgs",
    "SmokeTest",
    "SmokeTestArgs",
    "VLLM_CALIBRATED_VERSION",
    "VLLM_IMAGE",
]
