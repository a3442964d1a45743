"""What a request must pass before the gateway spends anything on it: auth, then admission.

- Auth: `auth.bearer_token` set → `Authorization: Bearer <token>` on every OTLP request
  (HTTP 401 / gRPC UNAUTHENTICATED otherwise), compared in constant time.
- Admission, before any decoding: the bytes of requests in flight — charged as they arrive,
  so a slow body holds only what it sent — stay under `limits.max_inflight_bytes`, and the
  process under `limits.memory_limit` (resident set);
  past either, the request is refused with a retry hint (HTTP 503 + Retry-After, gRPC
  UNAVAILABLE + RetryInfo) so OpenTelemetry clients back off and retry — never a bare
  RESOURCE_EXHAUSTED, which the Go collector takes as permanent.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from otelml.errors import Refused

RETRY_AFTER_S = 1.0
#: The reservation of the request being handled (each request runs in its own task).
_CURRENT: ContextVar[Reservation | None] = ContextVar("otelml_reservation", default=None)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int | str = "self") -> int:
    """A process's resident set, from /proc (0 where unavailable)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class Guard:
    def __init__(
        self,
        bearer_token: str = "",
        max_inflight_bytes: int = 64 << 20,
        memory_limit: int | None = None,
    ) -> None:
        self._token = bearer_token.encode() if bearer_token else None
        self.max_inflight_bytes = max_inflight_bytes
        self.memory_limit = memory_limit
        self.inflight_bytes = 0
        self._rss = 0
        self._rss_at = 0.0

    def authorized(self, authorization: str | None) -> bool:
        """`Bearer <token>`, the scheme in any case (RFC 7235), the token compared in constant
        time."""
        if self._token is None:
            return True
        scheme, _, token = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._token
        )

    @contextmanager
    def admit(self, size: int) -> Iterator[None]:
        """Hold `size` bytes of the in-flight budget for the duration of the request."""
        with self.reserve() as reservation:
            reservation.charge(size)
            yield

    @contextmanager
    def reserve(self) -> Iterator[Reservation]:
        """Admit a request whose size is not known yet: it is charged as its bytes arrive
        (`Reservation.charge`), so a slow body holds only what it has sent so far."""
        if self.memory_limit is not None and self._resident() > self.memory_limit:
            raise Refused(f"memory above limits.memory_limit ({self.memory_limit})", RETRY_AFTER_S)
        reservation = Reservation(self)
        token = _CURRENT.set(reservation)
        try:
            yield reservation
        finally:
            _CURRENT.reset(token)
            self.inflight_bytes -= reservation.held

    @staticmethod
    def charge_current(size: int) -> None:
        """Charge `size` bytes of work (decoded values) to the request being handled."""
        reservation = _CURRENT.get()
        if reservation is not None:
            reservation.charge(size)

    def _resident(self) -> int:
        now = time.monotonic()
        if now - self._rss_at > 0.1:  # a /proc read at most ten times a second
            self._rss, self._rss_at = resident_bytes(), now
        return self._rss


class Reservation:
    """One request's share of the in-flight budget, grown as its bytes arrive."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self.held = 0

    def charge(self, size: int) -> None:
        """Hold `size` more bytes; `Refused` past the budget, unless this request is alone
        in it (one request is always admitted: the size limit bounds it)."""
        guard = self._guard
        others = guard.inflight_bytes - self.held
        if others and guard.inflight_bytes + size > guard.max_inflight_bytes:
            raise Refused(
                f"too many bytes in flight ({guard.inflight_bytes} of {guard.max_inflight_bytes})",
                RETRY_AFTER_S,
            )
        guard.inflight_bytes += size
        self.held += size
