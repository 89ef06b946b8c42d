"""A simulated Lyzr Agent Orchestration (LAO) server: run-dag, task-status and run sockets.

Where things are: ``flow`` (the run-dag body and its DAG), ``hints`` (the ``x-sim``
simulation hints), ``checks`` (FlowError and value checks), ``flows`` (the docs' example
bodies), ``generator`` (random bodies), ``plan`` (a run's seeded choices), ``player`` (playing
a run), ``events`` (event dicts), ``hub`` (per-run broadcast), ``connection`` (one socket and
its quirks), ``quirks`` (what the socket does besides events), ``server`` (routes), ``app``
(:class:`Simulator`), ``cli`` (the ``simulate`` subcommand).
"""

from otel_bridge.simulator.app import Simulator
from otel_bridge.simulator.flow import Flow, FlowError, parse_flow
from otel_bridge.simulator.flows import customer_support_flow, financial_data_flow, generate_flow
from otel_bridge.simulator.quirks import Quirks

__all__ = [
    "Flow",
    "FlowError",
    "Quirks",
    "Simulator",
    "customer_support_flow",
    "financial_data_flow",
    "generate_flow",
    "parse_flow",
]
