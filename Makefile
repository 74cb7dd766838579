# The README's two commands: `make run` (set up, then run the stack) and `make test` (set up, then
# run the whole suite). Set-up is idempotent: a virtual environment in .venv, the project installed
# into it (again only when pyproject.toml changes), the system tools installed when missing, and
# the pinned Kafka jars fetched and the pinned schema registry built with Maven.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check setup tools jars bytecode bench clean

run: setup
	$(BIN)/gdx up

test: setup check
	$(BIN)/pytest

# The code's shape, before any test runs: lint and format (ruff), types (mypy, strict). The rooms'
# import contract (import-linter) runs inside the suite, tests/test_structure_imports.py.
check: $(STAMP)
	@echo "gdx: ruff check, ruff format --check, mypy …"
	@$(BIN)/ruff check --quiet .
	@$(BIN)/ruff format --check --quiet .
	@$(BIN)/mypy

setup: tools $(STAMP) jars bytecode

# System tools first (Java, Maven, Prometheus, PostgreSQL, Chromium): installed from Debian's
# packages when missing and run as root, else one line naming what to install.
tools:
	@deploy/ensure-tools.sh

$(STAMP): pyproject.toml | tools
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "gdx: Python 3.11 or newer is needed as '$(PYTHON)' — install it (apt-get install python3 python3-venv) or run make PYTHON=python3.11"; exit 1; }
	@echo "gdx: installing the project and its Python packages into $(VENV) …"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@# setuptools announces every editable install in a screen-long notice that asks nothing of us.
	@PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

jars: $(STAMP)
	@$(BIN)/gdx kafka fetch
	@$(BIN)/gdx registry fetch

# The project's modules compiled once here, not by every `gdx` process it starts: where
# PYTHONDONTWRITEBYTECODE is set (CI's environment sets it), Python caches no bytecode itself, and
# each of the suite's few hundred `gdx` processes compiled them all again (0.25 s each). Only
# modules changed since the last run are compiled again; an edited one is never run stale.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 foundation schemas agencies linkage monitoring streams

clean:
	-$(BIN)/gdx registry down
	-$(BIN)/gdx kafka down
	rm -rf $(VENV) .gdx
