"""A destination that accepts every OTLP export and does nothing, in its own process.

`python -m bench.blackhole CORES`: pins itself to CORES (comma-separated) before gRPC starts
any thread, prints its port, and serves until killed. A process of its own, on the load
client's core: a server thread inside the bench process could run on the gateway's core and
bill the destination's work to the gateway.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
    print(port, flush=True)
    while True:
        time.sleep(3600)


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
        self.port = int(line)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


if __name__ == "__main__":
    serve({int(core) for core in sys.argv[1].split(",")})
