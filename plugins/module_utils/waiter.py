# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Deadlines on a monotonic clock: every wait in the collection is bounded, and bounded here.

``Deadline`` is the one clock arithmetic (the verifier's overall and per-wave
timeouts, the watches' waits); ``wait_for`` is the one polling loop (the root
Application's first sync and deletion, CRDs Established, workloads rolled
out).  Both take the clock and sleep they use, so unit tests drive them with
fake ones.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


class Deadline:
    """A point on the monotonic clock; ``None`` seconds means no limit here."""

    def __init__(self, seconds: Optional[float], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.start = clock()
        self.at = None if seconds is None else self.start + float(seconds)

    @classmethod
    def since(cls, start: float, seconds: float, clock: Callable[[], float] = time.monotonic) -> "Deadline":
        """A deadline that began at ``start`` on ``clock`` (a wait resumed by a later process)."""
        deadline = cls(seconds, clock)
        deadline.start = start
        deadline.at = start + float(seconds)
        return deadline

    def remaining(self) -> float:
        if self.at is None:
            return float("inf")
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def elapsed(self) -> float:
        return self.clock() - self.start

    @staticmethod
    def earliest(*deadlines: "Deadline") -> float:
        """Seconds until the first of several deadlines expires."""
        return min(d.remaining() for d in deadlines)


class WaitTimeout(Exception):
    """A predicate did not hold before its deadline."""


def wait_for(predicate: Callable[[], Optional[T]], timeout: float, interval: float = 1.0,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep, what: str = "condition") -> T:
    """Call ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = Deadline(timeout, clock)
    while True:
        value = predicate()
        if value:
            return value
        if deadline.expired():
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        sleep(min(interval, max(0.05, deadline.remaining())))
