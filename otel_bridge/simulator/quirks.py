"""The run socket's noise and faults, and the non-event frames they produce.

Defaults reproduce what docs/lao-protocol.md says a real socket does or is believed to do:
a greeting, echoes, JSON keepalives, a little plain-text noise, epoch-second timestamps and
a server close shortly after the terminal event. The faults (duplicates, drops, stalls,
unknown event types) are off until asked for. Intervals are real seconds, not scaled by
the simulator's ``time_scale``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Literal

GreetingMode = Literal["alternate", "text", "json", "off"]
TimestampMode = Literal["seconds", "milliseconds", "iso", "mixed"]
DisconnectMode = Literal["close", "abort"]

_NOISE = (
    "processing",
    "heartbeat",
    "worker ready",
    "INFO: dispatching node",
    "still running...",
)


@dataclass(frozen=True)
class Quirks:
    """How a simulated run socket misbehaves.

    - ``greeting``: frame sent on connect; ``alternate`` switches per connection between the
      plain text ``connection established`` and ``{"type": "system", "message": ...}``.
    - ``echo``: answer every client text frame with ``Echoing: <frame>``, alternately plain
      and inside ``{"message": ...}``.
    - ``answer_ping``: also answer a client's ``{"type": "ping"}`` with ``{"event_type": "pong"}``.
    - ``keepalive_interval``: seconds between ``{"event_type": "keepalive"|"pong"}`` frames.
    - ``noise_probability``: chance of a plain non-JSON text frame before each event frame.
    - ``timestamps``: per-run timestamp style; ``mixed`` picks one per run.
    - ``omit_task_ids``: events carry no ``task_id`` (the seed's Financial example).
    - ``duplicate_events``: chance that an event frame is sent twice.
    - ``disconnect_after``: after this many event frames, drop the connection (close code
      1011, or abort the transport with ``disconnect_mode="abort"``); it hits the first
      ``disconnect_connections`` connections of each run socket only.
    - ``stall_after``: after this many event frames, send nothing more and ignore protocol
      pings (a client's ping timeout fires); hits the first ``stall_connections``.
    - ``close_after_terminal``: seconds after a terminal event before the server closes the
      socket with 1000; None keeps it open.
    - ``unknown_events``: chance per task of an undocumented ``task_progress`` event mid-task.
    - ``resend_history``: a new connection first gets every event the run socket already
      sent (a server that buffers per run and resends; suspected, never seen documented).
      With ``disconnect_after`` it makes a server that resends old events and drops.
    - ``refuse_reconnects``: an HTTP status (403, 404, 410, ...) answered to every
      connection of a run socket after its first, as a server does whose run socket is gone.
    """

    greeting: GreetingMode = "alternate"
    echo: bool = True
    answer_ping: bool = True
    keepalive_interval: float | None = 10.0
    noise_probability: float = 0.05
    timestamps: TimestampMode = "seconds"
    omit_task_ids: bool = False
    duplicate_events: float = 0.0
    disconnect_after: int | None = None
    disconnect_mode: DisconnectMode = "close"
    disconnect_connections: int = 1
    stall_after: int | None = None
    stall_connections: int = 1
    close_after_terminal: float | None = 0.5
    unknown_events: float = 0.0
    resend_history: bool = False
    refuse_reconnects: int | None = None

    def __post_init__(self) -> None:
        for name in ("noise_probability", "duplicate_events", "unknown_events"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1, not {value}")
        for name in ("disconnect_after", "stall_after"):
            count = getattr(self, name)
            if count is not None and count < 0:
                raise ValueError(f"{name} must be a count of frames >= 0, not {count}")
        for name in ("keepalive_interval", "close_after_terminal"):
            seconds = getattr(self, name)
            if seconds is not None and seconds < 0:
                raise ValueError(f"{name} must be seconds >= 0, not {seconds}")
        if self.refuse_reconnects is not None and not 400 <= self.refuse_reconnects <= 599:
            raise ValueError(
                f"refuse_reconnects must be an HTTP error status, not {self.refuse_reconnects}"
            )
        if self.keepalive_interval == 0:
            raise ValueError("keepalive_interval must be positive, or None for no keepalives")
        if self.greeting not in ("alternate", "text", "json", "off"):
            raise ValueError(f"unknown greeting mode {self.greeting!r}")
        if self.timestamps not in ("seconds", "milliseconds", "iso", "mixed"):
            raise ValueError(f"unknown timestamp style {self.timestamps!r}")
        if self.disconnect_mode not in ("close", "abort"):
            raise ValueError(f"unknown disconnect mode {self.disconnect_mode!r}")

    @classmethod
    def quiet(cls) -> Quirks:
        """Return quirks with all noise off: only event frames, socket left open."""
        return cls(
            greeting="off",
            echo=False,
            answer_ping=False,
            keepalive_interval=None,
            noise_probability=0.0,
            close_after_terminal=None,
        )

    @classmethod
    def chaos(cls) -> Quirks:
        """Return quirks with every noise and fault on, for soak tests and demos."""
        return cls(
            keepalive_interval=2.0,
            noise_probability=0.2,
            timestamps="mixed",
            duplicate_events=0.1,
            disconnect_after=3,
            unknown_events=0.3,
        )

    def timestamp_style(self, rng: random.Random) -> str:
        """Return the timestamp style of one run."""
        if self.timestamps == "mixed":
            return rng.choice(("seconds", "milliseconds", "iso"))
        return self.timestamps


def greeting_frame(
    mode: GreetingMode, connection: int, flow_name: str, run_name: str
) -> str | None:
    """Return the greeting for the ``connection``-th socket of a run (0-based), or None."""
    if mode == "off":
        return None
    as_json = mode == "json" or (mode == "alternate" and connection % 2 == 1)
    if as_json:
        message = f"Connected to workflow {flow_name}/{run_name}"
        return json.dumps({"type": "system", "message": message})
    return "connection established"


def echo_frame(text: str, count: int) -> str:
    """Return the echo of a client frame; every other echo is wrapped in JSON."""
    echoed = f"Echoing: {text}"
    return json.dumps({"message": echoed}) if count % 2 else echoed


def keepalive_frame(count: int) -> str:
    """Return the ``count``-th keepalive frame: keepalive and pong alternate."""
    return json.dumps({"event_type": "pong" if count % 2 else "keepalive"})


def is_client_ping(text: str) -> bool:
    """Whether a client text frame is the application ping ``{"type": "ping"}``."""
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


def pong_frame() -> str:
    """Return the application-level answer to a client ping."""
    return json.dumps({"event_type": "pong"})


def noise_frame(rng: random.Random) -> str:
    """Return a plain non-JSON text frame."""
    return rng.choice(_NOISE)
