"""Start and stop the harness's own processes, by PID, with bounded waits.

A process is identified by its PID *and* its start time, so a PID that was
reused by something else after our process died is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil


class HarnessError(RuntimeError):
    """A harness step failed; the message says which component and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ('' when absent)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """One process the harness started: its name, argv, log file and identity."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    pid: int | None = None
    create_time: float | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> "ManagedProcess":
        """Start the process detached (own session), output appended to its log."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(self.env)
        with self.log.open("ab") as out:
            out.write(f"\n=== start {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(  # noqa: S603 - our own binaries
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.cwd, start_new_session=True)
        self.pid = self.popen.pid
        try:
            self.create_time = psutil.Process(self.pid).create_time()
        except psutil.Error:
            self.create_time = None
        return self

    def _proc(self) -> psutil.Process | None:
        if self.pid is None:
            return None
        try:
            proc = psutil.Process(self.pid)
            if self.create_time is not None and abs(proc.create_time() - self.create_time) > 0.5:
                return None  # the PID now belongs to someone else
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self._proc() is not None

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def rss(self) -> int:
        proc = self._proc()
        try:
            return proc.memory_info().rss if proc else 0
        except psutil.Error:
            return 0

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; reap it when it is our child."""
        proc = self._proc()
        if proc is None:
            if self.popen is not None:
                self.popen.poll()
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self._wait_gone(grace):
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait_gone(10.0)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None:
                try:
                    self.popen.wait(timeout=0.1)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if self._proc() is None:
                return True
            time.sleep(0.1)
        return False

    def state(self) -> dict:
        return {"name": self.name, "pid": self.pid, "create_time": self.create_time,
                "log": str(self.log), "argv": self.argv}

    @classmethod
    def from_state(cls, data: dict) -> "ManagedProcess":
        return cls(name=data["name"], argv=data["argv"], log=Path(data["log"]),
                   pid=data["pid"], create_time=data["create_time"])


def wait_until(what: str, predicate: Callable[[], bool], timeout: float,
               watch: list[ManagedProcess] = (), interval: float = 0.2, raise_errors: bool = False) -> float:
    """Poll ``predicate`` until true; return seconds taken: the one wait loop of the tests and the harness.

    Raises :class:`HarnessError` after ``timeout`` seconds, or as soon as one of
    the ``watch`` processes exits (with the last lines of its log). An exception
    from ``predicate`` counts as "not yet" (connection refused, 5xx, ...), except
    an AssertionError, or any exception with ``raise_errors``.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        for proc in watch:
            if not proc.alive():
                raise HarnessError(
                    f"{proc.name} exited (code {proc.exit_code()}) while waiting for {what}; "
                    f"last lines of {proc.log}:\n{tail(proc.log)}")
        try:
            if predicate():
                return time.monotonic() - start
        except AssertionError:
            raise
        except Exception:  # noqa: BLE001 - not ready yet (connection refused, 5xx, ...)
            if raise_errors:
                raise
        if time.monotonic() >= deadline:
            logs = "\n".join(f"--- {p.name} ({p.log}):\n{tail(p.log, 15)}" for p in watch)
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(interval)
