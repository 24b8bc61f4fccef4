# Two commands do everything: `make demo` (the whole pipeline on generated data) and `make test`.
# Both create ./.venv on first use and install the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test install ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/creative-assets demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: $(STAMP)
	$(BIN)/python -c "from creative_assets.instance_config import ensure_dagster_home as e; e('$(DAGSTER_HOME)')"
	$(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) .pytest_cache
