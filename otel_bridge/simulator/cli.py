"""The ``otel-bridge simulate`` subcommand: serve a simulated LAO, optionally playing flows.

Wire it in with ``add_arguments(subparser)`` and ``asyncio.run(run(args))``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from typing import TextIO

from otel_bridge.simulator.app import Simulator
from otel_bridge.simulator.flow import JSON
from otel_bridge.simulator.flows import customer_support_flow, financial_data_flow, generate_flow
from otel_bridge.simulator.quirks import Quirks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulate subcommand's options to ``parser``."""
    defaults = Quirks()
    serve = parser.add_argument_group("serving")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free one)")
    serve.add_argument(
        "--api-key", default=None, help="require this x-api-key header on every request"
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every simulated duration by this (0.1 plays ten times faster)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed for durations, ids and noise")

    play = parser.add_argument_group("auto-play")
    play.add_argument(
        "--play",
        choices=("seed", "random"),
        default=None,
        help="start runs by itself: the docs' two example flows in turn, or random DAGs",
    )
    play.add_argument("--runs", type=int, default=0, help="runs to play, then exit (0: forever)")
    play.add_argument(
        "--interval", type=float, default=1.0, help="seconds between the end of a run and the next"
    )
    play.add_argument(
        "--wait-subscriber",
        type=float,
        default=0.0,
        help="before each run, wait up to this many seconds for a socket subscriber",
    )
    play.add_argument("--tasks", type=int, default=8, help="tasks per random flow")
    play.add_argument(
        "--failure-rate", type=float, default=0.05, help="chance that a random flow's task fails"
    )

    quirks = parser.add_argument_group("socket quirks")
    quirks.add_argument(
        "--quiet",
        action="store_true",
        help="start from no noise at all (no greeting, echo, keepalive, noise, server close)",
    )
    quirks.add_argument(
        "--chaos", action="store_true", help="start from every noise and fault switched on"
    )
    quirks.add_argument(
        "--greeting",
        choices=("alternate", "text", "json", "off"),
        default=None,
        help=f"greeting frame on connect (default {defaults.greeting})",
    )
    quirks.add_argument("--no-echo", action="store_true", help="do not echo client frames")
    quirks.add_argument(
        "--keepalive",
        type=float,
        default=None,
        help=(
            "seconds between JSON keepalive frames, 0 for none"
            f" (default {defaults.keepalive_interval})"
        ),
    )
    quirks.add_argument(
        "--noise",
        type=float,
        default=None,
        help=(
            f"chance of a plain-text frame before each event (default {defaults.noise_probability})"
        ),
    )
    quirks.add_argument(
        "--timestamps",
        choices=("seconds", "milliseconds", "iso", "mixed"),
        default=None,
        help="timestamp style; mixed picks one per run (default seconds)",
    )
    quirks.add_argument("--omit-task-ids", action="store_true", help="send events without task_id")
    quirks.add_argument(
        "--duplicates", type=float, default=None, help="chance that an event frame is sent twice"
    )
    quirks.add_argument(
        "--disconnect-after",
        type=int,
        default=None,
        help="drop each run's first socket after this many event frames",
    )
    quirks.add_argument(
        "--disconnect-mode",
        choices=("close", "abort"),
        default=None,
        help="drop with close code 1011 or by aborting the TCP connection (default close)",
    )
    quirks.add_argument(
        "--stall-after",
        type=int,
        default=None,
        help="after this many event frames, stop sending and answering pings on the first socket",
    )
    quirks.add_argument(
        "--close-after",
        type=float,
        default=None,
        help="seconds after a terminal event before the server closes the socket, <0 for never",
    )
    quirks.add_argument(
        "--unknown-events",
        type=float,
        default=None,
        help="chance per task of an undocumented task_progress event",
    )
    quirks.add_argument(
        "--resend-history",
        action="store_true",
        help="a new socket first gets every event the run already sent (resends old events)",
    )
    quirks.add_argument(
        "--refuse-reconnects",
        type=int,
        default=None,
        metavar="STATUS",
        help="answer every connection of a run socket after its first with this HTTP status",
    )


def quirks_from_args(args: argparse.Namespace) -> Quirks:
    """Return the :class:`Quirks` the options describe."""
    base = Quirks.quiet() if args.quiet else Quirks.chaos() if args.chaos else Quirks()
    changes: dict[str, object] = {}
    if args.greeting is not None:
        changes["greeting"] = args.greeting
    if args.no_echo:
        changes["echo"] = False
    if args.keepalive is not None:
        changes["keepalive_interval"] = args.keepalive if args.keepalive > 0 else None
    if args.noise is not None:
        changes["noise_probability"] = args.noise
    if args.timestamps is not None:
        changes["timestamps"] = args.timestamps
    if args.omit_task_ids:
        changes["omit_task_ids"] = True
    if args.duplicates is not None:
        changes["duplicate_events"] = args.duplicates
    if args.disconnect_after is not None:
        changes["disconnect_after"] = args.disconnect_after
    if args.disconnect_mode is not None:
        changes["disconnect_mode"] = args.disconnect_mode
    if args.stall_after is not None:
        changes["stall_after"] = args.stall_after
    if args.close_after is not None:
        changes["close_after_terminal"] = args.close_after if args.close_after >= 0 else None
    if args.unknown_events is not None:
        changes["unknown_events"] = args.unknown_events
    if args.resend_history:
        changes["resend_history"] = True
    if args.refuse_reconnects is not None:
        changes["refuse_reconnects"] = args.refuse_reconnects
    fields = {**base.__dict__, **changes}
    return Quirks(**fields)


async def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Serve until cancelled, or until ``--runs`` auto-played runs have ended; return 0."""
    stream = out or sys.stdout
    try:
        quirks = quirks_from_args(args)
        sim = Simulator(quirks, time_scale=args.time_scale, seed=args.seed, api_key=args.api_key)
    except ValueError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 2
    try:
        await sim.start(args.host, args.port)
    except OSError as error:
        print(f"simulate: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        _say(
            stream,
            f"LAO simulator: POST {sim.http_url}/run-dag/, sockets {sim.ws_url}/ws/<flow>/<run>",
        )
        if args.play is None:
            await asyncio.Event().wait()
        else:
            await _autoplay(sim, args, stream)
    finally:
        await sim.stop()
    return 0


async def _autoplay(sim: Simulator, args: argparse.Namespace, stream: TextIO) -> None:
    rng = random.Random(args.seed)
    count = 0
    while args.runs <= 0 or count < args.runs:
        if count:
            await asyncio.sleep(args.interval)
        count += 1
        body = _next_body(args, rng, count)
        flow_name, run_name = str(body["flow_name"]), str(body["run_name"])
        if args.wait_subscriber > 0:
            with contextlib.suppress(TimeoutError):
                await sim.wait_subscribers(flow_name, run_name, 1, args.wait_subscriber)
        began = time.monotonic()
        task_id = await sim.start_run(body)
        _say(
            stream,
            f"run started {flow_name}/{run_name} task_id={task_id}"
            f" socket={sim.socket_url(flow_name, run_name)}",
        )
        status = await sim.wait_run(flow_name, run_name, timeout=None)
        events = len(sim.events_sent(flow_name, run_name))
        elapsed = time.monotonic() - began
        _say(
            stream,
            f"run ended {flow_name}/{run_name} status={status} events={events}"
            f" seconds={elapsed:.2f}",
        )


def _next_body(args: argparse.Namespace, rng: random.Random, count: int) -> JSON:
    if args.play == "random":
        return generate_flow(rng, args.tasks, failure_rate=args.failure_rate)
    make = customer_support_flow if count % 2 else financial_data_flow
    body = make()
    if count > 2:
        body["run_name"] = f"{body['run_name']}_{(count + 1) // 2}"
    return body


def _say(stream: TextIO, line: str) -> None:
    print(line, file=stream, flush=True)
