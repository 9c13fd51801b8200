# make synth [STACK=dev]   what `pulumi preview -s $(STACK)` would declare, under mocks -> build/$(STACK)/
# make test                the tests (mocks, no cloud account, no Pulumi CLI)
# make verify              every rendered object of every stack against Kubernetes schemas, vendored CRDs, API-server
#                          rules, chart values, AWS models (writes build/<stack>/ as make synth does); the
#                          monitoring objects of every stack under each Prometheus mode (CRDs, PromQL, metrics); then a
#                          checkov scan of build/<stack>/kubernetes/ failing on any finding without a skip reason
# make verify-vllm         the rendered `vllm serve` lines through the real vLLM (CPU build, its own venv),
#                          a rendered TP=2 server started for real with the pod's /dev/shm, and the smoke test
# make lint                ruff (lint and format check) and import-linter's layer contracts
# make install             the virtualenv the above use (.venv), reinstalled when requirements change;
#                          the project itself is installed editable, so no module edits sys.path
# make policy-venv         the policy pack's own virtualenv (pulumi-policy pins protobuf/grpcio)

STACK ?= dev
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
POLICY_STAMP := policy/venv/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: install synth test lint verify verify-vllm test-vllm policy-venv clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(VENV)/bin/pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

synth: $(STAMP)
	$(VENV)/bin/python -m stack.synth --stack $(STACK)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

verify: $(STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/python -m verify --build-dir build
	$(VENV)/bin/python -m verify.monitoring
	$(VENV)/bin/python -m verify.checkov --build-dir build

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --disable-pip-version-check -q -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

verify-vllm: $(STAMP)
	$(VENV)/bin/python -m vllm_check

test-vllm: $(STAMP)
	VLLM_CHECK=1 $(VENV)/bin/python -m pytest -q -m vllm tests/vllm_check

policy-venv: $(POLICY_STAMP)

$(POLICY_STAMP): policy/requirements.txt
	test -x policy/venv/bin/python || $(PYTHON) -m venv policy/venv
	policy/venv/bin/pip install --disable-pip-version-check -q -r policy/requirements.txt
	policy/venv/bin/pip install --disable-pip-version-check -q --no-deps -e .
	touch $(POLICY_STAMP)

clean:
	rm -rf build
