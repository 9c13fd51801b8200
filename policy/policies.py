"""The pack's policies (pulumi_policy objects wrapping ``adapter``'s functions); importable without
serving, so the pack's own venv can test them with real ``ResourceValidationArgs``."""

from __future__ import annotations

import adapter
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)


def _kubernetes(args: ResourceValidationArgs, report_violation) -> None:
    adapter.validate_kubernetes(
        args.resource_type, args.props, args.name, report_violation, dict(args.get_config() or {})
    )


def _aws(args: ResourceValidationArgs, report_violation) -> None:
    adapter.validate_aws(args.resource_type, args.props, args.name, report_violation)


def _stack(args: StackValidationArgs, report_violation) -> None:
    adapter.validate_stack(args.resources, report_violation)


KUBERNETES = ResourceValidationPolicy(
    name="kubernetes-objects-valid",
    description="Kubernetes objects validate against the official schemas of the supported versions (strict) and the "
    "API server's rules: operators, effects, quantities, names, labels, ports, probes, selectors.",
    validate=_kubernetes,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "kubernetesVersions": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(adapter.SUPPORTED_VERSIONS),
            },
        }
    ),
)

AWS = ResourceValidationPolicy(
    name="aws-inputs-valid",
    description="AWS inputs use values AWS's service models accept (AMI types, capacity types, taint effects, instance "
    "types, market and interface types), within EKS label/taint limits, on catalog GPU instance types.",
    validate=_aws,
    enforcement_level=EnforcementLevel.MANDATORY,
)

STACK = StackValidationPolicy(
    name="selectors-and-gpu-scheduling",
    description="Services, PodDisruptionBudgets and NetworkPolicies select rendered pods; GPU pods match, tolerate "
    "and fit a GPU node group of the stack.",
    validate=_stack,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [KUBERNETES, AWS, STACK]
