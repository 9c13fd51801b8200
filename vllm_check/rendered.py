"""The ``vllm serve`` command lines that ``make synth`` rendered, and the config.json behind each.

Runs in the main virtualenv (PyYAML, the project's ``sizing`` catalog); no vLLM here.

Where command lines are found: every container of every pod template under
``build/<stack>/kubernetes/*.yaml`` (Deployment, StatefulSet, Job, Pod and a LeaderWorkerSet's
``leaderTemplate``/``workerTemplate``) whose ``command + args`` run ``vllm serve`` either
directly (``["vllm", "serve", MODEL, ...]``) or as the last ``vllm serve`` of a shell script
(``["sh", "-c", "...; vllm serve MODEL ..."]``). Containers that run no ``vllm serve`` (NIM
servers, Ray workers, sidecars) are listed as skipped with the reason.

Which config.json: the object's model name (``metadata.name`` / the
``app.kubernetes.io/instance`` label) is looked up in ``build/<stack>/plan.json``: a catalog model
takes ``sizing/model_configs/<name>.json``, a non-catalog one the ``architecture`` object of its
entry in ``Pulumi.<stack>.yaml``. Failing that, the rendered model reference is matched against the
catalog's ``_name_or_path`` (``-Instruct``/``-Chat`` suffixes and a ``/models/`` prefix ignored).
Keys starting with ``_`` are dropped (they are the catalog's own notes, not Hugging Face's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack.project import PROJECT

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ServeCommand:
    stack: str
    file: str  # build/<stack>/kubernetes/<file>
    kind: str
    name: str  # the model: the object's app.kubernetes.io/instance label, else its metadata.name
    role: str  # "pod", "leader" or "worker"
    container: str
    model_ref: str  # what vllm serve loads, as rendered
    args: list[str]  # everything after the model reference
    env: dict[str, str]  # the container's literal env values
    shm_size_limit: str | None  # sizeLimit of the emptyDir mounted at /dev/shm, as rendered
    source: str  # "command" (exec form) or "script" (last `vllm serve` of a shell script)
    unresolved: list[str] = field(default_factory=list)  # shell/Kubernetes variables left as text

    @property
    def where(self) -> str:
        return f"{self.stack}/{self.file} ({self.kind} {self.name}, {self.role} container {self.container})"

    @property
    def argv(self) -> list[str]:
        """As ``vllm`` sees it: ``serve MODEL ARGS...``."""
        return ["serve", self.model_ref, *self.args]

    def flag(self, *names: str) -> str | None:
        return flag_value(self.args, *names)

    @property
    def tensor_parallel_size(self) -> int:
        value = self.flag("--tensor-parallel-size", "-tp")
        try:
            return int(value) if value is not None else 1
        except ValueError:
            return -1

    @property
    def served_model_name(self) -> str:
        return self.flag("--served-model-name") or self.model_ref


@dataclass
class Skipped:
    where: str
    reason: str


def flag_value(args: list[str], *names: str) -> str | None:
    """The last value given for a flag (``--x v`` or ``--x=v``), as argparse would keep it."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def replace_flag(args: list[str], name: str, value: str | None, aliases: tuple[str, ...] = ()) -> list[str]:
    """Drop every occurrence of a flag (and its value); append ``name value`` unless value is None."""
    names = (name, *aliases)
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in names:
            skip = i + 1 < len(args) and not args[i + 1].startswith("-")
            continue
        if any(arg.startswith(n + "=") for n in names):
            continue
        out.append(arg)
    if value is not None:
        out += [name, value] if value != "" else [name]
    return out


# --- finding the command lines -------------------------------------------------------------------


def _pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        yield "pod", spec
    elif kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate") or {}
        for role, key in (("leader", "leaderTemplate"), ("worker", "workerTemplate")):
            template = lwt.get(key) or {}
            if template.get("spec"):
                yield role, template["spec"]
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        if template.get("spec"):
            yield "pod", template["spec"]
    else:
        template = spec.get("template") or {}
        if isinstance(template, dict) and template.get("spec"):
            yield "pod", template["spec"]


_SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/env"}
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _expand(text: str, env: dict[str, str], unresolved: list[str]) -> str:
    """Kubernetes ``$(VAR)`` and shell ``$VAR``/``${VAR}`` from the container's literal env."""

    def sub(match: re.Match) -> str:
        name = next(g for g in match.groups() if g)
        if name in env:
            return env[name]
        unresolved.append(match.group(0))
        return match.group(0)

    return _VAR.sub(sub, text)


_SAFE_PART = re.compile(r"""shift(\s+\d+)?|[A-Za-z_][A-Za-z0-9_]*=("[^"`]*"|'[^']*'|[^\s;`'"]*)""")


def _expand_k8s(text: str, env: dict[str, str], unresolved: list[str]) -> str:
    """Only Kubernetes' ``$(VAR)`` (the kubelet expands it in command/args before the shell runs)."""

    def sub(match: re.Match) -> str:
        if match.group(1) in env:
            return env[match.group(1)]
        unresolved.append(match.group(0))
        return match.group(0)

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)


def _serve_from_script(script: str, positional: list[str], env: dict[str, str]) -> tuple[list[str] | None, list[str]]:
    """The arguments of the script's last ``vllm serve``, as the shell would pass them.

    Runs, in bash with ``set -u`` and only the container's literal env, the script's plain variable
    assignments and ``shift``s (nothing that runs a command: no ``$(...)``, no backticks) and
    then its last ``vllm serve`` line with ``vllm`` defined as a function printing its arguments,
    with the container's positional parameters (``bash -c SCRIPT $0 $1 ...``): quoting,
    ``"$1"``, ``"$@"`` and variables expand exactly as they would in the pod.
    Returns (tokens or None, problems).
    """
    lines = re.sub(r"\\\n", " ", script).splitlines()
    serve_index = None
    for i, line in enumerate(lines):
        if re.search(r"(?:^|[;&|(\s])vllm\s+serve\b", line):
            serve_index = i
    if serve_index is None:
        return None, []
    kept = []
    for line in lines[:serve_index]:
        parts = [p.strip() for p in line.split(";") if p.strip()]
        if parts and "$(" not in line and all(_SAFE_PART.fullmatch(p) for p in parts):
            kept.append(line)
    serve_line = re.sub(r"\bexec\s+(?=vllm\s+serve\b)", "", lines[serve_index])
    program = "\n".join(["set -u", 'vllm() { printf "%s\\0" "$@"; exit 0; }', *kept, serve_line, "exit 3"])
    import subprocess

    try:
        result = subprocess.run(
            ["bash", "-c", program, *(positional or ["sh"])],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, [f"could not evaluate the script's vllm serve line: {error}"]
    if result.returncode != 0:
        return None, [
            f"evaluating the script's `vllm serve` line failed: {result.stderr.decode(errors='replace').strip()}"
        ]
    return result.stdout.decode().split("\0")[:-1], []


def serve_commands_in(obj: dict[str, Any], stack: str, file: str) -> tuple[list[ServeCommand], list[Skipped]]:
    found, skipped = [], []
    metadata = obj.get("metadata") or {}
    # The model: a LeaderWorkerSet is named <model>-lws (components.server_pod.workload_name).
    name = str((metadata.get("labels") or {}).get("app.kubernetes.io/instance") or metadata.get("name", "?"))
    kind = str(obj.get("kind", "?"))
    for role, pod in _pod_specs(obj):
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for container in pod.get("containers") or []:
            where = f"{stack}/{file} ({kind} {name}, {role} container {container.get('name')})"
            env = {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
            tokens = [str(t) for t in (container.get("command") or []) + (container.get("args") or [])]
            unresolved: list[str] = []
            source = "command"
            serve: list[str] | None = None
            for i in range(len(tokens) - 1):
                if Path(tokens[i]).name == "vllm" and tokens[i + 1] == "serve":
                    serve = [_expand(t, env, unresolved) for t in tokens[i:]]
                    break
            if serve is None and tokens and tokens[0] in _SHELLS and "-c" in tokens:
                at = tokens.index("-c") + 1
                script = tokens[at] if at < len(tokens) else ""
                positional = [_expand(t, env, unresolved) for t in tokens[at + 1 :]]
                shell_env = {
                    **env,
                    **{
                        e["name"]: f"<{e['name']} from valueFrom>"
                        for e in container.get("env") or []
                        if "value" not in e
                    },
                }
                script_tokens, problems = _serve_from_script(
                    _expand_k8s(script, env, unresolved), positional, shell_env
                )
                if problems:
                    skipped.append(Skipped(where, "; ".join(problems)))
                    unresolved.extend(problems)
                if script_tokens is not None:
                    source = "script"
                    serve = ["vllm", *script_tokens]
            if serve is None:
                skipped.append(
                    Skipped(
                        where,
                        f"runs no `vllm serve` (image {container.get('image')}, command {' '.join(tokens)[:80]!r})",
                    )
                )
                continue
            rest = serve[2:]
            if rest and not rest[0].startswith("-"):
                model_ref, args = rest[0], rest[1:]
            else:
                model_ref, args = flag_value(rest, "--model") or "", rest
            shm = None
            for mount in container.get("volumeMounts") or []:
                if mount.get("mountPath") == "/dev/shm":
                    empty_dir = (volumes.get(mount.get("name")) or {}).get("emptyDir") or {}
                    shm = empty_dir.get("sizeLimit")
            found.append(
                ServeCommand(
                    stack,
                    file,
                    kind,
                    name,
                    role,
                    str(container.get("name")),
                    model_ref,
                    args,
                    env,
                    shm,
                    source,
                    unresolved,
                )
            )
    return found, skipped


def stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def find_serve_commands(build_dir: Path, stack_names: list[str]) -> tuple[list[ServeCommand], list[Skipped]]:
    found, skipped = [], []
    for stack in stack_names:
        directory = build_dir / stack / "kubernetes"
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} does not exist: run `make synth STACK={stack}` first")
        for path in sorted(directory.glob("*.yaml")):
            for obj in yaml.safe_load_all(path.read_text()):
                if isinstance(obj, dict):
                    f, s = serve_commands_in(obj, stack, path.name)
                    found += f
                    skipped += s
    return found, skipped


# --- the config.json behind each command line -----------------------------------------------------


def clean_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _catalog() -> dict[str, Path]:
    from sizing.models import CONFIG_DIR

    return {p.stem.lower(): p for p in sorted(CONFIG_DIR.glob("*.json"))}


def _normalise_repo(ref: str) -> str:
    ref = ref.strip().rstrip("/")
    ref = re.sub(r"^/models/", "", ref)
    return re.sub(r"-(instruct|chat|it)$", "", ref, flags=re.IGNORECASE).lower()


def model_config_for(command: ServeCommand, build_dir: Path, root: Path = ROOT) -> tuple[dict[str, Any], str]:
    """(config.json without ``_`` keys, where it came from) for the model a command line serves."""
    catalog = _catalog()
    plan_path = build_dir / command.stack / "plan.json"
    entry = None
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
        for model in plan.get("models", []):
            if model.get("name") == command.name:
                entry = model
    if entry is not None:
        key = str(entry.get("model", "")).lower()
        if key in catalog:
            return clean_config(json.loads(catalog[key].read_text())), f"catalog {catalog[key].name}"
        stack_file = root / f"Pulumi.{command.stack}.yaml"
        config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
        for model in config.get(f"{PROJECT}:models") or []:
            if model.get("name") == command.name and isinstance(model.get("architecture"), dict):
                return clean_config(model["architecture"]), f"{stack_file.name} models[{command.name}].architecture"
    wanted = _normalise_repo(command.model_ref)
    for path in catalog.values():
        data = json.loads(path.read_text())
        if _normalise_repo(str(data.get("_name_or_path", ""))) == wanted:
            return clean_config(data), f"catalog {path.name} (by repo id)"
    raise LookupError(
        f"{command.where}: cannot map model {command.model_ref!r} to a config.json (not in plan.json or the catalog)"
    )
