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

from components import checkov_skips
from components.checkov_skips import skip_annotations
from sizing.gpus import resolve_gpu
from sizing.kv_cache import block_size_tokens
from stack.outputs import service_url
from stack.placement import ModelPlacement
from stack.project import PROJECT

SCRIPT = Path(__file__).resolve().parents[1] / "smoke" / "smoke_test.py"
LIVE_CHECK = SCRIPT.with_name("live_check.py")
SMOKE_IMAGE = "python:3.12.8-slim"
SMOKE_COMPONENT = "smoke-test"
SMOKE_TIMEOUT_SECONDS = 600
REPORT_LABELS = {"app.kubernetes.io/component": "smoke-test-report"}  # what smoke_test.py merges in: no drift


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
        *live_check_args(model),
    ]


def live_checked(model: ModelPlacement) -> bool:
    """vLLM reports its KV cache on ``/metrics`` (``vllm:cache_config_info``); NIM's plan is not vLLM's."""
    return model.engine == "vllm"


def report_config_map(server: str) -> str:
    return f"{server}-smoke-report"


def live_check_args(model: ModelPlacement) -> list[str]:
    """The plan's guarantee and prediction, for ``live_check.py`` to hold the live engine to."""
    if not live_checked(model):
        return []
    plan, estimate, settings = model.plan, model.plan.estimate, model.plan.settings
    block = block_size_tokens(model.architecture, resolve_gpu(plan.gpu), settings.kv_cache_dtype_bytes)
    return [
        "--min-concurrency",
        f"{plan.min_concurrency:g}",
        "--max-model-len",
        str(settings.max_model_len),
        "--expect-kv-tokens",
        str(estimate.kv_cache_tokens),
        "--expect-kv-gib",
        f"{estimate.kv_cache_gib_per_gpu:.4f}",
        "--kv-bytes-per-token",
        str(estimate.kv_cache_bytes_per_token_per_gpu),
        "--expect-max-concurrency",
        f"{estimate.max_concurrency:.4f}",
        "--block-size",
        str(block),
        "--kv-cache-dtype",
        settings.kv_cache_dtype,
        "--gpu-memory-utilization",
        f"{settings.gpu_memory_utilization:g}",
        "--report-configmap",
        report_config_map(model.name),
    ]


def digest(fingerprint: Any) -> str:
    """Eight hex digits that change whenever what the server runs changes."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:8]


def job_name(server: str, fingerprint: Any) -> str:
    return f"{server}-smoke-{digest(fingerprint)}"


def smoke_account(server: str) -> str:
    return f"{server}-smoke"


def job_spec(model: ModelPlacement, namespace: str, config_map: str, service: str, wait_seconds: int) -> dict[str, Any]:
    """One attempt, bounded in time; unprivileged, read-only. Only a live-checked Job gets a
    service account token, of an account that may read and patch its own report and nothing else."""
    account = (
        {"serviceAccountName": smoke_account(model.name), "automountServiceAccountToken": True}
        if live_checked(model)
        else {"automountServiceAccountToken": False}
    )
    return {
        "backoffLimit": 0,
        "activeDeadlineSeconds": wait_seconds + 60,
        "template": {
            "metadata": {"labels": smoke_labels(model.name)},
            "spec": {
                "restartPolicy": "Never",
                **account,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65534,
                    "runAsGroup": 65534,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "smoke-test",
                        "image": SMOKE_IMAGE,
                        "command": smoke_command(model, namespace, service, wait_seconds),
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "500m", "memory": "128Mi"},
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


def network_policy_spec(server: str) -> dict[str, Any]:
    """Nothing calls the smoke test: no ingress to its pod. Egress stays open (DNS, the server, and
    for the live check the API server, whose address the cluster decides)."""
    return {"podSelector": {"matchLabels": smoke_labels(server)}, "policyTypes": ["Ingress"]}


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
        live = live_checked(args.model)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata={"name": f"{server}-smoke-test", "namespace": args.namespace, "labels": labels},
            data={"smoke_test.py": SCRIPT.read_text(), **({"live_check.py": LIVE_CHECK.read_text()} if live else {})},
            opts=child,
        )
        report_access = self._report_access(name, server, args.namespace, labels, child) if live else []
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata={"name": f"{server}-smoke", "namespace": args.namespace, "labels": labels},
            spec=network_policy_spec(server),
            opts=child,
        )
        self.job = k8s.batch.v1.Job(
            name,
            metadata={
                "name": job_name(server, args.fingerprint),
                "namespace": args.namespace,
                "labels": labels,
                "annotations": skip_annotations(checkov_skips.SMOKE_LIVE if live else checkov_skips.SMOKE),
            },
            spec=job_spec(args.model, args.namespace, f"{server}-smoke-test", args.service or server, wait_seconds),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[config_map, *report_access, *args.depends_on],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{wait_seconds + 120}s"),
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"job": self.job.metadata["name"]})

    def _report_access(
        self, name: str, server: str, namespace: str, labels: dict[str, str], child: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """The report ConfigMap, owned by Pulumi so ``destroy`` removes it, whose data the Job
        writes (Pulumi ignores it), and an account allowed get/patch on that one ConfigMap."""
        report = report_config_map(server)
        account = smoke_account(server)
        metadata = {"namespace": namespace, "labels": labels}
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-report",
            metadata={**metadata, "name": report, "labels": {**labels, **REPORT_LABELS}},
            data={},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["data"])),
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata={**metadata, "name": account},
            automount_service_account_token=False,
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-report-writer",
            metadata={**metadata, "name": f"{account}-report"},
            rules=[
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [report], "verbs": ["get", "patch"]}
            ],
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-report-writer",
            metadata={**metadata, "name": f"{account}-report"},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{account}-report"},
            subjects=[{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[role, service_account])),
        )
        return [config_map, service_account, role, binding]
