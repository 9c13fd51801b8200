"""Policy pack: ``pulumi preview --policy-pack policy`` enforces the checks of ``verify`` (the same
functions the tests and ``python -m verify`` run) on what the program would deploy."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pulumi_policy import PolicyPack  # noqa: E402

from policies import POLICIES  # noqa: E402

PolicyPack(name="gpu-inference", policies=POLICIES)
