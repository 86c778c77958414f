# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test demo lint docker clean-containers

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,embedded]'
	touch $(STAMP)

docker:
	@bash scripts/ensure-docker.sh

test: setup docker
	$(BIN)/pytest $(PYTEST_ARGS)

DEMO_ISSUE ?= swe-monkeys__minicalc-1
DEMO_SAMPLES ?= 4

# The main job on the embedded default: sample candidates for a mini-benchmark issue with the
# CPU model (llama.cpp + 270M Gemma), verify each distinct patch in Docker, print the table.
demo: setup docker
	$(BIN)/harness run --issue $(DEMO_ISSUE) --samples $(DEMO_SAMPLES) --max-tokens 512

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-containers: setup
	$(BIN)/harness clean
