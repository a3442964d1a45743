"""What a service in one install-matrix row does: configure, record plain rows, flush.

Run by file path with the row's own python (not as a module of this checkout), so `otelml`
can only come from the row's site-packages. Uses no numpy or pandas: a row may not have them.
Prints JSON: what was sent, where otelml came from, and which heavy modules got imported.
Usage: python send_spans.py ROW
"""

from __future__ import annotations

import importlib.util
import json
import sys

import otelml
import otelml.instrument

#: Imported by `import otelml.instrument`: must stay empty (lazy, or gateway-only).
HEAVY = ("numpy", "pandas", "pyarrow", "scipy", "pydantic", "yaml", "otelml.gateway")
PLANS = ("free", "pro", "team")


def loaded_heavy() -> list[str]:
    return sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def main(row: str) -> None:
    heavy = loaded_heavy()
    integrations = []
    for name in ("fastapi", "bentoml"):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(f"otelml.instrument.{name}")
            integrations.append(name)
    from opentelemetry import trace

    telemetry = otelml.instrument.configure(service_name="install-check")
    tracer = trace.get_tracer("install-check")
    ages: list[float | None] = []
    plans: list[str] = []
    predictions: list[float] = []
    for i in range(20):  # one row per request
        with tracer.start_as_current_span("predict"):
            age, plan, score = 20.0 + i, PLANS[i % 3], i / 20
            otelml.instrument.record(
                features={"age": age, "plan": plan}, prediction=score, model="install", version=row
            )
        ages.append(age)
        plans.append(plan)
        predictions.append(score)
    for b in range(5):  # a batch of four rows given by columns, one age missing
        column_ages: list[float | None] = [None, 30.5 + b, 41.0, 52.5]
        column_plans = [PLANS[(b + j) % 3] for j in range(4)]
        scores = [0.25 * j for j in range(4)]
        with tracer.start_as_current_span("predict"):
            otelml.instrument.record(
                features={"age": column_ages, "plan": column_plans},
                prediction=scores,
                model="install",
                version=row,
            )
        ages += column_ages
        plans += column_plans
        predictions += scores
    telemetry.force_flush()
    telemetry.shutdown()
    print(
        json.dumps(
            {
                "otelml": otelml.__file__,
                "heavy_modules": heavy,
                "integrations": integrations,
                "spans": 25,
                "ages": ages,
                "plans": plans,
                "predictions": predictions,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
