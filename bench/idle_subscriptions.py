"""Memory of idle subscriptions: N runs followed over real sockets, no events flowing.

Run: ``.venv/bin/python -m bench.idle_subscriptions [--runs N] [--compression]``. Starts the
LAO simulator (quiet: no keepalive frames) and a bridge on loopback, subscribes N runs that
never start, and prints the bridge process's resident memory per subscription. With
``--compression`` the bridge offers permessage-deflate upstream, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource

from prometheus_client import CollectorRegistry

from otel_bridge.server import BridgeServer
from otel_bridge.settings import Settings
from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.sinks.span_sinks import MemorySink


def rss_kib() -> int:
    """Current resident set size of this process in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def measure(runs: int, compression: bool) -> None:
    """Subscribe ``runs`` idle runs and report memory per subscription."""
    async with Simulator(Quirks.quiet()) as sim:
        settings = Settings(
            port=0, control_port=0, upstream_url=sim.ws_url, upstream_compression=compression
        )
        async with BridgeServer(
            settings, registry=CollectorRegistry(), sinks=[MemorySink()]
        ) as srv:
            gc.collect()
            before = rss_kib()
            for i in range(runs):
                srv.bridge.subscribe("Idle Flow", f"idle_{i}")
            for i in range(runs):
                await sim.wait_subscribers("Idle Flow", f"idle_{i}", timeout=60)
            await asyncio.sleep(1)
            gc.collect()
            after = rss_kib()
            connected = sum(s.state == "connected" for s in srv.bridge.subscriptions.values())
            print(
                f"{connected}/{runs} idle subscriptions connected "
                f"(compression {'on' if compression else 'off'}): "
                f"RSS +{(after - before) / 1024:.1f} MiB, "
                f"{(after - before) / runs:.1f} KiB per subscription "
                "(includes the simulator's side of each socket, same process)"
            )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--compression", action="store_true")
    args = parser.parse_args()
    asyncio.run(measure(args.runs, args.compression))


if __name__ == "__main__":
    main()
