"""Shared fixtures: each stack synthesised once per session (in-process, under the mocks), and
broken-object factories built from the real rendered manifests."""

import copy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

from verify import errors, plain  # noqa: E402
from verify.stacks import stack_names, stack_versions, synth_run, verify_registrations  # noqa: E402


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """{stack: mocked run} for every Pulumi.<stack>.yaml (synth writes into a temp build dir)."""
    build = tmp_path_factory.mktemp("build")
    return {stack: synth_run(stack, build) for stack in stack_names()}


@pytest.fixture(scope="session")
def results(runs):
    return {stack: verify_registrations(stack, run.registrations, stack_versions(stack)) for stack, run in runs.items()}


def rendered(runs, stack, kind, name=None):
    """A deep copy of a rendered manifest (plain data) of ``kind`` in ``stack``."""
    for registration in runs[stack].registrations:
        if registration.type.startswith("kubernetes:") and registration.custom:
            props = plain(registration.inputs)
            if props.get("kind") == kind and (name is None or props["metadata"]["name"] == name):
                return copy.deepcopy(props)
    raise KeyError(f"no {kind} {name} in {stack}")


def rendered_resource(runs, stack, type_, name=None):
    for registration in runs[stack].registrations:
        if registration.type == type_ and (name is None or registration.name == name):
            return copy.deepcopy(plain(registration.inputs))
    raise KeyError(f"no {type_} {name} in {stack}")


def only(violations, path, *words):
    """The violations at ``path``; assert one exists and mentions every word."""
    found = [v for v in errors(violations) if v.path == path]
    assert found, f"no violation at {path}; got:\n" + "\n".join(str(v) for v in violations)
    text = " | ".join(str(v) for v in found)
    for word in words:
        assert word in text, f"{word!r} not in {text}"
    return found


def leader_worker_set(deployment):
    """A LeaderWorkerSet (issue 5's multi-node servers) built from the rendered Deployment's pods."""
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "llama-3-1-405b", "namespace": "inference"},
        "spec": {
            "replicas": 1,
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": 2,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": template,
                "workerTemplate": template,
            },
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
            },
        },
    }
