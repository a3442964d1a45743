"""The one interface every connector implements: decoded records in, its own state updated.

A connector is the exporter of the traces/logs pipeline and the receiver of a metrics one
(the OpenTelemetry collector's term): it reads what it needs from a request's columnar
records and counts it into state it was given, which merges across workers and describes
itself to the exposition. `Pipeline` holds a list of them and hands each request's records to
those that take its signal.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from otelml.gateway.decode import Records

#: The signals whose records are decoded into columns (metrics are only forwarded).
RecordSignal = Literal["spans", "log_records"]


class Connector(Protocol):
    #: Which decoded signals this connector reads.
    @property
    def signals(self) -> frozenset[RecordSignal]: ...

    def consume(self, records: Records, valid: npt.NDArray[np.bool_] | None = None) -> None:
        """Count one request's records; `valid` masks out records the receiver rejected.

        Never raises for content: what cannot be used is counted by reason in the state.
        """
        ...
