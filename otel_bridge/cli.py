"""The ``otel-bridge`` command: serve, watch, replay, simulate, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from prometheus_client import CollectorRegistry, disable_created_metrics

from otel_bridge import __version__
from otel_bridge.bridge import Bridge
from otel_bridge.core.ids import parse_traceparent
from otel_bridge.core.outputs import Output
from otel_bridge.core.records import SpanRecord
from otel_bridge.demo import run_demo
from otel_bridge.errors import InvalidName, SettingsError, StateError, TraceParentError
from otel_bridge.logs import setup_logging
from otel_bridge.names import validate_name
from otel_bridge.server import BridgeServer, serve_until_signal
from otel_bridge.settings import Settings, add_setting_flags, load_settings
from otel_bridge.simulator import cli as simulator_cli
from otel_bridge.sinks.exposition import write_metrics_file
from otel_bridge.sources.replay import replay
from otel_bridge.waterfall import render_trace

log = logging.getLogger("otel_bridge")

REPLAY_SETTINGS = (
    "capture",
    "max_payload_bytes",
    "max_frame_bytes",
    "max_open_tasks",
    "otlp",
    "export_queue_size",
    "log_format",
    "log_level",
    "max_label_values",
    "flow_allow",
    "flow_deny",
    "task_allow",
    "task_deny",
    "state_dir",
    "state_max_bytes",
)


def version_line() -> str:
    """``otel-bridge X (OpenTelemetry SDK Y)``."""
    try:
        sdk = metadata.version("opentelemetry-sdk")
    except metadata.PackageNotFoundError:  # pragma: no cover - the SDK is a dependency
        sdk = "unknown"
    return f"otel-bridge {__version__} (OpenTelemetry SDK {sdk})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand and setting."""
    parser = argparse.ArgumentParser(
        prog="otel-bridge",
        description="LAO run sockets in, OpenTelemetry traces and Prometheus metrics out.",
        epilog="Standard OTEL_* variables configure OTLP export (OTEL_EXPORTER_OTLP_ENDPOINT, "
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc|http/protobuf, OTEL_EXPORTER_OTLP_HEADERS, "
        "OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER=otlp,console,none, "
        "OTEL_TRACES_SAMPLER, OTEL_SDK_DISABLED, OTEL_BSP_*).",
    )
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="Run the bridge: control API, /metrics, subscriptions (the sidecar)."
    )
    add_setting_flags(serve)

    watch = commands.add_parser("watch", help="Follow one run from the shell, then exit.")
    watch.add_argument("flow_name", help="The flow's name, as in run-dag.")
    watch.add_argument("run_name", help="The run's name, as in run-dag.")
    watch.add_argument("--traceparent", help="W3C traceparent to attach the run to.")
    add_setting_flags(watch)

    rep = commands.add_parser(
        "replay", help="Turn recorded streams (one frame per line) into the same spans."
    )
    rep.add_argument("files", nargs="+", type=Path, help="Recordings, JSON Lines.")
    rep.add_argument("--traces-out", dest="traces_out", help="Write spans as OTLP/JSON lines.")
    rep.add_argument("--metrics-out", help="Write the Prometheus exposition after the replay.")
    rep.add_argument("--flow", help="Flow name for events that carry none (or to override).")
    rep.add_argument("--run", help="Run name for events that carry none (or to override).")
    rep.add_argument(
        "--state",
        type=Path,
        help="Carry open runs over between invocations in a JSON file (replaying a stream in "
        "parts); --state-dir does the same with the serve command's state store.",
    )
    rep.add_argument("--waterfall", action="store_true", help="Print each run as a waterfall.")
    add_setting_flags(rep, only=REPLAY_SETTINGS)

    sim = commands.add_parser("simulate", help="Serve a simulated LAO (run-dag and run sockets).")
    simulator_cli.add_arguments(sim)

    demo = commands.add_parser("demo", help="Simulator + bridge + flows, shown as waterfalls.")
    demo.add_argument("--traces-out", default="demo-traces.jsonl", help="Spans file.")
    demo.add_argument("--time-scale", type=float, default=0.1, help="Simulated time factor.")
    demo.add_argument("--flows", type=int, default=4, help="Generated flows besides the seed's.")
    demo.add_argument("--seed", type=int, default=7, help="Random seed of generated flows.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    # Prometheus ingests every *_created sample as one more series; the bridge has no use for them.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client lacks a hint
    try:
        if args.command == "simulate":
            setup_logging("text", "INFO")
            return asyncio.run(simulator_cli.run(args))
        if args.command == "demo":
            setup_logging("text", "WARNING")
            return asyncio.run(
                run_demo(
                    args.traces_out,
                    time_scale=args.time_scale,
                    generated=args.flows,
                    seed=args.seed,
                )
            )
        settings = load_settings(args)
        setup_logging(settings.log_format, settings.log_level)
        if args.command == "serve":
            try:
                asyncio.run(serve_until_signal(BridgeServer(settings)))
            except OSError as exc:  # a port is taken, an address is not ours, ...
                print(f"otel-bridge: {exc.strerror or exc}", file=sys.stderr)
                return 2
            return 0
        if args.command == "watch":
            return asyncio.run(_watch(settings, args))
        return _replay(settings, args)
    except (SettingsError, StateError) as exc:
        print(f"otel-bridge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _watch(settings: Settings, args: argparse.Namespace) -> int:
    try:
        validate_name("flow_name", args.flow_name)
        validate_name("run_name", args.run_name)
    except InvalidName as exc:
        print(f"otel-bridge: {exc}", file=sys.stderr)
        return 2
    parent = None
    if args.traceparent:
        try:
            parent = parse_traceparent(args.traceparent)
        except TraceParentError as exc:
            print(f"otel-bridge: --traceparent: {exc}", file=sys.stderr)
            return 2
    bridge = Bridge(settings)
    spans: list[SpanRecord] = []

    def keep(output: Output) -> None:
        if isinstance(output, SpanRecord):
            spans.append(output)

    bridge.router.listeners.append(keep)
    await bridge.start()
    try:
        sub, _ = bridge.subscribe(args.flow_name, args.run_name, parent)
        print(f"watching {sub.url}", file=sys.stderr)
        await sub.wait()
    finally:
        await bridge.stop()
    if spans:
        print(render_trace(spans))
    roots = [s for s in spans if s.kind == "run"]
    return 0 if roots and roots[-1].result.value == "success" else 1


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        print(f"otel-bridge: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.state and settings.state_dir:
        print("otel-bridge: use one of --state and --state-dir", file=sys.stderr)
        return 2
    settings = settings.model_copy(update={"traces_out": args.traces_out})
    registry = CollectorRegistry()
    bridge = Bridge(settings, registry=registry)
    keeper = bridge.keeper
    if keeper is not None:  # runs left open by an earlier replay, spans it could not deliver
        bridge.router.emit(keeper.restore(bridge.engine, time.time_ns()))
        for queue in bridge.router.queues:
            queue.resume(keeper.saved_spans(queue.sink.name))
    spans: list[SpanRecord] = []
    if args.waterfall:
        bridge.router.listeners.append(
            lambda o: spans.append(o) if isinstance(o, SpanRecord) else None
        )

    def bad_line(path: str, number: int, reason: str) -> None:
        print(f"{path}:{number}: skipped: {reason}", file=sys.stderr)

    report = replay(
        bridge.engine,
        bridge.router,
        args.files,
        flow_name=args.flow,
        run_name=args.run,
        state_file=args.state,
        keep_open=keeper is not None,
        on_bad_line=bad_line,
    )
    bridge.router.close(settings.shutdown_timeout_s)
    if keeper is not None:
        keeper.save(bridge.engine, everything=True)
        if not keeper.writer.close():
            print(f"otel-bridge: the state in {keeper.directory} was not saved", file=sys.stderr)
            return 1
        report.carried_over = len(bridge.engine.open_runs())
    if args.metrics_out:
        write_metrics_file(registry, args.metrics_out)
    if args.waterfall:
        by_trace: dict[int, list[SpanRecord]] = {}
        for span in spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        for group in by_trace.values():
            print(render_trace(group) + "\n")
    print(report.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
