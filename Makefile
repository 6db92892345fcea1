# knowbound: `make demo` and `make test` each bootstrap .venv on a fresh clone, from the lock.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PIP_PIN ?= pip==26.3
# The CPU wheel here; on a GPU machine the same pin installs the CUDA build.
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?= -m "not slow"

.PHONY: venv test test-slow test-all demo demo-real llama-server lock clean

# Every package at the version in the lock (torch first, so no other package pulls a CUDA build),
# then knowbound itself without resolving anything again.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(PIP_PIN)"
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
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
	$(VENV)/bin/knowbound world build --preset v2
	$(VENV)/bin/knowbound run configs/demo.yaml

# The loop on a real instruct model offline: SmolLM2-135M-Instruct on GeoNames facts.
demo-real: $(STAMP)
	$(VENV)/bin/knowbound run configs/smollm2-facts.yaml

# llama.cpp's OpenAI-compatible server in its own environment (llama-cpp-python compiles llama.cpp:
# about 3 minutes on 2 cores), for the slow server test and benchmarks/llama_server.py. Built for
# AVX2, not -march=native: a native build crashed in its first decode on an AVX-512/AMX CPU. No
# wheel cache, so a wheel built with other flags is never reused.
LLAMA_VENV ?= .venv-llama
LLAMA_CPP_PIN ?= llama-cpp-python[server]==0.3.36
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
$(LLAMA_VENV)/.installed:
	$(PYTHON) -m venv $(LLAMA_VENV)
	$(LLAMA_VENV)/bin/python -m pip install --quiet "$(PIP_PIN)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(LLAMA_VENV)/bin/python -m pip install \
		--quiet --no-cache-dir --no-binary llama-cpp-python "$(LLAMA_CPP_PIN)"
	touch $@

llama-server: $(LLAMA_VENV)/.installed

# Re-resolve the newest versions that pyproject.toml allows, in a scratch venv, into the lock.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet "$(PIP_PIN)"
	.lock-venv/bin/python -m pip install --quiet "$(TORCH_PIN)"
	.lock-venv/bin/python -m pip install --quiet -e ".[all,dev]"
	sed -n '/^#/p' $(LOCK) > $(LOCK).new
	.lock-venv/bin/python -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+.*/torch==\1/' >> $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(LLAMA_VENV) .pytest_cache build dist src/*.egg-info
