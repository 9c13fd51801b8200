"""Run by the policy pack's virtualenv (tests/verify/test_verify_policy.py): the pack's real
policies on pulumi-policy's own argument objects, props wrapped in its unknown-checking proxy.
Prints {case: [violation messages]} as JSON.

The pack's modules (``policies``, ``adapter``) import as the Pulumi CLI imports them, with the pack's
directory on the path (the test puts it in ``PYTHONPATH``); the project comes from the editable
install in the pack's venv (``make policy-venv``)."""

import json
import sys
from pathlib import Path

from policies import AWS, KUBERNETES, STACK
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy


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
                    args,
                    lambda message, urn=None, policy=policy, messages=messages: messages.append(
                        f"{policy.name}: {message}"
                    ),
                )
        policy_resources = [
            PolicyResource(type_, unknown_checking_proxy(props), urn, name, options(), None, None, [], {})
            for type_, name, urn, props in resources
        ]
        STACK.validate(
            StackValidationArgs(policy_resources),
            lambda message, urn=None, messages=messages: messages.append(f"{STACK.name}: {message}"),
        )
        out[case] = messages
    print(json.dumps(out))


if __name__ == "__main__":
    main()
