# make synth [STACK=dev]   what `pulumi preview -s $(STACK)` would declare, under mocks -> build/$(STACK)/
# make test                the tests (mocks, no cloud account, no Pulumi CLI)
# make install             the virtualenv both use (.venv), reinstalled when requirements change

STACK ?= dev
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install synth test clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

synth: $(STAMP)
	$(VENV)/bin/python -m stack.synth --stack $(STACK)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf build
