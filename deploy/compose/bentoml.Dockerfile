# syntax=docker/dockerfile:1
# The BentoML iris example (examples/bentoml_service) for the Compose stack. Build from the
# repository root. Two targets: `reference` writes the training data's reference profile,
# `service` serves the model with BentoML, traced to the gateway.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS reference
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY otelml ./otelml
# The profile builder needs the gateway side's numeric stack; scikit-learn ships the iris data.
RUN pip install --no-cache-dir --disable-pip-version-check '.[gateway]' "scikit-learn==1.9.1"
COPY examples/bentoml_service ./examples/bentoml_service

FROM python:${PYTHON_VERSION}-slim-bookworm AS service
WORKDIR /srv
COPY examples/bentoml_service/requirements.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
# otelml's app side from the checkout as a path entry, as venv.sh does (its own dependencies are
# the gateway's, which a model service does not need).
COPY otelml /opt/otelml-src/otelml
RUN echo /opt/otelml-src > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/otelml-checkout.pth" \
 && python -c "import bentoml, otelml.instrument.bentoml"
COPY examples/bentoml_service ./
RUN useradd --system --uid 10001 bento && mkdir -p /home/bento && chown 10001 /home/bento
USER 10001
ENV HOME=/home/bento BENTOML_HOME=/home/bento/bentoml BENTOML_CONFIG=/srv/bentoml_configuration.yaml
EXPOSE 3000
CMD ["bentoml", "serve", "service:IrisClassifier", "--host", "0.0.0.0", "--port", "3000"]
