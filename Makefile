# lantk: two commands on a fresh machine with Python 3.11+:  make book  and  make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lantk-installed
PROFILE ?= default
PYTEST_ARGS ?=
OFFLINE ?=

.PHONY: help venv book test bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=default|smoke|paper, OFFLINE=1 (no download) (make book), PYTEST_ARGS=... (make test), PYTHON=python3"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install lantk with its book and test extras

book: $(STAMP) ## execute every chapter (PROFILE=default: about 30 min on 2 cores with the shared data) and render the HTML book
	$(VENV)/bin/lantk book --profile $(PROFILE) $(if $(OFFLINE),--offline,)

test: $(STAMP) ## run the whole test suite (real-data tests need LANTK_DATA_DIR)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP) ## run the benchmark scripts (prints throughput figures)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## remove build output and run results (keeps .venv)
	rm -rf _build runs .pytest_cache
