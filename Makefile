# thumbgen — `make run` (the whole pipeline locally) and `make test` (the whole suite);
# `make bench` (engine, pipeline latency, cold starts, load and faults, the rate limit's cost), `make screenshot`, and `make package` / `make deploy STAGE=…` / `make destroy STAGE=…` (infra/Makefile.inc).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench venv clean screenshot

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml scripts/find-python312
	@test -x $(PY) && $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
		|| { rm -rf $(VENV) && "$$(scripts/find-python312)" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade "pip>=24,<26.3"  # chalice 1.34 needs pip < 26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . || $(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/thumbgen run

# Line coverage of app.py, chalicelib/ and thumbgen/, the processes the tests start included
# ([tool.coverage.*] in pyproject.toml); below fail_under the run fails.
test: $(STAMP)
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered

bench: $(STAMP)
	$(PY) -m bench.engine
	$(PY) -m bench.pipeline
	$(PY) -m bench.coldstart
	$(PY) -m bench.load
	$(PY) -m bench.ratelimit

# docs/screenshot.png: the web page with thumbnails, in headless Chromium on a fresh stack.
screenshot: $(STAMP)
	$(PY) -m tests.browser.screenshot

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist .coverage .coverage.*

include infra/Makefile.inc
