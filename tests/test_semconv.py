"""Agent task spans follow the GenAI agent-span conventions; resource and scope carry schema."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from helpers import by_name, run_events
from otel_bridge.bridge import make_resource
from otel_bridge.core import semconv as K
from otel_bridge.sinks.otlp import encoder_for

T0 = 1_756_806_000.0


def agent_run(config: dict[str, object]) -> dict[str, object]:
    """The spans of one run with one agent task of the given config, by name."""
    events = [
        {"event_type": "flow_started", "timestamp": T0},
        {
            "event_type": "task_started",
            "task_id": "t1",
            "task_name": "summarise",
            "timestamp": T0 + 1,
            "input": {"config": config, "prompt": "hi"},
        },
        {
            "event_type": "task_completed",
            "task_id": "t1",
            "task_name": "summarise",
            "timestamp": T0 + 2,
            "output": {"text": "ok"},
        },
        {"event_type": "flow_completed", "timestamp": T0 + 3},
    ]
    return dict(by_name(run_events(events, flow="F", run="r")))


def test_agent_span_named_after_the_agent_with_conversation_and_server() -> None:
    """invoke_agent {agent_name}, kind CLIENT, provider, conversation id, server address."""
    spans = agent_run(
        {
            "agent_id": "a-7",
            "agent_name": "Summariser",
            "session_id": "sess-42",
            "api_url": "https://user:pw@agent.lyzr.example:8443/v3/inference/chat/",
            "api_key": "sk-abcdefghijkl",
        }
    )
    span = spans["invoke_agent Summariser"]
    assert span.client
    attrs = span.attributes
    assert attrs[K.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert attrs[K.GEN_AI_PROVIDER_NAME] == "lyzr"
    assert attrs[K.GEN_AI_AGENT_ID] == "a-7"
    assert attrs[K.GEN_AI_AGENT_NAME] == "Summariser"
    assert attrs[K.GEN_AI_CONVERSATION_ID] == "sess-42"
    assert (attrs[K.SERVER_ADDRESS], attrs[K.SERVER_PORT]) == ("agent.lyzr.example", 8443)
    assert not spans["invoke_workflow F"].client


def test_agent_without_a_name_or_url_keeps_the_task_name_and_default_port() -> None:
    """No agent_name: invoke_agent {task}; an api_url without a port gets the scheme's."""
    spans = agent_run({"agent_id": "a-7", "api_url": "https://agents.example/chat"})
    attrs = spans["invoke_agent summarise"].attributes
    assert (attrs[K.SERVER_ADDRESS], attrs[K.SERVER_PORT]) == ("agents.example", 443)
    assert K.GEN_AI_CONVERSATION_ID not in attrs


def test_resource_and_scope_carry_the_schema_url() -> None:
    """The exported resource and instrumentation scope name the semantic conventions version."""
    spans = run_events([{"event_type": "flow_completed", "timestamp": T0}], flow="F", run="r")
    wire = encoder_for(make_resource()).request(spans)
    (resource_spans,) = ExportTraceServiceRequest.FromString(wire).resource_spans
    assert resource_spans.schema_url == K.SCHEMA_URL
    assert resource_spans.scope_spans[0].schema_url == K.SCHEMA_URL
