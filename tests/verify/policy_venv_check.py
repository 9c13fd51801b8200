"""Run by the policy pack's virtualenv (tests/verify/test_verify_policy.py): the pack's real
policies on pulumi-policy's own argument objects, props wrapped in its unknown-checking proxy.
Prints {case: [violation messages]} as JSON."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "policy"), str(ROOT)]

from policies import AWS, KUBERNETES, STACK  # noqa: E402
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs  # noqa: E402
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy  # noqa: E402


def options():
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=None,
        additional_secret_outputs=[],
        parent=None,
    )


def engine_form(value):
    """As the engine hands props to a policy: unknowns as pulumi-policy's sentinels, numbers as floats."""
    if value == "<computed>":
        return UNKNOWN_STRING_VALUE
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [engine_form(v) for v in value]
    if isinstance(value, dict):
        return {k: engine_form(v) for k, v in value.items()}
    return value


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    out = {}
    for case, resources in cases.items():
        messages = []
        resources = [(t, n, u, engine_form(p)) for t, n, u, p in resources]
        for type_, name, urn, props in resources:
            for policy in (KUBERNETES, AWS):
                args = ResourceValidationArgs(type_, unknown_checking_proxy(props), urn, name, options(), None, {})
                policy.validate(
                    args, lambda message, urn=None, policy=policy: messages.append(f"{policy.name}: {message}")
                )
        policy_resources = [
            PolicyResource(type_, unknown_checking_proxy(props), urn, name, options(), None, None, [], {})
            for type_, name, urn, props in resources
        ]
        STACK.validate(
            StackValidationArgs(policy_resources), lambda message, urn=None: messages.append(f"{STACK.name}: {message}")
        )
        out[case] = messages
    print(json.dumps(out))


if __name__ == "__main__":
    main()
