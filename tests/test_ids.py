"""Derived ids (the contract's recipe, recomputed here) and traceparent parsing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_bridge.core.ids import (
    TraceParent,
    TraceParentError,
    parse_traceparent,
    root_span_id,
    run_trace_id,
    task_key,
    task_span_id,
)

FLOW, RUN = "Customer_Support_Pipeline", "ticket_78453"


def sha(text: str, size: int) -> int:
    """Hash as the contract's recipe does: first ``size`` bytes of sha256 of the UTF-8 text."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:size], "big")


def test_trace_id_recipe() -> None:
    """The trace id is the first 16 bytes of sha256 of lao-run NUL flow NUL run."""
    assert run_trace_id(FLOW, RUN) == sha(f"lao-run\0{FLOW}\0{RUN}", 16)


def test_seed_trace_id_is_a_known_constant() -> None:
    """The seed run's trace id is fixed forever (dashboards and docs link to it)."""
    expected = hashlib.sha256(b"lao-run\x00Customer_Support_Pipeline\x00ticket_78453").hexdigest()
    assert f"{run_trace_id(FLOW, RUN):032x}" == expected[:32]


def test_root_span_id_recipe() -> None:
    """The root span id is the first 8 bytes of sha256 of lao-flow NUL flow NUL run."""
    assert root_span_id(FLOW, RUN) == sha(f"lao-flow\0{FLOW}\0{RUN}", 8)


def test_task_span_id_recipe_with_task_id() -> None:
    """A task with a task_id derives its span id from that id."""
    key = task_key("b29aa07f-9341-4ac5-9160-4f7e1f594654", "sentiment_analyzer", 0)
    assert key == "b29aa07f-9341-4ac5-9160-4f7e1f594654"
    assert task_span_id(FLOW, RUN, key) == sha(f"lao-task\0{FLOW}\0{RUN}\0{key}", 8)


def test_task_span_id_recipe_without_task_id() -> None:
    """A task without task_id derives its span id from name NUL occurrence."""
    key = task_key(None, "validate_financial_data", 2)
    assert key == "validate_financial_data\x002"
    flow, run = "Financial_Data_Pipeline", "daily_batch_20240215"
    assert task_span_id(flow, run, key) == sha(
        f"lao-task\0{flow}\0{run}\0validate_financial_data\0002", 8
    )


def test_ids_are_utf8_and_non_ascii_safe() -> None:
    """Names with spaces and non-ASCII characters hash as UTF-8."""
    flow, run = "Kundendienst Ablauf ü", "lauf/1 ✓"
    assert run_trace_id(flow, run) == sha(f"lao-run\0{flow}\0{run}", 16)


def test_nul_separates_names() -> None:
    """Moving characters between flow and run name changes the ids (NUL separator)."""
    assert run_trace_id("ab", "c") != run_trace_id("a", "bc")
    assert root_span_id("ab", "c") != root_span_id("a", "bc")


@given(st.text(), st.text())
def test_ids_are_valid_and_distinct(flow: str, run: str) -> None:
    """Derived ids are never zero, fit their widths, and root/trace recipes differ."""
    trace, root = run_trace_id(flow, run), root_span_id(flow, run)
    assert 0 < trace < 2**128
    assert 0 < root < 2**64
    assert root != task_span_id(flow, run, "x")


VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_traceparent_valid() -> None:
    """A valid traceparent gives its trace id, parent span id and sampled flag."""
    parsed = parse_traceparent(VALID)
    assert parsed == TraceParent(
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, sampled=True
    )
    assert str(parsed) == VALID


def test_traceparent_not_sampled() -> None:
    """Flags 00 mean not sampled; other flag bits are ignored."""
    assert not parse_traceparent(VALID[:-2] + "00").sampled
    assert parse_traceparent(VALID[:-2] + "03").sampled


def test_traceparent_uppercase_is_normalised() -> None:
    """An uppercase traceparent (a caller's typo) is accepted and read as lowercase."""
    assert parse_traceparent(VALID.upper()) == parse_traceparent(VALID)


def test_traceparent_surrounding_whitespace() -> None:
    """Whitespace around the value (a pasted header) is ignored."""
    assert parse_traceparent(f"  {VALID}\n") == parse_traceparent(VALID)


def test_traceparent_future_version_with_more_fields() -> None:
    """A future version may append fields; the first four are read."""
    parsed = parse_traceparent("01" + VALID[2:] + "-what-ever")
    assert parsed.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "trace id is all zeros"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "parent id is all zeros"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff"),
        (VALID + "-extra", "exactly four fields"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "must look like"),
        ("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", "must look like"),
        ("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", "must look like"),
        ("", "must look like"),
    ],
)
def test_traceparent_invalid(value: str, why: str) -> None:
    """Invalid traceparents raise TraceParentError saying why."""
    with pytest.raises(TraceParentError, match=why):
        parse_traceparent(value)


def test_traceparent_error_is_a_value_error() -> None:
    """Callers catching ValueError also catch a bad traceparent."""
    with pytest.raises(ValueError, match="traceparent"):
        parse_traceparent("nope")
