"""Tests marked ``vllm`` need the real vLLM (.venv-vllm, installed on demand) and take ~1.5 min.

They are skipped unless ``VLLM_CHECK=1``: ``make test`` stays fast. Run them with
``VLLM_CHECK=1 .venv/bin/python -m pytest -q -m vllm tests/vllm_check``.
"""

import os

import pytest

ENABLED = os.environ.get("VLLM_CHECK") == "1"
requires_vllm = [
    pytest.mark.vllm,
    pytest.mark.skipif(not ENABLED, reason="real vLLM: set VLLM_CHECK=1 (installs .venv-vllm if needed)"),
]


def pytest_configure(config):
    config.addinivalue_line("markers", "vllm: needs the real vLLM in .venv-vllm (set VLLM_CHECK=1)")
