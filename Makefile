# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench lint install clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e clients/python
	$(PY) -m pip install -q -e '.[test,video,plot]'
	touch $@

install: $(STAMP)

## Run the service on its embedded defaults with the built-in rig simulator publishing into it.
demo: $(STAMP)
	$(VENV)/bin/warpsync demo

## The test suite (what CI runs). Benchmarks are not part of it.
test: $(STAMP)
	$(PY) -m pytest tests

## Benchmarks against the peers named in the issues (installs the `bench` extra).
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	for b in tests/benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

## Lint and format check (ruff, pinned; not part of `make test`): the tree is clean, keep it so.
lint: $(STAMP)
	$(PY) -m pip install -q ruff==0.17.6
	$(VENV)/bin/ruff check service clients tests
	$(VENV)/bin/ruff format --check service clients tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info service/*.egg-info clients/python/*.egg-info
