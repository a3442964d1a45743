"""Request and response bodies → the `ml.*` span attributes of DESIGN.md §2.

Bodies become tables (name → one value per row), tables become attributes: a batch is one
homogeneous array per name, one element per row; a single request is scalars. Nothing here
raises on bad input: every problem is counted in `problems` by reason and the rest of the
request is still extracted. What is counted:

- `not_json`, `bad_encoding`, `too_large`: a body that could not be read (once per body);
- `missing_field`: a path of the rules matched nothing in its body (once per path);
- `wrong_type`: a path met the wrong JSON type (once per path), or a value cannot be sent in
  its column's array (a string among numbers, a nested list…: once per value, sent as null);
- `row_mismatch`: columns, or features and predictions, disagree on the number of rows;
- `too_many_attributes`: features past the span attribute limit (once per feature dropped).

A value absent from one row only is not counted here: it is sent as null, which the gateway
counts as missing for that feature (data quality, not a rules problem).
"""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from otelml import semconv
from otelml.proxy.paths import MISSING, JsonPath, SelectError
from otelml.proxy.rules import Features, Predictions, Route, Source, Table

NOT_JSON = "not_json"
BAD_ENCODING = "bad_encoding"
TOO_LARGE = "too_large"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
ROW_MISMATCH = "row_mismatch"
TOO_MANY_ATTRIBUTES = "too_many_attributes"
#: The extraction itself failed (a bug): logged, counted, the request unaffected.
INTERNAL_ERROR = "internal_error"
REASONS = (
    NOT_JSON,
    BAD_ENCODING,
    TOO_LARGE,
    MISSING_FIELD,
    WRONG_TYPE,
    ROW_MISMATCH,
    TOO_MANY_ATTRIBUTES,
    INTERNAL_ERROR,
)

_INT64 = (-(2**63), 2**63 - 1)
_INTS = frozenset({int})
_NUMBERS = frozenset({int, float})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

Problems = Counter[str]
AttributeValue = str | bool | int | float | Sequence[Any]


@dataclass
class Body:
    """One body as the proxy saw it: its bytes (None: too large to keep) and encoding."""

    data: bytes | None
    content_encoding: str = ""
    _decoded: Any = field(default=MISSING, repr=False)
    _tried: bool = field(default=False, repr=False)

    def json(self, limit: int, problems: Problems) -> Any:
        """The decoded document, or MISSING (counted once) when it cannot be read."""
        if not self._tried:
            self._tried = True
            self._decoded = _decode(self.data, self.content_encoding, limit, problems)
        return self._decoded

    def standard_json(self, limit: int) -> Any:
        """The document as the standard library reads it, integers of any size kept (orjson
        reads those past 64 bits as doubles); only for values whose digits matter."""
        return _decode(self.data, self.content_encoding, limit, Counter(), _standard_loads)


def _decode(
    data: bytes | None,
    encoding: str,
    limit: int,
    problems: Problems,
    loads: Callable[[bytes, Problems], Any] | None = None,
) -> Any:
    if data is None:
        problems[TOO_LARGE] += 1
        return MISSING
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # Decompress at most `limit` bytes: a small gzip bomb must not cost memory.
        wbits = 47 if encoding != "deflate" else 15  # 47: gzip or zlib header, auto-detected
        try:
            inflater = zlib.decompressobj(wbits)
            data = inflater.decompress(data, limit + 1)
        except zlib.error:
            problems[BAD_ENCODING] += 1
            return MISSING
        if len(data) > limit:
            problems[TOO_LARGE] += 1
            return MISSING
    elif encoding not in ("", "identity"):
        problems[BAD_ENCODING] += 1
        return MISSING
    return (loads or _loads)(data, problems)


def _loads(data: bytes, problems: Problems) -> Any:
    """The document as `json.loads` reads it. orjson reads the usual body in a quarter of
    the time; what it refuses and the standard library accepts (NaN and Infinity, numbers
    beyond a double, lone surrogates, UTF-16/32 and byte order marks) is read again by the
    standard library, so the proxy accepts exactly what it did. One difference remains:
    orjson reads integers past 64 bits as doubles, which is what an attribute makes of them
    anyway (OTLP integers are 64-bit); prediction ids, whose digits matter, are read again."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _standard_loads(data, problems)


def _standard_loads(data: bytes, problems: Problems) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problems[NOT_JSON] += 1
        return MISSING


@dataclass
class Columns:
    """A table: `arrays` hold one value per row (MISSING/None where absent); `scalars` hold
    one value that applies to every row."""

    arrays: dict[str, list[Any]] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return max((len(v) for v in self.arrays.values()), default=0)

    def align(self, problems: Problems) -> None:
        """Pad shorter arrays with MISSING so that every row lines up (counted once)."""
        rows = self.rows
        short = [v for v in self.arrays.values() if len(v) < rows]
        if short:
            problems[ROW_MISMATCH] += 1
            for values in short:
                values.extend([MISSING] * (rows - len(values)))


Naming = Callable[[int, int], str]  # (position, row width) → name


def _uniform_rows(rows: list[Any], name_of: Naming) -> dict[str, list[Any]] | None:
    """The common case in one pass per column: every row an object with the same keys, or a
    list of the same width. None otherwise."""
    first = rows[0]
    if isinstance(first, dict):
        keys = first.keys()
        if all(type(row) is dict and row.keys() == keys for row in rows):
            return {key: [row[key] for row in rows] for key in keys}
    elif isinstance(first, list):
        width = len(first)
        if all(type(row) is list and len(row) == width for row in rows):
            return {
                name_of(position, width): [row[position] for row in rows]
                for position in range(width)
            }
    return None


def _rows_into(columns: Columns, rows: list[Any], name_of: Naming) -> None:
    if rows and not columns.arrays:
        uniform = _uniform_rows(rows, name_of)
        if uniform is not None:
            columns.arrays.update(uniform)
            return
    arrays = columns.arrays
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            items: Any = row.items()
        elif isinstance(row, list):
            width = len(row)
            items = ((name_of(position, width), v) for position, v in enumerate(row))
        elif row is MISSING or row is None:
            continue
        else:
            items = ((name_of(0, 1), row),)
        for name, value in items:
            values = arrays.get(name)
            if values is None:
                values = arrays[name] = [MISSING] * index
            elif len(values) < index:
                values.extend([MISSING] * (index - len(values)))
            values.append(value)
    total = len(rows)
    for values in arrays.values():
        if len(values) < total:
            values.extend([MISSING] * (total - len(values)))


def _one_row_into(columns: Columns, row: Any, name_of: Naming) -> None:
    if isinstance(row, dict):
        columns.scalars.update(row)
    elif isinstance(row, list):
        for position, value in enumerate(row):
            columns.scalars[name_of(position, len(row))] = value
    else:
        columns.scalars[name_of(0, 1)] = row


def _select(path: JsonPath, document: Any, problems: Problems) -> Any:
    if document is MISSING:
        return MISSING
    try:
        return path.select(document)
    except SelectError as exc:
        problems[exc.reason] += 1
        return MISSING


def _table(
    rule: Table,
    document: Any,
    name_of: Naming,
    problems: Problems,
    fast: _FastTable | None = None,
) -> Columns:
    """The table a rule describes in one document (empty where it matches nothing)."""
    columns = Columns()
    if document is MISSING:
        return columns
    if fast is not None:
        quick = fast.table(document, name_of)
        if quick is not None:
            return quick
    local: Problems = Counter()
    found = False
    for path, columnar in ((rule.rows, False), (rule.columnar, True)):
        if path is None or found:
            continue
        node = _select(path, document, local)
        if node is MISSING:
            continue
        found = True
        if path.many or isinstance(node, list):
            _rows_into(columns, node if isinstance(node, list) else [node], name_of)
        elif columnar and isinstance(node, dict):
            for name, value in node.items():
                if isinstance(value, list):
                    columns.arrays[name] = value
                else:
                    columns.scalars[name] = value
        elif columnar:
            problems[WRONG_TYPE] += 1
        else:
            _one_row_into(columns, node, name_of)
    if not found and (rule.rows is not None or rule.columnar is not None):
        # Several alternatives that all miss count once, with the first one's reason.
        problems[next(iter(local))] += 1
    for name, path in rule.fields.items():
        value = _select(path, document, problems)
        if value is MISSING:
            continue
        if path.many:
            columns.arrays[name] = value
        else:
            columns.scalars[name] = value
    if rule.include is not None:
        keep = set(rule.include)
        columns.arrays = {k: v for k, v in columns.arrays.items() if k in keep}
        columns.scalars = {k: v for k, v in columns.scalars.items() if k in keep}
    for name in rule.exclude:
        columns.arrays.pop(name, None)
        columns.scalars.pop(name, None)
    columns.align(problems)
    return columns


def _lookup(document: Any, keys: tuple[str, ...]) -> Any:
    """`document[k1][k2]…`, or MISSING where a key is absent or a node is not an object."""
    node = document
    for key in keys:
        if type(node) is not dict:
            return MISSING
        node = node.get(key, MISSING)
    return node


@dataclass(frozen=True)
class _FastTable:
    """A table rule whose `rows`/`columnar` paths are plain keys (`$.instances[*]`,
    `$.inputs`) and which has no `fields`: what TF Serving-style rules are. `table()` reads
    the usual bodies of such a rule with dictionary lookups and one pass per column; any
    body it is not sure about (a path that misses, rows of differing shapes, columns of
    differing lengths, anything to count) gets None, and the general `_table` reads it, so
    both give the same result by construction."""

    rows: tuple[str, ...] | None
    columnar: tuple[str, ...] | None
    include: frozenset[str] | None
    exclude: frozenset[str]

    @classmethod
    def of(cls, rule: Table) -> _FastTable | None:
        rows = rule.rows.keys if rule.rows is not None else None
        columnar = rule.columnar.keys if rule.columnar is not None else None
        if rule.fields or (rule.rows is not None and rows is None):
            return None
        if rule.columnar is not None and (columnar is None or rule.columnar.many):
            return None
        if rows is None and columnar is None:
            return None
        include = frozenset(rule.include) if rule.include is not None else None
        return cls(rows, columnar, include, frozenset(rule.exclude))

    def table(self, document: Any, name_of: Naming) -> Columns | None:
        node = MISSING if self.rows is None else _lookup(document, self.rows)
        if node is not MISSING:
            if type(node) is not list or not node:
                return None
            arrays = _uniform_rows(node, name_of)
            if arrays is None:
                return None
            scalars: dict[str, Any] = {}
        else:
            node = MISSING if self.columnar is None else _lookup(document, self.columnar)
            if type(node) is not dict:
                return None
            arrays, scalars = {}, {}
            for name, value in node.items():
                if type(value) is list:
                    arrays[name] = value
                else:
                    scalars[name] = value
            if len({len(values) for values in arrays.values()}) > 1:
                return None  # the general path pads and counts row_mismatch
        if self.include is not None:
            arrays = {k: v for k, v in arrays.items() if k in self.include}
            scalars = {k: v for k, v in scalars.items() if k in self.include}
        for name in self.exclude:
            arrays.pop(name, None)
            scalars.pop(name, None)
        return Columns(arrays, scalars)


def _feature_names(rule: Features) -> Naming:
    names = rule.columns or []

    def name_of(position: int, width: int) -> str:
        return names[position] if position < len(names) else str(position)

    return name_of


def _output_names(rule: Predictions) -> Naming:
    names = rule.outputs or []

    def name_of(position: int, width: int) -> str:
        if position < len(names):
            return names[position]
        return "" if width == 1 and not names else str(position)

    return name_of


# --- JSON values → OTLP attribute values -------------------------------------------------------


def _scalar(value: Any, problems: Problems) -> AttributeValue | None:
    """One value as an attribute value; None when absent (missing) or not representable."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else float(value)
    problems[WRONG_TYPE] += 1
    return None


def _beyond_int64(value: Any) -> bool:
    """Whether `value` (or an element of it) is a whole double past the 64-bit range: what
    orjson makes of an integer literal too large for 64 bits."""
    values = value if isinstance(value, list) else (value,)
    return any(
        type(v) is float and v.is_integer() and not _INT64[0] <= v <= _INT64[1] for v in values
    )


def _kind(value: Any) -> str:
    if value is MISSING or value is None:
        return "null"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64[0] <= value <= _INT64[1] else "float"
    if isinstance(value, float):
        return "float"
    return "other"


_SIMPLE = {frozenset({str}), frozenset({float}), frozenset({bool})}


def _array(values: list[Any], problems: Problems) -> list[Any]:
    """A homogeneous array, as OTLP requires: the column's majority type wins (strings vs
    numbers, as the gateway decides a series' kind); other values become null, counted."""
    types = frozenset(map(type, values))
    if types in _SIMPLE:  # the usual columns, in one C-level pass
        return values
    if types == _INTS and _INT64[0] <= min(values) and max(values) <= _INT64[1]:
        return values
    if types == _NUMBERS:
        with contextlib.suppress(OverflowError):  # an int beyond any double: the slow path
            return [float(v) for v in values]
    kinds = [_kind(v) for v in values]
    seen = Counter(kinds)
    numbers = seen["bool"] + seen["int"] + seen["float"]
    if seen["str"] > numbers:
        keep, convert = {"str"}, None
    elif numbers == seen["bool"]:
        keep, convert = {"bool"}, None
    elif seen["float"] == 0 and seen["bool"] == 0:
        keep, convert = {"int"}, None
    else:
        keep, convert = {"bool", "int", "float"}, float
    out: list[Any] = []
    for value, kind in zip(values, kinds, strict=True):
        if kind == "null":
            out.append(None)
        elif kind not in keep:
            problems[WRONG_TYPE] += 1
            out.append(None)
        elif convert is None:
            out.append(value)
        else:
            try:
                out.append(convert(value))
            except OverflowError:  # an integer beyond any double
                problems[WRONG_TYPE] += 1
                out.append(None)
    return out


def _attributes_of(
    columns: Columns, key_of: Callable[[str], str], problems: Problems
) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for name, value in columns.scalars.items():
        scalar = _scalar(value, problems)
        if scalar is not None:
            out[key_of(name)] = scalar
    for name, values in columns.arrays.items():
        if values:  # an empty batch has no rows to describe
            out[key_of(name)] = _array(values, problems)
    return out


def _feature_key(name: str) -> str:
    return semconv.FEATURE_PREFIX + name


def _prediction_key(name: str) -> str:
    return semconv.PREDICTION if name == "" else semconv.PREDICTION_PREFIX + name


def _fill(template: str, params: Mapping[str, str]) -> str:
    if "{" not in template:
        return template
    return _PLACEHOLDER.sub(lambda m: params.get(m.group(1), ""), template)


class Extractor:
    """One route's rules, applied to the bodies of one exchange at a time."""

    def __init__(self, route: Route, max_body_bytes: int, max_attributes: int) -> None:
        self.route = route
        self.limit = max_body_bytes
        self.max_attributes = max_attributes
        self._feature_names = _feature_names(route.features) if route.features else None
        self._output_names = _output_names(route.predictions) if route.predictions else None
        self._fast_features = _FastTable.of(route.features) if route.features else None
        self._fast_predictions = _FastTable.of(route.predictions) if route.predictions else None
        self._feature_keys = {name: _feature_key(name) for name in route.slices}

    def _source(
        self,
        source: Source,
        request: Body,
        response: Body,
        headers: Mapping[str, str],
        problems: Problems,
    ) -> Any:
        if source.header is not None:
            value = headers.get(source.header.lower())
            if value is None:
                problems[MISSING_FIELD] += 1
                return MISSING
            return value
        path = source.request or source.response
        assert path is not None
        body = request if source.request is not None else response
        return _select(path, body.json(self.limit, problems), problems)

    def _exact_id(self, source: Source, request: Body, response: Body, value: Any) -> Any:
        """An id read again with its integer digits (an id is text: 2**70 must not become
        1.1805916207174113e+21)."""
        path = source.request or source.response
        if path is None:
            return value
        body = request if source.request is not None else response
        return _select(path, body.standard_json(self.limit), Counter())

    def extract(
        self,
        params: Mapping[str, str],
        request: Body,
        response: Body,
        headers: Mapping[str, str],
        problems: Problems,
    ) -> dict[str, AttributeValue]:
        """The `ml.*` attributes of one successful exchange (`headers`: request headers,
        lower-case names); problems are added to `problems`."""
        route = self.route
        attributes: dict[str, AttributeValue] = {
            semconv.MODEL_NAME: _fill(route.model.name, params)
        }
        if route.model.version is not None:
            attributes[semconv.MODEL_VERSION] = _fill(route.model.version, params)
        rows: list[int] = []
        features: dict[str, AttributeValue] = {}
        if route.features is not None and self._feature_names is not None:
            table = _table(
                route.features,
                request.json(self.limit, problems),
                self._feature_names,
                problems,
                self._fast_features,
            )
            if table.arrays:
                rows.append(table.rows)
            features = _attributes_of(table, _feature_key, problems)
        for name, source in route.slices.items():
            value = self._source(source, request, response, headers, problems)
            if value is MISSING:
                continue
            if source.header is not None:  # a header is one string, the same for every row
                features[self._feature_keys[name]] = value
                continue
            slice_table = Columns()
            if isinstance(value, list):
                slice_table.arrays[name] = value
            else:
                slice_table.scalars[name] = value
            features.update(_attributes_of(slice_table, _feature_key, problems))
        budget = self.max_attributes - len(attributes) - 16  # room for http.* and the id
        if len(features) > budget:
            problems[TOO_MANY_ATTRIBUTES] += len(features) - max(budget, 0)
            features = dict(list(features.items())[: max(budget, 0)])
        attributes.update(features)
        if route.predictions is not None and self._output_names is not None:
            table = _table(
                route.predictions,
                response.json(self.limit, problems),
                self._output_names,
                problems,
                self._fast_predictions,
            )
            if table.arrays:
                rows.append(table.rows)
            attributes.update(_attributes_of(table, _prediction_key, problems))
        if route.prediction_id is not None:
            value = self._source(route.prediction_id, request, response, headers, problems)
            if _beyond_int64(value):
                value = self._exact_id(route.prediction_id, request, response, value)
            if isinstance(value, list):
                attributes[semconv.PREDICTION_ID] = [
                    None if v is MISSING or v is None else str(v) for v in value
                ]
            elif value is not MISSING and value is not None:
                attributes[semconv.PREDICTION_ID] = str(value)
        if len(set(rows)) > 1:
            problems[ROW_MISMATCH] += 1
        return attributes
