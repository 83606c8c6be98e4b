# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""An API server ready and staying ready: ``/readyz`` answered 200 for a settle period in a row.

A restarted kube-apiserver answers requests before its authorizer's caches
are filled: for a moment every request is refused (403) although the user is
bound to cluster-admin.  ``/readyz`` says so (its ``informer-sync`` and
``poststarthook/rbac/bootstrap-roles`` checks fail until then).  After a
kubelet restart the kubelet may restart the API server once more, a second
or two later, when its static pod's hash changes across kubelet versions;
one 200 is therefore not enough: the answers must stay 200 for ``settle``
seconds.  I/O-free: the probe, clock and sleep are passed in, so unit tests
drive it with fakes.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline

# probe() -> (HTTP status, body); status 0 when nothing answered (the body says why).
Probe = Callable[[], Tuple[int, str]]


def validate(timeout: int, settle: int, interval: float) -> None:
    """Refuse options that cannot bound the wait; the message names the option."""
    if timeout <= 0:
        raise ValidationError(f"timeout must be a positive number of seconds, got {timeout}")
    if settle < 0:
        raise ValidationError(f"settle must be zero or more seconds, got {settle}")
    if settle >= timeout:
        raise ValidationError(f"settle ({settle}s) must be shorter than timeout ({timeout}s)")
    if interval <= 0:
        raise ValidationError(f"interval must be a positive number of seconds, got {interval}")


def failing_checks(body: str) -> List[str]:
    """The names of the checks ``/readyz?verbose`` reports as failed (its ``[-]`` lines)."""
    return [line[3:].split(" ", 1)[0] for line in body.splitlines() if line.startswith("[-]")]


def _describe(status: int, body: str) -> str:
    if status == 0:
        return f"no answer ({body.strip() or 'connection failed'})"
    checks = failing_checks(body)
    return f"HTTP {status}" + (f", failing checks: {', '.join(checks)}" if checks else "")


def wait_settled(probe: Probe, url: str, timeout: float, settle: float, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Poll until ``probe`` has answered 200 for ``settle`` seconds in a row, within ``timeout``.

    Returns the seconds waited and every interruption seen (an answer other than 200 after a 200, that is
    an API server that went away again).  Raises :class:`ModuleFailure` naming the URL and the last answer
    when the deadline passes first.
    """
    deadline = Deadline(timeout, clock)
    ready_since: Optional[float] = None
    interruptions: List[str] = []
    last = (0, "not asked yet")
    while True:
        status, body = probe()
        now = clock()
        if status == 200:
            if ready_since is None:
                ready_since = now
            if now - ready_since >= settle:
                return {"seconds": round(deadline.elapsed(), 1), "interruptions": interruptions}
        else:
            if ready_since is not None:
                interruptions.append(f"after {deadline.elapsed():.1f}s: {_describe(status, body)}")
            ready_since = None
            last = (status, body)
        if deadline.expired():
            answer = "answered 200 but not for long enough" if ready_since is not None else _describe(*last)
            raise ModuleFailure(
                f"{url} did not stay ready for {settle:.0f}s within {timeout:.0f}s: {answer}",
                {"seconds": round(deadline.elapsed(), 1), "interruptions": interruptions})
        sleep(min(interval, max(0.05, deadline.remaining())))
