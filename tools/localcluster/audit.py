"""The API server's audit log: the policy the harness installs and a reader for tests.

Every request is logged at ``Metadata`` level once it completes
(``RequestReceived`` is omitted; a watch appears when its response starts),
except the Lease renewals kwok sends for every fake node and health probes,
which would drown the rest.  Tests count requests by verb, resource and
user agent::

    mark = cluster.audit_mark()
    ... run a module ...
    events = cluster.audit_events(since=mark, user_agent="ansible")
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  resources:
  - group: coordination.k8s.io
    resources: ["leases"]
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
- level: Metadata
"""


@dataclass(frozen=True)
class AuditMark:
    """A position in the audit log (what ``audit_events(since=...)`` starts from)."""

    offset: int
    time: dt.datetime


def mark(path: Path) -> AuditMark:
    """The current end of the audit log."""
    size = path.stat().st_size if path.exists() else 0
    return AuditMark(size, dt.datetime.now(dt.timezone.utc))


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lines(path: Path, offset: int) -> Iterator[str]:
    if not path.exists():
        return
    with path.open("rb") as fh:
        if offset > fh.seek(0, 2):
            offset = 0  # the log was rotated since the mark
        fh.seek(offset)
        for raw in fh:
            if raw.endswith(b"\n"):
                yield raw.decode("utf-8", "replace")


# Verbs that change something stored (a dry run is recorded with these verbs too).
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def writes(evs: list[dict]) -> list[dict]:
    """The events among ``evs`` whose verb writes."""
    return [ev for ev in evs if ev.get("verb") in WRITE_VERBS]


def events(path: Path, since: AuditMark | dt.datetime | int | None = None, *,
           verb: str | None = None, resource: str | None = None,
           user_agent: str | None = None, user: str | None = None,
           namespace: str | None = None) -> list[dict]:
    """Parsed audit events (one per request), optionally filtered.

    ``since``: an :class:`AuditMark`, a byte offset, or a datetime (requests
    received at or after it).  ``user_agent`` matches as a substring
    (client user agents carry versions), the others exactly.
    """
    offset, after = 0, None
    if isinstance(since, AuditMark):
        offset, after = since.offset, None
    elif isinstance(since, int):
        offset = since
    elif isinstance(since, dt.datetime):
        after = since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)
    seen: set[str] = set()
    out = []
    for line in _lines(path, offset):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("auditID") in seen:
            continue
        seen.add(ev.get("auditID"))
        ref = ev.get("objectRef") or {}
        if verb and ev.get("verb") != verb:
            continue
        if resource and ref.get("resource") != resource:
            continue
        if namespace and ref.get("namespace") != namespace:
            continue
        if user_agent and user_agent not in (ev.get("userAgent") or ""):
            continue
        if user and (ev.get("user") or {}).get("username") != user:
            continue
        if after and _parse_time(ev["requestReceivedTimestamp"]) < after:
            continue
        out.append(ev)
    return out
