"""What a Kubernetes manifest is to the checks: its name for people, the pod templates it creates
pods from, and how a field path inside it is spelt (``spec.template.spec.containers[0].image``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def field_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def describe(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "<unnamed>")
    namespace = metadata.get("namespace")
    return f"{obj.get('kind', '<no kind>')} {namespace + '/' if namespace else ''}{name}"


def pod_templates(obj: dict) -> list[tuple[str, dict]]:
    """(path, PodTemplateSpec-shaped dict) for every pod template the object creates pods from."""
    kind = obj.get("kind")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out: list[tuple[str, dict]] = []
    if kind == "Pod":
        return [("", {"metadata": obj.get("metadata") or {}, "spec": spec})]
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        return [("spec.jobTemplate.spec.template", template)] if isinstance(template, dict) else []
    if kind == "PodTemplate":
        return [("template", obj["template"])] if isinstance(obj.get("template"), dict) else []
    if kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        for key in ("leaderTemplate", "workerTemplate"):
            if isinstance(lwt.get(key), dict):
                out.append((f"spec.leaderWorkerTemplate.{key}", lwt[key]))
        return out
    if isinstance(spec.get("template"), dict):
        return [("spec.template", spec["template"])]

    # Unknown custom resources: any nested "template"/"*Template" holding spec.containers.
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                sub = join_path(path, key)
                if (
                    (key == "template" or key.endswith("Template"))
                    and isinstance(value, dict)
                    and isinstance(
                        (value.get("spec") or {}).get("containers") if isinstance(value.get("spec"), dict) else None,
                        list,
                    )
                ):
                    out.append((sub, value))
                else:
                    walk(value, sub)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(spec, "spec")
    return out
