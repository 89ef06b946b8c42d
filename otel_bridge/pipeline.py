"""The one path from a received frame to exported spans and updated metrics.

Every driver — the live subscriptions, the replay of recorded files, the pass-through
socket — hands frames to a :class:`Pipeline`; this is the place a faster path would replace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from otel_bridge.events import Frame, Noise, Rejected, UnknownEvent, classify_frame, classify_object
from otel_bridge.export_queue import ExportQueue
from otel_bridge.metrics import Metrics
from otel_bridge.redaction import redact_text
from otel_bridge.spans import EventDropped, Result, SpanRecord, TrackerOutput
from otel_bridge.tracker import TrackedEvent, Tracker

log = logging.getLogger(__name__)

OutputListener = Callable[[TrackerOutput], None]


def preview(frame: str | bytes | Any, limit: int = 160) -> str:
    """A short, redacted rendering of a frame for logs."""
    if isinstance(frame, bytes):
        frame = frame.decode("utf-8", errors="replace")
    return redact_text(str(frame))[:limit]


class Pipeline:
    """Frames in; spans to every export queue, metrics updated, listeners told."""

    def __init__(
        self,
        tracker: Tracker,
        queues: Sequence[ExportQueue] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.tracker = tracker
        self.queues = list(queues)
        self.metrics = metrics
        self.listeners: list[OutputListener] = []

    def handle_frame(
        self, frame: str | bytes, *, flow_name: str, run_name: str, received_ns: int
    ) -> Frame:
        """Handle one frame received on the socket of run (flow_name, run_name)."""
        classified = classify_frame(frame)
        self._dispatch(classified, frame, flow_name, run_name, received_ns)
        return classified

    def handle_object(
        self,
        data: Any,
        *,
        received_ns: int,
        flow_name: str | None = None,
        run_name: str | None = None,
    ) -> Frame:
        """Handle one decoded frame; names default to the event's own fields (replay)."""
        classified = classify_object(data)
        self._dispatch(classified, data, flow_name, run_name, received_ns)
        return classified

    def _dispatch(
        self,
        classified: Frame,
        raw: Any,
        flow_name: str | None,
        run_name: str | None,
        received_ns: int,
    ) -> None:
        if isinstance(classified, Noise):
            if self.metrics:
                self.metrics.frames_ignored.labels(classified.reason).inc()
            return
        if isinstance(classified, Rejected):
            self.reject(classified, raw)
            return
        flow = flow_name or classified.flow_name
        run = run_name or classified.run_name
        if flow is None or run is None:
            self.reject(Rejected("invalid", "event names no flow_name/run_name"), raw)
            return
        self.handle_event(classified, flow_name=flow, run_name=run, received_ns=received_ns)

    def reject(self, rejected: Rejected, raw: Any) -> None:
        """Count and log a frame that could not be used."""
        if self.metrics:
            self.metrics.frames_rejected.labels(rejected.reason).inc()
        log.warning(
            "frame rejected",
            extra={"reason": rejected.reason, "detail": rejected.detail, "frame": preview(raw)},
        )

    def handle_event(
        self, event: TrackedEvent, *, flow_name: str, run_name: str, received_ns: int
    ) -> None:
        """Feed one event of a known run to the tracker and emit what it finished."""
        if self.metrics:
            self.metrics.event_received(
                "unknown" if isinstance(event, UnknownEvent) else event.event_type
            )
            if event.timestamp_ns is not None:
                self.metrics.event_lag.observe(max(0.0, (received_ns - event.timestamp_ns) / 1e9))
        try:
            outputs = self.tracker.feed(
                event, flow_name=flow_name, run_name=run_name, received_ns=received_ns
            )
        except Exception:  # a bug or an input we did not foresee: isolate it to this event
            self._internal_error(flow_name, run_name, event.event_type)
            return
        self.emit(outputs)

    def _internal_error(self, flow_name: str, run_name: str, event_type: str) -> None:
        if self.metrics:
            self.metrics.frames_rejected.labels("internal").inc()
        log.exception(
            "event could not be processed; skipped",
            extra={"flow_name": flow_name, "run_name": run_name, "event_type": event_type},
        )

    def emit(self, outputs: Sequence[TrackerOutput]) -> None:
        """Export finished spans, update metrics and tell listeners."""
        for output in outputs:
            if isinstance(output, SpanRecord):
                for queue in self.queues:
                    queue.submit(output)
            elif isinstance(output, EventDropped):
                log.debug(
                    "event dropped",
                    extra={
                        "flow_name": output.flow_name,
                        "run_name": output.run_name,
                        "event_type": output.event_type,
                        "reason": output.reason,
                    },
                )
            if self.metrics:
                self.metrics.observe(output)
            for listener in self.listeners:
                try:
                    listener(output)
                except Exception:  # a listener's bug must not stop export or metrics
                    log.exception("output listener failed")

    def expire(
        self, now_ns: int, *, inactivity_ns: int, max_duration_ns: int | None = None
    ) -> None:
        """Close runs the watchdog finds idle or too old (result ``timeout``)."""
        for flow_name, run_name in self.tracker.expired_runs(
            now_ns, inactivity_ns=inactivity_ns, max_duration_ns=max_duration_ns
        ):
            self.close_run(flow_name, run_name, Result.TIMEOUT)

    def close_run(self, flow_name: str, run_name: str, result: Result) -> None:
        """Close one run without a terminal event."""
        try:
            outputs = self.tracker.close_run(flow_name, run_name, result)
        except Exception:
            self._internal_error(flow_name, run_name, "close")
            self.tracker.runs.pop((flow_name, run_name), None)
            return
        self.emit(outputs)

    def close_all(self, result: Result = Result.CANCELLATION) -> None:
        """Close every open run (shutdown, end of replay input)."""
        for flow_name, run_name in list(self.tracker.runs):
            self.close_run(flow_name, run_name, result)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait for every export queue to hand its spans over."""
        return all(queue.flush(timeout_s) for queue in self.queues)

    def close(self, timeout_s: float = 30.0) -> None:
        """Drain and stop every export queue."""
        for queue in self.queues:
            queue.close(timeout_s)
