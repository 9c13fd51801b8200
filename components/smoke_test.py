"""The seed recipe's "verify" step, automated: one completion against each deployed server.

Once Pulumi has seen the server become ready (the Deployment's or LeaderWorkerSet's await), a
Job runs ``smoke/smoke_test.py`` (standard library only, mounted from a ConfigMap into a plain
Python image) against the model's Service: it waits for the health endpoint, sends one
``/v1/completions`` request and fails, printing the server's answer, when the answer is wrong.
pulumi-kubernetes awaits a Job until it completes, so a server that is up but answers badly
fails ``pulumi up`` instead of being discovered by the first user.

The Job's name carries a hash of what it tests (the server's image and arguments), so a change
to the server replaces the Job and the test runs again; an unchanged server keeps its Job. A
LeaderWorkerSet's status cannot tell an update from the revision before it (no observedGeneration),
so for one the Job calls a Service of the current revision's leaders and waits the group's whole
await budget: ``pulumi up`` then waits on the new revision serving, not on stale status.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stack.outputs import service_url
from stack.placement import ModelPlacement
from stack.project import PROJECT

SCRIPT = Path(__file__).resolve().parents[1] / "smoke" / "smoke_test.py"
SMOKE_IMAGE = "python:3.12.8-slim"
SMOKE_COMPONENT = "smoke-test"
SMOKE_TIMEOUT_SECONDS = 600


def smoke_labels(server: str) -> dict[str, str]:
    """The labels the server's NetworkPolicy admits the Job's pod by."""
    return {"app.kubernetes.io/component": SMOKE_COMPONENT, "app.kubernetes.io/instance": server}


def smoke_command(model: ModelPlacement, namespace: str, service: str, wait_seconds: int) -> list[str]:
    from components.engines import engine_for  # the engines' pods import smoke_labels from here

    return [
        "python",
        "-I",
        "/smoke/smoke_test.py",
        "--base-url",
        service_url(service, namespace),
        "--model",
        model.served_model_name,
        "--timeout",
        str(wait_seconds),
        "--health-path",
        engine_for(model).ready_path,
    ]


def digest(fingerprint: Any) -> str:
    """Eight hex digits that change whenever what the server runs changes."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:8]


def job_name(server: str, fingerprint: Any) -> str:
    return f"{server}-smoke-{digest(fingerprint)}"


def job_spec(model: ModelPlacement, namespace: str, config_map: str, service: str, wait_seconds: int) -> dict[str, Any]:
    """One attempt, bounded in time; unprivileged, read-only, no service account token."""
    return {
        "backoffLimit": 0,
        "activeDeadlineSeconds": wait_seconds + 60,
        "template": {
            "metadata": {"labels": smoke_labels(model.name)},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
                "containers": [
                    {
                        "name": "smoke-test",
                        "image": SMOKE_IMAGE,
                        "command": smoke_command(model, namespace, service, wait_seconds),
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "privileged": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "script", "mountPath": "/smoke", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "script", "configMap": {"name": config_map}}],
            },
        },
    }


@dataclass
class SmokeTestArgs:
    """``model`` is the server's placement; ``namespace`` its namespace (a plain string: the
    URL is part of the Job's immutable spec); ``fingerprint`` what the server runs (image and
    arguments), so a changed server is tested again; ``depends_on`` its workload and Service.
    ``service`` is the Service the Job calls (the model's, unless the server names one that
    reaches only its current revision) and ``wait_seconds`` how long the Job waits for it."""

    model: ModelPlacement
    namespace: str
    provider: k8s.Provider
    fingerprint: Any
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    service: str | None = None
    wait_seconds: int | None = None


class SmokeTest(pulumi.ComponentResource):
    """A ConfigMap holding the smoke-test script and a Job running it once the server is ready."""

    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: SmokeTestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-inference:components:SmokeTest", name, None, opts)
        server = args.model.name
        wait_seconds = args.wait_seconds or SMOKE_TIMEOUT_SECONDS
        labels = {**smoke_labels(server), "app.kubernetes.io/part-of": PROJECT}
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata={"name": f"{server}-smoke-test", "namespace": args.namespace, "labels": labels},
            data={"smoke_test.py": SCRIPT.read_text()},
            opts=child,
        )
        self.job = k8s.batch.v1.Job(
            name,
            metadata={"name": job_name(server, args.fingerprint), "namespace": args.namespace, "labels": labels},
            spec=job_spec(args.model, args.namespace, f"{server}-smoke-test", args.service or server, wait_seconds),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[config_map, *args.depends_on],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{wait_seconds + 120}s"),
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"job": self.job.metadata["name"]})
