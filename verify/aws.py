"""AWS resource inputs against AWS's own service models (botocore's bundled ``eks`` and ``ec2``
models, read offline once per process), plus EKS node-group limits and the GPU catalog.

How: each Pulumi resource type maps to the API request shape that creates it (``RESOURCE_SHAPES``);
its inputs are walked alongside that shape, matching Pulumi's camelCase keys to the model's member
names case-insensitively (``instanceMarketOptions.marketType`` -> ``InstanceMarketOptions.MarketType``)
or through ``ALIASES`` where Pulumi renames a member (``subnetIds`` -> ``subnets``). Every string
whose shape has an ``enum`` is checked against it, string lengths and integer ranges against the
shape's ``min``/``max``. Where the model types a member as a plain string but names the valid
values elsewhere, ``OVERRIDES`` points the walk at the enum: EKS ``instanceTypes`` -> ec2
``InstanceType``, launch-template ``interfaceType`` -> ec2 ``NetworkInterfaceType`` restricted to the
values the member's documentation lists (interface, efa, efa-only).

Then rules the model does not carry (EKS user guide, "Managed node groups" and service quotas):
at most 50 labels and 50 taints per node group; label and taint keys are Kubernetes qualified
names (prefix <= 253 + name <= 63) *and* at most 63 characters as a whole (``labelKey``/``taintKey``
max 63 in ``CreateNodegroup``); values <= 63 and Kubernetes label syntax; no duplicate taint
key+effect; min <= desired <= max; ``CAPACITY_BLOCK`` needs a launch template; a launch template
excludes ``diskSize``; GPU node groups (NVIDIA AMI types) use only the 8-GPU SXM instance types of
``sizing.instances`` (ec2's enum alone also admits single-GPU sizes such as p5.4xlarge).
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from stack.kubernetes_names import label_value, qualified_name
from verify import Violation, is_unknown, plain

NODE_GROUP_TYPES = ("aws:eks/nodeGroup:NodeGroup", "eks:index:ManagedNodeGroup")

# Pulumi type -> (service, request shape whose members the inputs mirror)
RESOURCE_SHAPES: dict[str, tuple[str, str]] = {
    "aws:eks/nodeGroup:NodeGroup": ("eks", "CreateNodegroupRequest"),
    "eks:index:ManagedNodeGroup": ("eks", "CreateNodegroupRequest"),
    "aws:eks/cluster:Cluster": ("eks", "CreateClusterRequest"),
    "eks:index:Cluster": ("eks", "CreateClusterRequest"),
    "aws:eks/addon:Addon": ("eks", "CreateAddonRequest"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("ec2", "RequestLaunchTemplateData"),
    "aws:ec2/placementGroup:PlacementGroup": ("ec2", "CreatePlacementGroupRequest"),
    "aws:ec2/securityGroup:SecurityGroup": ("ec2", "CreateSecurityGroupRequest"),
}

# Pulumi input name -> model member name, where they differ beyond case.
ALIASES: dict[str, dict[str, str]] = {
    "CreateNodegroupRequest": {"subnetIds": "subnets", "nodeRoleArn": "nodeRole", "nodeGroupName": "nodegroupName"},
    "CreateClusterRequest": {"roleArn": "roleArn"},
    "CreateSecurityGroupRequest": {"name": "GroupName"},
    "RequestLaunchTemplateData": {"vpcSecurityGroupIds": "SecurityGroupIds"},
    "LaunchTemplateInstanceNetworkInterfaceSpecificationRequest": {"securityGroups": "Groups"},
}

# (Pulumi type, input path with [] for list items) -> (service, shape) that holds the valid values.
OVERRIDES: dict[tuple[str, str], tuple[str, str]] = {
    ("aws:eks/nodeGroup:NodeGroup", "instanceTypes[]"): ("ec2", "InstanceType"),
    ("eks:index:ManagedNodeGroup", "instanceTypes[]"): ("ec2", "InstanceType"),
    ("aws:ec2/launchTemplate:LaunchTemplate", "networkInterfaces[].interfaceType"): ("ec2", "NetworkInterfaceType"),
    ("eks:index:Cluster", "authenticationMode"): ("eks", "AuthenticationMode"),
    ("aws:eks/cluster:Cluster", "accessConfig.authenticationMode"): ("eks", "AuthenticationMode"),
    ("eks:index:Cluster", "instanceType"): ("ec2", "InstanceType"),
    ("aws:eks/addon:Addon", "resolveConflictsOnCreate"): ("eks", "ResolveConflicts"),
    ("aws:eks/addon:Addon", "resolveConflictsOnUpdate"): ("eks", "ResolveConflicts"),
}

MAX_LABELS = 50  # EKS: labels per managed node group
MAX_TAINTS = 50  # EKS: taints per managed node group
GPU_AMI_TYPES = ("_NVIDIA", "_GPU")


@functools.cache
def model(service: str) -> dict:
    """botocore's bundled service model (offline; ~0.1-1.5 s for ec2, once per process)."""
    import botocore.loaders

    return botocore.loaders.create_loader().load_service_model(service, "service-2")


def shape(service: str, name: str) -> dict:
    return model(service)["shapes"][name]


def enum(service: str, name: str) -> list[str]:
    values = list(shape(service, name).get("enum") or [])
    if (service, name) == ("ec2", "NetworkInterfaceType"):
        # Launch templates accept only the values the InterfaceType member's documentation lists.
        doc = shape("ec2", "LaunchTemplateInstanceNetworkInterfaceSpecificationRequest")["members"]["InterfaceType"][
            "documentation"
        ]
        listed = re.findall(r"<code>([a-z-]+)</code>", doc.split("Valid values:")[-1])
        values = [v for v in values if v in listed] or values
    return values


def _member(members: dict, key: str, shape_name: str) -> str | None:
    alias = ALIASES.get(shape_name, {}).get(key)
    if alias and alias in members:
        return alias
    lowered = {m.lower(): m for m in members}
    return lowered.get((alias or key).lower())


class _Walk:
    def __init__(self, resource_type: str, obj: str):
        self.resource_type = resource_type
        self.obj = obj
        self.violations: list[Violation] = []
        self.checked: list[tuple[str, str]] = []  # (input path, "service:Shape") of every enum checked

    def walk(self, value: Any, service: str, shape_name: str, path: str, pattern: str) -> None:
        if value is None or is_unknown(value):
            return
        override = OVERRIDES.get((self.resource_type, pattern))
        if override:
            service, shape_name = override
        spec = shape(service, shape_name)
        kind = spec.get("type")
        if kind == "structure" and isinstance(value, dict):
            members = spec.get("members") or {}
            for key, item in value.items():
                sub_pattern = f"{pattern}.{key}" if pattern else key
                sub_path = f"{path}.{key}" if path else key
                member = _member(members, key, shape_name)
                if (self.resource_type, sub_pattern) in OVERRIDES:
                    self.walk(item, service, shape_name, sub_path, sub_pattern)  # the override picks the shape
                elif member is not None:
                    self.walk(item, service, members[member]["shape"], sub_path, sub_pattern)
        elif kind == "list" and isinstance(value, list):
            item_shape = spec["member"]["shape"]
            for i, item in enumerate(value):
                self.walk(item, service, item_shape, f"{path}[{i}]", f"{pattern}[]")
        elif kind == "map" and isinstance(value, dict):
            for key, item in value.items():
                self.walk(key, service, spec["key"]["shape"], f"{path}[{key!r}] (key)", f"{pattern}{{key}}")
                self.walk(item, service, spec["value"]["shape"], f"{path}[{key!r}]", f"{pattern}{{}}")
        elif kind == "string":
            self._string(value, service, shape_name, spec, path)
        elif kind in ("integer", "long"):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if "min" in spec and value < spec["min"]:
                    self.add(path, f"{value} is below the minimum {spec['min']} of {service} {shape_name}")
                if "max" in spec and value > spec["max"]:
                    self.add(path, f"{value} is above the maximum {spec['max']} of {service} {shape_name}")

    def _string(self, value: Any, service: str, shape_name: str, spec: dict, path: str) -> None:
        if not isinstance(value, str):
            return
        values = enum(service, shape_name)
        if values:
            self.checked.append((path, f"{service}:{shape_name}"))
            if value not in values:
                if len(values) > 30:
                    close = difflib.get_close_matches(value, values, n=5, cutoff=0.6)
                    valid = (
                        f"closest valid values: {', '.join(close)}"
                        if close
                        else f"{len(values)} valid values in the model"
                    )
                else:
                    valid = f"valid values: {', '.join(values)}"
                self.add(path, f"{value!r} is not a valid {service} {shape_name} in AWS's service model ({valid})")
        if "max" in spec and len(value) > spec["max"]:
            self.add(path, f"{value!r} is {len(value)} characters; {service} {shape_name} allows at most {spec['max']}")
        if "min" in spec and len(value) < spec["min"]:
            self.add(path, f"{value!r} is {len(value)} characters; {service} {shape_name} needs at least {spec['min']}")

    def add(self, path: str, message: str) -> None:
        self.violations.append(Violation(self.obj, path, message))


def describe(resource_type: str, name: str) -> str:
    return f"{resource_type} {name}"


def check_resource(resource_type: str, props: dict, name: str = "<resource>") -> list[Violation]:
    """One AWS (or pulumi-eks) resource's inputs; types without a mapped shape pass unchecked."""
    violations, _ = check_resource_with_coverage(resource_type, props, name)
    return violations


def check_resource_with_coverage(
    resource_type: str, props: dict, name: str = "<resource>"
) -> tuple[list[Violation], list[tuple[str, str]]]:
    props = plain(props)  # type: ignore[assignment]
    obj = describe(resource_type, name)
    walker = _Walk(resource_type, obj)
    if resource_type in RESOURCE_SHAPES and isinstance(props, dict):
        service, shape_name = RESOURCE_SHAPES[resource_type]
        walker.walk(props, service, shape_name, "", "")
    if resource_type in NODE_GROUP_TYPES and isinstance(props, dict):
        walker.violations += check_node_group(props, obj)
    return walker.violations, walker.checked


def check_node_group(props: dict, obj: str) -> list[Violation]:
    from sizing.instances import INSTANCES

    out: list[Violation] = []

    def add(path: str, message: str | None) -> None:
        if message:
            out.append(Violation(obj, path, message))

    labels = props.get("labels") or {}
    if isinstance(labels, dict):
        if len(labels) > MAX_LABELS:
            add("labels", f"{len(labels)} labels; EKS allows at most {MAX_LABELS} per node group")
        for key, value in labels.items():
            add(f"labels[{key!r}]", qualified_name(key))
            if not is_unknown(value):
                add(f"labels[{key!r}]", label_value(value))
    taints = props.get("taints") or []
    if isinstance(taints, list):
        if len(taints) > MAX_TAINTS:
            add("taints", f"{len(taints)} taints; EKS allows at most {MAX_TAINTS} per node group")
        seen = set()
        for i, taint in enumerate(taints):
            if not isinstance(taint, dict):
                continue
            add(f"taints[{i}].key", qualified_name(taint.get("key")))
            if taint.get("value"):
                add(f"taints[{i}].value", label_value(taint["value"]))
            if (taint.get("key"), taint.get("effect")) in seen:
                add(f"taints[{i}]", f"duplicate taint {taint.get('key')}:{taint.get('effect')}")
            seen.add((taint.get("key"), taint.get("effect")))
    scaling = props.get("scalingConfig") or {}
    sizes = {k: scaling.get(k) for k in ("minSize", "desiredSize", "maxSize")}
    if all(isinstance(v, (int, float)) for v in sizes.values()):
        if not sizes["minSize"] <= sizes["desiredSize"] <= sizes["maxSize"]:
            add("scalingConfig", f"needs minSize <= desiredSize <= maxSize, got {sizes}")
    if props.get("capacityType") == "CAPACITY_BLOCK" and not props.get("launchTemplate"):
        add(
            "launchTemplate",
            "capacityType CAPACITY_BLOCK needs a launch template (with the reservation and market type capacity-block)",
        )
    if props.get("launchTemplate") and props.get("diskSize") is not None:
        add(
            "diskSize",
            "EKS rejects diskSize together with a launch template: set the volume size in the launch template",
        )
    ami = props.get("amiType")
    gpu = isinstance(ami, str) and any(ami.endswith(suffix) for suffix in GPU_AMI_TYPES)
    if gpu:
        for i, instance_type in enumerate(props.get("instanceTypes") or []):
            if isinstance(instance_type, str) and not is_unknown(instance_type) and instance_type not in INSTANCES:
                add(
                    f"instanceTypes[{i}]",
                    f"{instance_type!r} is not an 8-GPU SXM instance type of the catalog "
                    f"(sizing/instances.py): use one of {', '.join(INSTANCES)}",
                )
    return out
