"""The cardinality guard: label values for flow_name and task_name stay a closed set.

A value is admitted when it matches an allow pattern (or there are none), matches no deny
pattern, and the label has fewer than ``max_values`` distinct values admitted so far; any
other value becomes ``__other__`` and the overflow is counted (once per use, through
``on_overflow``). Patterns are regexes that must match the whole value. An admitted value
stays admitted and a refused one stays refused, so a run's gauge increments and decrements
always land on the same series. A missing or empty value is ``unknown``; a value that is
literally ``__other__`` is folded like any refused one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

OTHER = "__other__"
UNKNOWN = "unknown"
REMEMBER_REFUSED = 10
"""Refused values remembered, as a multiple of ``max_values`` (beyond that, re-checked)."""


@dataclass
class LabelGuard:
    """Maps raw label values to admitted values or ``__other__``."""

    allow: Sequence[str] = ()
    deny: Sequence[str] = ()
    max_values: int = 200
    on_overflow: Callable[[str], None] | None = None
    _allow: list[re.Pattern[str]] = field(init=False, repr=False)
    _deny: list[re.Pattern[str]] = field(init=False, repr=False)
    _admitted: set[str] = field(init=False, repr=False, default_factory=set)
    _refused: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        if self.max_values < 1:
            raise ValueError("max_values must be at least 1")
        self._allow = [re.compile(p) for p in self.allow]
        self._deny = [re.compile(p) for p in self.deny]

    @property
    def admitted(self) -> frozenset[str]:
        """The values admitted so far."""
        return frozenset(self._admitted)

    def __call__(self, value: str | None) -> str:
        """Return the label value to use for ``value``."""
        if value is None or value == "":
            value = UNKNOWN
        if value in self._admitted:
            return value
        if value not in self._refused and self._admissible(value):
            self._admitted.add(value)
            return value
        if len(self._refused) < REMEMBER_REFUSED * self.max_values:
            self._refused.add(value)
        if self.on_overflow is not None:
            self.on_overflow(value)
        return OTHER

    def _admissible(self, value: str) -> bool:
        if value == OTHER:
            return False
        if self._allow and not any(p.fullmatch(value) for p in self._allow):
            return False
        if any(p.fullmatch(value) for p in self._deny):
            return False
        return len(self._admitted) < self.max_values


class OverflowCounter:
    """Callable counting one label overflow (kept a class so the guard stays picklable)."""

    def __init__(self, counter: Counter, label: str) -> None:
        self._child = counter.labels(label)

    def __call__(self, value: str) -> None:
        """Count one value folded into ``__other__``."""
        self._child.inc()
