# The README's two commands: `make run` (set up, then run the stack) and `make test` (set up, then
# run the whole suite). Set-up is idempotent: a virtual environment in .venv, the project installed
# into it (again only when pyproject.toml changes), and the pinned Kafka jars fetched with Maven.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup jars bench clean

run: setup
	$(BIN)/gdx up

test: setup
	$(BIN)/pytest

setup: $(STAMP) jars

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "gdx: Python 3.11 or newer is needed as '$(PYTHON)' — install it (apt-get install python3 python3-venv) or run make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

jars: $(STAMP)
	@$(BIN)/gdx kafka fetch

clean:
	-$(BIN)/gdx kafka down
	rm -rf $(VENV) .gdx
