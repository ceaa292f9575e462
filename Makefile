# Qala: `make demo` starts the hub with demo data; `make test` runs the whole suite; `make lint` checks style
# and types. Each target creates .venv and installs the project when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Schemathesis (the suite's fuzz test) pins jsonschema-rs < 0.61, which the hub cannot use (pyproject.toml, `fuzz`);
# it and the packages it needs beyond `dev` are installed without their pins.
# openapi-python-client (generated-client test) likewise pins typer < 0.28, older than the CLI's help needs.
FUZZ := 'schemathesis>=4.32' harfile hypothesis-graphql graphql-core pyrate-limiter werkzeug \
	'openapi-python-client>=0.21' ruamel.yaml shellingham

NPM_TOOLS := @redocly/cli @stoplight/spectral-cli

.PHONY: demo install test lint fmt openapi bench clean tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(FUZZ)
	touch $(STAMP)

install: $(STAMP)

# The demo's home is QALA_HOME (default ~/.local/share/qala); DEMO_ARGS passes options, e.g. DEMO_ARGS="--port 8001".
demo: $(STAMP)
	bin/qala demo $(DEMO_ARGS)

# OpenAPI linters that integrators run on our documents (Node tools from the npm registry); the suite runs them.
tools:
	@command -v redocly >/dev/null && command -v spectral >/dev/null || npm install -g --silent $(NPM_TOOLS)

# Two test processes (pytest-xdist), each running whole test files: much of the suite waits on servers, browsers and
# subprocesses, so two processes on two cores finish well before one. `make test TEST_WORKERS=0` runs it in one.
TEST_WORKERS ?= 2
test: $(STAMP) tools
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: $(STAMP)
	$(BIN)/qala openapi build

# Every benchmark at full size; `make bench BENCH_ARGS=--quick` runs each at smoke-test size.
bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script $(BENCH_ARGS) || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
