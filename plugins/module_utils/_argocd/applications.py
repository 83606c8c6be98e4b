# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Reading Argo CD Application objects: waves, children and a verdict on each app.

Everything here is pure: plain dicts in, plain values out.  The verdict never
trusts an app's health alone: an app passes only when it is Synced to the
revision it should be on (with a comparison that is not stale), Healthy, with
no error condition and no running or failed operation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, List, Mapping, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError

WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"

AppKey = Tuple[str, ...]  # (namespace, name) for an Application, set_key() for an ApplicationSet
SET_KIND = "ApplicationSet"


def set_key(namespace: str, name: str) -> AppKey:
    """The key of an ApplicationSet: (namespace, name, "ApplicationSet"), never equal to an app's."""
    return (namespace, name, SET_KIND)


def is_set(key: AppKey) -> bool:
    """Whether ``key`` names an ApplicationSet rather than an Application."""
    return len(key) == 3 and key[2] == SET_KIND


# Verdicts: OK passes; WAIT keeps waiting; ERROR fails the wave fast.
OK, WAIT, ERROR = "ok", "wait", "error"
FAILED_OPERATION_PHASES = ("Failed", "Error")
RUNNING_OPERATION_PHASES = ("Running", "Terminating")


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def key_of(obj: Mapping[str, Any], default_namespace: str = "") -> AppKey:
    m = meta(obj)
    return (m.get("namespace") or default_namespace, m.get("name", ""))


def display_name(key: AppKey, home_namespace: str) -> str:
    """``name`` for apps in the verifier's namespace, ``namespace/name`` otherwise."""
    return key[1] if key[0] == home_namespace else f"{key[0]}/{key[1]}"


def parse_wave(value: Any, what: str) -> int:
    """An ``argocd.argoproj.io/sync-wave`` value as an int (missing = 0, negatives allowed)."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0
    if isinstance(value, bool):
        raise ValidationError(f"{what}: annotation {WAVE_ANNOTATION} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationError(
            f"{what}: annotation {WAVE_ANNOTATION}={value!r} is not an integer "
            "(Argo CD syncs it as wave 0)") from None


def wave_of(obj: Mapping[str, Any]) -> int:
    """The app's own sync wave, read as Argo CD reads it: a value that is not an integer counts as 0."""
    try:
        return parse_wave((meta(obj).get("annotations") or {}).get(WAVE_ANNOTATION), "")
    except ValidationError:
        return 0


def wave_problem(obj: Mapping[str, Any]) -> Optional[str]:
    """Why the app's sync-wave annotation is not an integer (Argo CD then syncs it as wave 0), or None."""
    value = (meta(obj).get("annotations") or {}).get(WAVE_ANNOTATION)
    try:
        parse_wave(value, "")
    except ValidationError:
        return (f"Application {meta(obj).get('name', '?')}: annotation {WAVE_ANNOTATION}={value!r} is not an "
                "integer; Argo CD syncs it as wave 0, and so does the verifier")
    return None


def parse_time(value: Any) -> Optional[datetime]:
    """An RFC 3339 timestamp from the API (``2026-11-24T13:58:36Z``) or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# -- sources and revisions -------------------------------------------------
def sources_of(spec_or_compared: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    """The source list of an Application spec or of ``status.sync.comparedTo``."""
    if spec_or_compared.get("sources"):
        return list(spec_or_compared["sources"])
    if spec_or_compared.get("source"):
        return [spec_or_compared["source"]]
    return []


def _norm_revision(value: Any) -> str:
    value = (value or "").strip()
    return "HEAD" if value == "" else value


def _source_identity(src: Mapping[str, Any]) -> Tuple[str, str, str, str]:
    return (
        (src.get("repoURL") or "").rstrip("/"),
        src.get("path") or "",
        src.get("chart") or "",
        _norm_revision(src.get("targetRevision")),
    )


def stale_comparison(app: Mapping[str, Any]) -> Optional[str]:
    """Why ``status.sync.comparedTo`` does not describe the current spec, or None."""
    spec = app.get("spec") or {}
    compared = ((app.get("status") or {}).get("sync") or {}).get("comparedTo") or {}
    want = [_source_identity(s) for s in sources_of(spec)]
    have = [_source_identity(s) for s in sources_of(compared)]
    if not have:
        return "not compared yet"
    if want != have:
        if len(want) == 1 and len(have) == 1 and want[0][:3] == have[0][:3]:
            return f"compared to {have[0][3]}, spec wants {want[0][3]} (stale comparison)"
        return "compared to another source than the spec (stale comparison)"
    return None


def target_revision_of(app: Mapping[str, Any]) -> Tuple[str, str, str]:
    """(repoURL, targetRevision, synced commit) of an app's first source."""
    srcs = sources_of(app.get("spec") or {})
    if not srcs:
        return ("", "", "")
    return ((srcs[0].get("repoURL") or "").rstrip("/"), _norm_revision(srcs[0].get("targetRevision")),
            revision_of(app).split(",", maxsplit=1)[0])


def revision_of(app: Mapping[str, Any]) -> str:
    sync = (app.get("status") or {}).get("sync") or {}
    if sync.get("revision"):
        return str(sync["revision"])
    revisions = sync.get("revisions") or []
    return ",".join(str(r) for r in revisions)


def revision_mismatch(app: Mapping[str, Any], expected: Optional[str],
                      root_source: Tuple[str, str, str]) -> Optional[str]:
    """Why the app is not on the wanted revision, or None.

    ``expected`` (the module's ``target_revision``) may be a branch, tag or commit:
    it matches the compared ``targetRevision`` or a prefix of the synced commit.
    Without it, an app built from the root's repository must track the root's
    ``targetRevision`` or be synced to the same commit as the root; apps from
    other repositories are not held to it.
    """
    repo, own_target, commit = target_revision_of(app)
    if expected:
        compared = [
            _norm_revision(s.get("targetRevision"))
            for s in sources_of(((app.get("status") or {}).get("sync") or {}).get("comparedTo") or {})
        ]
        if expected in compared or (len(expected) >= 7 and any(
                c.startswith(expected) for c in revision_of(app).split(","))):
            return None
        return f"on revision {revision_of(app) or own_target}, expected {expected}"
    root_repo, root_target, root_commit = root_source
    if not root_repo or repo != root_repo or own_target == root_target:
        return None
    if root_commit and commit == root_commit:
        return None
    return f"tracks {own_target}, the root tracks {root_target}"


# -- verdict -----------------------------------------------------------------
@dataclass
class AppState:
    """What the verifier concluded about one app at one moment."""

    key: AppKey
    wave: int
    exists: bool = True
    sync: str = "Unknown"
    health: str = "Unknown"
    operation: str = ""
    revision: str = ""
    verdict: str = WAIT
    reasons: List[str] = field(default_factory=list)
    conditions: List[str] = field(default_factory=list)
    op_started: Optional[datetime] = None
    bad_since: Optional[datetime] = None
    kind: str = "Application"
    owner: str = ""          # the ApplicationSet that generated the app, if any

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


# Argo CD could not talk to the cluster or the repo-server in time (a slow or restarting
# API server): it retries by itself, so such a condition means "wait", not "fail".
TRANSIENT_ERROR = re.compile(
    r"context deadline exceeded|DeadlineExceeded|connection refused|i/o timeout|TLS handshake timeout"
    r"|failed to load open api schema|error synchronizing cache state"
    r"|the server is currently unable to handle the request|net/http: request canceled", re.IGNORECASE)


def _error_type(cond: Mapping[str, Any]) -> bool:
    return str(cond.get("type", "")).endswith("Error")


def is_transient(cond: Mapping[str, Any]) -> bool:
    """An error condition about reaching the cluster or the repo-server, which Argo CD retries."""
    return bool(TRANSIENT_ERROR.search(str(cond.get("message", ""))))


def error_conditions(app: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    """Conditions Argo CD counts as errors (their type ends in ``Error``), transient ones excluded."""
    conds = (app.get("status") or {}).get("conditions") or []
    return [c for c in conds if _error_type(c) and not is_transient(c)]


def transient_conditions(app: Mapping[str, Any]) -> List[str]:
    """Error conditions that Argo CD retries by itself (see ``TRANSIENT_ERROR``), as text."""
    conds = (app.get("status") or {}).get("conditions") or []
    return [f"{c.get('type')}: {c.get('message', '')}".strip() for c in conds if _error_type(c) and is_transient(c)]


def _child_entries(app: Mapping[str, Any], kind: str) -> List[Tuple[AppKey, int]]:
    ns = meta(app).get("namespace", "")
    out = []
    for res in (app.get("status") or {}).get("resources") or []:
        if res.get("kind") == kind and res.get("group", "argoproj.io") == "argoproj.io":
            wave = res.get("syncWave") or 0
            out.append(((res.get("namespace") or ns, res.get("name", "")), int(wave)))
    return out


def child_app_keys(app: Mapping[str, Any]) -> List[Tuple[AppKey, int]]:
    """Application resources an app manages, from its ``status.resources`` (Missing ones too).

    The wave is the one in ``status.resources``: Argo CD orders the parent's sync by it (taken from
    the parent's desired manifest), whatever the live object's annotation says.
    """
    return _child_entries(app, "Application")


def child_set_keys(app: Mapping[str, Any]) -> List[Tuple[AppKey, int]]:
    """ApplicationSet resources an app manages (as :func:`set_key` keys) with their waves."""
    return [(set_key(*key), wave) for key, wave in _child_entries(app, SET_KIND)]


def tracks_to(obj: Mapping[str, Any], parent: AppKey) -> bool:
    """Whether an Application's tracking label/annotation names ``parent`` as its owner app."""
    m = meta(obj)
    names = {parent[1], f"{parent[0]}_{parent[1]}"}
    tracking = (m.get("annotations") or {}).get(TRACKING_ANNOTATION) or ""
    if tracking and tracking.split(":", 1)[0] in names:
        return True
    return (m.get("labels") or {}).get(INSTANCE_LABEL) in names


def operation_phase(app: Mapping[str, Any]) -> str:
    if app.get("operation"):
        return "Requested"
    return ((app.get("status") or {}).get("operationState") or {}).get("phase") or ""


def _failed_operation_is_current(app: Mapping[str, Any]) -> bool:
    """A failed operation counts unless it was for another revision than the current one."""
    status = app.get("status") or {}
    op = status.get("operationState") or {}
    requested = ((op.get("operation") or {}).get("sync") or {}).get("revision")
    op_rev = (op.get("syncResult") or {}).get("revision") or requested
    current = (status.get("sync") or {}).get("revision")
    return not (op_rev and current and op_rev != current)


def evaluate(app: Optional[Mapping[str, Any]], key: AppKey, wave: int, *,
             expected_revision: Optional[str] = None,
             root_source: Tuple[str, str, str] = ("", "", ""),
             children: Optional[Iterable["AppState"]] = None) -> AppState:
    """Judge one app. ``children`` are the verdicts of the apps it manages (nested app-of-apps).

    For a parent, its own ``status.health`` (and the health its ``status.resources``
    records for child Applications) lags behind the children by a resync period,
    so the children's verdicts replace it.
    """
    state = AppState(key=key, wave=wave)
    if app is None:
        state.exists = False
        state.sync = state.health = "Missing"
        state.reasons.append("not created yet")
        return state
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    op = status.get("operationState") or {}
    state.sync = sync.get("status") or "Unknown"
    state.health = health.get("status") or "Unknown"
    state.operation = operation_phase(app)
    state.revision = revision_of(app)
    state.op_started = parse_time(op.get("startedAt"))
    state.conditions = [f"{c.get('type')}: {c.get('message', '')}".strip() for c in error_conditions(app)]
    errors: List[str] = []
    waits: List[str] = []

    if not status:
        waits.append("no status yet (the application controller has not reconciled it)")
    waits.extend(f"Argo CD retries: {text}" for text in transient_conditions(app))
    if state.conditions:
        errors.extend(state.conditions)
    if state.operation in FAILED_OPERATION_PHASES and _failed_operation_is_current(app):
        errors.append(f"operation {state.operation}: {op.get('message', '')}".strip())
    elif state.operation in RUNNING_OPERATION_PHASES or state.operation == "Requested":
        waits.append(f"operation {state.operation}" + (f": {op['message']}" if op.get("message") else ""))

    if state.sync != "Synced":
        waits.append(f"sync {state.sync}")
    elif status:
        stale = stale_comparison(app)
        if stale:
            waits.append(stale)
        mismatch = revision_mismatch(app, expected_revision, root_source)
        if mismatch:
            waits.append(mismatch)

    kids = list(children) if children is not None else []
    if kids:
        _judge_parent(app, kids, state, errors, waits)
    elif state.health == "Degraded":
        errors.append("health Degraded" + (f": {health['message']}" if health.get("message") else ""))
    elif state.health != "Healthy" and status:
        waits.append(f"health {state.health}" + (f": {health['message']}" if health.get("message") else ""))

    if errors:
        state.verdict = ERROR
        state.reasons = errors + waits
    elif waits:
        state.verdict = WAIT
        state.reasons = waits
    else:
        state.verdict = OK
    return state


def caused_by(app: Mapping[str, Any]) -> List[Tuple[str, str, str, str]]:
    """(group, kind, namespace, name) of the resources Argo CD's health message blames.

    Since Argo CD keeps resource health in its own cache (``status.resourceHealthSource:
    appTree``), ``status.resources`` has no health, and the app's health message
    ("Caused by apps/StatefulSet:data/pg, ...") is what names the culprits.
    """
    message = ((app.get("status") or {}).get("health") or {}).get("message") or ""
    if "Caused by " not in message:
        return []
    out = []
    for item in message.split("Caused by ", 1)[1].split(","):
        item = item.strip()
        if ":" not in item:
            continue
        gk, where = item.split(":", 1)
        group, _sep, kind = gk.rpartition("/")
        ns, _sep, name = where.rpartition("/")
        out.append((group, kind, ns, name))
    return out


def _judge_parent(app: Mapping[str, Any], kids: List[AppState], state: AppState,
                  errors: List[str], waits: List[str]) -> None:
    """Health of a nested parent: its children's verdicts plus its other resources.

    Its own health counts only where it blames something other than an Application
    (which the children's verdicts cover without the parent's lag).
    """
    worst = "Healthy"
    for res in (app.get("status") or {}).get("resources") or []:
        if res.get("kind") == "Application":
            continue
        h = (res.get("health") or {}).get("status")
        if h == "Degraded":
            worst = "Degraded"
            errors.append(f"{res.get('kind')} {res.get('name')} Degraded")
        elif h and h != "Healthy":
            worst = "Progressing" if worst == "Healthy" else worst
            waits.append(f"{res.get('kind')} {res.get('name')} {h}")
    own = ((app.get("status") or {}).get("health") or {}).get("status")
    others = [c for c in caused_by(app) if c[1] != "Application"]
    if own not in (None, "Healthy") and others:
        blamed = ", ".join(f"{kind} {ns + '/' if ns else ''}{name}" for _g, kind, ns, name in others)
        if own == "Degraded":
            worst = "Degraded"
            errors.append(f"health Degraded, caused by {blamed}")
        else:
            worst = "Progressing" if worst == "Healthy" else worst
            waits.append(f"health {own}, caused by {blamed}")
    for kid in kids:
        name = kid.key[1]
        if kid.verdict == ERROR:
            worst = "Degraded"
            errors.append(f"child app {name}: {kid.message}")
        elif kid.verdict == WAIT:
            worst = "Progressing" if worst == "Healthy" else worst
            waits.append(f"child app {name}: {kid.message}")
    state.health = worst
