"""The engine as a library: ``from otel_bridge import Engine`` turns a recording into spans."""

from __future__ import annotations

import json
from pathlib import Path

import otel_bridge
from helpers import SEED_SECRETS, seed_events
from otel_bridge import Engine, SpanRecord


def test_a_recording_becomes_spans_through_the_public_api(tmp_path: Path) -> None:
    """The README's library example works as written: frames in, span records out."""
    recording = tmp_path / "rec.jsonl"
    recording.write_text("\n".join(json.dumps(e) for e in seed_events()) + "\n")
    engine = Engine()
    spans: list[SpanRecord] = []
    for line in recording.read_bytes().splitlines():
        outputs = engine.receive(line, received_ns=1_756_806_200_000_000_000, recorded=True)
        spans += [o for o in outputs if isinstance(o, SpanRecord)]
    spans += [o for o in engine.close_all() if isinstance(o, SpanRecord)]
    assert sorted(s.name for s in spans if s.kind == "run") == [
        "invoke_workflow Customer_Support_Pipeline",
        "invoke_workflow Financial_Data_Pipeline",
    ]
    assert not any(secret in repr(spans) for secret in SEED_SECRETS)


def test_the_public_names_are_exported() -> None:
    """Everything in otel_bridge.__all__ is importable from the package."""
    for name in otel_bridge.__all__:
        assert hasattr(otel_bridge, name), name
