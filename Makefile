# One command to set up and demo, one to set up and test. Both create .venv if it is missing.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama.cpp is built for this machine's CPU (-DGGML_NATIVE=ON: AVX-512 where there is one, 1.36x
# to 1.7x the portable build's prompt speed there, by CPU). LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF builds the portable
# AVX2 one, e.g. for an image that runs on other CPUs. The gate holds either build to its own baseline.
# -mno-amx-int8: ggml's AMX code (compiled in where the CPU has AMX) crashes on the default model's
# first prompt batch (an AMX_INT8 CPU, 2026-12-07; llama.cpp#20824), so the native build leaves it out.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8
# The pin pyproject.toml holds, so the build below is the one `pip install -e .` keeps.
LLAMA_PIN := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
# Which build is installed: a stamp per LLAMA_CMAKE_ARGS, so that changing them rebuilds it.
LLAMA_STAMP := $(VENV)/.llama-$(shell echo '$(LLAMA_PIN) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)
# Compiled here, not taken from pip's cache (which ignores CMAKE_ARGS); the stamp then says which build it is.
BUILD_LLAMA := CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --progress-bar off --no-cache-dir
MARK_LLAMA := rm -f $(VENV)/.llama-* && touch $(LLAMA_STAMP)

.PHONY: install demo test test-fast eval bench clean browser promtool screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off -q --upgrade pip
	# torch first and pinned: 2.13.0 is the local CPU wheel, anything else pulls CUDA.
	$(BIN)/pip install --progress-bar off torch==2.13.0
	$(BUILD_LLAMA) $(LLAMA_PIN)
	$(BIN)/pip install --progress-bar off -e '.[dev]'
	$(MARK_LLAMA)
	touch $(STAMP)

install: $(STAMP)
	@test -f $(LLAMA_STAMP) || { echo "building llama-cpp-python with $(LLAMA_CMAKE_ARGS)" && \
		$(BUILD_LLAMA) -q --force-reinstall --no-deps $(LLAMA_PIN) && $(MARK_LLAMA); }

demo: install
	$(BIN)/rag index
	$(BIN)/rag ask "How many agreements were signed?"

test: install browser promtool
	$(BIN)/python -m pytest -q -rs --durations=25

# The page's tests need a real browser: Debian's chromium, installed when missing and we may (root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q && apt-get install -y -q chromium; } \
		|| echo "note: no chromium, so the browser tests will be skipped: apt-get install -y chromium (as root)"

# The alert rules' checks need promtool: Debian's prometheus package (no daemon is started), likewise.
promtool:
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; } \
		|| echo "note: no promtool, so the alert rules' checks will be skipped: apt-get install -y prometheus (as root)"

# The README's pictures of the page (light, dark, phone), from a real answer of the default models.
screenshots: install browser
	$(BIN)/python docs/page/screenshots.py

test-fast: install
	$(BIN)/python -m pytest -q -m "not model"

clean:
	rm -rf $(VENV) indexes/*/ .pytest_cache
