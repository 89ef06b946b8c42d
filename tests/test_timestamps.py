"""The one timestamp conversion: every accepted form, exact to the microsecond."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_bridge.core.timestamps import MAX_NS, parse_timestamp, seconds_to_ns


def test_seed_float_seconds_are_exact_to_the_microsecond() -> None:
    """1756806125.043 s is exactly 1756806125043000000 ns, float noise removed."""
    assert seconds_to_ns(1756806125.043) == 1756806125043000000
    assert parse_timestamp(1756806125.043) == 1756806125043000000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1756806125.043, 1756806125043000000),
        (1756806138.456, 1756806138456000000),
        (1756806125.123456, 1756806125123456000),
        (1756806125, 1756806125000000000),
        (1756806125043, 1756806125043000000),
        (1756806125043.5, 1756806125043500000),
        (1756806125043123, 1756806125043123000),
        (1756806125043123456, 1756806125043123456),
        ("1756806125.043", 1756806125043000000),
        (" 1756806125043 ", 1756806125043000000),
        ("1756806125043123456", 1756806125043123456),
        ("1.756806125043e9", 1756806125043000000),
    ],
)
def test_numeric_forms(value: Any, expected: int) -> None:
    """Seconds, ms, µs and ns (by magnitude), as numbers or numeric strings, convert exactly."""
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-09-02T09:42:05.043Z", 1756806125043000000),
        ("2025-09-02T09:42:05.043123Z", 1756806125043123000),
        ("2025-09-02T09:42:05Z", 1756806125000000000),
        ("2025-09-02T09:42:05.043+00:00", 1756806125043000000),
        ("2025-09-02T11:42:05.043+02:00", 1756806125043000000),
        ("2025-09-02 09:42:05.043", 1756806125043000000),
        ("2025-09-02t09:42:05.043z", 1756806125043000000),
    ],
)
def test_iso_forms(value: str, expected: int) -> None:
    """ISO-8601 strings convert; a missing offset means UTC."""
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        -1756806125.043,
        float("nan"),
        float("inf"),
        "",
        "   ",
        "garbage",
        "nan",
        "-5",
        "1969-12-31T23:59:59Z",
        "9" * 5000,
        10**25,
        1e30,
        2**63,
        [1756806125],
        {"seconds": 1756806125},
    ],
)
def test_unusable_values_are_none(value: Any) -> None:
    """Garbage, non-positive, non-finite and beyond-int64-ns values are not timestamps."""
    assert parse_timestamp(value) is None


def test_largest_timestamp_fits_otlp() -> None:
    """The largest accepted value is the largest int64 nanosecond count."""
    assert parse_timestamp(MAX_NS) == MAX_NS
    assert parse_timestamp(MAX_NS + 1) is None


YEAR_2100_US = 4_102_444_800_000_000


@given(st.integers(min_value=1, max_value=YEAR_2100_US))
def test_microsecond_seconds_round_trip(micros: int) -> None:
    """Any epoch-seconds float with microsecond precision (to 2100) converts to its exact ns."""
    assert parse_timestamp(micros / 1_000_000) == micros * 1_000


@given(st.integers(min_value=100_000_000_000, max_value=MAX_NS // 1_000_000))
def test_integer_milliseconds_are_exact(millis: int) -> None:
    """Integer milliseconds (≥ 1e11) convert exactly."""
    assert parse_timestamp(millis) == millis * 1_000_000
    assert parse_timestamp(str(millis)) == millis * 1_000_000
