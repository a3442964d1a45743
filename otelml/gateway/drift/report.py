"""`otelml drift` output: a terminal table, JSON, and a self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from otelml.gateway.drift.batch import ColumnDrift

_HEADER = ("window", "column", "method", "score", "threshold", "drift", "psi", "rows", "missing")


def _cells(result: ColumnDrift) -> tuple[str, ...]:
    verdict = "n/a" if result.drift is None else ("DRIFT" if result.drift else "ok")
    return (
        result.window,
        result.column if result.role == "feature" else f"{result.column} (output)",
        result.method,
        f"{result.score:.4g}",
        f"{result.threshold:g}",
        verdict,
        f"{result.psi:.4f}",
        str(result.observations),
        str(result.missing),
    )


def table(results: Sequence[ColumnDrift]) -> str:
    rows = [_HEADER, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    flagged = sum(1 for r in results if r.drift)
    lines.append(f"\n{flagged} of {len(results)} column checks drifted")
    return "\n".join(line.rstrip() for line in lines)


def write_json(
    results: Sequence[ColumnDrift], path: Path, performance: Sequence[dict[str, object]] = ()
) -> None:
    """The drift verdicts; with `performance` (estimated/realized per window), an object of
    both instead of the list."""
    drift = [r.as_dict() for r in results]
    document: object = {"drift": drift, "performance": list(performance)} if performance else drift
    path.write_text(json.dumps(document, indent=2, allow_nan=True))


def _performance_html(performance: Sequence[dict[str, object]]) -> str:
    """A second table: per window and output, each metric's estimate ± stderr (and realized)."""
    if not performance:
        return ""
    cells = ("window", "output", "metric", "estimated", "stderr", "realized")
    rows = []
    for entry in performance:
        estimated, stderr = entry["estimated"], entry["stderr"]
        realized = entry["realized"]
        assert isinstance(estimated, dict) and isinstance(stderr, dict)
        for metric, value in estimated.items():
            known = f"{realized[metric]:.4f}" if isinstance(realized, dict) else ""
            values = (
                entry["window"],
                entry["output"],
                metric,
                f"{value:.4f}",
                f"{stderr[metric]:.4f}",
                known,
            )
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>"
            )
    head = "".join(f"<th>{c}</th>" for c in cells)
    body = "".join(rows)
    return f"<h2>Performance</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(
    results: Sequence[ColumnDrift],
    path: Path,
    title: str,
    performance: Sequence[dict[str, object]] = (),
) -> None:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER)
    body = "".join(
        f'<tr class="{"drift" if r.drift else ""}">'
        + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r))
        + "</tr>"
        for r in results
    )
    path.write_text(
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
        "td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:left}"
        "tr.drift{background:#fde8e8;font-weight:600}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>{_performance_html(performance)}</body></html>"
    )
