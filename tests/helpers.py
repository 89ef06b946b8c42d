"""Small drivers shared by the core's tests: events as dicts in, span records out.

``run_events`` classifies dicts the way a recorded stream is read and feeds them to a
:class:`~otel_bridge.core.tracker.Tracker`, with the receive time derived from each event's own
timestamp (so the tests never read a clock). ``span_dict`` renders a record for readable
comparisons. The seed's example events (docs.lyzr.ai, with their secrets) are in
``tests/data/lao_seed_events.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from otel_bridge.core.engine import Engine
from otel_bridge.core.frames import Noise, Rejected, classify_object
from otel_bridge.core.outputs import Output, TrackerOutput
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.redaction import PayloadPolicy
from otel_bridge.core.timestamps import parse_timestamp
from otel_bridge.core.tracker import Tracker
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.metrics import Metrics
from otel_bridge.sinks.router import Router

SEED_FILE = Path(__file__).parent / "data" / "lao_seed_events.jsonl"
SEED_SECRETS = ("sk-prod-sentiment-key", "sf_prod_token_xyz")
LAG_NS = 1_000_000  # receive time = event time + 1 ms
NO_TIMESTAMP_NS = 1_700_000_000_000_000_000


def seed_events(flow_name: str | None = None) -> list[dict[str, Any]]:
    """Return the seed's example events in document order, optionally of one flow."""
    lines = SEED_FILE.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if flow_name is None or e.get("flow_name") == flow_name]


def received_ns(event: Mapping[str, Any], index: int) -> int:
    """Return the receive time the drivers use: the event's timestamp plus a 1 ms lag."""
    ts = parse_timestamp(event.get("timestamp"))
    return (ts if ts is not None else NO_TIMESTAMP_NS + index * LAG_NS) + LAG_NS


def feed_events(
    events: Iterable[Mapping[str, Any]],
    *,
    flow: str | None = None,
    run: str | None = None,
    tracker: Tracker | None = None,
    policy: PayloadPolicy | None = None,
    close: Result | None = None,
) -> list[TrackerOutput]:
    """Feed event dicts to a tracker; return everything it output (spans, drops, opens)."""
    tracker = tracker if tracker is not None else Tracker(policy)
    out: list[TrackerOutput] = []
    for index, event in enumerate(events):
        classified = classify_object(dict(event))
        assert not isinstance(classified, Noise | Rejected), f"not an event: {event}"
        flow_name = flow or classified.flow_name
        run_name = run or classified.run_name
        assert flow_name is not None and run_name is not None, f"no run names: {event}"
        out.extend(
            tracker.feed(
                classified,
                flow_name=flow_name,
                run_name=run_name,
                received_ns=received_ns(event, index),
            )
        )
    if close is not None:
        out.extend(tracker.close_all(close))
    return out


def run_events(
    events: Iterable[Mapping[str, Any]],
    flow: str | None = None,
    run: str | None = None,
    policy: PayloadPolicy | None = None,
    *,
    tracker: Tracker | None = None,
    close: Result | None = None,
) -> list[SpanRecord]:
    """Feed event dicts to a tracker; return the span records it finished, in order."""
    outputs = feed_events(events, flow=flow, run=run, tracker=tracker, policy=policy, close=close)
    return [o for o in outputs if isinstance(o, SpanRecord)]


def by_name(records: Iterable[SpanRecord]) -> dict[str, SpanRecord]:
    """Index records by span name (each name must occur once)."""
    index: dict[str, SpanRecord] = {}
    for record in records:
        assert record.name not in index, f"span {record.name!r} exported twice"
        index[record.name] = record
    return index


def root_of(records: Iterable[SpanRecord]) -> SpanRecord:
    """Return the one root span among records."""
    roots = [r for r in records if r.kind == "run"]
    assert len(roots) == 1, roots
    return roots[0]


def span_dict(record: SpanRecord) -> dict[str, Any]:
    """Render a record as a plain dict (hex ids, status names) for readable comparisons."""
    return {
        "name": record.name,
        "kind": record.kind,
        "trace_id": record.trace_id_hex,
        "span_id": record.span_id_hex,
        "parent_span_id": (
            None if record.parent_span_id is None else f"{record.parent_span_id:016x}"
        ),
        "parent_is_remote": record.parent_is_remote,
        "start_ns": record.start_ns,
        "end_ns": record.end_ns,
        "status": record.status.value,
        "status_message": record.status_message,
        "result": record.result.value,
        "attributes": dict(record.attributes),
        "events": [
            {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
            for e in record.events
        ],
    }


class Driver:
    """A test driver: frames into an :class:`Engine`, its outputs into a :class:`Router`."""

    def __init__(
        self,
        queues: Iterable[ExportQueue] = (),
        metrics: Metrics | None = None,
        policy: PayloadPolicy | None = None,
    ) -> None:
        self.engine = Engine(policy)
        self.router = Router(list(queues), metrics)

    def emit(self, outputs: list[Output]) -> list[Output]:
        """Route outputs; return them."""
        self.router.emit(outputs)
        return outputs

    def handle_frame(
        self, frame: str | bytes, *, flow_name: str, run_name: str, received_ns: int
    ) -> list[Output]:
        """One frame received on the socket of run (flow_name, run_name)."""
        return self.emit(
            self.engine.receive(frame, run=(flow_name, run_name), received_ns=received_ns)
        )

    def handle_object(self, data: Mapping[str, Any], *, received_ns: int) -> list[Output]:
        """One decoded frame naming its own run."""
        return self.emit(self.engine.receive(data, received_ns=received_ns))

    def close_all(self, result: Result = Result.CANCELLATION) -> list[Output]:
        """Close every open run."""
        return self.emit(self.engine.close_all(result))

    def expire(self, now_ns: int, *, inactivity_ns: int) -> list[Output]:
        """Run the watchdog once."""
        return self.emit(self.engine.expire(now_ns, inactivity_ns=inactivity_ns))

    @property
    def listeners(self) -> list[Any]:
        """The router's output listeners."""
        return self.router.listeners

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Flush every export queue."""
        return self.router.flush(timeout_s)

    def close(self) -> None:
        """Drain and stop every export queue."""
        self.router.close()
