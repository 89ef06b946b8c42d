"""Which runs are exported: the OpenTelemetry samplers, decided per run on its trace id.

``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` as the SDK reads them: ``always_on``,
``always_off``, ``traceidratio`` (ARG: the ratio) and ``parentbased_always_on`` (the
default), ``parentbased_always_off``, ``parentbased_traceidratio``. The decision is taken on
the run's trace id (derived from its names, or its registered traceparent's), so every
replica, restart and replay of a run decides the same. A parent-based sampler follows a
registered traceparent's sampled flag. An unsampled run is not exported; its metrics count.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_bridge.core.errors import BridgeError
from otel_bridge.core.ids import TraceParent

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_BOUND = 1 << 64


class SamplerError(BridgeError, ValueError):
    """An ``OTEL_TRACES_SAMPLER`` or ``OTEL_TRACES_SAMPLER_ARG`` that cannot be used."""


@dataclass(frozen=True)
class Sampler:
    """A sampler: its name and, for the ratio ones, the ratio."""

    name: str = "parentbased_always_on"
    ratio: float = 1.0

    @classmethod
    def parse(cls, name: str | None, arg: str | None) -> Sampler:
        """The sampler of the two variables; raise :class:`SamplerError` saying what is wrong."""
        chosen = (name or "parentbased_always_on").strip().lower()
        if chosen not in SAMPLERS:
            raise SamplerError(f"OTEL_TRACES_SAMPLER={name!r} is not one of {', '.join(SAMPLERS)}")
        ratio = 1.0
        if chosen.endswith("traceidratio") and arg not in (None, ""):
            try:
                ratio = float(str(arg))
            except ValueError:
                raise SamplerError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} is not a number") from None
            if not 0.0 <= ratio <= 1.0:
                raise SamplerError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} is not between 0 and 1")
        return cls(chosen, ratio)

    def sampled(self, trace_id: int, parent: TraceParent | None) -> bool:
        """Whether a run of ``trace_id`` (under ``parent``, if registered) is exported."""
        name = self.name
        if name.startswith("parentbased_"):
            if parent is not None:
                return parent.sampled
            name = name.removeprefix("parentbased_")
        if name == "always_on":
            return True
        if name == "always_off":
            return False
        # TraceIdRatioBased: the trace id's lower 64 bits against ratio * 2**64.
        return (trace_id & (_BOUND - 1)) < round(self.ratio * _BOUND)
