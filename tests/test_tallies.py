"""Tallies expose exactly what prometheus_client's Counter, Gauge and Histogram would."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from otel_bridge.sinks.exposition import (
    CounterTally,
    GaugeTally,
    HistogramTally,
    TallyCollector,
    encode,
)
from otel_bridge.sinks.metrics import DURATION_BUCKETS

LABELS = st.sampled_from(("a", "b", "c"))
AMOUNTS = st.one_of(
    st.sampled_from((0.0, 0.1, 1, 2.5, 3600, 1e9, -1.0)),
    st.floats(min_value=-10, max_value=1e5, allow_nan=False),
)
STEPS = st.lists(
    st.tuples(st.sampled_from(("inc", "dec", "observe")), LABELS, AMOUNTS, st.booleans()),
    max_size=40,
)
TIMES = re.compile(r"(_created(?:\{[^}]*\})?|\} \S+) \d+\.\d+(e[+-]?\d+)?$", re.M)


def pair() -> tuple[CollectorRegistry, CollectorRegistry, tuple[object, ...], tuple[object, ...]]:
    """A registry with prometheus_client metrics, one with tallies of the same families."""
    reference, tallied = CollectorRegistry(), CollectorRegistry()
    counter = Counter("t_things", "Things.", ["k"], registry=reference)
    plain = Counter("t_plain", "Unlabelled.", registry=reference)
    gauge = Gauge("t_level", "Level.", ["k"], registry=reference)
    hist = Histogram(
        "t_wait_seconds",
        "Wait.",
        ["k"],
        buckets=DURATION_BUCKETS,
        unit="seconds",
        registry=reference,
    )
    tallies = (
        CounterTally("t_things", "Things.", ["k"]),
        CounterTally("t_plain", "Unlabelled."),
        GaugeTally("t_level", "Level.", ["k"]),
        HistogramTally("t_wait_seconds", "Wait.", ["k"], buckets=DURATION_BUCKETS, unit="seconds"),
    )
    TallyCollector(tallied, *tallies)
    return reference, tallied, (counter, plain, gauge, hist), tallies


def text(registry: CollectorRegistry, openmetrics: bool) -> str:
    """The exposition with creation times and exemplar timestamps blanked."""
    return TIMES.sub(r"\1 T", encode(registry, openmetrics_format=openmetrics).decode())


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_tallies_expose_what_prometheus_client_does(
    steps: list[tuple[str, str, float, bool]],
) -> None:
    """Same updates, same families, series, values, buckets and exemplars, both formats."""
    reference, tallied, (counter, plain, gauge, hist), tallies = pair()
    t_counter, t_plain, t_gauge, t_hist = tallies
    assert isinstance(t_counter, CounterTally) and isinstance(t_plain, CounterTally)
    assert isinstance(t_gauge, GaugeTally) and isinstance(t_hist, HistogramTally)
    for op, label, amount, with_exemplar in steps:
        size = abs(amount)
        trace_id = f"{abs(hash(label)):032x}"[:32] if with_exemplar else None
        if op == "inc":
            counter.labels(label).inc(size)
            t_counter.inc((label,), size)
            plain.inc()
            t_plain.inc(())
        elif op == "dec":
            gauge.labels(label).dec(amount)
            t_gauge.inc((label,), -amount)
        else:
            exemplar = {"trace_id": trace_id} if trace_id else None
            hist.labels(label).observe(amount, exemplar=exemplar)
            t_hist.observe((label,), amount, trace_id)
    for openmetrics in (True, False):
        assert text(tallied, openmetrics) == text(reference, openmetrics)
    for name, labels in (("t_things_total", {"k": "a"}), ("t_wait_seconds_count", {"k": "b"})):
        assert tallied.get_sample_value(name, labels) == reference.get_sample_value(name, labels)


def test_duplicate_names_are_refused() -> None:
    """A tally's family name is taken on the registry, as a metric's would be."""
    registry = CollectorRegistry()
    TallyCollector(registry, CounterTally("t_x", "X."))
    try:
        Counter("t_x", "X again.", registry=registry)
    except ValueError:
        return
    raise AssertionError("duplicate accepted")


def test_an_int_trace_id_is_written_as_32_hex_digits() -> None:
    """An exemplar given as the trace id int exposes exactly as its 32-digit hex string."""
    as_text, as_int = CollectorRegistry(), CollectorRegistry()
    trace_id = 0x0AF7651916CD43DD8448EB211C80319C
    for registry, given_id in ((as_text, f"{trace_id:032x}"), (as_int, trace_id)):
        tally = HistogramTally("t_wait_seconds", "Wait.", buckets=DURATION_BUCKETS)
        TallyCollector(registry, tally)
        tally.observe((), 0.3, given_id)
        tally.series().observe(7.0, given_id)
    assert text(as_int, True) == text(as_text, True)
    assert f'trace_id="{trace_id:032x}"' in text(as_int, True)
