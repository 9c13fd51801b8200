"""Policy pack: ``pulumi preview --policy-pack policy`` enforces the checks of ``verify`` (the same
functions the tests and ``python -m verify`` run) on what the program would deploy."""

from policies import POLICIES
from pulumi_policy import PolicyPack

from stack.project import PROJECT

PolicyPack(name=PROJECT, policies=POLICIES)
