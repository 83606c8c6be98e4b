# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The wave-by-wave verdict over a changing set of Applications.

``WaveTracker.update(index, changed)`` takes the latest copy of every
Application (from a LIST plus WATCH events) and the keys that changed since the
last call, and moves through the waves lowest first.  Without ``changed`` (the
first call, after a re-LIST) it re-discovers the root's children and judges
every app; with it, only the changed apps (and the parents whose verdict reads
them) are judged again, so a watch event costs the same at 40 or 1,000 apps.
A change that can alter the set of children or their waves (the root itself, an
app that appears, disappears or moves to another wave) falls back to the full
pass.  It does no I/O and reads time only from the clocks it is given, so it is
driven the same way by the module and by unit tests with a fake clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.argocd.applications import (
    ERROR,
    REFRESH_ANNOTATION,
    AppKey,
    AppState,
    child_app_keys,
    display_name,
    error_conditions,
    evaluate,
    meta,
    parse_time,
    stale_comparison,
    target_revision_of,
    tracks_to,
    transient_conditions,
    wave_of,
)

Index = Mapping[AppKey, Mapping]

# Argo CD writes operationState.startedAt with whole seconds.
TIMESTAMP_RESOLUTION = timedelta(seconds=1)


def group_by_wave(members: Mapping[AppKey, int]) -> List[Tuple[int, List[AppKey]]]:
    """``[(wave, [keys sorted by name]), ...]`` lowest wave first."""
    waves: Dict[int, List[AppKey]] = {}
    for key, wave in members.items():
        waves.setdefault(wave, []).append(key)
    return [(w, sorted(waves[w], key=lambda k: (k[1], k[0]))) for w in sorted(waves)]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: Optional[datetime]) -> Optional[str]:
    """RFC 3339 in UTC, with milliseconds when the time has a fraction."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond // 1000:03d}Z" if value.microsecond else "Z")


@dataclass
class WaveRecord:
    """Progress of one wave."""

    wave: int
    members: List[AppKey] = field(default_factory=list)
    started: Optional[float] = None      # monotonic, when it became the wave being waited on
    completed: Optional[float] = None    # monotonic, when all members passed
    detected_at: Optional[datetime] = None


class Outcome:
    """What the driver does next.

    A "waiting" outcome names the apps of the wave that are not ready yet; they are sorted
    and named only when asked for (``message``, ``failing_apps``), since a watch event
    produces an outcome that is usually replaced by the next one unread.
    """

    def __init__(self, phase: str, message: str = "", failing_wave: Optional[int] = None,
                 failing_apps: Optional[List[AppKey]] = None, refresh: Optional[List[AppKey]] = None, *,
                 waiting_for: Optional[Set[AppKey]] = None, namespace: str = ""):
        self.phase = phase                   # "waiting" | "done" | "failed"
        self.failing_wave = failing_wave
        self.refresh: List[AppKey] = list(refresh or [])
        self._message = message
        self._failing: List[AppKey] = list(failing_apps or [])
        self._waiting_for = waiting_for      # a copy of the wave's not-ready apps, named on first use
        self._namespace = namespace

    def _resolve(self) -> None:
        if self._waiting_for is not None:
            self._failing = _ordered(self._waiting_for)
            self._message = f"wave {self.failing_wave}: waiting for " + ", ".join(
                display_name(k, self._namespace) for k in self._failing)
            self._waiting_for = None

    @property
    def message(self) -> str:
        self._resolve()
        return self._message

    @property
    def failing_apps(self) -> List[AppKey]:
        self._resolve()
        return self._failing

    def __repr__(self) -> str:
        return (f"Outcome(phase={self.phase!r}, message={self.message!r}, failing_wave={self.failing_wave!r}, "
                f"failing_apps={self.failing_apps!r}, refresh={self.refresh!r})")


@dataclass
class _BadInterval:
    start: datetime
    end: Optional[datetime]
    state: str


class WaveTracker:
    """Discover children, judge them, and walk the waves in order."""

    def __init__(self, namespace: str, root: Optional[str] = None, *,
                 expected_apps: Tuple[str, ...] = (), target_revision: Optional[str] = None,
                 wave_timeout: float = 600, timeout: float = 1800,
                 hard_refresh_on_error: bool = False, check_root_revision: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = _utcnow):
        self.namespace = namespace
        self.root_key: Optional[AppKey] = (namespace, root) if root else None
        self.expected = [(namespace, n) if "/" not in n else tuple(n.split("/", 1)) for n in expected_apps]
        self.target_revision = target_revision
        self.wave_timeout = float(wave_timeout)
        self.timeout = float(timeout)
        self.hard_refresh = hard_refresh_on_error
        self.check_root_revision = check_root_revision
        self.clock = clock
        self.wall = wall_clock
        self.start = clock()
        self.started_at = wall_clock()
        self.states: Dict[AppKey, AppState] = {}
        self.waves: Dict[int, WaveRecord] = {}
        self.ok_at: Dict[AppKey, float] = {}
        self.refreshed: Dict[AppKey, str] = {}   # key -> resourceVersion of our patch
        self._refresh_seen: Set[AppKey] = set()
        self.violations: List[str] = []
        self._violation_pairs: Set[Tuple[AppKey, AppKey]] = set()
        self._bad: Dict[AppKey, List[_BadInterval]] = {}
        self._seen_op: Dict[AppKey, Optional[datetime]] = {}
        self._seen_sync: Dict[AppKey, str] = {}
        self.root_note = ""
        # State of the last full pass, for incremental updates.
        self._synced = False                                  # a full pass completed since the last failure
        self._members: Dict[AppKey, int] = {}                 # children and their waves
        self._root_children: Dict[AppKey, int] = {}           # the root's status.resources entries
        self._expected_keys: Set[AppKey] = {tuple(k) for k in self.expected}  # type: ignore[misc]
        self._root_source: Tuple[str, str, str] = ("", "", "")
        self._pending: Optional[str] = None                   # why the child list may be incomplete
        self._reads: Dict[AppKey, Set[AppKey]] = {}           # member -> apps its verdict read
        self._readers: Dict[AppKey, Set[AppKey]] = {}         # app -> members whose verdict read it
        # Per wave: members not ready, members failing, members in a not-ready interval now, and the
        # latest end of their closed not-ready intervals (so one change costs O(1), not O(apps)).
        self._not_ok: Dict[int, Set[AppKey]] = {}
        self._errors: Dict[int, Set[AppKey]] = {}
        self._bad_open: Dict[int, Set[AppKey]] = {}
        self._bad_until: Dict[int, datetime] = {}

    # -- time ---------------------------------------------------------------
    def elapsed(self) -> float:
        return self.clock() - self.start

    def current_wave(self) -> Optional[WaveRecord]:
        for wave in sorted(self.waves):
            if self.waves[wave].completed is None:
                return self.waves[wave]
        return None

    def remaining(self) -> float:
        """Seconds until the first of the overall and the current wave's deadline."""
        left = self.timeout - self.elapsed()
        cur = self.current_wave()
        if cur is not None and cur.started is not None:
            left = min(left, self.wave_timeout - (self.clock() - cur.started))
        return max(0.0, left)

    # -- discovery ----------------------------------------------------------
    def discover(self, index: Index) -> Tuple[Dict[AppKey, int], Optional[str]]:
        """Children and their waves; the second value says why the list may be incomplete."""
        members: Dict[AppKey, int] = {}
        pending = None
        if self.root_key:
            root = index.get(self.root_key)
            if root is None:
                return members, f"root app {self.root_key[1]} does not exist in namespace {self.root_key[0]}"
            for key, wave in child_app_keys(root):
                members[key] = wave
            for key, obj in index.items():
                if key != self.root_key and tracks_to(obj, self.root_key):
                    members.setdefault(key, 0)
            stale = stale_comparison(root) if (root.get("status") or {}).get("sync") else "not compared yet"
            if stale:
                pending = f"root app {self.root_key[1]}: {stale}; its child list may be incomplete"
        else:
            members = {key: 0 for key in index}
        for key in self.expected:
            members.setdefault(tuple(key), 0)
        for key in list(members):
            if key in index:
                members[key] = wave_of(index[key])
        return members, pending

    def _judge(self, key: AppKey, wave: int, index: Index, root_source: Tuple[str, str, str],
               seen: Set[AppKey], reads: Optional[Set[AppKey]] = None) -> AppState:
        """One app's verdict; ``reads`` collects every app it looked at (itself, nested children)."""
        obj = index.get(key)
        if reads is not None:
            reads.add(key)
        kids = None
        if obj is not None and key not in seen:
            child_keys = child_app_keys(obj)
            if child_keys:
                seen = seen | {key}
                kids = [self._judge(ck, cw if ck not in index else wave_of(index[ck]), index,
                                    root_source, seen, reads) for ck, cw in child_keys if ck not in seen]
        return evaluate(obj, key, wave, expected_revision=self.target_revision,
                        root_source=root_source, children=kids)

    def _judge_member(self, key: AppKey, wave: int, index: Index, now: float) -> None:
        """Judge one child of the root, record its state and which apps its verdict depends on."""
        reads: Set[AppKey] = set()
        state = self._judge(key, wave, index, self._root_source, set(), reads)
        for old in self._reads.get(key, set()) - reads:
            readers = self._readers.get(old)
            if readers is not None:
                readers.discard(key)
                if not readers:
                    del self._readers[old]
        for new in reads:
            self._readers.setdefault(new, set()).add(key)
        self._reads[key] = reads
        self._track_state(key, state, index.get(key), now)
        self.states[key] = state
        self._file(key, wave, state)

    def _file(self, key: AppKey, wave: int, state: AppState) -> None:
        """Keep the per-wave sets of not-ready and failing members current."""
        for table, inside in ((self._not_ok, not state.ok), (self._errors, state.verdict == ERROR)):
            keys = table.setdefault(wave, set())
            if inside:
                keys.add(key)
            else:
                keys.discard(key)

    def _refile_all(self) -> None:
        """Rebuild the per-wave sets from every member (after a full pass)."""
        self._not_ok, self._errors, self._bad_open, self._bad_until = {}, {}, {}, {}
        for key, wave in self._members.items():
            self._file(key, wave, self.states[key])
            for iv in self._bad.get(key, []):
                self._note_interval(key, wave, iv)

    def _note_interval(self, key: AppKey, wave: Optional[int], iv: _BadInterval) -> None:
        if wave is None:
            return
        if iv.end is None:
            self._bad_open.setdefault(wave, set()).add(key)
            return
        self._bad_open.setdefault(wave, set()).discard(key)
        if wave not in self._bad_until or self._bad_until[wave] < iv.end:
            self._bad_until[wave] = iv.end

    def _forget_member(self, key: AppKey) -> None:
        for old in self._reads.pop(key, set()):
            readers = self._readers.get(old)
            if readers is not None:
                readers.discard(key)
                if not readers:
                    del self._readers[old]

    def _membership(self, key: AppKey, index: Index) -> Optional[int]:
        """The wave of ``key`` if it is a child now (by the last root seen), else None."""
        obj = index.get(key)
        if self.root_key:
            member = key in self._root_children or key in self._expected_keys or (
                obj is not None and key != self.root_key and tracks_to(obj, self.root_key))
            if not member:
                return None
        elif obj is None and key not in self._expected_keys:
            return None
        if obj is not None:
            return wave_of(obj)
        return self._root_children.get(key, 0)

    # -- the step -------------------------------------------------------------
    def update(self, index: Index, changed: Optional[Iterable[AppKey]] = None) -> Outcome:
        """Judge the latest objects and say what to do next.

        ``changed``: the apps whose object changed (or vanished) since the previous
        call; None when unknown (first call, after a re-LIST): everything is judged again.
        """
        now = self.clock()
        if changed is not None and self._synced:
            keys = set(changed)
            if self.root_key not in keys and all(
                    self._membership(k, index) == self._members.get(k) for k in keys):
                return self._update_some(keys, index, now)
        return self._update_all(index, now)

    def _update_some(self, keys: Set[AppKey], index: Index, now: float) -> Outcome:
        """Re-judge only the changed apps and the members whose verdict reads them."""
        todo: Set[AppKey] = set()
        for key in keys:
            if key in self._members:
                todo.add(key)
            todo.update(self._readers.get(key, ()))
        for key in todo:
            self._judge_member(key, self._members[key], index, now)
        self._check_ordering(self._members, todo)
        return self._advance(index, now, self._pending)

    def _update_all(self, index: Index, now: float) -> Outcome:
        """Re-discover the children and judge every one of them."""
        self._synced = False
        self._root_children = {}
        if self.root_key and self.root_key in index:
            self._root_children = dict(child_app_keys(index[self.root_key]))
        members, pending = self.discover(index)
        if self.root_key and self.root_key not in index:
            return Outcome("failed", pending or "root app missing")
        root_source = ("", "", "")
        if self.root_key and self.check_root_revision:
            root_source = target_revision_of(index[self.root_key])
        if self.root_key:
            root_errors = error_conditions(index[self.root_key])
            if root_errors:
                text = "; ".join(f"{c.get('type')}: {c.get('message', '')}" for c in root_errors)
                message = f"root app {self.root_key[1]} cannot list its children: {text}"
                if self.hard_refresh and self.root_key not in self.refreshed:
                    return Outcome("waiting", message, refresh=[self.root_key])
                if self.hard_refresh and not self._refresh_processed(self.root_key, index[self.root_key]):
                    return Outcome("waiting", message)
                return Outcome("failed", message)
        if self.root_key and not pending and not members:
            retrying = transient_conditions(index[self.root_key])
            if retrying:
                pending = f"root app {self.root_key[1]}: Argo CD retries: " + "; ".join(retrying)
        self.root_note = pending or ""
        self._root_source = root_source
        self._pending = pending

        for key in [k for k in self._reads if k not in members]:
            self._forget_member(key)
        self._members = dict(members)
        for key, wave in members.items():
            self._judge_member(key, wave, index, now)
        for key in [k for k in self.states if k not in members]:
            del self.states[key]
        self._refile_all()
        self._place_in_waves(members, now)
        self._check_ordering(members)
        self._synced = True
        return self._advance(index, now, pending)

    def _track_state(self, key: AppKey, state: AppState, obj: Optional[Mapping], now: float) -> None:
        intervals = self._bad.setdefault(key, [])
        open_iv = intervals[-1] if intervals and intervals[-1].end is None else None
        label = f"{state.sync}/{state.health}" + (f" ({state.conditions[0].split(':')[0]})" if state.conditions else "")
        if state.ok:
            if key not in self.ok_at or (open_iv is not None):
                self.ok_at[key] = now - self.start
            if open_iv is not None:
                open_iv.end = self.wall()
                self._note_interval(key, self._members.get(key), open_iv)
            return
        self.ok_at.pop(key, None)
        if open_iv is None:
            intervals.append(_BadInterval(self._bad_since(obj, state), None, label))
            self._note_interval(key, self._members.get(key), intervals[-1])
        else:
            open_iv.state = label
        state.bad_since = intervals[-1].start

    def _bad_since(self, obj: Optional[Mapping], state: AppState) -> datetime:
        """Earliest moment the app is known to have been in its current not-ready state."""
        candidates: List[datetime] = [self.wall()]
        if obj is not None:
            status = obj.get("status") or {}
            if not status:
                created = parse_time(meta(obj).get("creationTimestamp"))
                if created:
                    candidates.append(created)
            health = status.get("health") or {}
            if health.get("status") and health.get("status") != "Healthy":
                t = parse_time(health.get("lastTransitionTime"))
                if t:
                    candidates.append(t)
            for cond in error_conditions(obj):
                t = parse_time(cond.get("lastTransitionTime"))
                if t:
                    candidates.append(t)
        return min(candidates)

    def _place_in_waves(self, members: Mapping[AppKey, int], now: float) -> None:
        grouped = dict(group_by_wave(members))
        for wave, keys in grouped.items():
            rec = self.waves.setdefault(wave, WaveRecord(wave))
            if rec.completed is not None and any(k not in rec.members and not self.states[k].ok for k in keys):
                rec.completed, rec.detected_at = None, None   # a new, unready member re-opens it
            rec.members = keys
        for wave in [w for w in self.waves if w not in grouped]:
            del self.waves[wave]

    def _check_ordering(self, members: Mapping[AppKey, int], candidates: Optional[Set[AppKey]] = None) -> None:
        """A later wave synced while an earlier one was not ready: Argo CD did not gate.

        ``candidates``: the apps judged again (only their state can bring new evidence).
        """
        for later, lwave in members.items() if candidates is None else (
                (k, members[k]) for k in sorted(candidates, key=lambda k: (k[1], k[0]))):
            st = self.states[later]
            # evidence .. latest: when the later app synced. Argo CD's operation start times are whole
            # seconds, so that operation began somewhere in [startedAt, startedAt + 1 s): only an earlier
            # app still not ready at the end of that second proves the order was broken (the watch saw
            # the earlier app turn ready at millisecond precision).
            evidence: Optional[datetime] = None
            latest: Optional[datetime] = None
            if st.op_started and st.op_started != self._seen_op.get(later):
                evidence, latest = st.op_started, st.op_started + TIMESTAMP_RESOLUTION
            elif st.sync == "Synced" and self._seen_sync.get(later) not in (None, "Synced"):
                evidence = latest = self.wall()
            self._seen_op[later] = st.op_started
            self._seen_sync[later] = st.sync
            if evidence is None:
                continue
            for earlier, ewave in self._earlier_suspects(lwave, evidence):
                if (later, earlier) in self._violation_pairs:
                    continue
                for iv in self._bad.get(earlier, []):
                    if iv.start <= evidence and (iv.end is None or latest < iv.end):
                        self._violation_pairs.add((later, earlier))
                        self.violations.append(
                            f"ordering broken: wave {lwave} app {display_name(later, self.namespace)} synced at "
                            f"{iso(evidence)} while wave {ewave} app {display_name(earlier, self.namespace)} "
                            f"was {iv.state}")
                        break

    def _earlier_suspects(self, lwave: int, evidence: datetime) -> Iterable[Tuple[AppKey, int]]:
        """Members of waves before ``lwave`` that may have been not ready at ``evidence``.

        A wave none of whose members is in a not-ready interval now, and whose intervals all
        ended by ``evidence``, is skipped whole.
        """
        for ewave in sorted(self.waves):
            if ewave >= lwave:
                break
            until = self._bad_until.get(ewave)
            if not self._bad_open.get(ewave) and (until is None or until <= evidence):
                continue
            for earlier in self.waves[ewave].members:
                yield earlier, ewave

    def _advance(self, index: Index, now: float, pending: Optional[str]) -> Outcome:
        refresh: List[AppKey] = []
        for wave in sorted(self.waves):
            rec = self.waves[wave]
            if rec.started is None:
                rec.started = now
            failing = [self.states[k] for k in _ordered(self._errors.get(wave, ()))]
            give_up = []
            for s in failing:
                if self.hard_refresh and s.exists:
                    obj = index[s.key]
                    if s.key not in self.refreshed:
                        refresh.append(s.key)
                        continue
                    if not self._refresh_processed(s.key, obj):
                        continue   # Argo CD has not processed our refresh yet: keep waiting
                give_up.append(s)
            if give_up:
                return Outcome("failed", _fail_text(wave, give_up, self.namespace), wave,
                               [s.key for s in give_up])
            if rec.completed is None:
                waiting = self._not_ok.get(wave)
                if not waiting:
                    rec.completed = max([self.ok_at.get(k, now - self.start) for k in rec.members] + [0.0]) + self.start
                    rec.completed = min(rec.completed, now)
                    rec.detected_at = self.wall()
                    continue
                return Outcome("waiting", failing_wave=wave, refresh=refresh, waiting_for=set(waiting),
                               namespace=self.namespace)
        if pending:
            return Outcome("waiting", pending, refresh=refresh)
        return Outcome("done", "all waves are Synced and Healthy", refresh=refresh)

    def refresh_sent(self, key: AppKey, resource_version: str) -> None:
        """Record the hard refresh the driver patched onto ``key``."""
        self.refreshed[key] = resource_version
        self._refresh_seen.discard(key)

    def _refresh_processed(self, key: AppKey, obj: Mapping) -> bool:
        """True once Argo CD has removed our refresh annotation again."""
        annotated = bool((meta(obj).get("annotations") or {}).get(REFRESH_ANNOTATION))
        rv = meta(obj).get("resourceVersion", "")
        if annotated:
            self._refresh_seen.add(key)
            return False
        if key in self._refresh_seen:
            return True
        try:
            return int(rv) > int(self.refreshed[key])
        except (TypeError, ValueError):
            return False

    def timed_out(self) -> Outcome:
        """The outcome once the wave's or the overall deadline has passed."""
        cur = self.current_wave()
        overall = self.elapsed() >= self.timeout
        limit = f"overall timeout {self.timeout:.0f}s" if overall else f"wave timeout {self.wave_timeout:.0f}s"
        if cur is None:
            return Outcome("failed", f"{limit} reached: {self.root_note or 'children still unknown'}")
        waiting = [self.states[k] for k in cur.members if not self.states[k].ok]
        return Outcome("failed", f"{limit} reached; " + _fail_text(cur.wave, waiting, self.namespace),
                       cur.wave, [s.key for s in waiting])


def _ordered(keys: Iterable[AppKey]) -> List[AppKey]:
    """Keys in the order of a wave's members (by name, then namespace)."""
    return sorted(keys, key=lambda k: (k[1], k[0]))


def _fail_text(wave: int, states: List[AppState], home_ns: str) -> str:
    parts = []
    for s in states:
        op = f", operation {s.operation}" if s.operation else ""
        parts.append(f"wave {wave}, app {display_name(s.key, home_ns)}: sync {s.sync}, health {s.health}{op}"
                     + (f" - {s.message}" if s.message else ""))
    return "; ".join(parts)
