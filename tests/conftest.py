"""Fixtures shared by the end-to-end tests: the simulator and a bridge wired together.

``rig`` starts the LAO simulator and a bridge exporting to a memory sink on free loopback
ports (see ``support/rig.py`` for what a :class:`~support.rig.Rig` offers); a module sets
them up its way by overriding ``rig_options``, the keyword arguments of
:func:`~support.rig.running_rig`.

Timing: tests wait on conditions (``support.timing.wait_for``), never for a fixed time. Every
deadline, watchdog window and simulated duration is a multiple of ``support.timing.UNIT``,
read from the environment variable ``OTEL_BRIDGE_TEST_TIME_UNIT`` (default 1): on a slow or
loaded machine, ``OTEL_BRIDGE_TEST_TIME_UNIT=3 make test`` gives everything three times as
long while keeping the ratios the tests depend on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from support.rig import Rig, running_rig


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    """main() configures the root logger as the CLI does; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def rig_options() -> dict[str, Any]:
    """Keyword arguments of ``running_rig`` for the ``rig`` fixture; override it per module."""
    return {}


@pytest.fixture
async def rig(rig_options: dict[str, Any]) -> AsyncIterator[Rig]:
    """The simulator and a bridge following it, exporting to memory; stopped after the test."""
    async with running_rig(**rig_options) as started:
        yield started
