"""The rules file of `otelml proxy`: which requests carry which features and predictions.

Typed and validated once at start, like the gateway config (same `${ENV}` substitution, same
one-error-per-problem messages with YAML paths). Paths are parsed here, so a typo in a rule
stops the proxy before it binds a port instead of silently extracting nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from otelml.config import Size, read_yaml, validate_document
from otelml.errors import ConfigError
from otelml.proxy.paths import JsonPath, PathError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD = re.compile(r"[A-Z]+|\*")


def _parse_path(value: object) -> JsonPath:
    if isinstance(value, JsonPath):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a path such as $.instances[*], got {value!r}")
    try:
        return JsonPath.parse(value)
    except PathError as exc:
        raise ValueError(str(exc)) from None


Path_ = Annotated[JsonPath, BeforeValidator(_parse_path), PlainSerializer(str)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _source_shorthand(value: object) -> object:
    return {"request": value} if isinstance(value, str) else value


class Source(_Strict):
    """Where a value comes from: exactly one of a request-body path, a response-body path or
    a request header. A bare string in the rules file is a request-body path."""

    request: Path_ | None = None
    response: Path_ | None = None
    header: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [k for k in ("request", "response", "header") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of request, response, header")
        return self


SourceSpec = Annotated[Source, BeforeValidator(_source_shorthand)]


class Table(_Strict):
    """How one body carries a table of rows (features in the request, outputs in the response).

    `rows`: a path to the rows (`$.instances[*]`, or `$.instances` for the list itself); a row
    is an object (keys are names), a list (named by `names`, else by position) or one value.
    `columnar`: a path to an object of name → list with one value per row (TF Serving's
    `{"inputs": {…}}`), or to a list of rows. When both are set, the first present is used.
    `fields`: name → path, one value (no wildcard) or one per row (with `[*]`).
    """

    rows: Path_ | None = None
    columnar: Path_ | None = None
    fields: dict[str, Path_] = {}
    include: list[str] | None = None
    exclude: list[str] = []

    @model_validator(mode="after")
    def _something(self) -> Table:
        if self.rows is None and self.columnar is None and not self.fields:
            raise ValueError("give rows, columnar or fields")
        return self


class Features(Table):
    #: Names of the positions of list rows (`[[35, 52000.0, "DE"]]`), in order.
    columns: list[str] | None = None


class Predictions(Table):
    #: Names of the positions of list rows (`[[0.1, 0.9]]` → two outputs). Unset: a one-value
    #: row is the bare `ml.prediction`, wider rows are `ml.prediction.0`, `.1`, …
    outputs: list[str] | None = None


class Model(_Strict):
    """Model name and version; `{placeholder}`s take the matching part of the route's path."""

    name: str = Field(min_length=1)
    version: str | None = None


class Route(_Strict):
    #: An HTTP method in capitals, or `*` for any.
    method: str = "POST"
    #: The request path: literal text with `{placeholder}`s, each matching one path segment
    #: or part of one (`/v1/models/{model}:predict`). The query string is not matched.
    path: str = Field(min_length=1)
    model: Model
    features: Features | None = None
    predictions: Predictions | None = None
    prediction_id: SourceSpec | None = None
    #: Segment labels: name → source, sent as features the gateway's `segments:` can use.
    slices: dict[str, SourceSpec] = {}

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if _METHOD.fullmatch(value) is None:
            raise ValueError(f"expected an HTTP method such as POST (or *), got {value!r}")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"a route path starts with /, got {value!r}")
        names = _PLACEHOLDER.findall(value)
        if len(names) != len(set(names)):
            raise ValueError("a placeholder appears twice")
        if re.search(r"\{(?![A-Za-z_][A-Za-z0-9_]*\})", value):
            raise ValueError("placeholders are {name}: letters, digits and _")
        return value

    @property
    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)

    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression: a placeholder matches one or more characters
        other than `/`, as few as the rest of the pattern allows."""
        parts: list[str] = []
        last = 0
        for match in _PLACEHOLDER.finditer(self.path):
            parts.append(re.escape(self.path[last : match.start()]))
            parts.append(f"(?P<{match.group(1)}>[^/]+?)")
            last = match.end()
        parts.append(re.escape(self.path[last:]))
        return re.compile("".join(parts))


class Rules(_Strict):
    #: Bodies of routes with rules are read up to this size to extract from them; larger ones
    #: are passed through unread (counted as `too_large`). Other routes are always streamed.
    max_body_bytes: Size = 4 * 1024**2
    #: Also emit a span (without ml.* attributes) for requests no route matches.
    trace_unmatched: bool = True
    routes: list[Route] = []


def parse(data: object) -> Rules:
    """Validate an already-parsed YAML document."""
    rules = validate_document(Rules, data, "a mapping with routes: [...]")
    problems: list[str] = []
    for index, route in enumerate(rules.routes):
        known = set(route.placeholders)
        for key in ("name", "version"):
            template = getattr(route.model, key)
            for name in _PLACEHOLDER.findall(template or ""):
                if name not in known:
                    problems.append(
                        f"routes.{index}.model.{key}: {{{name}}} is not a placeholder of "
                        f"the path {route.path!r}"
                    )
        if route.features is None and route.predictions is None:
            problems.append(f"routes.{index}: give features, predictions or both")
        for section, names in (
            ("features.columns", route.features and route.features.columns),
            ("predictions.outputs", route.predictions and route.predictions.outputs),
        ):
            if names and len(names) != len(set(names)):
                problems.append(f"routes.{index}.{section}: names must be unique")
    if problems:
        raise ConfigError(problems)
    return rules


def load(path: str | Path, environ: dict[str, str] | None = None) -> Rules:
    """Read, substitute `${ENV}` and validate a rules file."""
    return parse(read_yaml(Path(path), "rules", environ))
