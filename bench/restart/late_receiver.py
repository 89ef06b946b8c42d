"""The e2e OTLP receiver on a port fixed beforehand: the endpoint that was down comes back.

Run (``bench/restart`` starts it once the outage has lasted)::

    .venv/bin/python -m bench.restart.late_receiver --port 43117 --port-file PATH

The servicer and the status server are ``bench/e2e/receiver.py``'s (unique span ids,
duplicates, ``first_ns`` / ``last_ns``); only the gRPC port is the one given, the port the
bridge has been exporting to in vain.
"""

from __future__ import annotations

import argparse
import threading
from concurrent import futures

import grpc  # type: ignore[import-untyped]  # no types-grpcio in the dev extras
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from bench.e2e.receiver import Counts, http_server
from bench.e2e.source import write_port_file


def main() -> None:
    """Serve on ``--port`` until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    counts = Counts()
    pool = futures.ThreadPoolExecutor(max_workers=4)
    server = grpc.server(pool, options=[("grpc.max_receive_message_length", 64 << 20)])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counts, server)  # type: ignore[no-untyped-call]
    if server.add_insecure_port(f"127.0.0.1:{args.port}") != args.port:
        raise SystemExit(f"late_receiver: port {args.port} is taken")
    server.start()
    status = http_server(counts)
    threading.Thread(target=status.serve_forever, daemon=True).start()
    write_port_file(args.port_file, {"grpc": args.port, "http": status.server_address[1]})
    print(f"late receiver: OTLP/gRPC on {args.port}", flush=True)
    server.wait_for_termination()  # until SIGTERM (the default action: nothing to clean up)


if __name__ == "__main__":
    main()
