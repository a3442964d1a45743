"""A batch-scoring script using only `otelml.instrument`: configure, record, log, truth.

Run in its own process (providers are process-global); prints what it sent as JSON.
Usage: python tests/instrument/apps/record_script.py SEED (by path: otelml comes from the
environment it runs in, never from this checkout)
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import numpy as np
import pandas as pd
from opentelemetry import trace

from otelml import instrument

PLANS = ["free", "pro", "team"]


def main(seed: int) -> None:
    telemetry = instrument.configure(service_name="record-script")  # everything else from OTEL_*
    log = logging.getLogger("scorer")
    log.setLevel(logging.INFO)
    tracer = trace.get_tracer("scorer")
    rng = np.random.default_rng(seed)
    sent: dict[str, Any] = {"age": [], "plan": [], "score": [], "ids": [], "truth": []}
    sent["traces"] = []

    for _ in range(40):  # one row per request
        with tracer.start_as_current_span("predict") as span:
            row = {"age": float(rng.normal(40, 10)), "plan": str(rng.choice(PLANS))}
            score = float(rng.uniform())
            ids = instrument.record(features=row, prediction=score, model="churn", version=3)
            log.info("scored %s", ids[0])
            sent["traces"].append(format(span.get_span_context().trace_id, "032x"))
        sent["age"].append(row["age"])
        sent["plan"].append(row["plan"])
        sent["score"].append(score)
        sent["ids"] += ids

    for _ in range(10):  # a DataFrame batch of 8 rows per request, with missing values
        with tracer.start_as_current_span("predict_batch") as span:
            frame = pd.DataFrame(
                {"age": rng.normal(40, 10, 8), "plan": rng.choice(PLANS, 8).astype(object)}
            )
            frame.loc[0, "age"] = np.nan
            frame.loc[1, "plan"] = None
            scores = rng.uniform(size=8)
            ids = instrument.record(features=frame, prediction=scores, model="churn", version="3")
            log.info("scored a batch of %d", len(ids))
            sent["traces"].append(format(span.get_span_context().trace_id, "032x"))
        sent["age"] += frame["age"].tolist()
        sent["plan"] += frame["plan"].tolist()
        sent["score"] += scores.tolist()
        sent["ids"] += ids

    # No span in context: record() opens one of its own.
    ids = instrument.record(
        features={"age": 50.0, "plan": "pro"}, prediction=0.5, model="churn", version="3"
    )
    sent["age"].append(50.0)
    sent["plan"].append("pro")
    sent["score"].append(0.5)
    sent["ids"] += ids

    # Wider than the span attribute limit: the set goes on a log record in the same trace.
    with tracer.start_as_current_span("predict_wide") as span:
        instrument.record(
            features={f"w{i}": float(i) for i in range(140)}, prediction=1.0, model="wide"
        )
        sent["wide_trace"] = format(span.get_span_context().trace_id, "032x")

    # Ground truth for the first 30 predictions, later, from "another job".
    truth = [round(s + 0.1, 6) for s in sent["score"][:30]]
    instrument.record_ground_truth(sent["ids"][:30], truth, model="churn", version="3")
    sent["truth"] = truth

    telemetry.force_flush()
    telemetry.shutdown()
    print(json.dumps(sent))


if __name__ == "__main__":
    main(int(sys.argv[1]))
