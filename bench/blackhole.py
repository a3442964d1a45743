"""A destination that accepts every OTLP export and does nothing, in its own process.

`python -m bench.blackhole CORES`: pins itself to CORES (comma-separated) before gRPC starts
any thread, prints its OTLP/gRPC port and its OTLP/HTTP port (any POST answered 200 with an
empty protobuf body, keep-alive), and serves until killed. A process of its own, on the load
client's core: a server thread inside the bench process could run on the gateway's core and
bill the destination's work to the gateway.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

_SERVICES = {
    "trace": "TraceService",
    "logs": "LogsService",
    "metrics": "MetricsService",
}


def serve(cores: set[int]) -> None:
    os.sched_setaffinity(0, cores)
    from concurrent import futures

    import grpc

    def accept(request: bytes, context: object) -> bytes:
        return b""

    handler = grpc.unary_unary_rpc_method_handler(accept)
    server = grpc.server(
        futures.ThreadPoolExecutor(2), options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    for package, service in _SERVICES.items():
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    f"opentelemetry.proto.collector.{package}.v1.{service}", {"Export": handler}
                ),
            )
        )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    http_port: list[int] = []
    ready = threading.Event()
    threading.Thread(target=asyncio.run, args=(_serve_http(http_port, ready),), daemon=True).start()
    ready.wait()
    print(port, http_port[0], flush=True)
    threading.Event().wait()


_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while length:  # read and drop
                chunk = await reader.read(min(length, 1 << 20))
                if not chunk:
                    raise ConnectionResetError
                length -= len(chunk)
            writer.write(_OK)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def _serve_http(port: list[int], ready: threading.Event) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0, limit=1 << 16)
    port.append(server.sockets[0].getsockname()[1])
    ready.set()
    await server.serve_forever()


class Blackhole:
    """The blackhole process on `cores` (the load client's in the bench, never the gateway's)."""

    def __init__(self, cores: set[int]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.blackhole", ",".join(map(str, sorted(cores)))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("blackhole did not start")
        grpc_port, http_port = line.split()
        self.port = int(grpc_port)
        self.http_port = int(http_port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


if __name__ == "__main__":
    serve({int(core) for core in sys.argv[1].split(",")})
