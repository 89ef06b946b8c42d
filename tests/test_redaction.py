"""Secrets never leave (in any mode but full), payloads are capped, capture modes hold."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource

from helpers import SEED_SECRETS, by_name, run_events, seed_events, span_dict
from otel_bridge.core.engine import Engine
from otel_bridge.core.json_redaction import redact_json
from otel_bridge.core.outputs import FrameRejected
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.redaction import (
    REDACTED,
    CaptureMode,
    PayloadPolicy,
    is_secret_key,
    redact,
    redact_text,
    truncate_utf8,
)
from otel_bridge.sinks.span_sinks import FileSink

RESOURCE = Resource.create({"service.name": "otel-bridge-test"})


def export_text(records: list[SpanRecord], path: Path) -> str:
    """Write records through a FileSink and return the file's text."""
    sink = FileSink(path, RESOURCE)
    sink.export(records)
    sink.shutdown()
    return path.read_text(encoding="utf-8")


def seed_records(policy: PayloadPolicy | None = None) -> list[SpanRecord]:
    """Every span of the seed's two runs, the open ones closed as cancelled."""
    return run_events(seed_events(), policy=policy, close=Result.CANCELLATION)


def test_seed_secrets_absent_from_exported_file_by_default(tmp_path: Path) -> None:
    """The seed's two secrets appear nowhere in the OTLP/JSON file of the default mode."""
    text = export_text(seed_records(), tmp_path / "spans.jsonl")
    assert "sentiment_analyzer" in text  # the payloads were exported...
    for secret in SEED_SECRETS:
        assert secret not in text  # ...without the secrets
    assert REDACTED in text


def test_seed_secrets_absent_from_every_record_field() -> None:
    """No attribute, event, status message or name of a seed span holds a seed secret."""
    rendered = json.dumps([span_dict(r) for r in seed_records()])
    for secret in SEED_SECRETS:
        assert secret not in rendered


def test_seed_secrets_present_only_in_full_mode(tmp_path: Path) -> None:
    """Full capture exports raw payloads (so the check above can fail), only when chosen."""
    assert PayloadPolicy().mode is CaptureMode.REDACTED
    text = export_text(seed_records(PayloadPolicy(CaptureMode.FULL)), tmp_path / "f.jsonl")
    for secret in SEED_SECRETS:
        assert secret in text


def test_seed_input_redacted_in_place() -> None:
    """The seed's sentiment input keeps its shape with the api_key value replaced."""
    records = by_name(run_events(seed_events("Customer_Support_Pipeline")))
    task = records["invoke_agent sentiment_analyzer"]
    payload = json.loads(str(task.attributes["lao.task.input"]))
    assert payload["config"] == {"agent_id": "sentiment-v2", "api_key": REDACTED}
    assert payload["customer_email"] == "cto@enterprise-client.com"
    crm = records["execute_task update_salesforce"]
    crm_input = json.loads(str(crm.attributes["lao.task.input"]))
    assert crm_input["config"]["headers"] == {"Authorization": REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apikey",
        "apiKey",
        "API_KEY",
        "x-api-key",
        "X-API-Key",
        "Authorization",
        "proxy-authorization",
        "token",
        "access_token",
        "refresh_token",
        "auth_token",
        "secret",
        "client_secret",
        "password",
        "db_passwd",
        "credential",
        "credentials",
        "cookie",
        "Set-Cookie",
        "private_key",
        "privateKey",
        "access_tokens",
        "tokens",
    ],
)
def test_secret_keys_redacted_at_any_depth(key: str) -> None:
    """A secret-named key's value is replaced wherever it sits, whatever its type."""
    secrets: list[Any] = ["s3cr3t-value", {"nested": "s3cr3t-value"}, ["s3cr3t-value"]]
    if not key.endswith("tokens"):  # a number under "...tokens" is a token count
        secrets.append(12345)
    for secret in secrets:
        value: Any = {"a": [{"b": {key: secret, "keep": "visible"}}]}
        assert redact(value) == {"a": [{"b": {key: REDACTED, "keep": "visible"}}]}


@pytest.mark.parametrize(
    "key", ["pin", "user_pin", "userPin", "PIN", "session_id", "sessionId", "api-id", "master_id"]
)
def test_secret_keys_without_a_trigger_word_are_redacted_alone(key: str) -> None:
    """A payload whose only secret is a key with no trigger word in it is still redacted."""
    policy = PayloadPolicy()
    text, _ = policy.payload({key: "s3cr3tvalue", "note": "mapping the spinner"})
    assert "s3cr3tvalue" not in text and "mapping the spinner" in text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_tokens", 512),
        ("max_tokens", "512"),
        ("prompt_tokens", 12),
        ("completion_tokens", 30),
        ("total_tokens", 42),
        ("num_tokens", 1),
        ("token_count", 7),
        ("tokens_used", 3),
        ("max_completion_tokens", 1024),
    ],
)
def test_token_counts_are_not_secrets(key: str, value: Any) -> None:
    """LLM token counts and limits (max_tokens: 512) are kept."""
    assert redact({"params": {key: value}}) == {"params": {key: value}}
    assert not is_secret_key(key, value)


def test_max_tokens_kept_in_exported_payload() -> None:
    """max_tokens survives into a task's exported input next to a redacted api_key."""
    events = [
        {
            "event_type": "task_started",
            "task_id": "t1",
            "task_name": "summarise",
            "timestamp": 1756806125.0,
            "input": {"config": {"agent_id": "a1", "api_key": "sk-abcdefghij", "max_tokens": 512}},
        },
        {"event_type": "task_completed", "task_id": "t1", "timestamp": 1756806126.0},
    ]
    (task,) = run_events(events, flow="F", run="r")
    assert json.loads(str(task.attributes["lao.task.input"])) == {
        "config": {"agent_id": "a1", "api_key": REDACTED, "max_tokens": 512}
    }


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Bearer sf_prod_token_xyz", "sf_prod_token_xyz"),
        ("auth failed for header Authorization: Bearer abc.DEF-123_x", "abc.DEF-123_x"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("key is sk-prod-sentiment-key here", "sk-prod-sentiment-key"),
        ("sk-proj-AbC123dEf456", "sk-proj-AbC123dEf456"),
        ("stripe sk_live_51HxYzAbCdEfGh", "sk_live_51HxYzAbCdEfGh"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        ),
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("postgres://admin:hunter2@db.internal:5432/app", "hunter2"),
        ("https://ghtokenvalue123@github.com/org/repo.git", "ghtokenvalue123"),
        ("https://api.example.com/v1?api_key=abc123&q=1", "abc123"),
        ("https://api.example.com/v1?q=1&access_token=zzz999", "zzz999"),
        ("https://api.example.com/v1?apikey=abc123#frag", "abc123"),
        ('{"api_key": "plainvalue", "model": "gpt"}', "plainvalue"),
        ("password=hunter2 user=bob", "hunter2"),
        ("x-api-key: k3y-value", "k3y-value"),
    ],
)
def test_secret_values_redacted_in_text(text: str, secret: str) -> None:
    """Secret-shaped values inside free text are replaced, the rest of the text kept."""
    redacted = redact_text(text)
    assert secret not in redacted
    assert REDACTED in redacted
    assert redact({"message": text}) == {"message": redacted}


@pytest.mark.parametrize(
    "text",
    [
        "https://enterprise.salesforce.com/services/data/v54.0/sobjects/Case",
        "cto@enterprise-client.com",
        "https://example.com/?q=1&email=a@b.com",
        "Processing 45,000 financial records",
        "max_tokens=512",
        "s3://financial-data/2024/02/15/transactions.csv",
    ],
)
def test_ordinary_text_kept(text: str) -> None:
    """Text with no secret shape passes unchanged (URLs, e-mails, counts)."""
    assert redact_text(text) == text


def test_header_pairs_by_name_are_redacted() -> None:
    """Headers given as name/value pairs have the secret ones' values replaced."""
    headers = [
        {"name": "Authorization", "value": "opaque-credential"},
        {"name": "x-api-key", "value": "opaque-key"},
        {"name": "Accept", "value": "application/json"},
    ]
    assert redact({"headers": headers}) == {
        "headers": [
            {"name": "Authorization", "value": REDACTED},
            {"name": "x-api-key", "value": REDACTED},
            {"name": "Accept", "value": "application/json"},
        ]
    }


def test_none_under_secret_key_stays_none() -> None:
    """A null secret is exported as null, not as a fake redaction marker."""
    assert redact({"api_key": None}) == {"api_key": None}


def failing_task(policy: PayloadPolicy) -> SpanRecord:
    """Return a failed task with input, error details and partial results holding secrets."""
    events = [
        {
            "event_type": "task_started",
            "task_id": "t1",
            "task_name": "call_api",
            "timestamp": 1756806125.0,
            "input": {"config": {"url": "https://x.example", "api_key": "sk-abcdefghij"}},
        },
        {
            "event_type": "task_failed",
            "task_id": "t1",
            "task_name": "call_api",
            "timestamp": 1756806126.0,
            "error": {
                "type": "HTTPError",
                "message": "401 for Bearer abcdefgh1234",
                "details": {"token": "tok-123456"},
            },
            "partial_results": {"password": "pw-123456"},
        },
    ]
    (task,) = run_events(events, flow="F", run="r", policy=policy)
    return task


def test_capture_none_exports_no_payload_attributes() -> None:
    """Capture mode none exports no payload attribute at all."""
    task = failing_task(PayloadPolicy(CaptureMode.NONE))
    for key in ("lao.task.input", "lao.error.details", "lao.partial_results"):
        assert key not in task.attributes
    assert "abcdefgh1234" not in json.dumps(span_dict(task))
    assert task.attributes["error.type"] == "HTTPError"


def test_capture_redacted_exports_redacted_payloads() -> None:
    """Capture mode redacted exports every payload, each secret replaced."""
    task = failing_task(PayloadPolicy(CaptureMode.REDACTED))
    assert json.loads(str(task.attributes["lao.error.details"])) == {"token": REDACTED}
    assert json.loads(str(task.attributes["lao.partial_results"])) == {"password": REDACTED}
    assert "sk-abcdefghij" not in str(task.attributes["lao.task.input"])
    rendered = json.dumps(span_dict(task))
    for secret in ("sk-abcdefghij", "tok-123456", "pw-123456", "abcdefgh1234"):
        assert secret not in rendered
    assert task.status_message == f"401 for {REDACTED}"


def test_capture_full_exports_raw_payloads() -> None:
    """Capture mode full exports payloads and messages unchanged."""
    task = failing_task(PayloadPolicy(CaptureMode.FULL))
    assert json.loads(str(task.attributes["lao.error.details"])) == {"token": "tok-123456"}
    assert "sk-abcdefghij" in str(task.attributes["lao.task.input"])
    assert task.status_message == "401 for Bearer abcdefgh1234"


def big_output_task(text: str, policy: PayloadPolicy) -> SpanRecord:
    """Return a completed task whose output is one long string."""
    events = [
        {"event_type": "task_started", "task_id": "t", "task_name": "a", "timestamp": 1.7e9},
        {"event_type": "task_completed", "task_id": "t", "timestamp": 1.7e9 + 1, "output": text},
    ]
    (task,) = run_events(events, flow="F", run="r", policy=policy)
    return task


def test_payload_truncated_at_4096_bytes_with_flag() -> None:
    """A payload over 4 KiB is cut to 4096 bytes and flagged lao.payload.truncated."""
    task = big_output_task("x" * 10_000, PayloadPolicy())
    output = str(task.attributes["lao.task.output"])
    assert len(output.encode("utf-8")) == 4096
    assert output.startswith('"xxx')
    assert task.attributes["lao.payload.truncated"] is True


def test_payload_under_limit_not_flagged() -> None:
    """A payload under the cap is exported whole without the truncated flag."""
    task = big_output_task("x" * 100, PayloadPolicy())
    assert task.attributes["lao.task.output"] == '"' + "x" * 100 + '"'
    assert "lao.payload.truncated" not in task.attributes


@pytest.mark.parametrize("char", ["é", "€", "🚨"])
def test_truncation_keeps_valid_utf8(char: str) -> None:
    """Cutting inside a multi-byte character drops the partial character."""
    task = big_output_task(char * 5000, PayloadPolicy())
    output = str(task.attributes["lao.task.output"])
    raw = output.encode("utf-8")
    assert len(raw) <= 4096
    assert len(raw) > 4096 - len(char.encode("utf-8"))
    assert raw.decode("utf-8") == output
    assert output == '"' + char * (len(output) - 1)


def test_truncate_utf8_limits() -> None:
    """truncate_utf8 returns the text untouched at the limit and cut above it."""
    assert truncate_utf8("abcd", 4) == ("abcd", False)
    assert truncate_utf8("abcde", 4) == ("abcd", True)
    assert truncate_utf8("aé", 2) == ("a", True)


def test_configured_cap_applies() -> None:
    """A configured max_bytes replaces the 4 KiB default."""
    task = big_output_task("x" * 300, PayloadPolicy(max_bytes=100))
    assert len(str(task.attributes["lao.task.output"])) == 100
    assert task.attributes["lao.payload.truncated"] is True


def test_secret_not_revealed_by_truncation() -> None:
    """Redaction happens before truncation, so a cut cannot expose part of a secret."""
    value = {"pad": "x" * 30, "api_key": "sk-abcdefghijklmnop"}
    text, truncated = PayloadPolicy(max_bytes=45).payload(value)
    assert truncated
    assert text is not None
    assert "sk-abc" not in text


def test_message_redacted_but_not_payload_in_none_mode() -> None:
    """Free-text messages are still redacted in mode none (they are not payloads)."""
    policy = PayloadPolicy(CaptureMode.NONE)
    assert policy.text("failed with Bearer abcdefgh1234") == f"failed with {REDACTED}"
    assert policy.payload({"a": 1}) == (None, False)


@pytest.mark.parametrize("unit", ["x", "ab-", "a.b+", "?q"])
def test_redaction_is_linear_in_text_length(unit: str) -> None:
    """A megabyte of letters redacts in well under a second or two (no regex backtracking)."""
    text = unit * (1_000_000 // len(unit))
    began = time.perf_counter()
    assert redact_text(text) == text
    assert time.perf_counter() - began < 2


def test_json_escapes_do_not_hide_secret_keys_or_values() -> None:
    """A key or value spelt with unicode escapes is redacted in JSON text and frame previews."""
    text = '{"\\u0070assword":"hunter2xyz","a":"\\u0042earer abcdefgh123"}'
    assert "hunter2xyz" not in redact_json(text) and "abcdefgh123" not in redact_json(text)
    frame = (
        '{"event_type":"flow_started","flow_name":"Other","run_name":"r9",'
        '"\\u0070assword":"hunter2xyz"}'
    )
    (rejected,) = Engine().receive(frame, run=("F", "r1"), received_ns=1)
    assert isinstance(rejected, FrameRejected) and "hunter2xyz" not in rejected.preview
