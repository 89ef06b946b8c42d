"""The children of a measurement: launched pinned, stopped whatever happens, read from /proc."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CPU_TEST, CPU_PEERS = 0, 1
T = TypeVar("T")


class BenchError(RuntimeError):
    """A measurement could not be made."""


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when this script dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def pinned(cpu: int | None) -> list[str]:
    """The ``taskset`` prefix pinning a command to ``cpu`` (none when unpinned)."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


class Children:
    """The processes of one measurement; all stopped on exit, whatever happened."""

    def __init__(self, logs: Path, pin: bool) -> None:
        self.logs = logs
        self.pin = pin
        self.procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str], cpu: int, stdin: bool = False
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start ``argv`` pinned to ``cpu``, its output into ``{name}.log``."""
        log_path = self.logs / f"{name}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            pinned(cpu if self.pin else None) + argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # the parent is single-threaded
        )
        self.procs.append((name, proc, log))
        return proc, log_path

    def check_alive(self) -> None:
        """Raise if a child has exited."""
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with code {proc.returncode}")

    def stop(self) -> None:
        """SIGTERM every child (last started first), then SIGKILL what is left after 15 s."""
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                if proc.stdin:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
        deadline = time.monotonic() + 5
        for _, proc, log in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.1, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            log.close()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_port_file(path: Path, kids: Children, what: str) -> dict[str, int]:
    """The ports a child wrote to its port file, once it did."""

    def ready() -> dict[str, int] | None:
        kids.check_alive()
        return json.loads(path.read_text()) if path.exists() else None

    return wait_for(ready, 60, what)


def stat_cpu(path: str | Path) -> tuple[str, float]:
    """The name and CPU time (utime + stime, seconds) in a /proc ``stat`` file."""
    with open(path, encoding="ascii") as stat:
        head, _, tail = stat.read().rpartition(")")
    fields = tail.split()
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (utime + stime) of a process, in seconds (every thread, from /proc/PID/stat)."""
    return stat_cpu(f"/proc/{pid}/stat")[1]


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def settled_rss(pid: int, timeout: float = 15.0) -> int:
    """VmRSS once two readings 0.25 s apart differ by under 0.5% (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = status_kib(pid, "VmRSS")
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = status_kib(pid, "VmRSS")
        if abs(now - last) <= last * 0.005:
            return now
        last = now
    return last


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's threads by kind, from /proc/PID/task/*/stat.

    The main thread is ``main``; the other threads named like it (Python 3.11 leaves a
    Python thread's kernel name alone) are ``python threads``; the rest keep the name their
    C code gave them (gRPC's ``grpc_global_tim``, ``default-executo``, ...). Threads that
    have exited are not counted.
    """
    found: dict[str, float] = {}
    main_comm = ""
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda p: p.name != str(pid)):
        with contextlib.suppress(OSError):  # a thread that exited meanwhile
            comm, seconds = stat_cpu(task / "stat")
            if task.name == str(pid):
                main_comm, kind = comm, "main"
            else:
                kind = "python threads" if comm == main_comm else comm
            found[kind] = found.get(kind, 0.0) + seconds
    return found
