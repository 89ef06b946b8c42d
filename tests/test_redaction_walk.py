"""The payload walk (leaves in their container's loop, cached key verdicts) is the plain one."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_bridge.core.redaction import PayloadPolicy, _is_secret_pair, _key_rule_fires
from otel_bridge.core.secrets import is_secret_key

KEYS = st.sampled_from(
    (
        "key_issues",
        "prompt_tokens",
        "max_tokens",
        "api_key",
        "pin",
        "session_id",
        "name",
        "key",
        "header",
        "value",
        "auth_url",
        "note",
        "Passcode",
    )
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.sampled_from(("api_key", "pin", "Bearer abcdefgh12345678", "https://u:p@h/x", "12", "ab")),
    st.text(max_size=10),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(KEYS | st.text(max_size=6) | st.integers(0, 3), inner, max_size=5),
    ),
    max_leaves=24,
)


def plain_walk(value: Any, strings: list[str]) -> bool:
    """The walk as first written: one call per node."""
    kind = type(value)
    if kind is str:
        if len(value) > 3:
            strings.append(value)
        return False
    fires = False
    if kind is dict:
        fires = _is_secret_pair(value)
        for key, item in value.items():
            if (item is not None and is_secret_key(str(key), item)) or plain_walk(item, strings):
                fires = True
    elif kind is list or kind is tuple:
        if len(value) == 2 and type(value[0]) is str and is_secret_key(value[0], "x"):
            fires = True
        for item in value:
            if plain_walk(item, strings):
                fires = True
    return fires


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_walk_finds_what_the_plain_walk_finds(value: Any) -> None:
    """Same verdict, same string leaves in the same order."""
    fast: list[str] = []
    plain: list[str] = []
    assert _key_rule_fires(value, fast) == plain_walk(value, plain)
    assert fast == plain


def test_secret_keyed_item_is_redacted_whole() -> None:
    """A key rule that fires replaces its item; the item's leaves are not scanned."""
    text, _ = PayloadPolicy().payload({"api_key": {"nested": "sk-proj-AbCdEf123456"}, "n": 1})
    assert text == '{"api_key":"[REDACTED]","n":1}'
