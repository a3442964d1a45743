"""The PromQL of the dashboards and rules: extracted, template variables substituted as
Grafana does, and taken apart into the selectors and label names it relies on."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "otelml-rules.yaml"

#: Grafana's built-in interval variables, as a 1 s scrape interval makes them.
BUILTINS = {"__rate_interval": "1m", "__range": "10m", "__interval": "15s"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
#: Metric names of this project (gateway families, recording rules, Prometheus' own scrape series).
_METRIC = r"(?:otelml[_:]|traces_spanmetrics_|scrape_)[A-Za-z0-9_:]*"
_SELECTOR = re.compile(rf"(?<![\w:])({_METRIC})\s*(\{{[^}}]*\}})?")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHER_LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")


@dataclass(frozen=True)
class Query:
    where: str  # dashboard / panel / refId, or rules / group / rule
    expr: str  # as written, with $variables
    repeat: str | None = None  # the panel is repeated per value of this variable


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[Query]:
    queries = []
    for path in dashboard_files():
        dashboard = load_dashboard(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "prometheus":
                    where = f"{dashboard['uid']}/{panel['title']}/{target['refId']}"
                    queries.append(Query(where, target["expr"], panel.get("repeat")))
    return queries


def rule_queries() -> list[Query]:
    rules = yaml.safe_load(RULES.read_text())
    return [
        Query(f"rules/{group['name']}/{rule.get('record') or rule.get('alert')}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def substitute(expr: str, values: dict[str, list[str]]) -> str:
    """Grafana's interpolation for Prometheus: one value as is, several as a regex `(a|b)`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILTINS:
            return BUILTINS[name]
        chosen = values[name]  # an unknown variable is a KeyError: the test fails
        if len(chosen) == 1:
            return chosen[0]
        # Regex-escaped, then escaped again for the PromQL string the regex sits in.
        return "(" + "|".join(re.escape(v).replace("\\", "\\\\") for v in chosen) + ")"

    return _VARIABLE.sub(replace, expr)


def label_values_query(query: str) -> tuple[str, str]:
    """`label_values(selector, label)` → (selector, label)."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
    assert match is not None, f"not a label_values query: {query}"
    return match.group(1), match.group(2)


def resolve_variables(
    dashboard: dict[str, Any], label_values: Callable[[str, str], list[str]]
) -> dict[str, list[str]]:
    """Each variable in order, as Grafana resolves them: a query variable's values from
    Prometheus (every value when it is multi-valued, else the first), a custom one's first."""
    values: dict[str, list[str]] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "custom":
            values[variable["name"]] = [variable["current"]["value"]]
            continue
        selector, label = label_values_query(variable["query"]["query"])
        found = sorted(label_values(substitute(selector, values), label))
        assert found, f"variable {variable['name']}: {variable['query']['query']} has no values"
        values[variable["name"]] = found if variable["multi"] else found[:1]
    return values


def selectors(expr: str) -> list[str]:
    """Every `metric{matchers}` the expression reads."""
    return [m.group(0).strip() for m in _SELECTOR.finditer(expr)]


def grouping_labels(expr: str) -> set[str]:
    """Label names of by/without/on/ignoring/group_left/group_right clauses."""
    labels: set[str] = set()
    for clause in _GROUPING.findall(expr):
        labels.update(name.strip() for name in clause.split(",") if name.strip())
    return labels


def matcher_labels(selector: str) -> set[str]:
    _, _, matchers = selector.partition("{")
    return set(_MATCHER_LABEL.findall(matchers))
