"""``make synth [STACK=dev]``: what ``pulumi preview -s <stack>`` would declare, without a cloud.

Runs the real ``__main__.py`` in-process under the Pulumi SDK's mocks in preview mode, with the
config of ``Pulumi.<stack>.yaml``, then prints the sizing plan and the resource tree and writes:

- ``build/<stack>/plan.json``: the placement and every model's sizing plan;
- ``build/<stack>/kubernetes/<kind>-<name>.yaml``: every Kubernetes object (the inputs the
  provider receives are the complete manifest; the Helm release's inputs, values included);
- ``build/<stack>/aws/<resource>-<name>.json``: every AWS (and pulumi-eks) resource's inputs;
- ``build/<stack>/outputs.json``: the stack outputs (secrets masked).

Values only known after an update print as ``<computed>``; secrets as ``[secret]``. Output is
deterministic (sorted keys, no timestamps): the build directory of the stack is cleared first,
and two runs give identical files, so a pull request's diff of ``build/`` reads like a preview.
Secure config values (``secure: v1:...``) cannot be decrypted here and are replaced by
placeholders; stack references read mocked outputs (``stack.mockrun.DEFAULT_STACK_REFERENCES``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from sizing.instances import INSTANCES
from sizing.startup import START_ESTIMATE_ANNOTATION
from stack.autoscaling_report import report_lines
from stack.mockrun import ROOT, Run, Secret, Unknown, load_stack_config, run_program
from stack.plan_report import explanation_lines, idle_text, traffic_lines
from stack.stack_file import StackFileError

COMPUTED = "<computed>"
SECRET = "[secret]"


def clean(value: Any) -> Any:
    """Inputs -> plain data for files: secrets masked, unknowns marked, whole floats as ints."""
    if isinstance(value, Secret):
        return SECRET
    if isinstance(value, Unknown):
        return COMPUTED
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {k: clean(v) for k, v in sorted(value.items())}
    return value


def _secrets_from_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    plain, secrets = {}, {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secrets[key] = f"placeholder-for-{key.split(':')[-1]}"
        else:
            plain[key] = value
    return plain, secrets


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text).strip("-").lower()


def kubernetes_file(registration) -> str:
    inputs = registration.inputs
    if registration.type == "kubernetes:helm.sh/v3:Release":
        return f"helmrelease-{_slug(str(inputs.get('name', registration.name)))}.yaml"
    kind = str(inputs.get("kind", registration.type.rsplit(":", 1)[-1]))
    name = (inputs.get("metadata") or {}).get("name", registration.name)
    return f"{_slug(kind)}-{_slug(str(name))}.yaml"


def aws_file(registration) -> str:
    package, module_type, kind = registration.type.split(":")
    module = module_type.split("/")[0]
    prefix = package if package == "eks" else module
    return f"{_slug(prefix)}-{_slug(kind)}-{_slug(registration.name)}.json"


def write_build(run: Run, plan: dict[str, Any], out: Path) -> list[Path]:
    if out.exists():
        shutil.rmtree(out)
    (out / "kubernetes").mkdir(parents=True)
    (out / "aws").mkdir(parents=True)
    written = []

    def write(path: Path, text: str) -> None:
        if path.exists():
            raise RuntimeError(f"two resources map to {path}")
        path.write_text(text)
        written.append(path)

    write(out / "plan.json", json.dumps(clean(plan), indent=2, sort_keys=True) + "\n")
    outputs = {k: (SECRET if k in run.secret_outputs else clean(v)) for k, v in run.outputs.items()}
    write(out / "outputs.json", json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    for registration in run.registrations:
        if registration.read:
            continue  # an existing object the stack reads (shown in the resource tree), not one it declares
        if registration.type.startswith("kubernetes:") and registration.custom:
            write(
                out / "kubernetes" / kubernetes_file(registration),
                yaml.safe_dump(clean(registration.inputs), sort_keys=True, default_flow_style=False),
            )
        elif registration.type.startswith(("aws:", "eks:")):
            write(
                out / "aws" / aws_file(registration),
                json.dumps(clean(registration.inputs), indent=2, sort_keys=True) + "\n",
            )
    return written


def resource_tree(run: Run) -> list[str]:
    children: dict[str, list] = {}
    urns = {r.urn for r in run.registrations}
    for registration in run.registrations:
        parent = registration.parent if registration.parent in urns else ""
        children.setdefault(parent, []).append(registration)
    lines = [f"pulumi:pulumi:Stack  gpu-inference-{run.stack}"]

    def walk(parent: str, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            tags = []
            if child.remote:
                tags.append("remote component")
            if child.read:
                tags.append("read")
            lines.append(f"{'    ' * depth}+ {child.type}  {child.name}{'  (' + ', '.join(tags) + ')' if tags else ''}")
            walk(child.urn, depth + 1)

    walk("", 1)
    return lines


def plan_summary(plan: dict[str, Any]) -> list[str]:
    lines = ["Sizing plan:"]
    header = (
        f"  {'model':<20} {'node group':<16} {'instance':<14} {'GPU':<11} {'TP':>3} {'PP':>3} {'GPUs/pod':>8} "
        f"{'replicas':>8} {'KV tokens':>10} {'max conc.':>9}  note"
    )
    lines.append(header)
    for model in plan["models"]:
        p = model["plan"]
        note = "MARGINAL: close to the limit" if p.get("marginal") else ""
        lines.append(
            f"  {model['name']:<20} {model['nodeGroup']:<16} {p['instance_type']:<14} {p['gpu']:<11} "
            f"{p['tensor_parallel_size']:>3} {p['pipeline_parallel_size']:>3} {p['gpus_per_pod']:>8} "
            f"{model['replicas']:>8} "
            f"{p.get('kv_cache_tokens', 0):>10} {p.get('max_concurrency', 0):>9.1f}  {note}"
        )
        lines += explanation_lines(model)
    lines.append("Node groups:")
    for group in plan["nodeGroups"]:
        lines.append(
            f"  {group['name']:<20} {group['instanceType']:<14} needs {group['neededNodes']} node(s), desired "
            f"{group['desiredNodes']} (min {group['minNodes']}, max {group['maxNodes']}); "
            f"models: {', '.join(group['models']) or '-'}"
            + idle_text(group, INSTANCES[group["instanceType"]].gpus_per_node)
        )
    return lines


def accounting_summary(plan: dict[str, Any]) -> list[str]:
    """Which vLLM release's memory accounting each model was planned with, measured or not."""
    lines = ["Sizing accounting (the vLLM release each model runs):"]
    for model in plan["models"]:
        sizing = model.get("sizingAccounting")
        if sizing:
            lines.append(f"  {model['name']:<20} {sizing['label']}")
    return lines


def start_estimates(run: Run) -> list[str]:
    """Each server's start-time estimate, from the annotation on its workload."""
    lines = []
    for registration in run.registrations:
        metadata = registration.plain_inputs.get("metadata") if registration.type.startswith("kubernetes:") else None
        estimate = ((metadata or {}).get("annotations") or {}).get(START_ESTIMATE_ANNOTATION)
        if estimate:
            lines.append(f"  {registration.name:<20} {estimate}")
    return ["Start time per replica (sizing.startup):", *lines] if lines else []


def synth(stack: str, build_root: Path, preview: bool = True) -> Run:
    config = load_stack_config(stack)
    plain, secrets = _secrets_from_config(config)
    run = run_program(plain, stack=stack, preview=preview, secrets=secrets)
    plan = run.outputs["plan"]
    out = build_root / stack
    written = write_build(run, plan, out)
    for line in plan_summary(plan) + traffic_lines(plan) + accounting_summary(plan):
        print(line)
    for line in report_lines(plan):
        print(line)
    for line in start_estimates(run):
        print(line)
    print()
    print(f"Resources ({'preview' if preview else 'update'} under mocks, {len(run.registrations)} registrations):")
    for line in resource_tree(run):
        print(line)
    for level, message in run.logs:
        if level in ("warning", "error"):
            print(f"{level}: {message}")
    print()
    shown = out.relative_to(build_root.parent) if out.is_relative_to(build_root.parent) else out
    print(f"wrote {len(written)} files under {shown}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--build-dir", default=str(ROOT / "build"))
    parser.add_argument("--update", action="store_true", help="mock an update instead of a preview")
    args = parser.parse_args(argv)
    import pulumi

    try:
        synth(args.stack, Path(args.build_dir), preview=not args.update)
    except pulumi.RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
