# One entry point for people and CI. Every target installs what it needs itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench prometheus bentoml-venvs clean

# The C scanner is built by the install: rebuild when it changes.
$(STAMP): pyproject.toml setup.py otelml/gateway/decode/_otlpscan.c otelml/instrument/_otlpencode.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## demo: gateway + example model traffic (with a drift phase) on this machine, no Docker
demo: $(STAMP)
	$(BIN)/otelml demo

## prometheus: Debian's prometheus package, needed by the integration tests
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing Debian's prometheus package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
	@command -v prometheus >/dev/null 2>&1 || { echo "prometheus could not be installed" >&2; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check otelml tests bench examples
	$(BIN)/ruff format --check otelml tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

# The oldest OpenTelemetry SDK the app side supports (BentoML 1.4 pins ~= 1.20): its own venv.
SDK_FLOOR := .venv-sdk-floor
$(SDK_FLOOR)/.installed:
	$(PYTHON) -m venv $(SDK_FLOOR)
	$(SDK_FLOOR)/bin/pip install -q "opentelemetry-sdk==1.20.*" \
	  "opentelemetry-exporter-otlp-proto-grpc==1.20.*" "opentelemetry-exporter-otlp-proto-http==1.20.*" \
	  numpy "pandas<3"
	touch $@

# The BentoML example's own environments (BentoML 1.4 with today's OpenTelemetry SDK, and with
# the floor of its range, SDK 1.20): venv.sh keeps one whose requirements did not change.
BENTOML_EXAMPLE := examples/bentoml_service
bentoml-venvs:
	PYTHON=$(PYTHON) sh $(BENTOML_EXAMPLE)/venv.sh .venv-bentoml $(BENTOML_EXAMPLE)/requirements.txt
	PYTHON=$(PYTHON) sh $(BENTOML_EXAMPLE)/venv.sh .venv-bentoml-floor $(BENTOML_EXAMPLE)/requirements-floor.txt

## test: lint, type check and the whole test suite against real components
test: $(STAMP) $(SDK_FLOOR)/.installed bentoml-venvs prometheus lint typecheck
	OTELML_REQUIRE_ALL=1 OTELML_REQUIRE_PROMETHEUS=1 OTELML_REQUIRE_NATIVE=1 $(BIN)/pytest -q

BENCH_VENV := .bench-venv

# Evidently (the yardstick of the drift benchmark) needs pandas < 3: its own environment.
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "evidently==0.7.*" "pandas<3" pyarrow
	touch $@

## bench: side-by-side throughput, render-time and drift ratios (see README)
bench: $(STAMP) $(BENCH_VENV)/.installed bentoml-venvs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SDK_FLOOR) .venv-bentoml .venv-bentoml-floor .pytest_cache .mypy_cache .ruff_cache
