"""Where the engine's outputs go: export queues, metrics, logs and listeners, each isolated.

Every driver is ``router.emit(engine.receive(...))``. Span records go to every export queue;
every output updates the metrics; notices are logged (rejected frames and internal errors at
warning/error, drops at debug); listeners (the bridge, the demo, tests) are told each
output. A listener's bug never stops export or metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from otel_bridge.core.ids import root_span_id
from otel_bridge.core.outputs import (
    EventDropped,
    EventReceived,
    FrameRejected,
    InternalError,
    Output,
)
from otel_bridge.core.records import SpanRecord
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.metrics import Metrics

log = logging.getLogger(__name__)
GRACE_S = 0.5  # after the deadline: for cut exports to return

OutputListener = Callable[[Output], None]
_NOTICES = (FrameRejected, InternalError, EventDropped)  # the outputs that are logged
_NO_OBSERVERS: dict[type, Callable[[Any], None]] = {}


class Router:
    """Outputs in; spans to every export queue, metrics updated, listeners told."""

    def __init__(
        self,
        queues: Sequence[ExportQueue] = (),
        metrics: Metrics | None = None,
        trace_of: Callable[[str, str], int] | None = None,
    ) -> None:
        self.queues = list(queues)
        self.metrics = metrics
        self.listeners: list[OutputListener] = []
        self.trace_of = trace_of  # a run's trace id, for log lines about it

    def emit(self, outputs: Iterable[Output]) -> None:
        """Export finished spans, update metrics, log notices and tell listeners."""
        observers = self.metrics.observers if self.metrics is not None else _NO_OBSERVERS
        for output in outputs:
            kind = type(output)
            if isinstance(output, SpanRecord):
                if output.sampled:  # an unsampled run is counted in metrics, not exported
                    for queue in self.queues:
                        queue.submit(output)
            elif kind is not EventReceived:
                self._log(output)
            observe = observers.get(kind)
            if observe is not None:
                observe(output)
            elif self.metrics is not None:
                self.metrics.observe(output)  # a subclass: found by isinstance
            for listener in self.listeners:
                try:
                    listener(output)
                except Exception:  # a listener's bug must not stop export or metrics
                    log.exception("output listener failed")

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait for every export queue to hand its spans over."""
        return all(queue.flush(timeout_s) for queue in self.queues)

    def close(self, timeout_s: float = 30.0) -> int:
        """Drain and stop every export queue, all within ``timeout_s``; spans left undelivered."""
        deadline = time.monotonic() + timeout_s
        for queue in self.queues:
            queue.begin_close(deadline)
        for queue in self.queues:  # all drain at once; each waits until the one deadline
            queue.wait_worker()
        for queue in self.queues:
            queue.abandon()
        grace_end = time.monotonic() + GRACE_S  # one short grace shared, not one per queue
        return sum(queue.collect(max(0.0, grace_end - time.monotonic())) for queue in self.queues)

    def _log(self, output: Output) -> None:
        if isinstance(output, EventDropped) and not log.isEnabledFor(logging.DEBUG):
            return  # the hot case: counted in metrics, logged only at debug
        if isinstance(output, _NOTICES):
            _log(output, self._run_ids(output))

    def _run_ids(self, output: InternalError | EventDropped | FrameRejected) -> dict[str, str]:
        """The trace and root span ids of the run a notice is about (log backends link them)."""
        if isinstance(output, FrameRejected) or self.trace_of is None:
            return {}
        if output.flow_name is None or output.run_name is None:
            return {}
        trace_id = self.trace_of(output.flow_name, output.run_name)
        span_id = root_span_id(output.flow_name, output.run_name)
        return {"trace_id": f"{trace_id:032x}", "span_id": f"{span_id:016x}"}


def _log(output: Output, ids: dict[str, str]) -> None:
    if isinstance(output, FrameRejected):
        log.warning(
            "frame rejected",
            extra={"reason": output.reason, "detail": output.detail, "frame": output.preview},
        )
    elif isinstance(output, InternalError):
        log.error(
            "event could not be processed; skipped",
            exc_info=output.error,
            extra={
                **ids,
                "flow_name": output.flow_name,
                "run_name": output.run_name,
                "event_type": output.stage,
            },
        )
    elif isinstance(output, EventDropped) and log.isEnabledFor(logging.DEBUG):
        log.debug(
            "event dropped",
            extra={
                **ids,
                "flow_name": output.flow_name,
                "run_name": output.run_name,
                "event_type": output.event_type,
                "reason": output.reason,
            },
        )
