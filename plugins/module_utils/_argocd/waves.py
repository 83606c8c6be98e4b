# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The wave-by-wave verdict over a changing set of Applications and ApplicationSets.

``WaveTracker.update(apps, changed, sets, sets_changed)`` takes the latest copy
of every Application and ApplicationSet (from a LIST plus WATCH events per
kind) and the keys that changed since the last call, and moves through the
waves lowest first.  Its parts, each in a module of its own:

- ``discovery``: which apps and ApplicationSets are members, in which wave;
- ``applications`` / ``appsets``: the verdict on one object;
- ``ordering``: the not-ready intervals and the ``ordering broken`` audit;
- ``RefreshBook`` (here): the hard refreshes sent and whether Argo CD took them.

Without ``changed`` (the first call, after a re-LIST) it re-discovers the
members and judges every one; with it, only the changed objects (and the
members whose verdict reads them) are judged again, so a watch event costs the
same at 40 or 1,000 apps.  A change that can alter the members or their waves
(the root itself, an app that appears, disappears or moves, an ApplicationSet
whose generated apps change) falls back to the full pass.  It does no I/O and
reads time only from the clocks it is given, so the module and unit tests with
a fake clock drive it the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    ERROR,
    REFRESH_ANNOTATION,
    AppKey,
    AppState,
    child_app_keys,
    child_set_keys,
    display_name,
    error_conditions,
    evaluate,
    is_set,
    meta,
    parse_time,
    set_key,
    target_revision_of,
    transient_conditions,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.appsets import evaluate_set, spec_written_at
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.discovery import (
    ChildDiscovery,
    Children,
    apps_by_owner,
    generated_by,
    set_of,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.ordering import (  # noqa: F401 (iso re-exported)
    OrderingAudit,
    iso,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline

Index = Mapping[AppKey, Mapping]
EMPTY: Index = {}


def group_by_wave(members: Mapping[AppKey, int]) -> List[Tuple[int, List[AppKey]]]:
    """``[(wave, [keys sorted by name]), ...]`` lowest wave first."""
    waves: Dict[int, List[AppKey]] = {}
    for key, wave in members.items():
        waves.setdefault(wave, []).append(key)
    return [(w, _ordered(waves[w])) for w in sorted(waves)]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class WaveRecord:
    """Progress of one wave."""

    wave: int
    members: List[AppKey] = field(default_factory=list)
    started: Optional[float] = None      # monotonic, when it became the wave being waited on
    completed: Optional[float] = None    # monotonic, when all members passed
    detected_at: Optional[datetime] = None
    deadline: Optional[Deadline] = None  # the wave timeout, from ``started``
    restored: bool = False               # taken over from an earlier run (members not known yet)


class Outcome:
    """What the driver does next.

    A "waiting" outcome names the members of the wave that are not ready yet; they are sorted
    and named only when asked for (``message``, ``failing_apps``), since a watch event
    produces an outcome that is usually replaced by the next one unread.
    """

    def __init__(self, phase: str, message: str = "", failing_wave: Optional[int] = None,
                 failing_apps: Optional[List[AppKey]] = None, refresh: Optional[List[AppKey]] = None, *,
                 waiting_for: Optional[Set[AppKey]] = None, states: Optional[Mapping[AppKey, AppState]] = None,
                 namespace: str = ""):
        self.phase = phase                   # "waiting" | "done" | "failed"
        self.failing_wave = failing_wave
        self.refresh: List[AppKey] = list(refresh or [])
        self._message = message
        self._failing: List[AppKey] = list(failing_apps or [])
        self._waiting_for = waiting_for      # a copy of the wave's not-ready members, named on first use
        self._states = states or {}
        self._namespace = namespace

    def _resolve(self) -> None:
        if self._waiting_for is not None:
            self._failing = _ordered(self._waiting_for)
            self._message = f"wave {self.failing_wave}: waiting for " + ", ".join(
                member_name(k, self._states, self._namespace) for k in self._failing)
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


class RefreshBook:
    """Hard refreshes the driver sent, and whether Argo CD has processed each one."""

    def __init__(self) -> None:
        self.sent: Dict[AppKey, str] = {}    # key -> resourceVersion of our patch
        self._seen: Set[AppKey] = set()

    def record(self, key: AppKey, resource_version: str) -> None:
        self.sent[key] = resource_version
        self._seen.discard(key)

    def processed(self, key: AppKey, obj: Mapping) -> bool:
        """True once Argo CD has removed our refresh annotation again."""
        annotated = bool((meta(obj).get("annotations") or {}).get(REFRESH_ANNOTATION))
        rv = meta(obj).get("resourceVersion", "")
        if annotated:
            self._seen.add(key)
            return False
        if key in self._seen:
            return True
        try:
            return int(rv) > int(self.sent[key])
        except (TypeError, ValueError):
            return False


class WaveTracker:
    """Discover members, judge them, and walk the waves in order."""

    def __init__(self, namespace: str, root: Optional[str] = None, *,
                 expected_apps: Tuple[str, ...] = (), target_revision: Optional[str] = None,
                 wave_timeout: float = 600, timeout: float = 1800,
                 hard_refresh_on_error: bool = False, check_root_revision: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = _utcnow):
        self.namespace = namespace
        self.root_key: Optional[AppKey] = (namespace, root) if root else None
        expected = [(namespace, n) if "/" not in n else tuple(n.split("/", 1)) for n in expected_apps]
        self.discovery = ChildDiscovery(namespace, self.root_key, expected)  # type: ignore[arg-type]
        self.target_revision = target_revision
        self.wave_timeout = float(wave_timeout)
        self.timeout = float(timeout)
        self.hard_refresh = hard_refresh_on_error
        self.check_root_revision = check_root_revision
        self.clock = clock
        self.wall = wall_clock
        self.deadline = Deadline(timeout, clock)
        self.start = self.deadline.start
        self.started_at = wall_clock()
        self.states: Dict[AppKey, AppState] = {}
        self.waves: Dict[int, WaveRecord] = {}
        self.ok_at: Dict[AppKey, float] = {}
        self.refreshes = RefreshBook()
        self.audit = OrderingAudit(namespace, wall_clock)
        self.notes: List[str] = []               # warnings about the tree (two owners, template waves)
        self.wants_sets = False                  # an ApplicationSet is a member or a nested parent's child
        self.root_note = ""
        # State of the last full pass, for incremental updates.
        self._synced = False
        self._children = Children()
        self._root_source: Tuple[str, str, str] = ("", "", "")
        self._seen_sets: Set[AppKey] = set()                  # ApplicationSets seen at least once
        self._reads: Dict[AppKey, Set[AppKey]] = {}           # member -> objects its verdict read
        self._readers: Dict[AppKey, Set[AppKey]] = {}         # object -> members whose verdict read it
        self._not_ok: Dict[int, Set[AppKey]] = {}             # per wave: members not ready
        self._errors: Dict[int, Set[AppKey]] = {}             # per wave: members failing
        self._gone: Dict[int, Set[AppKey]] = {}               # per wave: members that do not exist

    # -- compatibility views ---------------------------------------------------
    @property
    def violations(self) -> List[str]:
        return self.audit.violations

    @property
    def refreshed(self) -> Dict[AppKey, str]:
        return self.refreshes.sent

    @property
    def owners(self) -> Mapping[AppKey, AppKey]:
        return self._children.owners

    # -- time ---------------------------------------------------------------
    def elapsed(self) -> float:
        return self.deadline.elapsed()

    def current_wave(self) -> Optional[WaveRecord]:
        for wave in sorted(self.waves):
            if self.waves[wave].completed is None:
                return self.waves[wave]
        return None

    def remaining(self) -> float:
        """Seconds until the first of the overall and the current wave's deadline."""
        cur = self.current_wave()
        if cur is not None and cur.deadline is not None:
            return Deadline.earliest(self.deadline, cur.deadline)
        return self.deadline.remaining()

    # -- judging --------------------------------------------------------------
    def _judge(self, key: AppKey, wave: int, apps: Index, sets: Index, seen: Set[AppKey],
               reads: Set[AppKey], nested: bool = False) -> AppState:
        """One member's verdict; ``reads`` collects every object it looked at."""
        reads.add(key)
        if is_set(key):
            self.wants_sets = True
            obj = set_of(sets, key)
            gen = generated_by(key, sets, apps_by_owner(apps)) if nested else self._children.generated.get(
                key, generated_by(key, sets, EMPTY))
            reads.update(gen)
            state = evaluate_set(obj, key, wave, lambda k: k in apps, seen_before=key in self._seen_sets)
            if obj is not None:
                self._seen_sets.add(key)
            if nested:   # inside a nested parent the set's apps count as the parent's children
                state.reasons = state.reasons or []
                kids = [self._judge(k, wave, apps, sets, seen, reads, True) for k in sorted(gen) if k not in seen]
                _fold_children(state, kids)
            return state
        obj = apps.get(key)
        kids = None
        if obj is not None and key not in seen:
            entries = child_app_keys(obj) + child_set_keys(obj)
            if entries:
                seen = seen | {key}
                kids = [self._judge(ck, cw, apps, sets, seen, reads, True) for ck, cw in entries if ck not in seen]
        state = evaluate(obj, key, wave, expected_revision=self.target_revision,
                         root_source=self._root_source, children=kids)
        owner = self._children.owners.get(key)
        if owner is not None:
            state.owner = owner[1]
        return state

    def _judge_member(self, key: AppKey, wave: int, apps: Index, sets: Index, now: float) -> None:
        """Judge one member, record its state and which objects its verdict depends on."""
        reads: Set[AppKey] = set()
        state = self._judge(key, wave, apps, sets, set(), reads)
        self._forget_reads(key, keep=reads)
        for new in reads:
            self._readers.setdefault(new, set()).add(key)
        self._reads[key] = reads
        obj = set_of(sets, key) if is_set(key) else apps.get(key)
        owner = self._children.owners.get(key)
        generated = owner is not None and is_set(owner) and key not in self._children.root_children
        floor = spec_written_at(set_of(sets, owner)) if generated and owner is not None else None
        closed = self.audit.track(key, wave, state, obj, floor)
        if state.ok:
            if key not in self.ok_at or closed:
                self.ok_at[key] = now - self.start
        else:
            self.ok_at.pop(key, None)
        self.states[key] = state
        self._file(key, wave, state)

    def _forget_reads(self, key: AppKey, keep: Iterable[AppKey] = ()) -> None:
        for old in self._reads.get(key, set()) - set(keep):
            readers = self._readers.get(old)
            if readers is not None:
                readers.discard(key)
                if not readers:
                    del self._readers[old]
        if not keep:
            self._reads.pop(key, None)

    def _file(self, key: AppKey, wave: int, state: AppState) -> None:
        """Keep the per-wave sets of not-ready and failing members current."""
        for table, inside in ((self._not_ok, not state.ok), (self._errors, state.verdict == ERROR),
                              (self._gone, not state.exists)):
            keys = table.setdefault(wave, set())
            if inside:
                keys.add(key)
            else:
                keys.discard(key)

    # -- the step -------------------------------------------------------------
    def update(self, index: Index, changed: Optional[Iterable[AppKey]] = None,
               sets: Optional[Index] = None, sets_changed: Optional[Iterable[AppKey]] = (),
               ) -> Outcome:
        """Judge the latest objects and say what to do next.

        ``changed``: the Applications whose object changed (or vanished) since the previous call;
        ``sets_changed``: the same for ApplicationSets (``(namespace, name)`` keys of ``sets``).
        None when unknown (first call, after a re-LIST): everything is judged again.
        """
        sets = sets if sets is not None else EMPTY
        now = self.clock()
        if changed is not None and sets_changed is not None and self._synced:
            keys = set(changed)
            set_keys = {set_key(*k[:2]) for k in sets_changed}
            last = self._children
            if self.root_key not in keys and all(
                    self.discovery.membership(k, index, sets, last) == (last.members.get(k), last.owners.get(k))
                    for k in keys) and not any(
                    self.discovery.set_changed_shape(k, index, sets, last) for k in set_keys):
                return self._update_some(keys | set_keys, index, sets, now)
        return self._update_all(index, sets, now)

    def _update_some(self, keys: Set[AppKey], apps: Index, sets: Index, now: float) -> Outcome:
        """Re-judge only the changed objects and the members whose verdict reads them."""
        todo: Set[AppKey] = set()
        for key in keys:
            if key in self._children.members:
                todo.add(key)
            todo.update(self._readers.get(key, ()))
        members = self._children.members
        for key in todo:
            self._judge_member(key, members[key], apps, sets, now)
        self.audit.check(members, self.states, self._wave_members(), todo)
        return self._advance(apps, sets, now, self._children.pending)

    def _root_failure(self, apps: Index) -> Optional[Outcome]:
        """The root cannot list its children (error condition): wait for a hard refresh or fail."""
        if self.root_key is None:
            return None
        root = apps[self.root_key]
        root_errors = error_conditions(root)
        if not root_errors:
            return None
        text = "; ".join(f"{c.get('type')}: {c.get('message', '')}" for c in root_errors)
        message = f"root app {self.root_key[1]} cannot list its children: {text}"
        if self.hard_refresh and self.root_key not in self.refreshes.sent:
            return Outcome("waiting", message, refresh=[self.root_key])
        if self.hard_refresh and not self.refreshes.processed(self.root_key, root):
            return Outcome("waiting", message)
        return Outcome("failed", message)

    def _update_all(self, apps: Index, sets: Index, now: float) -> Outcome:
        """Re-discover the members and judge every one of them."""
        self._synced = False
        found = self.discovery.discover(apps, sets)
        if self.root_key and self.root_key not in apps:
            return Outcome("failed", found.pending or "root app missing")
        root_source = ("", "", "")
        if self.root_key and self.check_root_revision:
            root_source = target_revision_of(apps[self.root_key])
        if self.root_key:
            failure = self._root_failure(apps)
            if failure is not None:
                return failure
            if not found.pending and not found.members:
                retrying = transient_conditions(apps[self.root_key])
                if retrying:
                    found.pending = f"root app {self.root_key[1]}: Argo CD retries: " + "; ".join(retrying)
        self.root_note = found.pending or ""
        self._root_source = root_source
        for note in found.notes:
            if note not in self.notes:
                self.notes.append(note)
        self._children = found
        self.wants_sets = any(is_set(k) for k in found.members)
        for key in [k for k in self._reads if k not in found.members]:
            self._forget_reads(key)
        for key, wave in found.members.items():
            self._judge_member(key, wave, apps, sets, now)
        for key in [k for k in self.states if k not in found.members]:
            del self.states[key]
        self._not_ok, self._errors, self._gone = {}, {}, {}
        for key, wave in found.members.items():
            self._file(key, wave, self.states[key])
        self.audit.refile(found.members)
        self._place_in_waves(found.members, now)
        self.audit.check(found.members, self.states, self._wave_members())
        self._synced = True
        return self._advance(apps, sets, now, found.pending)

    def _wave_members(self) -> Dict[int, List[AppKey]]:
        return {w: rec.members for w, rec in self.waves.items()}

    def _place_in_waves(self, members: Mapping[AppKey, int], now: float) -> None:
        grouped = dict(group_by_wave(members))
        for wave, keys in grouped.items():
            rec = self.waves.setdefault(wave, WaveRecord(wave))
            if rec.completed is not None and not rec.restored and any(
                    k not in rec.members and not self.states[k].ok for k in keys):
                rec.completed, rec.detected_at = None, None   # a new, unready member re-opens it
            rec.members, rec.restored = keys, False
        for wave in [w for w in self.waves if w not in grouped]:
            del self.waves[wave]

    def _advance(self, apps: Index, sets: Index, now: float, pending: Optional[str]) -> Outcome:
        refresh: List[AppKey] = []
        for wave in sorted(self.waves):
            rec = self.waves[wave]
            if rec.started is None or (rec.completed is not None and self._gone.get(wave)):
                # the wave is waited on from now (again, when a member vanished after it was done)
                rec.completed, rec.detected_at = None, None
                rec.started, rec.deadline = now, Deadline(self.wave_timeout, self.clock)
            failing = [self.states[k] for k in _ordered(self._errors.get(wave, ()))]
            give_up = []
            for s in failing:
                if self.hard_refresh and s.exists and not is_set(s.key):
                    if s.key not in self.refreshes.sent:
                        refresh.append(s.key)
                        continue
                    if not self.refreshes.processed(s.key, apps[s.key]):
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
                               states=self.states, namespace=self.namespace)
        if pending:
            return Outcome("waiting", pending, refresh=refresh)
        return Outcome("done", "all waves are Synced and Healthy", refresh=refresh)

    # -- slices: one verification carried over several module runs --------------------------------
    def progress(self) -> Dict[str, object]:
        """What a later run needs to go on where this one stopped (``resume``): times, not objects."""
        def since(t: Optional[float]) -> Optional[float]:
            return None if t is None else round(t - self.start, 3)
        return {
            "started_at": iso(self.started_at),
            "waves": {str(w): {"started": since(r.started), "completed": since(r.completed),
                               "detected_at": iso(r.detected_at)} for w, r in sorted(self.waves.items())},
            "ok_at": {"/".join(k): round(v, 3) for k, v in sorted(self.ok_at.items())},
            "refreshed": {"/".join(k): rv for k, rv in sorted(self.refreshes.sent.items())},
            "violations": list(self.audit.violations),
            "notes": list(self.notes),
        }

    def resume(self, progress: Mapping[str, object]) -> None:
        """Go on from ``progress`` (an earlier run's): the same overall and per-wave clocks, times kept."""
        started = parse_time(progress.get("started_at"))
        if started is None:
            raise ValueError("progress.started_at is missing or not a time")
        elapsed = max(0.0, (self.wall() - started).total_seconds())
        self.start = self.clock() - elapsed
        self.started_at = started
        self.deadline = Deadline.since(self.start, self.timeout, self.clock)
        for wave, rec in dict(progress.get("waves") or {}).items():  # type: ignore[call-overload]
            record = self.waves.setdefault(int(wave), WaveRecord(int(wave), restored=True))
            if rec.get("started") is not None:
                record.started = self.start + float(rec["started"])
                record.deadline = Deadline.since(record.started, self.wave_timeout, self.clock)
            if rec.get("completed") is not None:
                record.completed = self.start + float(rec["completed"])
                record.detected_at = parse_time(rec.get("detected_at"))
        self.ok_at = {_key(k): float(v) for k, v in dict(progress.get("ok_at") or {}).items()}  # type: ignore
        self.refreshes.sent = {_key(k): str(v) for k, v in dict(progress.get("refreshed") or {}).items()}  # type: ignore
        self.audit.violations[:0] = [str(v) for v in progress.get("violations") or []]  # type: ignore[union-attr]
        self.notes[:0] = [str(n) for n in progress.get("notes") or []]  # type: ignore[union-attr]

    def refresh_sent(self, key: AppKey, resource_version: str) -> None:
        """Record the hard refresh the driver patched onto ``key``."""
        self.refreshes.record(key, resource_version)

    def timed_out(self) -> Outcome:
        """The outcome once the wave's or the overall deadline has passed."""
        cur = self.current_wave()
        overall = self.deadline.expired()
        limit = f"overall timeout {self.timeout:.0f}s" if overall else f"wave timeout {self.wave_timeout:.0f}s"
        if cur is None:
            return Outcome("failed", f"{limit} reached: {self.root_note or 'children still unknown'}")
        waiting = [self.states[k] for k in cur.members if not self.states[k].ok]
        return Outcome("failed", f"{limit} reached; " + _fail_text(cur.wave, waiting, self.namespace),
                       cur.wave, [s.key for s in waiting])


def _key(text: str) -> AppKey:
    """``namespace/name`` (``namespace/name/ApplicationSet`` for a set) back to a key."""
    return tuple(text.split("/"))


def _fold_children(state: AppState, kids: List[AppState]) -> None:
    """A nested ApplicationSet's verdict includes its generated apps' verdicts."""
    from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import OK, WAIT
    for kid in kids:
        if kid.verdict == ERROR:
            state.verdict, state.health = ERROR, "Degraded"
            state.reasons.append(f"generated app {kid.key[1]}: {kid.message}")
        elif kid.verdict == WAIT:
            if state.verdict == OK:
                state.verdict, state.health = WAIT, "Progressing"
            state.reasons.append(f"generated app {kid.key[1]}: {kid.message}")


def member_name(key: AppKey, states: Mapping[AppKey, AppState], home_ns: str) -> str:
    """``NAME``, ``NAME (generated by SET)`` or ``applicationset NAME`` for messages."""
    name = display_name(key, home_ns)
    if is_set(key):
        return f"applicationset {name}"
    state = states.get(key)
    if state is not None and state.owner:
        return f"{name} (generated by {state.owner})"
    return name


def _ordered(keys: Iterable[AppKey]) -> List[AppKey]:
    """Keys in the order of a wave's members (by name, then namespace; an ApplicationSet first)."""
    return sorted(keys, key=lambda k: (k[1], k[0], len(k)))


def _fail_text(wave: int, states: List[AppState], home_ns: str) -> str:
    parts = []
    for s in states:
        name = display_name(s.key, home_ns)
        if is_set(s.key):
            why = f" - {s.message}" if s.message else ""
            parts.append(f"wave {wave}, applicationset {name}: {s.sync}, health {s.health}{why}")
            continue
        op = f", operation {s.operation}" if s.operation else ""
        gen = f" (generated by {s.owner})" if s.owner else ""
        why = f" - {s.message}" if s.message else ""
        parts.append(f"wave {wave}, app {name}{gen}: sync {s.sync}, health {s.health}{op}{why}")
    return "; ".join(parts)
