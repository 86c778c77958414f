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
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

docker:
	@bash scripts/ensure-docker.sh

test: setup docker
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup docker
	$(BIN)/harness validate --dataset mini

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-containers: setup
	$(BIN)/harness clean
