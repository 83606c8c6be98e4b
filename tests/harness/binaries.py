"""Make sure cached binaries exist before a cluster starts, building them at most once.

``require(["kubernetes", "etcd", "kwok"])`` returns at once when the cache
holds them.  Otherwise it takes a per-component file lock (so two sessions
never build the same thing), waits for a build another process already runs
(``python -m tests.harness.build``), or builds it itself, printing progress
every 30 s.  A failed build raises :class:`build.BuildError` naming the
component and the reason.
"""

from __future__ import annotations

import fcntl
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import psutil

from tests.harness import build
from tests.harness.versions import cache_dir

BUILD_TIMEOUT = 60 * 60.0


@contextmanager
def _lock(name: str) -> Iterator[None]:
    path = cache_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _other_builder(name: str) -> int | None:
    """PID of a running ``python -m tests.harness.build`` that will build ``name``."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "tests.harness.build" in cmd:
            names = cmd[cmd.index("tests.harness.build") + 1:]
            if not names or name in names:
                return proc.info["pid"]
    return None


def _heartbeat(label: str, log: Callable[[str], None], stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.wait(30):
        log(f"[build] {label}: still building ({time.monotonic() - start:.0f}s)...")


def require(names: list[str] | tuple[str, ...], log: Callable[[str], None] = print) -> dict[str, float]:
    """Ensure every component is built; return seconds spent per component (0 if cached)."""
    spent: dict[str, float] = {}
    for name in names:
        comp = build.components()[name]
        if comp.built():
            spent[name] = 0.0
            continue
        start = time.monotonic()
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(f"{name} {comp.version}", log, stop),
                                daemon=True)
        beat.start()
        try:
            other = _other_builder(name)
            if other:
                log(f"[build] {name} {comp.version}: waiting for the build already running (pid {other})")
                deadline = time.monotonic() + BUILD_TIMEOUT
                while not comp.built() and psutil.pid_exists(other) and time.monotonic() < deadline:
                    time.sleep(2)
            with _lock(name):
                if not comp.built():
                    build.ensure(name, log=log)
        finally:
            stop.set()
        spent[name] = round(time.monotonic() - start, 1)
    return spent
