"""docs/telemetry.md lists every span attribute key the bridge can emit."""

from __future__ import annotations

from pathlib import Path

from otel_bridge.core import semconv as K

DOC = Path(__file__).parent.parent / "docs" / "telemetry.md"


def test_every_attribute_key_is_documented() -> None:
    """Each attribute key constant of core/semconv.py appears in docs/telemetry.md."""
    text = DOC.read_text(encoding="utf-8")
    keys = [
        value
        for name, value in vars(K).items()
        if name.isupper()
        and isinstance(value, str)
        and "." in value
        and not value.startswith("http")
        and not name.startswith(("OP_", "PROVIDER_"))
        and name != "LAO_EVENT_FIELD_PREFIX"
    ]
    assert len(keys) > 30
    missing = [key for key in keys if f"`{key}`" not in text and key not in text]
    assert missing == []
