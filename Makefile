# knowbound: `make demo` and `make test` each bootstrap .venv on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU wheel here; on a GPU machine the same pin installs the CUDA build.
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?= -m "not slow"

.PHONY: venv test test-slow test-all demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

test-all: $(STAMP)
	$(PY) -m pytest

# The main job: build the tiny knowledge world (cached) and run the whole loop on it.
demo: $(STAMP)
	$(VENV)/bin/knowbound world build --preset tiny
	$(VENV)/bin/knowbound run configs/demo.yaml

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
