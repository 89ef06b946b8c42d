"""otel-bridge: LAO run sockets in, OpenTelemetry traces and Prometheus metrics out.

As a library, the engine turns recorded or live LAO frames into span records::

    from otel_bridge import Engine, SpanRecord

    engine = Engine()
    for line in open("recording.jsonl", "rb"):
        for output in engine.receive(line, received_ns=time.time_ns(), recorded=True):
            if isinstance(output, SpanRecord):
                ...  # output.name, output.attributes, output.start_ns, ...
    leftovers = engine.close_all()
"""

__version__ = "0.1.0"

from otel_bridge.core.engine import Engine, Limits
from otel_bridge.core.outputs import Output
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.redaction import CaptureMode, PayloadPolicy

__all__ = [
    "CaptureMode",
    "Engine",
    "Limits",
    "Output",
    "PayloadPolicy",
    "Result",
    "SpanRecord",
    "__version__",
]
