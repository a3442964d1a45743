# syntax=docker/dockerfile:1
# The BentoML diabetes example (examples/bentoml_service) for the Compose stack. Build from the
# repository root. Three targets: `reference` writes the training data and its reference
# profile, `service` serves the model with BentoML, traced to the gateway, `locust` runs the
# example's load test (examples/loadtest, mounted).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS reference
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY otelml ./otelml
# The profile builder needs otelml[profile] (numpy, pandas, pyarrow); scikit-learn ships the data.
RUN pip install --no-cache-dir --disable-pip-version-check '.[profile]' "scikit-learn==1.9.1"
COPY examples/bentoml_service ./examples/bentoml_service

FROM python:${PYTHON_VERSION}-slim-bookworm AS service
WORKDIR /srv
COPY examples/bentoml_service/requirements.txt ./
# otelml installed as a user installs it beside BentoML: the app side only (the SDK and OTLP
# exporters), none of the gateway's dependencies.
COPY pyproject.toml setup.py README.md /opt/otelml-src/
COPY otelml /opt/otelml-src/otelml
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt /opt/otelml-src \
 && python -c "import bentoml, otelml.instrument.bentoml"
COPY examples/bentoml_service ./
RUN useradd --system --uid 10001 bento && mkdir -p /home/bento && chown 10001 /home/bento
USER 10001
ENV HOME=/home/bento BENTOML_HOME=/home/bento/bentoml BENTOML_CONFIG=/srv/bentoml_configuration.yaml
EXPOSE 3000
CMD ["bentoml", "serve", "service:DiabetesRegressor", "--host", "0.0.0.0", "--port", "3000"]

FROM locustio/locust:2.47.0 AS locust
# The load test's verdict reads the gateway's /metrics with prometheus_client's parser.
RUN pip install --no-cache-dir --disable-pip-version-check "prometheus-client>=0.20"
