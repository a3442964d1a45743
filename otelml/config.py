"""Typed gateway configuration: YAML in, validated once at the edge, `${ENV}` substituted.

`load()` collects every problem with its YAML path and raises one `ConfigError`, so a
user fixes a config in one round instead of one error per restart.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from otelml import semconv
from otelml.errors import ConfigError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_size(value: object) -> int:
    """`16MiB`, `1GiB`, `500kB` or a plain integer → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 16MiB")
    if isinstance(value, int):
        size = value
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _SIZE_UNITS:
            raise ValueError(f"expected a size such as 16MiB or 1GiB, got {value!r}")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError("must be positive")
    return size


def parse_duration(value: object) -> float:
    """`5m`, `30s`, `250ms` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*", str(value))
        if match is None:
            raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.endpoint.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])


def _resolved(value: Path | None, info: ValidationInfo) -> Path | None:
    """A relative path is relative to the config file (`base_dir` of the validation
    context), never to the working directory: `--check` and the gateway agree wherever
    they are started from."""
    base_dir = (info.context or {}).get("base_dir")
    if value is None or base_dir is None or value.is_absolute():
        return value
    return Path(base_dir) / value


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"file not found: {value}")
    return value


#: A file the config names: resolved against the config file, and it must exist.
ExistingFile = Annotated[Path, AfterValidator(_resolved), AfterValidator(_existing_file)]
#: A directory the config names, resolved against the config file.
ConfigDirectory = Annotated[Path, AfterValidator(_resolved)]


class Tls(_Strict):
    """TLS 1.2+ on a receiver; with `client_ca_file`, clients must present a certificate it
    signed (mutual TLS)."""

    cert_file: ExistingFile
    key_file: ExistingFile
    client_ca_file: ExistingFile | None = None


class ReceiverEndpoint(Endpoint):
    tls: Tls | None = None


class GrpcReceiver(ReceiverEndpoint):
    """gRPC clients keep one connection for hours, so behind a load balancer or a Kubernetes
    Service all of a client's traffic sticks to one replica. A maximum connection age makes
    the server close connections (GOAWAY, in-flight calls finish within the grace) and the
    client reconnect, possibly to another replica, as collectors behind load balancers do."""

    #: Unset: connections live as long as the client keeps them (gRPC adds ±10% jitter).
    max_connection_age: Duration | None = None
    #: How long calls in flight may still finish after the GOAWAY; unset: no limit.
    max_connection_age_grace: Duration | None = None


class OtlpReceiver(_Strict):
    grpc: GrpcReceiver | None = GrpcReceiver(endpoint="0.0.0.0:4317")
    http: ReceiverEndpoint | None = ReceiverEndpoint(endpoint="0.0.0.0:4318")


class Receivers(_Strict):
    otlp: OtlpReceiver = OtlpReceiver()


DriftMethod = Literal["auto", "psi", "kl", "js", "hellinger", "wasserstein", "ks", "chi2", "z"]


class DriftRule(_Strict):
    """Per-feature override of the drift test and its threshold."""

    method: DriftMethod = "auto"
    threshold: float | None = Field(default=None, gt=0)


class DriftConfig(_Strict):
    #: "auto" = Evidently's rule: reference ≤ 1000 rows → KS (numeric, > 5 unique values),
    #: z-test (2 categories) or χ² at p < 0.05; larger → normed Wasserstein or JS ≥ 0.1.
    method: DriftMethod = "auto"
    threshold: float | None = Field(default=None, gt=0)
    #: Below this many observations in the window, no verdict is given.
    min_samples: int = Field(default=100, ge=1)
    features: dict[str, DriftRule] = {}
    predictions: dict[str, DriftRule] = {}


class GroundTruthConfig(_Strict):
    """Keep predictions for a later join with ground truth (costs memory per prediction)."""

    #: How long a prediction waits for its ground truth (and ground truth for its prediction).
    ttl: Duration = 3600.0
    #: Predictions kept at most; the oldest are evicted (and counted) past it.
    max_predictions: int = Field(default=100_000, ge=1)


class AttributionConfig(_Strict):
    """Drift attribution: which trace attributes slice a drifting series (not features)."""

    enabled: bool = True
    #: Span or resource string attributes added to the defaults (a tenant, a client id, …).
    keys: list[Annotated[str, Field(min_length=1)]] = []
    #: Replace the default keys (service.version, service.instance.id, k8s.pod.name,
    #: deployment.environment.name, http.route) instead of adding to them.
    replace_default_keys: bool = False
    #: Values per key with a slot of their own (first seen), the rest `__other__`.
    values: int = Field(default=8, ge=1, le=100)
    #: Slices exposed per drifting series and key.
    top: int = Field(default=3, ge=1, le=20)

    @model_validator(mode="after")
    def _bounded(self) -> AttributionConfig:
        if len(self.all_keys()) > 16:
            raise ValueError("at most 16 attribution keys (defaults included)")
        return self

    def all_keys(self) -> tuple[str, ...]:
        base = () if self.replace_default_keys else semconv.DEFAULT_ATTRIBUTION_KEYS
        return tuple(dict.fromkeys((*base, *self.keys)))


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    version: str | None = None
    reference: Path | None = None
    window: Duration = 300.0
    step: Duration = 60.0
    segments: list[str] = []
    drift: DriftConfig = DriftConfig()
    attribution: AttributionConfig = AttributionConfig()
    #: Set to join predictions with ground truth (`ml.ground_truth*` or POST /v1/ground_truth).
    ground_truth: GroundTruthConfig | None = None


class RetryConfig(_Strict):
    initial_interval: Duration = 0.5
    max_interval: Duration = 30.0
    #: Unset = retry until delivered (the queue is durable); else drop, counted, after this long.
    max_elapsed: Duration | None = None


#: A CA bundle (PEM) that verifies a destination's certificate; unset: the system's CAs
#: (or the file SSL_CERT_FILE names).
CaFile = Annotated[Path | None, AfterValidator(_resolved), AfterValidator(_existing_file)]


class OtlpExporter(_Strict):
    """An OTLP destination: an HTTP base URL (`/v1/traces` or `/v1/logs` is appended, e.g.
    `http://tempo:4318`, Loki's `http://loki:3100/otlp`), or with `protocol: grpc` a gRPC
    `host:port` (`https://` for TLS, other schemes ignored).

    http/protobuf is the default, as the OTLP exporter specification makes it, and the cheaper
    one here: a batch leaves in one write from the queued buffers, where grpcio needs it
    joined into one message and copies it again (bench/forwarding.py measures both)."""

    endpoint: str = Field(min_length=1)
    protocol: Literal["grpc", "http/protobuf"] = "http/protobuf"
    #: Often credentials (an API key, basic auth): secrets, never printed or dumped.
    headers: dict[str, SecretStr] = {}
    timeout: Duration = 10.0
    retry: RetryConfig = RetryConfig()
    ca_file: CaFile = None

    @model_validator(mode="after")
    def _url_for_http(self) -> OtlpExporter:
        if self.protocol == "http/protobuf" and not is_http_url(self.endpoint):
            raise ValueError(
                f"endpoint {self.endpoint!r} is not an http:// or https:// URL, which "
                "http/protobuf (the default protocol) needs, e.g. http://tempo:4318; "
                "for OTLP/gRPC set protocol: grpc"
            )
        return self


def is_http_url(value: str) -> bool:
    """An http:// or https:// URL with a host: what the HTTP exporters can post to."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class TracesExporter(OtlpExporter):
    pass


class LogsExporter(OtlpExporter):
    #: Loki's limits (its defaults): longer lines are truncated, larger requests split.
    max_line_bytes: Size = 256 * 1024
    max_request_bytes: Size = 4 * 1024 * 1024


class MetricsExporter(_Strict):
    """App metrics received on /v1/metrics, sent on by Prometheus remote write 1.0."""

    remote_write: str = Field(min_length=1)
    #: Often credentials (an API key, basic auth): secrets, never printed or dumped.
    headers: dict[str, SecretStr] = {}
    timeout: Duration = 10.0
    retry: RetryConfig = RetryConfig()
    ca_file: CaFile = None

    @field_validator("remote_write")
    @classmethod
    def _url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class Exporters(_Strict):
    traces: TracesExporter | None = None
    logs: LogsExporter | None = None
    metrics: MetricsExporter | None = None


class Queue(_Strict):
    #: Relative to the config file (the default too, when there is one).
    directory: ConfigDirectory = Field(default=Path("./otelml-queue"), validate_default=True)
    #: Undelivered bytes per destination; past it, requests are refused with a retry hint.
    max_bytes: Size = 1024**3
    #: always: fsync each request (survives node crashes); interval: every second (survives
    #: process crashes); never: leave it to the OS.
    fsync: Literal["always", "interval", "never"] = "interval"


class Limits(_Strict):
    max_series: int = Field(default=10_000, gt=0)
    max_request_bytes: Size = 16 * 1024**2
    #: Categories tracked per categorical feature that has no reference profile.
    max_categories: int = Field(default=20, gt=0, le=1000)
    #: Bytes of requests being received or processed at once; past it: refuse with a retry hint.
    max_inflight_bytes: Size = 64 * 1024**2
    #: Resident memory past which requests are refused with a retry hint (unset: no limit).
    memory_limit: Size | None = None
    #: ml.* values one request may carry, batch rows expanded (a scalar beside an array of
    #: n counts n times); past it: 413 / INVALID_ARGUMENT before any work (send smaller batches).
    max_request_values: int = Field(default=1_000_000, gt=0)
    #: Characters of a string that becomes a label value (span, service, model, feature and
    #: category names) at most; longer ones are cut and counted.
    max_label_length: int = Field(default=256, ge=16, le=65536)
    #: Seconds an HTTP request's body may take to arrive; past it: 408 (a slow client).
    body_timeout: Duration = Field(default=30.0, gt=0)
    #: Seconds an HTTP connection may stay with no request in progress (idle, or a request
    #: header still arriving) before it is closed.
    idle_timeout: Duration = Field(default=30.0, gt=0)
    #: Open HTTP connections per receiver (and per worker); past it: 503 + closed.
    max_connections: int = Field(default=1000, gt=0)


class Redaction(_Strict):
    """Masks personal data in attributes and log bodies before anything reads them."""

    enabled: bool = False
    #: Glob patterns of attribute keys to keep (fail closed: all others are removed).
    #: Unset: keep every key, only mask values.
    allow_keys: list[str] | None = None
    #: Extra value patterns, name → regex, on top of email, card, bearer, jwt, aws_key.
    patterns: dict[str, str] = {}
    action: Literal["mask", "hash"] = "mask"

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, regex in patterns.items():
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"pattern {name!r} does not compile: {exc}") from None
        return patterns


class Auth(_Strict):
    #: Required on every OTLP request when set (`Authorization: Bearer <token>`).
    bearer_token: SecretStr = SecretStr("")
    #: Required on the admin port's /metrics when set (it carries trace ids, model, feature
    #: and span names); /healthz and /readyz stay open for probes.
    admin_bearer_token: SecretStr = SecretStr("")


class Ui(_Strict):
    """The embedded page at /ui and its JSON API at /api/v1."""

    #: Grafana's base URL (e.g. http://grafana:3000): trace ids become Explore links into Tempo.
    grafana_url: str | None = None
    #: The uid of Grafana's Tempo data source the Explore links open.
    tempo_datasource: str = "tempo"
    #: How far back the page shows verdicts and performance without Prometheus.
    history: Duration = 3600.0
    #: History points kept per series at most (the step sets their spacing).
    history_points: int = Field(default=720, ge=2, le=100_000)
    #: Recent requests kept per bucket, and rows kept per model to show them with.
    samples_per_bucket: int = Field(default=4, ge=0, le=64)
    sample_rows: int = Field(default=512, ge=1, le=100_000)

    @field_validator("grafana_url")
    @classmethod
    def _grafana(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value else value


class GatewayConfig(_Strict):
    #: Worker processes sharing the receiver ports; /metrics on the admin port merges them.
    workers: int = Field(default=1, ge=1, le=64)
    receivers: Receivers = Receivers()
    admin: Endpoint = Endpoint(endpoint="0.0.0.0:9464")
    models: list[ModelConfig] = []
    exporters: Exporters = Exporters()
    queue: Queue = Field(default_factory=dict, validate_default=True)
    limits: Limits = Limits()
    auth: Auth = Auth()
    redaction: Redaction = Redaction()
    ui: Ui = Ui()


def substitute_env(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; an unset `${VAR}` without default is an error."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    result = _ENV_PATTERN.sub(replace, text)
    if missing:
        raise ConfigError([f"environment variable ${{{n}}} is not set" for n in missing])
    return result


_Document = TypeVar("_Document", bound=BaseModel)


def _format_error(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "<root>"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{path}: {message}"


def validate_document(
    model: type[_Document], data: object, expected: str, base_dir: Path | None = None
) -> _Document:
    """A YAML document (None = empty) as `model`; every problem named by its YAML path;
    relative paths in it resolve against `base_dir` (the file's directory)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"<root>: expected {expected}"])
    try:
        return model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError([_format_error(e) for e in exc.errors()]) from None


def parse(data: object, base_dir: Path | None = None) -> GatewayConfig:
    """Validate an already-parsed YAML document; relative paths resolve against `base_dir`."""
    config = validate_document(
        GatewayConfig, data, "a mapping of sections (receivers, models, …)", base_dir
    )
    problems: list[str] = []
    otlp = config.receivers.otlp
    if config.workers > 1 and otlp.grpc is not None and otlp.grpc.port == 0:
        # Each worker binds gRPC itself (SO_REUSEPORT): they must agree on a real port.
        problems.append(
            f"receivers.otlp.grpc.endpoint: port 0 cannot be shared by {config.workers} workers"
        )
    seen: set[tuple[str, str | None]] = set()
    models = []
    for index, model in enumerate(config.models):
        if (model.name, model.version) in seen:
            problems.append(
                f"models.{index}: duplicate model {model.name!r} version {model.version!r}"
            )
        seen.add((model.name, model.version))
        if model.step > model.window:
            problems.append(f"models.{index}.step: must not be longer than window")
        reference = model.reference
        if reference is not None and base_dir is not None and not reference.is_absolute():
            reference = base_dir / reference
        if reference is not None and not reference.is_file():
            problems.append(f"models.{index}.reference: file not found: {reference}")
        models.append(model.model_copy(update={"reference": reference}))
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"models": models})


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> GatewayConfig:
    """Read, substitute and validate a YAML config; no path means all defaults."""
    if path is None:
        return parse({})
    file = Path(path)
    return parse(read_yaml(file, "config", environ), base_dir=file.parent)


def read_yaml(file: Path, what: str, environ: dict[str, str] | None = None) -> object:
    """A YAML file with `${VAR}` / `${VAR:-default}` substituted; unreadable → ConfigError."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read {what}: {exc.strerror}"]) from None
    try:
        return yaml.safe_load(substitute_env(text, environ))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: invalid YAML: {exc}"]) from None
