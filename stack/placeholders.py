"""The example stacks' placeholder ids, found in a stack's raw config and refused by a real preview.

The example stacks (``Pulumi.dev.yaml``, ``Pulumi.prod.yaml``, ``Pulumi.multinode.yaml``) must
synthesize offline, so they hold ids of AWS resources that exist in no account. They are made
recognisable by documented patterns, and a real ``pulumi preview``/``up`` refuses them by path
before anything is registered: otherwise the first sign of a forgotten ``vpc-…`` is an EC2 error
half-way through creating a cluster.

The patterns (docs/deploying.md lists them for the reader):

- an AWS resource id whose 17 hex digits start ``0123456789abcdef`` (``vpc-0123456789abcdef0``,
  ``subnet-0123456789abcdef1``, ``cr-0123456789abcdef0``): AWS ids are random, so a real one matches
  with odds of 16^-16;
- the AWS documentation's example account id ``123456789012`` anywhere in a value (ECR images);
- a stack reference in the example organization ``acme`` (``acme/platform/prod``);
- the word ``REPLACE-ME`` anywhere in a value.

``make synth`` and the tests run the program under the SDK's mocks with the examples as they are:
``stack.mockrun.run_program`` sets the environment variable ``GPU_INFERENCE_OFFLINE=1`` for the
run, and only then are placeholders let through. The Pulumi CLI never sets it; setting it by hand
for a real preview skips this check and nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stack.config import ConfigError

OFFLINE_ENV = "GPU_INFERENCE_OFFLINE"

AWS_ID = re.compile(r"^(?P<kind>[a-z]+)-0123456789abcdef[0-9a-f]$")
EXAMPLE_ACCOUNT_ID = "123456789012"
EXAMPLE_ORGANIZATION = "acme"
STACK_NAME = re.compile(rf"^{EXAMPLE_ORGANIZATION}/[^/\s]+/[^/\s]+$")
MARKER = "REPLACE-ME"

INSTEAD_OF_ID = {
    "vpc": "the id of your VPC (aws ec2 describe-vpcs --query 'Vpcs[].VpcId')",
    "subnet": (
        "a private subnet id of your VPC (aws ec2 describe-subnets --filters Name=vpc-id,Values=<vpc-id> "
        "--query 'Subnets[].[SubnetId,AvailabilityZone]')"
    ),
    "cr": (
        "the id of your capacity reservation or Capacity Block (aws ec2 describe-capacity-reservations "
        "--query 'CapacityReservations[].[CapacityReservationId,InstanceType,AvailabilityZone,State]')"
    ),
}


@dataclass(frozen=True)
class Placeholder:
    path: str
    value: str
    instead: str

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.value!r} is a placeholder of the example stacks; put {self.instead} "
            f"(pulumi config set --path '{self.path}' <value>, or edit Pulumi.<stack>.yaml)"
        )


def _instead(value: str) -> str | None:
    if MARKER in value:
        return "your own value where the example says REPLACE-ME"
    match = AWS_ID.match(value)
    if match:
        kind = match.group("kind")
        return INSTEAD_OF_ID.get(kind, f"the id of your own {kind} resource")
    if EXAMPLE_ACCOUNT_ID in value:
        return (
            "your AWS account id (aws sts get-caller-identity --query Account --output text), "
            "e.g. an image pushed to your own ECR repository"
        )
    if STACK_NAME.match(value):
        return "the fully qualified name of your own stack, <organization>/<project>/<stack> (pulumi stack ls --all)"
    return None


def _walk(value: Any, path: str):
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def find_placeholders(raw: Mapping[str, Any]) -> list[Placeholder]:
    """Every placeholder value in the raw config objects (``cluster``, ``nodeGroups``, ``models``),
    with its path as the config errors name it (``cluster.create.subnetIds[0]``)."""
    found = []
    for path, value in _walk(raw, ""):
        instead = _instead(value)
        if instead is not None:
            found.append(Placeholder(path, value, instead))
    return found


def offline(environ: Mapping[str, str] = os.environ) -> bool:
    """True only inside ``stack.mockrun.run_program`` (``make synth``, the tests)."""
    return environ.get(OFFLINE_ENV) == "1"


def refuse_placeholders(raw: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> None:
    """Raise ``ConfigError`` naming every placeholder, unless the program runs offline under the mocks."""
    if offline(environ):
        return
    found = find_placeholders(raw)
    if found:
        problems = [str(p) for p in found]
        problems.append(
            "these values come from the example stacks and exist in no AWS account: replace them in "
            "Pulumi.<stack>.yaml (docs/deploying.md, 'Replace the placeholders')"
        )
        raise ConfigError(problems)
