"""``python -m verify [--stack dev ...]``: synthesise each stack and check every object it declares.

Prints one line per object (``ok`` or its violations: object, field path, what would be valid),
the cross-object violations, and a summary; exits 1 if anything is wrong. Without ``--stack``,
every ``Pulumi.<stack>.yaml`` is checked. ``--build-dir DIR`` writes the synthesised files there
(as ``make synth`` does); by default they go to a temporary directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from verify import errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--stack", action="append", help="stack to check (repeatable); default: every Pulumi.<stack>.yaml"
    )
    parser.add_argument("--build-dir", help="write the synthesised files here instead of a temporary directory")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only violations and the summary")
    args = parser.parse_args(argv)

    start = time.monotonic()
    from verify.stacks import stack_names, verify_stack

    stacks = args.stack or stack_names()
    failed = False
    total_objects = total_errors = 0
    for stack in stacks:
        result = verify_stack(stack, Path(args.build_dir) if args.build_dir else None)
        print(f"== stack {stack} (Kubernetes {', '.join(result.versions)})")
        if result.error:
            print(f"FAIL {stack}: {result.error}")
            failed = True
            continue
        for checked in result.objects:
            total_objects += 1
            bad = errors(checked.violations)
            warnings = [v for v in checked.violations if v.severity != "error"]
            detail = f", {checked.enums} model enums" if checked.kind == "aws" else ""
            if not bad:
                if not args.quiet:
                    print(f"ok   {checked.name}  ({checked.file}{detail})")
            else:
                print(f"FAIL {checked.name}  ({checked.file})")
                for violation in bad:
                    print(f"     - {violation.path or '(object)'}: {violation.message}")
            for violation in warnings:
                print(f"     warning: {violation.path or '(object)'}: {violation.message}")
        for violation in result.stack_violations:
            print(f"FAIL {violation}" if violation.severity == "error" else f"warning: {violation}")
        stack_errors = len(errors(result.violations))
        total_errors += stack_errors
        failed = failed or stack_errors > 0
    elapsed = time.monotonic() - start
    print(
        f"{'FAILED' if failed else 'passed'}: {total_objects} objects in {len(stacks)} stack(s), {total_errors} "
        f"violation(s), {elapsed:.1f}s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
