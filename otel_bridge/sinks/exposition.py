"""Where metrics leave: the Prometheus text and OpenMetrics expositions of a registry.

``/metrics`` answers with OpenMetrics 1.0 (the only format that carries the histograms'
``trace_id`` exemplars) when the scraper's ``Accept`` header asks for it, else with the
Prometheus text format 0.0.4. ``otel-bridge replay --metrics-out FILE`` writes the registry
once, at the end of a replay, with :func:`write_metrics_file`. The metrics updated on every
event are tallies (:class:`CounterTally`, :class:`GaugeTally`, :class:`HistogramTally`):
plain numbers turned into the same samples as prometheus_client's own metrics on scrape.
"""

from __future__ import annotations

import os
import tempfile
import time
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import INF, floatToGoString

OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0"
OPENMETRICS_CONTENT_TYPE = om.CONTENT_TYPE_LATEST
TEXT_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def render(registry: CollectorRegistry, accept_header: str | None) -> tuple[bytes, str]:
    """Return ``(body, content_type)`` for a scrape sending ``accept_header``."""
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(registry), content_type


def encode(registry: CollectorRegistry, *, openmetrics_format: bool = True) -> bytes:
    """Encode the registry as OpenMetrics 1.0 (exemplars, ``# EOF``) or as text 0.0.4."""
    if openmetrics_format:
        return render(registry, OPENMETRICS_ACCEPT)[0]
    return generate_latest(registry)


def write_metrics_file(
    registry: CollectorRegistry, path: str | Path, openmetrics: bool = True
) -> None:
    """Write the registry's exposition to ``path`` atomically (temp file, then rename).

    OpenMetrics by default, so the file keeps the exemplars; ``openmetrics=False`` writes
    the text format a node-exporter textfile collector reads (name the file ``*.prom``).
    """
    target = Path(path)
    body = encode(registry, openmetrics_format=openmetrics)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- tallies: metrics kept as plain numbers, turned into samples on scrape -----------------
# The hot path (every event) adds to a dict entry; a scrape builds exactly the samples the
# prometheus_client Counter, Gauge and Histogram of the same name, help, labels and buckets
# would (series in creation order, ``_created`` per series, the last exemplar per bucket).

Labels = tuple[str, ...]


class CounterTally:
    """A counter family: one number per label values (``{name}_total``, ``{name}_created``)."""

    kind = "counter"
    unit = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.values: dict[Labels, float] = {}
        self._created: dict[Labels, float] = {}
        if not self.labelnames:
            self.series()

    def series(self, *labels: str) -> Labels:
        """Create the series of ``labels`` at zero (kept if it exists); return its key."""
        if labels not in self.values:
            self._created[labels] = time.time()
            self.values[labels] = 0
        return labels

    def inc(self, labels: Labels, amount: float = 1) -> None:
        """Add ``amount`` to the series of ``labels``, created if new."""
        values = self.values
        if labels not in values:
            self.series(*labels)
        values[labels] += amount

    def collect(self) -> Metric:
        """The family with its samples now."""
        metric = Metric(self.name, self.documentation, self.kind, self.unit)
        created = prometheus_metrics._use_created
        for labels, value in tuple(self.values.items()):
            names = dict(zip(self.labelnames, labels, strict=True))
            if self.kind == "gauge":
                metric.add_sample(self.name, names, float(value))
                continue
            metric.add_sample(self.name + "_total", names, float(value))
            if created:
                metric.add_sample(self.name + "_created", dict(names), self._created[labels])
        return metric


class GaugeTally(CounterTally):
    """A gauge family: one number per label values, set, raised or lowered."""

    kind = "gauge"


class _Buckets:
    """One histogram series: counts per bucket (not cumulative), sum, exemplars, creation.

    An exemplar's trace id is kept as it was given (an int is written as 32 hex digits on
    scrape, so observing never formats one).
    """

    __slots__ = ("bounds", "counts", "created", "exemplars", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.exemplars: list[tuple[str | int, float, float] | None] = [None] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float, trace_id: str | int | None = None) -> None:
        """Count ``amount`` in its bucket (with the exemplar, if any) and in the sum."""
        self.sum += amount
        if amount != amount:  # NaN: in the sum, in no bucket
            return
        i = bisect_left(self.bounds, amount)
        self.counts[i] += 1
        if trace_id is not None:
            self.exemplars[i] = (trace_id, amount, time.time())


def _exemplar(seen: tuple[str | int, float, float] | None) -> Exemplar | None:
    if seen is None:
        return None
    trace_id = seen[0] if isinstance(seen[0], str) else f"{seen[0]:032x}"
    return Exemplar({"trace_id": trace_id}, seen[1], seen[2])


class HistogramTally:
    """A histogram family; an observation may carry a ``trace_id`` exemplar."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        unit: str = "",
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.unit = unit
        bounds = [float(b) for b in buckets]
        if bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        self._les = tuple(floatToGoString(b) for b in bounds)  # type: ignore[no-untyped-call]
        self._series: dict[Labels, _Buckets] = {}
        if not self.labelnames:
            self.series()

    def series(self, *labels: str) -> _Buckets:
        """The series of ``labels``, created empty if new (its ``observe`` is the fast way)."""
        found = self._series.get(labels)
        if found is None:
            found = self._series[labels] = _Buckets(self.bounds)
        return found

    def observe(self, labels: Labels, amount: float, trace_id: str | int | None = None) -> None:
        """Count ``amount`` in its bucket (with the exemplar, if any) and in the sum.

        ``trace_id``: 32 hex digits, or the id as an int (written so on scrape).
        """
        (self._series.get(labels) or self.series(*labels)).observe(amount, trace_id)

    def collect(self) -> Metric:
        """The family with its samples now (cumulative buckets, count, sum, created)."""
        metric = Metric(self.name, self.documentation, self.kind, self.unit)
        created = prometheus_metrics._use_created
        for labels, found in tuple(self._series.items()):
            names = dict(zip(self.labelnames, labels, strict=True))
            acc = 0.0
            for le, count, seen in zip(
                self._les, tuple(found.counts), tuple(found.exemplars), strict=True
            ):
                acc += count
                exemplar = _exemplar(seen)
                metric.add_sample(self.name + "_bucket", {**names, "le": le}, acc, None, exemplar)
            metric.add_sample(self.name + "_count", dict(names), acc)
            if self.bounds[0] >= 0:
                metric.add_sample(self.name + "_sum", dict(names), found.sum)
            if created:
                metric.add_sample(self.name + "_created", dict(names), found.created)
        return metric


Tally = CounterTally | HistogramTally


class TallyCollector(Collector):
    """Registers tallies on a registry: their families, in order, on every scrape."""

    def __init__(self, registry: CollectorRegistry, *tallies: Tally) -> None:
        self.tallies = tallies
        registry.register(self)

    def collect(self) -> list[Metric]:
        """Every family with its samples now."""
        return [tally.collect() for tally in self.tallies]

    def describe(self) -> list[Metric]:
        """Every family without samples (the registry refuses duplicate names with them)."""
        return [Metric(t.name, t.documentation, t.kind, t.unit) for t in self.tallies]
