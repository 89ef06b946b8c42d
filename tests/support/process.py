"""A server child process for tests: log to a file, poll until ready, stop, dump the log."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"

T = TypeVar("T")


class ServerError(RuntimeError):
    """A support server failed to start, died, or did not become ready in time."""


def in_ci() -> bool:
    """Whether we run under CI (env CI set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_binary(path: Path | str, how_to_get: str) -> Path:
    """Return `path` (or its PATH lookup) if executable; else skip locally, fail under CI."""
    found = Path(path) if Path(path).is_absolute() else None
    if found is None:
        located = shutil.which(str(path))
        found = Path(located) if located else None
    if found is not None and os.access(found, os.X_OK) and found.is_file():
        return found
    reason = f"{path} not found; {how_to_get}"
    if in_ci():
        pytest.fail(f"CI=true and a required test binary is missing: {reason}", pytrace=False)
    pytest.skip(reason)


class ServerProcess:
    """One child process whose stdout+stderr go to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Spawn the process (in its own session, so a stop reaches it alone)."""
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        """The child's pid, once started."""
        return self._proc.pid if self._proc else None

    def returncode(self) -> int | None:
        """Return the exit status if the process has ended, else None."""
        return self._proc.poll() if self._proc else None

    def log_text(self) -> str:
        """Everything the process has written so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ensure_running(self) -> None:
        """Raise ServerError (with the log) if the process has exited."""
        code = self.returncode()
        if code is not None:
            raise ServerError(
                f"{self.name} exited with status {code}\n{self._log_excerpt()}",
            )

    def wait_until(
        self,
        probe: Callable[[], T | None],
        timeout: float,
        what: str,
        interval: float = 0.1,
    ) -> T:
        """Call `probe` until it returns non-None; fail if the process dies or time runs out.

        Exceptions from `probe` (connection refused while starting, …) count as "not yet".
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self.ensure_running()
            try:
                result = probe()
            except Exception as err:  # a probe error means "not ready yet"
                last_error = err
            else:
                if result is not None:
                    return result
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error!r})" if last_error else ""
                raise ServerError(
                    f"{self.name}: {what} not reached within {timeout}s{detail}\n"
                    f"{self._log_excerpt()}",
                )
            time.sleep(interval)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout` s, then SIGKILL; close the log file."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def dump_log(self, stream: IO[str] | None = None) -> None:
        """Write the process log to `stream` (stderr by default), e.g. after a test failed."""
        out = stream if stream is not None else sys.stderr
        out.write(f"\n----- {self.name} log ({self.log_path}) -----\n")
        out.write(self.log_text())
        out.write(f"\n----- end of {self.name} log -----\n")
        out.flush()

    def _log_excerpt(self, max_chars: int = 8000) -> str:
        text = self.log_text()
        if len(text) > max_chars:
            text = "…" + text[-max_chars:]
        return f"----- {self.name} log ({self.log_path}) -----\n{text}"


class ManagedServer:
    """Lifecycle shared by the support servers: a child process and its temp directory.

    Subclasses set ``self.process`` and ``self._tmp`` in ``start()``. Use as a context
    manager; if the ``with`` body raises, the server's log goes to stderr first.
    """

    process: ServerProcess | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Self:
        """Start the server and wait until it is ready."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process and remove its temporary directory (if this server made it)."""
        if self.process is not None:
            self.process.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def dump_log(self) -> None:
        """Write the server's log to stderr."""
        if self.process is not None:
            self.process.dump_log()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:
                self.dump_log()
        finally:
            self.stop()
