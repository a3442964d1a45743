"""The demo's traffic: real HTTP requests to the model service, and their ground truth later.

Each request carries a W3C `traceparent` the generator chose, so it knows every request's trace
id — and so the prediction id the gateway will join ground truth on (`<trace_id>:<row>`). The
labels of a request are posted to the gateway's `/v1/ground_truth` a little later, in bulk, as
a labelling system would.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from otelml.demo.model import OUTPUT, churned, customers

#: Seconds between a prediction and its ground truth.
LABEL_DELAY_S = 2.0
#: Every BATCH_EVERY-th request scores a batch of BATCH_ROWS customers.
BATCH_EVERY, BATCH_ROWS = 10, 8


@dataclass
class Counts:
    requests: int = 0
    rows: int = 0
    drifted_rows: int = 0
    labels: int = 0


@dataclass
class Traffic:
    service_port: int
    gateway_http_port: int
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(2026))
    counts: Counts = field(default_factory=Counts)
    #: (due time, prediction id, label) waiting to be posted.
    _labels: deque[tuple[float, str, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._service = http.client.HTTPConnection("127.0.0.1", self.service_port, timeout=10)
        self._gateway = http.client.HTTPConnection("127.0.0.1", self.gateway_http_port, timeout=10)

    def close(self) -> None:
        self._service.close()
        self._gateway.close()

    def request(self, drifted: bool) -> str:
        """One request (a single customer, or a batch); returns its trace id."""
        batch = self.counts.requests % BATCH_EVERY == BATCH_EVERY - 1
        rows = customers(self.rng, BATCH_ROWS if batch else 1, drifted)
        records = rows.to_dict("records")
        body = {"customers": records} if batch else records[0]
        trace_id = os.urandom(16).hex()
        headers = {
            "Content-Type": "application/json",
            "traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01",
        }
        path = "/predict_batch" if batch else "/predict"
        answer = self._call(self._service, path, body, headers)
        if "churn" not in answer:
            raise RuntimeError(f"the model service answered {answer}")
        truth = churned(self.rng, rows, drifted)
        due = time.monotonic() + LABEL_DELAY_S
        for row, label in enumerate(truth.tolist()):
            self._labels.append((due, f"{trace_id}:{row}", int(label)))
        self.counts.requests += 1
        self.counts.rows += len(rows)
        self.counts.drifted_rows += len(rows) if drifted else 0
        return trace_id

    def post_labels(self, everything: bool = False) -> int:
        """Post the ground truth that is due (or all of it); returns how many were posted."""
        now = time.monotonic()
        due = []
        while self._labels and (everything or self._labels[0][0] <= now):
            _, prediction_id, label = self._labels.popleft()
            due.append({"prediction_id": prediction_id, "output": OUTPUT, "value": label})
        if due:
            self._call(self._gateway, "/v1/ground_truth", due, {"Content-Type": "application/json"})
            self.counts.labels += len(due)
        return len(due)

    @staticmethod
    def _call(
        connection: http.client.HTTPConnection,
        path: str,
        body: object,
        headers: dict[str, str],
    ) -> dict[str, object]:
        payload = json.dumps(body).encode()
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            try:
                connection.request("POST", path, payload, headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                if attempt == 2:
                    raise
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: HTTP {response.status}: {data[:200]!r}")
        answer = json.loads(data) if data else {}
        return answer if isinstance(answer, dict) else {"answer": answer}
