# One entry point for people and CI. Every target installs what it needs itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick test-stack lint typecheck bench bench-nannyml prometheus chromium app-venvs bentoml-venvs clean

# The C scanner is built by the install: rebuild when it changes.
$(STAMP): pyproject.toml setup.py otelml/gateway/decode/_otlpscan.c otelml/instrument/_otlpencode.c otelml/instrument/_leanattrs.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[gateway,test]'
	touch $(STAMP)

# The demo's own environment: otelml[demo] only (gateway, FastAPI, uvicorn), no test toolchain.
DEMO_VENV := .venv-demo
$(DEMO_VENV)/.installed: pyproject.toml setup.py otelml/gateway/decode/_otlpscan.c
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q --upgrade pip
	$(DEMO_VENV)/bin/pip install -q '.[demo]'
	touch $@

## demo: gateway + a FastAPI model service + traffic (with a drift phase); serves the UI until Ctrl-C
demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/otelml demo $(DEMO_ARGS)

## prometheus: Debian's prometheus package, needed by the integration tests
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
	@command -v prometheus >/dev/null 2>&1 || { echo "prometheus could not be installed" >&2; exit 1; }

## chromium: Debian's chromium, which the UI tests drive through Playwright
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { echo "chromium could not be installed" >&2; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check otelml tests bench examples deploy
	$(BIN)/ruff format --check otelml tests bench examples deploy

typecheck: $(STAMP)
	$(BIN)/mypy

## app-venvs: the app side's install matrix: fresh venvs, each with its Python's own pip, that
## `pip install` the built wheel beside the OpenTelemetry SDK (current and 1.20), BentoML 1.4
## (newest SDK and floor pins) or opentelemetry-distro; prints how long each resolve took
app-venvs: $(STAMP)
	PYTHON=$(PYTHON) $(BIN)/python -m tests.install.matrix

## bentoml-venvs: only the BentoML example's two environments (.venv-bentoml, .venv-bentoml-floor)
bentoml-venvs: $(STAMP)
	PYTHON=$(PYTHON) $(BIN)/python -m tests.install.matrix bentoml bentoml-floor

# The Compose Specification's JSON schema, as docker-compose 1.29.2 ships it (read from the wheel
# by tests/deploy/test_compose.py; nothing of docker-compose is installed).
COMPOSE_SCHEMA := .cache/docker_compose-1.29.2-py2.py3-none-any.whl
$(COMPOSE_SCHEMA):
	mkdir -p .cache
	$(PYTHON) -m pip download -q --no-deps --disable-pip-version-check docker-compose==1.29.2 -d .cache

REQUIRE_ALL := OTELML_REQUIRE_ALL=1 OTELML_REQUIRE_PROMETHEUS=1 OTELML_REQUIRE_NATIVE=1

## test: lint, type check and the whole test suite against real components (what CI runs)
test: $(STAMP) app-venvs prometheus chromium $(COMPOSE_SCHEMA) lint typecheck
	$(REQUIRE_ALL) $(BIN)/pytest -q -m "not official_charts"

## test-quick: lint, type check and every test not marked slow (no BentoML serve, no
## minute-long load or soak): the inner loop, a couple of minutes on a quiet machine
test-quick: $(STAMP) app-venvs prometheus chromium $(COMPOSE_SCHEMA) lint typecheck
	$(REQUIRE_ALL) $(BIN)/pytest -q -m "not slow and not official_charts"

## test-stack: the stack chart rendered with the official charts (their sources in
## OTELML_OFFICIAL_CHARTS=DIR; no chart repository is reachable from CI): deploy/README.md
test-stack: $(STAMP)
	$(REQUIRE_ALL) $(BIN)/pytest -q -m official_charts tests/deploy/test_stack_chart.py

BENCH_VENV := .bench-venv

# Evidently (the yardstick of the drift benchmark) needs pandas < 3: its own environment.
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "evidently==0.7.*" "pandas<3" pyarrow
	touch $@

# NannyML (the yardstick of label-free performance estimation) pulls pandas 3, which the
# Evidently environment cannot take: an environment of its own. statsmodels is imported by
# nannyml but not declared by it.
NANNYML_VENV := .bench-nannyml-venv
$(NANNYML_VENV)/.installed:
	$(PYTHON) -m venv $(NANNYML_VENV)
	$(NANNYML_VENV)/bin/pip install -q "nannyml==0.13.*" statsmodels pyarrow
	touch $@

## bench-nannyml: otelml's confidence-based estimate vs NannyML's CBPE, side by side
bench-nannyml: $(STAMP) $(NANNYML_VENV)/.installed
	$(BIN)/python -m bench.cbpe

## bench: side-by-side throughput, render-time and drift ratios (see README)
bench: $(STAMP) $(BENCH_VENV)/.installed $(NANNYML_VENV)/.installed bentoml-venvs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(NANNYML_VENV) .venv-app-sdk .venv-app-sdk-floor .venv-app-distro .venv-bentoml .venv-bentoml-floor $(DEMO_VENV) test-artifacts build .pytest_cache .mypy_cache .ruff_cache .cache
