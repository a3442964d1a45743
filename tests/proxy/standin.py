"""A stand-in TF Serving REST server (a real uvicorn server on loopback) and helpers to run
servers on their own threads: what the proxy tests and the proxy bench put the proxy in front of.

The model is real but tiny: score = 0.02·age + 1e-5·income + 0.3·[country = "DE"] − 1, the same
function whichever form the request takes (TF Serving's row `instances` or columnar `inputs`);
the bench can put a dense network of a chosen size in its place (`--hidden`, `--layers`).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MODEL_PREFIX = "/v1/models/"
SLOW_SECONDS = 3.0


def score(age: float, income: float, country: str) -> float:
    return 0.02 * age + 1e-5 * income + (0.3 if country == "DE" else 0.0) - 1.0


class Mlp:
    """A dense network with fixed random weights: the cost of a small real model (bench)."""

    def __init__(self, hidden: int, layers: int) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        sizes = [3, *([hidden] * layers), 1]
        self.weights = [rng.normal(0, 1 / np.sqrt(n), (n, m)) for n, m in itertools.pairwise(sizes)]

    def __call__(self, rows: list[tuple[float, float, str]]) -> list[float]:
        import numpy as np

        x = np.array([[a / 100, i / 1e5, float(c == "DE")] for a, i, c in rows])
        for weight in self.weights[:-1]:
            x = np.maximum(x @ weight, 0.0)
        return (x @ self.weights[-1])[:, 0].tolist()  # type: ignore[no-any-return]


def _as_tuple(row: Any) -> tuple[float, float, str]:
    if isinstance(row, dict):
        return float(row["age"]), float(row["income"]), str(row["country"])
    return float(row[0]), float(row[1]), str(row[2])


class StandIn:
    """The ASGI app; `seen_headers` records each request's headers (trace context checks).

    `model`: the tiny linear `score` (tests), or e.g. an `Mlp` (bench).
    """

    def __init__(self, model: Mlp | None = None) -> None:
        self.seen_headers: list[dict[str, str]] = []
        self.cut_bodies: list[bytes] = []
        self.model = model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.cut_bodies.append(body)  # the request ended before its body did
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen_headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        path, method = scope["path"], scope["method"]
        if path.startswith(MODEL_PREFIX) and path.endswith(":predict") and method == "POST":
            await self._predict(body, send)
        elif path.startswith(MODEL_PREFIX) and method == "GET":
            name = path[len(MODEL_PREFIX) :]
            status = {"model_version_status": [{"version": "1", "state": "AVAILABLE"}]}
            await _reply(send, 200, json.dumps({"name": name, **status}).encode())
        elif path == "/fail":
            await _reply(send, 500, b'{"error": "model crashed"}', [(b"x-upstream", b"500")])
        elif path == "/unavailable":
            await _reply(send, 503, b"busy", [(b"retry-after", b"2")], ctype=b"text/plain")
        elif path == "/slow":
            await asyncio.sleep(SLOW_SECONDS)
            await _reply(send, 200, b'{"late": true}')
        elif path == "/text":
            await _reply(send, 200, b"plain words, not JSON", ctype=b"text/plain")
        elif path == "/gzip":
            payload = gzip.compress(json.dumps({"predictions": [[0.5]]}).encode(), mtime=0)
            await _reply(send, 200, payload, [(b"content-encoding", b"gzip")])
        elif path == "/cookies":
            extra = [(b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/")]
            await _reply(
                send,
                200,
                json.dumps({"cookie": self.seen_headers[-1].get("cookie")}).encode(),
                extra,
            )
        elif path == "/stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")],
                }
            )
            for i in range(5):
                await send(
                    {"type": "http.response.body", "body": b'{"i": %d}\n' % i, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/broken":  # promises 100 bytes, sends 10, hangs up
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"100")],
                }
            )
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
        elif path == "/echo":
            await _reply(
                send,
                201,
                body,
                [(b"x-echo-length", str(len(body)).encode())],
                ctype=b"application/octet-stream",
            )
        else:
            await _reply(send, 404, b'{"error": "Not found"}')

    async def _predict(self, body: bytes, send: Send) -> None:
        try:
            request = json.loads(body)
            if "instances" in request:
                rows = [_as_tuple(row) for row in request["instances"]]
            else:
                inputs = request["inputs"]
                columns = (inputs["age"], inputs["income"], inputs["country"])
                rows = [_as_tuple(row) for row in zip(*columns, strict=True)]
            scores = self.model(rows) if self.model else [score(*row) for row in rows]
            key = "predictions" if "instances" in request else "outputs"
            answer: dict[str, Any] = {key: [[s] for s in scores]}
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            message = json.dumps({"error": f"Failed to process input: {type(exc).__name__}"})
            await _reply(send, 400, message.encode())
            return
        await _reply(send, 200, json.dumps(answer).encode())


async def _reply(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    ctype: bytes = b"application/json",
) -> None:
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        (b"date", b"Sun, 01 Jan 2023 00:00:00 GMT"),
        (b"server", b"standin-tfserving"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


@contextmanager
def serve_in_thread(app: Any, http: str = "auto") -> Iterator[str]:
    """A real uvicorn server on a loopback ephemeral port, on its own thread; yields its URL."""
    sock = free_socket()
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        http=http,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("stand-in server did not start")
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    """`python -m tests.proxy.standin --port 8501`: the stand-in on its own (examples, bench)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--http", default="auto", help="uvicorn HTTP implementation")
    parser.add_argument("--hidden", type=int, default=0, help="MLP width (0: the linear score)")
    parser.add_argument("--layers", type=int, default=2, help="MLP hidden layers")
    args = parser.parse_args()
    uvicorn.run(
        StandIn(Mlp(args.hidden, args.layers) if args.hidden else None),
        host=args.host,
        port=args.port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        http=args.http,
    )


if __name__ == "__main__":
    main()
