"""Label, taint and naming conventions shared by the node groups, GPU enablement and servers.

Keep them in one place: a server's node affinity must use exactly the values its node group
sets, and the device plugin must tolerate exactly the taint the node groups carry.
"""

from __future__ import annotations

from stack.project import PROJECT

# Set by GPU feature discovery on AL2023 groups (and by us at registration, to the same value).
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"  # only where GPU feature discovery runs
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"  # set by the kubelet on every node

# Ours: always present, whatever runs on the node.
GPU_LABEL = "gpu-inference.io/gpu"
NODE_GROUP_LABEL = "gpu-inference.io/node-group"
ROLE_LABEL = "gpu-inference.io/role"

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
GPU_TAINT_EFFECT_EKS = "NO_SCHEDULE"  # the EKS API's spelling ...
GPU_TAINT_EFFECT = "NoSchedule"  # ... of the Kubernetes effect

AL2023_NVIDIA = "AL2023_x86_64_NVIDIA"
BOTTLEROCKET_NVIDIA = "BOTTLEROCKET_x86_64_NVIDIA"

# Kubernetes node selector operators (anything else is rejected by the API server).
NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")

# Node IAM policies every EKS worker node gets: join the cluster, pull images, and be reachable by
# SSM Session Manager for debugging (no SSH key, no open port).
NODE_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)
# What the VPC CNI (kube-system/aws-node) needs to manage network interfaces. It belongs to aws-node's
# own service account (Pod Identity); on the node role only where an adopted cluster says so.
CNI_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
AWS_NODE_NAMESPACE = "kube-system"
AWS_NODE_SERVICE_ACCOUNT = "aws-node"

# Instance metadata: IMDSv2 only, and a PUT response hop limit of 1 so that the token request of a
# pod on the pod network (one hop further than the node) never returns: pods cannot read the node
# role's credentials. Host-network pods (aws-node, the Pod Identity agent) are not an extra hop.
IMDS_HOP_LIMIT = 1


def gpu_toleration() -> dict:
    """Tolerates the GPU taint whatever its value (``Exists``), for NoSchedule only."""
    return {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": GPU_TAINT_EFFECT}


def common_tags(stack: str, **extra: str) -> dict[str, str]:
    return {"gpu-inference:project": PROJECT, "gpu-inference:stack": stack, **extra}


# EFA interfaces, as the EFA device plugin advertises them.
EFA_RESOURCE = "vpc.amazonaws.com/efa"

# Which pod of a LeaderWorkerSet group this is (ours, on the pod templates): "leader" or "worker".
LWS_ROLE_LABEL = "gpu-inference.io/lws-role"

# KAI Scheduler: the queue a pod is charged to (with schedulerName: kai-scheduler).
KAI_QUEUE_LABEL = "kai.scheduler/queue"
