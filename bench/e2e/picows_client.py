"""Receive + decode cost per frame: websockets against picows, asyncio against uvloop.

A throwaway measurement for issue 12's transport item (results: ``bench/README.md``,
"Transport"); the bridge's client is not changed by it. Run::

    .venv/bin/python -m bench.e2e.picows_client --runs 200 --tasks 50 --reps 3

picows and uvloop are not dependencies of the bench: install them next to it, e.g.
``pip install --target /tmp/picows_site picows`` and ``PYTHONPATH=/tmp/picows_site``.
A variant whose library is missing is skipped.

Per measurement a fresh ``bench/e2e/source.py`` (pinned to CPU 1) serves ``--runs`` runs of
the e2e frames (~1 KB task outputs); one client process (pinned to CPU 0) opens one socket
per run, then ``POST /go`` (sent as fast as the sockets take them) and ``orjson.loads`` every
text frame, as the bridge's read loop does first. Its CPU time (all threads, from just before
``/go`` to the last frame) divided by the frames is the figure. Variants alternate within each
repetition, so a shared machine's load falls on all alike.

- ``websockets``: ``websockets.asyncio.client.connect`` with the bridge's options
  (no compression, pings every 20 s), ``async for message in ws``;
- ``picows``: a ``WSListener`` whose ``on_ws_frame`` decodes the payload (callbacks, no
  coroutine per frame; pongs answered by picows), on aiofastnet's transports (picows's
  default when aiofastnet is installed);
- ``picows-asyncio``: the same on asyncio's own transports (``use_aiofastnet=False``, what
  the bridge's client uses: aiofastnet's transport held ~5.7 KB more per idle socket);
- ``picows-compat``: picows's websockets-compatible API (``picows.websockets.connect``),
  the same ``async for`` loop as ``websockets``;
- each with ``+uvloop``: the same client on uvloop's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.e2e.client import Http
from bench.e2e.frames import FLOW
from bench.e2e.procs import CPU_PEERS, CPU_TEST, ROOT, pinned

VARIANTS = (
    "websockets",
    "websockets+uvloop",
    "picows",
    "picows+uvloop",
    "picows-asyncio",
    "picows-compat",
    "picows-compat+uvloop",
)


class Counter:
    """Frames received so far; sets ``done`` at the expected total."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.frames = 0
        self.done = asyncio.Event()

    def count(self) -> None:
        """One more frame."""
        self.frames += 1
        if self.frames >= self.total:
            self.done.set()


async def follow_websockets(urls: list[str], counter: Counter, compat: bool) -> list[Any]:
    """One ``async for`` reader per run socket (websockets, or picows's look-alike)."""
    if compat:
        from picows.websockets import connect
    else:
        from websockets.asyncio.client import connect

    async def read(ws: Any) -> None:
        async for message in ws:
            orjson.loads(message)
            counter.count()

    sockets = [
        await connect(url, compression=None, ping_interval=20, max_size=16 << 20) for url in urls
    ]
    for ws in sockets:
        asyncio.get_running_loop().create_task(read(ws))
    return sockets


async def follow_picows(urls: list[str], counter: Counter, fastnet: bool = True) -> list[Any]:
    """One ``WSListener`` per run socket: decode in ``on_ws_frame``."""
    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                orjson.loads(frame.get_payload_as_bytes())
                counter.count()
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

    transports = []
    for url in urls:
        transport, _ = await ws_connect(
            Listener, url, max_frame_size=16 << 20, use_aiofastnet=fastnet
        )
        transports.append(transport)
    return transports


async def client(variant: str, base: str, runs: list[str], total: int) -> dict[str, Any]:
    """Subscribe every run, start the source, count frames; CPU per frame."""
    urls = [f"ws://{base}/ws/{FLOW}/{run}" for run in runs]
    counter = Counter(total)
    kind = variant.removesuffix("+uvloop")
    if kind in ("picows", "picows-asyncio"):
        await follow_picows(urls, counter, fastnet=kind == "picows")
    else:
        await follow_websockets(urls, counter, compat=kind == "picows-compat")
    http = Http(f"http://{base}")
    cpu0, wall0 = time.process_time(), time.monotonic()
    status, _ = http.request("POST", "/go?rate=0")
    assert status == 202, status
    await asyncio.wait_for(counter.done.wait(), 300)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return {
        "variant": variant,
        "frames": counter.frames,
        "cpu_us_per_frame": cpu * 1e6 / counter.frames,
        "frames_per_s": counter.frames / wall,
    }


def loop_factory(variant: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop of a variant: uvloop's for ``+uvloop``, else asyncio's (None)."""
    if not variant.endswith("+uvloop"):
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def available(variant: str) -> bool:
    """Whether this variant's libraries are installed."""
    needs = ["picows"] if variant.startswith("picows") else []
    needs += ["uvloop"] if variant.endswith("+uvloop") else []
    return all(importlib.util.find_spec(name) is not None for name in needs)


def measure(variant: str, runs: int, tasks: int, tag: str) -> dict[str, Any]:
    """One fresh source, one client process: its result line."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port.json"
        source_argv = [sys.executable, "-m", "bench.e2e.source", "--runs", str(runs)]
        source_argv += ["--tasks", str(tasks), "--tag", tag, "--port-file", str(port_file)]
        source = subprocess.Popen(
            pinned(CPU_PEERS) + source_argv, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 120
            while not port_file.exists():
                if time.monotonic() > deadline or source.poll() is not None:
                    raise RuntimeError("the source did not start")
                time.sleep(0.05)
            port = json.loads(port_file.read_text())["port"]
            status = Http(f"http://127.0.0.1:{port}").json("/status")
            argv = [sys.executable, "-m", "bench.e2e.picows_client", "--client", variant]
            argv += ["--base", f"127.0.0.1:{port}", "--runs", str(runs), "--tasks", str(tasks)]
            argv += ["--tag", tag, "--total", str(status["events"])]
            out = subprocess.run(
                pinned(CPU_TEST) + argv, cwd=ROOT, capture_output=True, timeout=600
            )
            if out.returncode:
                raise RuntimeError(f"{variant} client failed:\n{out.stderr.decode()[-3000:]}")
            result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
            return result
        finally:
            source.terminate()
            source.wait(30)


def main() -> None:
    """Alternate the variants ``--reps`` times; print min / median / max per variant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="t", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:  # the measured process
        from bench.e2e.frames import run_name

        runs = [run_name(args.tag, i) for i in range(args.runs)]
        with asyncio.Runner(loop_factory=loop_factory(args.client)) as runner:
            result = runner.run(client(args.client, args.base, runs, args.total))
        print(json.dumps(result), flush=True)
        return
    variants = [v for v in args.variants.split(",") if v]
    for variant in variants:
        if not available(variant):
            print(f"skipped {variant}: not installed", file=sys.stderr)
    variants = [v for v in variants if available(v)]
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for rep in range(args.reps):
        for variant in variants:
            result = measure(variant, args.runs, args.tasks, f"t{rep}")
            results[variant].append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    print("| client | CPU µs per frame, min / median / max | frames/s, median |")
    print("|---|---|---|")
    for variant, rows in results.items():
        cpu = sorted(r["cpu_us_per_frame"] for r in rows)
        rate = statistics.median(r["frames_per_s"] for r in rows)
        line = f"{cpu[0]:.2f} / {statistics.median(cpu):.2f} / {cpu[-1]:.2f}"
        print(f"| {variant} | {line} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
