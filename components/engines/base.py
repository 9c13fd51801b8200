"""What an engine tells the server pod (``components.server_pod``): everything that differs between
vLLM, NIM and the next one, and nothing the pod already shares.

An engine is one module under ``components/engines/`` with one ``Engine`` subclass, registered with
``components.engines.register``, plus its options model in ``stack.config`` (a subclass of
``EngineOptions`` whose ``type`` names it, registered with ``register_engine_options``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi

from stack.placement import ModelPlacement

Env = list[dict[str, Any]]
Volumes = list[dict[str, Any]]
Mounts = list[dict[str, Any]]


@dataclass(frozen=True)
class EngineSecret:
    """A Kubernetes Secret the engine's pods read, named ``<model>-<suffix>``."""

    suffix: str
    type: str
    string_data: dict[str, pulumi.Input[str]]


class Engine:
    """How a plan becomes an engine's server container. Subclasses set the class attributes and
    implement ``command`` and ``pod_environment``; the rest has defaults most engines keep."""

    name: ClassVar[str]  # the config's ``engine.type``
    component: ClassVar[str]  # the component's type token: gpu-inference:components:<component>
    label: ClassVar[str]  # app.kubernetes.io/name of its pods
    ready_path: ClassVar[str]  # startup and readiness probes, and the smoke test's wait
    live_path: ClassVar[str]
    supports_multi_node: ClassVar[bool] = False  # can it serve a LeaderWorkerSet group (PP > 1)?
    checkov_skips: ClassVar[dict[str, str]] = {}  # check id -> why its image cannot pass (components.checkov_skips)

    def container_name(self, role: str) -> str:
        return self.label if role == "server" else f"{self.label}-{role}"

    def image(self, model: ModelPlacement) -> str:
        return model.config.engine.image

    def downloads_weights(self, model: ModelPlacement) -> bool:
        """Whether the pod fetches its weights at start (the startup budget adds download time)."""
        return True

    def command(self, model: ModelPlacement, role: str) -> tuple[list[str] | None, list[str] | None]:
        """(command, args) of the container in a pod of ``role`` (server, leader or worker); None
        keeps the image's entrypoint or passes no args."""
        raise NotImplementedError

    def pod_environment(self, model: ModelPlacement, secrets: dict[str, str]) -> tuple[Env, Volumes, Mounts]:
        """(env, volumes, mounts) of the container, /dev/shm included; ``secrets`` maps each of
        ``secrets()``'s suffixes to the Secret's name."""
        raise NotImplementedError

    def secrets(self, model: ModelPlacement, values: dict[str, pulumi.Input[str] | None]) -> list[EngineSecret]:
        """The Secrets to create from the stack's secret values (by config key)."""
        return []

    def pod_security_context(self, model: ModelPlacement) -> dict[str, Any] | None:
        return None

    def service_account(self, model: ModelPlacement) -> str | None:
        """The pods' ServiceAccount when they need AWS credentials (EKS Pod Identity), else the default."""
        return None

    def image_pull_secrets(self, secrets: dict[str, str]) -> list[str] | None:
        return None

    def fingerprint(self, image: str, spec: dict[str, Any]) -> dict[str, Any]:
        """What the server runs: its smoke test runs again when this changes."""
        return {"image": image, "spec": spec}
