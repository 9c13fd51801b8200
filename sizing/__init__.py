"""Predict what vLLM does with a model on a GPU, and choose TP, PP, GPUs and nodes.

Pure Python: it imports nothing from Pulumi, torch or vLLM, so ``pulumi preview`` (and CI) can
size every server before anything is deployed. The accounting follows vLLM 0.26.0's v1 engine,
calibrated on H100 80GB HBM3 (bf16) and H200 (FP8 checkpoints); see ``sizing.memory``. Each
prediction says whether its path was measured or extrapolated, and keeps a margin (``sizing.basis``).
"""

from sizing.accounting import VLLM_0_26, VLLM_0_32, Accounting
from sizing.errors import NoFitError, SizingError
from sizing.gpus import GPUS, resolve_gpu
from sizing.instances import INSTANCES, resolve_instance_type
from sizing.memory import estimate_memory
from sizing.models import load_model, model_names
from sizing.plan import Plan
from sizing.planner import check_layout, plan_model
from sizing.quantization import REQUESTABLE as QUANTIZATIONS
from sizing.quantization import check_quantization
from sizing.settings import ServingSettings

__all__ = [
    "Accounting",
    "VLLM_0_26",
    "VLLM_0_32",
    "GPUS",
    "INSTANCES",
    "NoFitError",
    "Plan",
    "ServingSettings",
    "SizingError",
    "check_layout",
    "estimate_memory",
    "load_model",
    "model_names",
    "plan_model",
    "QUANTIZATIONS",
    "check_quantization",
    "resolve_gpu",
    "resolve_instance_type",
]
