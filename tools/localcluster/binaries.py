"""Make sure cached binaries exist before a cluster starts, building them at most once.

``require(["kubernetes", "etcd", "kwok"])`` returns at once when the cache
holds them.  Otherwise it builds them with :func:`build.ensure`, whose
per-component file lock makes it wait for a build another run holds
(another session, ``python -m tools.localcluster.build``) instead of building the
same thing twice, printing progress every 30 s.  A failed build raises :class:`build.BuildError` naming the
component and the reason.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from tools.localcluster import build


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
            build.ensure(name, log=log)  # waits for another run's build of it (its lock)
        finally:
            stop.set()
        spent[name] = round(time.monotonic() - start, 1)
    return spent
