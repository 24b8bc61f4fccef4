# Two commands do everything: `make demo` (the whole pipeline on generated data) and `make test`.
# Both create ./.venv on first use and install the project into it.
# DETECTRON2=<wheel file, source folder or pip VCS URL> also installs detectron2 (README: detectron2).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DETECTRON2 ?=
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test install detectron2 ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,mmm]"
	touch $(STAMP)

install: $(STAMP)

# detectron2 without its declared dependencies (their pins break Dagster, see pyproject's `detectron2`
# extra), then the extra; --no-build-isolation builds from source against the venv's torch.
detectron2: $(STAMP)
	@test -n "$(DETECTRON2)" || { echo "usage: make detectron2 DETECTRON2=<wheel, source folder or git+https URL>"; exit 2; }
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,mmm,detectron2]"
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation "$(DETECTRON2)"
	$(BIN)/python -c "import detectron2, omegaconf, antlr4; from creative_assets.selection_parser import installed_runtime_version as v; print('detectron2', detectron2.__version__, '· omegaconf', omegaconf.__version__, '· ANTLR runtime', v())"

demo: $(STAMP) $(if $(DETECTRON2),detectron2)
	$(BIN)/creative-assets demo $(ARGS)

test: $(STAMP) $(if $(DETECTRON2),detectron2)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

ui: $(STAMP)
	$(BIN)/python -c "from creative_assets.instance_config import ensure_dagster_home as e; e('$(DAGSTER_HOME)')"
	$(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) .pytest_cache
