"""Every span name, attribute key and value the bridge emits, in one place.

The telemetry contract (docs/telemetry-contract.md) names them; users build queries,
dashboards and alerts on them, so they are constants, never string literals elsewhere.
"""

from __future__ import annotations

from typing import Final

# -- the run and its tasks (lao.*) ---------------------------------------------------------
LAO_FLOW_NAME: Final = "lao.flow.name"
LAO_RUN_NAME: Final = "lao.run.name"
LAO_FLOW_TASK_ID: Final = "lao.flow.task_id"
LAO_FLOW_OUTPUT: Final = "lao.flow.output"
LAO_FLOW_TOTAL_EXECUTION_TIME: Final = "lao.flow.total_execution_time_s"
LAO_MESSAGE: Final = "lao.message"
LAO_RUN_INCOMPLETE: Final = "lao.run.incomplete"
LAO_RUN_CLOSE_REASON: Final = "lao.run.close_reason"
LAO_TASK_NAME: Final = "lao.task.name"
LAO_TASK_ID: Final = "lao.task.id"
LAO_TASK_INPUT: Final = "lao.task.input"
LAO_TASK_OUTPUT: Final = "lao.task.output"
LAO_TASK_EXECUTION_TIME: Final = "lao.task.execution_time_s"
LAO_TASK_INCOMPLETE: Final = "lao.task.incomplete"
LAO_PARTIAL_RESULTS: Final = "lao.partial_results"
LAO_SYNTHETIC_START: Final = "lao.span.synthetic_start"
LAO_PAYLOAD_TRUNCATED: Final = "lao.payload.truncated"
LAO_TIMESTAMP_ADJUSTED: Final = "lao.timestamp.adjusted"
LAO_ERROR_CODE: Final = "lao.error.code"
LAO_ERROR_DETAILS: Final = "lao.error.details"
# -- undocumented LAO events, kept as span events on the root -------------------------------
LAO_EVENT_TYPE: Final = "lao.event.type"
LAO_EVENT_PAYLOAD: Final = "lao.event.payload"
LAO_EVENT_FIELD_PREFIX: Final = "lao."  # lao.task_id, lao.task_name, lao.message
UNKNOWN_EVENT_FIELDS: Final = ("task_id", "task_name", "message")
# -- CI/CD semantic conventions --------------------------------------------------------------
CICD_PIPELINE_NAME: Final = "cicd.pipeline.name"
CICD_PIPELINE_RUN_ID: Final = "cicd.pipeline.run.id"
CICD_PIPELINE_RESULT: Final = "cicd.pipeline.result"
CICD_TASK_NAME: Final = "cicd.pipeline.task.name"
CICD_TASK_RUN_ID: Final = "cicd.pipeline.task.run.id"
CICD_TASK_RUN_RESULT: Final = "cicd.pipeline.task.run.result"
# -- GenAI semantic conventions --------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
PROVIDER_LYZR: Final = "lyzr"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
# The semantic conventions version the attribute names follow (resource and scope).
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.37.0"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_EXECUTE_TASK: Final = "execute_task"
# -- errors and exceptions -------------------------------------------------------------------
ERROR_TYPE: Final = "error.type"
ERROR_TYPE_OTHER: Final = "_OTHER"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"


def task_span_name(task_name: str, agent_id: str | None, agent_name: str | None = None) -> str:
    """``invoke_agent {agent name, else task}`` for agent calls, else ``execute_task {task}``."""
    if agent_id:
        return f"{OP_INVOKE_AGENT} {agent_name or task_name}"
    return f"{OP_EXECUTE_TASK} {task_name}"


def root_span_name(flow_name: str) -> str:
    """Return the run's root span name."""
    return f"{OP_INVOKE_WORKFLOW} {flow_name}"


def unknown_event_name(event_type: str) -> str:
    """Return the span event name of an undocumented LAO event."""
    return f"lao.event {event_type}"
