"""Where runs and tasks become span records: names, attributes, status, events.

Pure functions over the tracker's :mod:`.run_state`; every key comes from :mod:`.semconv`
and every payload goes through the :class:`PayloadPolicy`.
"""

from __future__ import annotations

from otel_bridge.core import attributes as A
from otel_bridge.core import semconv as K
from otel_bridge.core.events import FlowCompleted, FlowError, TaskCompleted, TaskFailed
from otel_bridge.core.records import AttributeValue, Result, SpanEvent, SpanRecord, StatusCode
from otel_bridge.core.redaction import PayloadPolicy, clean_name
from otel_bridge.core.run_state import RunState, TaskState


def _task_base_attrs(run: RunState, task: TaskState) -> dict[str, AttributeValue]:
    run_id = task.task_id or f"{task.task_name}#{task.occurrence}"
    attrs: dict[str, AttributeValue] = {
        K.LAO_FLOW_NAME: clean_name(run.flow_name),
        K.LAO_RUN_NAME: clean_name(run.run_name),
        K.LAO_TASK_NAME: task.task_name,
        K.CICD_TASK_NAME: task.task_name,
        K.CICD_TASK_RUN_ID: run_id,
    }
    if task.task_id is not None:
        attrs[K.LAO_TASK_ID] = task.task_id
    if task.agent_id:
        attrs[K.GEN_AI_OPERATION_NAME] = K.OP_INVOKE_AGENT
        attrs[K.GEN_AI_PROVIDER_NAME] = K.PROVIDER_LYZR
        attrs[K.GEN_AI_AGENT_ID] = task.agent_id
        if task.agent_name:
            attrs[K.GEN_AI_AGENT_NAME] = task.agent_name
        if task.conversation_id:
            attrs[K.GEN_AI_CONVERSATION_ID] = task.conversation_id
        if task.server_address:
            attrs[K.SERVER_ADDRESS] = task.server_address
            if task.server_port is not None:
                attrs[K.SERVER_PORT] = task.server_port
    if task.input_text is not None:
        attrs[K.LAO_TASK_INPUT] = task.input_text
        if task.input_truncated:
            attrs[K.LAO_PAYLOAD_TRUNCATED] = True
    if task.adjusted:
        attrs[K.LAO_TIMESTAMP_ADJUSTED] = True
    return attrs


def _task_record(
    run: RunState,
    task: TaskState,
    end_ns: int,
    attrs: dict[str, AttributeValue],
    status: StatusCode,
    result: Result,
    *,
    message: str | None = None,
    events: tuple[SpanEvent, ...] = (),
    error_type: str | None = None,
) -> SpanRecord:
    run.note_task_span(task.start_ns, end_ns)
    attrs[K.CICD_TASK_RUN_RESULT] = result.value
    return SpanRecord(
        kind="task",
        flow_name=clean_name(run.flow_name),
        run_name=clean_name(run.run_name),
        task_name=task.task_name,
        trace_id=run.trace_id,
        span_id=task.span_id,
        parent_span_id=run.root_span_id,
        parent_is_remote=False,
        name=K.task_span_name(task.task_name, task.agent_id, task.agent_name),
        client=bool(task.agent_id),  # an agent call is a remote call: span kind CLIENT
        start_ns=task.start_ns,
        end_ns=end_ns,
        attributes=attrs,
        events=events,
        status=status,
        status_message=message,
        result=result,
        error_type=error_type,
        sampled=run.sampled,
        trace_state=run.parent.state if run.parent else "",
    )


def task_span(
    run: RunState,
    task: TaskState,
    end_ns: int,
    event: TaskCompleted | TaskFailed,
    synthetic: bool,
    policy: PayloadPolicy,
    adjusted: bool = False,
) -> SpanRecord:
    """The span of a task execution that ended with ``event``."""
    attrs = _task_base_attrs(run, task)
    if adjusted:
        attrs[K.LAO_TIMESTAMP_ADJUSTED] = True
    if synthetic:
        attrs[K.LAO_SYNTHETIC_START] = True
    if event.execution_time is not None:
        attrs[K.LAO_TASK_EXECUTION_TIME] = event.execution_time
    if isinstance(event, TaskCompleted):
        A.put_payload(attrs, K.LAO_TASK_OUTPUT, event.output, policy)
        return _task_record(run, task, end_ns, attrs, StatusCode.OK, Result.SUCCESS)
    error_type, description = A.put_error(attrs, event.error, policy)
    A.put_payload(attrs, K.LAO_PARTIAL_RESULTS, event.partial_results, policy)
    return _task_record(
        run,
        task,
        end_ns,
        attrs,
        StatusCode.ERROR,
        Result.FAILURE,
        message=description,
        events=(A.exception_event(end_ns, error_type, description),),
        error_type=error_type,
    )


def incomplete_task_span(
    run: RunState, task: TaskState, end_ns: int, result: Result, policy: PayloadPolicy
) -> SpanRecord:
    """The span of a task execution still open when its run ended."""
    attrs = _task_base_attrs(run, task)
    attrs[K.LAO_TASK_INCOMPLETE] = True
    return _task_record(run, task, end_ns, attrs, StatusCode.UNSET, result)


def root_span(
    run: RunState,
    end_ns: int,
    terminal: FlowCompleted | FlowError | None,
    closed_as: Result | None,
    policy: PayloadPolicy,
    close_reason: str | None = None,
) -> SpanRecord:
    """The run's root span, ended by ``terminal`` or closed without one (``closed_as``)."""
    flow, run_name = clean_name(run.flow_name), clean_name(run.run_name)
    attrs: dict[str, AttributeValue] = {
        K.LAO_FLOW_NAME: flow,
        K.LAO_RUN_NAME: run_name,
        K.CICD_PIPELINE_NAME: flow,
        K.CICD_PIPELINE_RUN_ID: f"{flow}/{run_name}",  # unique across the system, not per flow
        K.GEN_AI_OPERATION_NAME: K.OP_INVOKE_WORKFLOW,
        K.GEN_AI_WORKFLOW_NAME: flow,
    }
    if run.flow_task_id:
        attrs[K.LAO_FLOW_TASK_ID] = run.flow_task_id
    if run.message:
        attrs[K.LAO_MESSAGE] = run.message
    if run.adjusted:
        attrs[K.LAO_TIMESTAMP_ADJUSTED] = True
    start = run.started_ns
    if start is None:
        attrs[K.LAO_SYNTHETIC_START] = True
        start = run.first_ns if run.first_ns is not None else end_ns
    if run.min_task_start_ns is not None:
        start = min(start, run.min_task_start_ns)
    start = min(start, end_ns)
    events = list(run.root_events)
    status, message, error_type = StatusCode.UNSET, None, None
    if isinstance(terminal, FlowCompleted):
        result, status = Result.SUCCESS, StatusCode.OK
        if terminal.total_execution_time is not None:
            attrs[K.LAO_FLOW_TOTAL_EXECUTION_TIME] = terminal.total_execution_time
        A.put_payload(attrs, K.LAO_FLOW_OUTPUT, terminal.output, policy)
    elif isinstance(terminal, FlowError):
        result, status = Result.FAILURE, StatusCode.ERROR
        error_type, message = A.put_error(attrs, terminal.error, policy)
        A.put_payload(attrs, K.LAO_PARTIAL_RESULTS, terminal.partial_results, policy)
        events.append(A.exception_event(end_ns, error_type, message))
    else:
        result = closed_as or Result.CANCELLATION
        attrs[K.LAO_RUN_INCOMPLETE] = True
        if close_reason:
            attrs[K.LAO_RUN_CLOSE_REASON] = policy.text(close_reason)
    attrs[K.CICD_PIPELINE_RESULT] = result.value
    return SpanRecord(
        kind="run",
        flow_name=flow,
        run_name=run_name,
        task_name=None,
        trace_id=run.trace_id,
        span_id=run.root_span_id,
        parent_span_id=run.parent.span_id if run.parent else None,
        parent_is_remote=run.parent is not None,
        name=K.root_span_name(flow),
        start_ns=start,
        end_ns=end_ns,
        attributes=attrs,
        events=tuple(sorted(events, key=lambda e: e.time_ns)),
        status=status,
        status_message=message,
        result=result,
        error_type=error_type,
        sampled=run.sampled,
        trace_state=run.parent.state if run.parent else "",
    )
