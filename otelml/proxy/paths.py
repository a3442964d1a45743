"""The JSONPath-like selector of the rules file: `$.instances[*].age`, `$["odd key"][0]`.

Grammar: `$` then steps, each `.name`, `['key']` / `["key"]`, `[N]` (negative counts from
the end) or `[*]` (every element of a list). A path with `[*]` selects one value per element,
i.e. one per row of a batch; an element that lacks the rest of the path yields `MISSING` in
its place, so rows stay aligned across features and predictions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final


class _Missing:
    """A value that is not in the document (distinct from JSON null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

WILDCARD: Final = "*"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_STAR = re.compile(r"\[\s*\*\s*\]|\.\*")


class PathError(ValueError):
    """The path's text does not follow the grammar (raised when the rules file is loaded)."""


class SelectError(Exception):
    """The document does not fit the path; `reason` is `missing_field` or `wrong_type`."""

    def __init__(self, reason: str, where: str) -> None:
        self.reason = reason
        super().__init__(f"{reason} at {where}")


Step = str | int  # a key, an index, or WILDCARD (a key "*" is spelled ['*'], kept as _Key)


@dataclass(frozen=True)
class _Key:
    """A key that is literally `*`, distinct from the wildcard."""

    name: str


def _quoted(text: str, start: int) -> tuple[str, int]:
    """A quoted key starting at `text[start]` (the quote); returns the key and the index after
    the closing bracket."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            rest = text[i + 1 :]
            closing = re.match(r"\s*\]", rest)
            if closing is None:
                raise PathError(f"expected ] after the quoted key at position {i + 1}")
            return "".join(out), i + 1 + closing.end()
        out.append(char)
        i += 1
    raise PathError(f"unterminated quoted key at position {start}")


@dataclass(frozen=True)
class JsonPath:
    """A parsed path: `select()` walks a decoded JSON document."""

    text: str
    steps: tuple[Step | _Key, ...]

    @property
    def many(self) -> bool:
        """True when the path has a wildcard: it selects one value per row."""
        return WILDCARD in self.steps

    @property
    def keys(self) -> tuple[str, ...] | None:
        """The object keys of a path made of keys only, optionally ending in one `[*]`
        (`$.instances[*]`, `$.inputs`): the shape the extraction's fast path walks with
        plain lookups. None for any other path."""
        steps = self.steps[:-1] if self.steps[-1:] == (WILDCARD,) else self.steps
        if all(type(step) is str and step != WILDCARD for step in steps):
            return steps  # type: ignore[return-value]
        return None

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        source = text.strip()
        if not source.startswith("$"):
            raise PathError(f"a path starts with $, got {text!r}")
        steps: list[Step | _Key] = []
        i = 1
        while i < len(source):
            if star := _STAR.match(source, i):
                steps.append(WILDCARD)
                i = star.end()
            elif source[i] == ".":
                name = _NAME.match(source, i + 1)
                if name is None:
                    raise PathError(
                        f"expected a key after '.' at position {i} of {text!r} "
                        "(quote unusual keys: $['my key'])"
                    )
                steps.append(name.group())
                i = name.end()
            elif index := _INDEX.match(source, i):
                steps.append(int(index.group(1)))
                i = index.end()
            elif source[i] == "[" and i + 1 < len(source) and source[i + 1] in "'\"":
                key, i = _quoted(source, i + 1)
                steps.append(_Key(key) if key == WILDCARD else key)
            else:
                raise PathError(f"unexpected {source[i]!r} at position {i} of {text!r}")
        return cls(text=source, steps=tuple(steps))

    def select(self, document: Any) -> Any:
        """The value at this path (no wildcard), or one value per row (a list, wildcard).

        Raises `SelectError` when the part before the first wildcard is absent or of the wrong
        JSON type; past a wildcard, a row that does not fit yields `MISSING` instead.
        """
        return _walk(document, self.steps, 0, strict=True)

    def __str__(self) -> str:
        return self.text


def _step(node: Any, step: Step | _Key) -> Any:
    """One non-wildcard step; MISSING when absent, a SelectError reason on a type mismatch."""
    if isinstance(step, int):
        if not isinstance(node, list):
            raise SelectError("wrong_type", f"[{step}]")
        if -len(node) <= step < len(node):
            return node[step]
        return MISSING
    key = step.name if isinstance(step, _Key) else step
    if not isinstance(node, dict):
        raise SelectError("wrong_type", f".{key}")
    return node.get(key, MISSING)


def _walk(node: Any, steps: tuple[Step | _Key, ...], start: int, strict: bool) -> Any:
    for position in range(start, len(steps)):
        step = steps[position]
        if step == WILDCARD:
            if not isinstance(node, list):
                if strict:
                    raise SelectError("wrong_type" if node is not MISSING else "missing_field", "*")
                return [MISSING]
            rest = position + 1
            if rest == len(steps):
                return list(node)
            out: list[Any] = []
            nested = WILDCARD in steps[rest:]
            for element in node:
                value = _walk(element, steps, rest, strict=False)
                if nested and value is not MISSING:
                    out.extend(value)
                else:
                    out.append(value)
            return out
        if node is MISSING:
            if strict:
                raise SelectError("missing_field", str(step))
            return MISSING
        try:
            node = _step(node, step)
        except SelectError:
            if strict:
                raise
            return MISSING
        if node is MISSING and strict:
            raise SelectError("missing_field", str(step))
    return node
