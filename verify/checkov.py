"""``python -m verify.checkov``: a security scan of every stack's rendered manifests, failing on what is unexplained.

Runs checkov (``checkov -d build --framework kubernetes --compact -o json``, offline:
``--skip-download``) over the ``build/<stack>/kubernetes/`` that ``make synth``/``make verify`` wrote,
and prints the failed checks grouped by check id, each with the objects that fail it. It exits 1 when a check
fails or is skipped without a reason, 2 when the scan itself cannot run, 0 otherwise.
Checkov lives in its own virtualenv (``.venv-checkov``, ``requirements-checkov.txt``):
it pins boto3/botocore, packaging and urllib3 below what the project's ``.venv`` resolves to.
Objects can carry checkov's own skip annotations (``checkov.io/skip<N>: CKV_K8S_<id>=<reason>``);
skipped checks are listed with their reasons (``components.checkov_skips`` writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
NO_REASON = "No comment provided"  # what checkov records for a skip annotation without ``=<reason>``


@dataclass
class Finding:
    check_id: str
    check_name: str
    objects: list[str] = field(default_factory=list)  # "<stack>: <Kind.namespace.name>"


@dataclass
class Scan:
    failed: dict[str, Finding]  # by check id
    skipped: dict[str, Finding]  # skipped by annotation: objects carry the reason
    passed: int
    seconds: float
    unexplained: dict[str, Finding] = field(default_factory=dict)  # skipped without a reason: a failure too

    @property
    def clean(self) -> bool:
        return not self.failed and not self.unexplained


def _documents(text: str) -> list[dict]:
    """checkov prints one JSON document per scanned directory, back to back."""
    decoder, documents, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return documents
        document, i = decoder.raw_decode(text, i)
        documents.extend(document if isinstance(document, list) else [document])


def _stack_of(file_path: str, stacks: list[str]) -> str | None:
    """``/build/prod/kubernetes/deployment-x.yaml`` -> ``prod`` (None: not a scanned stack's manifest)."""
    parts = Path(file_path).parts
    for i, part in enumerate(parts[:-1]):
        if part in stacks and parts[i + 1] == "kubernetes":
            return part
    return None


def scan(build: Path, stacks: list[str], checkov: Path = CHECKOV) -> Scan:
    """One checkov run over ``build`` (checkov mixes up results when given several ``-d``), findings
    kept for ``build/<stack>/kubernetes/`` of the stacks asked for."""
    if not checkov.exists():
        raise FileNotFoundError(f"{checkov} not found: `make verify` installs it from requirements-checkov.txt")
    command = [str(checkov), "-d", str(build), "--framework", "kubernetes", "--compact", "-o", "json"]
    command += ["--skip-download"]
    start = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    )
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"checkov failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    failed: dict[str, Finding] = {}
    skipped: dict[str, Finding] = {}
    unexplained: dict[str, Finding] = {}
    passed = 0
    for document in _documents(done.stdout):
        results = document.get("results") or {}
        passed += len([c for c in results.get("passed_checks") or [] if _stack_of(c.get("file_path", ""), stacks)])
        for kind in ("failed_checks", "skipped_checks"):
            for check in results.get(kind) or []:
                stack = _stack_of(check.get("file_path", ""), stacks)
                if stack is None:
                    continue
                reason = (check.get("check_result") or {}).get("suppress_comment") if kind == "skipped_checks" else ""
                if kind == "skipped_checks" and (not (reason or "").strip() or reason == NO_REASON):
                    reason, into = "", unexplained
                else:
                    into = failed if kind == "failed_checks" else skipped
                finding = into.setdefault(check["check_id"], Finding(check["check_id"], check.get("check_name", "")))
                where = f"{stack}: {check.get('resource')}"
                finding.objects.append(f"{where} ({reason})" if reason else where)
    return Scan(failed, skipped, passed, seconds, unexplained)


def report(result: Scan) -> str:
    lines = []
    for check_id, finding in sorted(result.failed.items(), key=lambda item: (-len(item[1].objects), item[0])):
        lines.append(f"{check_id}  {finding.check_name}  ({len(finding.objects)} object(s))")
        lines += [f"     - {o}" for o in sorted(set(finding.objects))]
    for check_id, finding in sorted(result.unexplained.items()):
        lines.append(f"{check_id}  {finding.check_name}  skipped without a reason ({len(finding.objects)} object(s))")
        lines += [f"     - {o}" for o in sorted(set(finding.objects))]
    for check_id, finding in sorted(result.skipped.items()):
        lines.append(f"skipped {check_id}  {finding.check_name}")
        lines += [f"     - {o}" for o in sorted(set(finding.objects))]
    failures = sum(len(f.objects) for f in result.failed.values())
    bare = sum(len(f.objects) for f in result.unexplained.values())
    verdict = "clean" if result.clean else "UNEXPLAINED FINDINGS (fix the object or skip with a reason)"
    lines.append(
        f"checkov {verdict}: {failures} failed check(s) across {len(result.failed)} check id(s), "
        f"{bare} skipped without a reason, "
        f"{result.passed} passed, {sum(len(f.objects) for f in result.skipped.values())} skipped, {result.seconds:.1f}s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from verify.stacks import stack_names

    parser = argparse.ArgumentParser(prog="python -m verify.checkov", description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", default="build", help="where make synth / make verify wrote the stacks")
    parser.add_argument("--stack", action="append", help="stack to scan (repeatable); default: every stack")
    args = parser.parse_args(argv)
    build = Path(args.build_dir)
    stacks = args.stack or stack_names()
    missing = [str(build / s / "kubernetes") for s in stacks if not (build / s / "kubernetes").is_dir()]
    if missing:
        print(f"checkov: not rendered: {', '.join(missing)} (run make synth or python -m verify --build-dir build)")
        return 2
    try:
        result = scan(build, stacks)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"checkov: {error}")
        return 2
    print(report(result))
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
