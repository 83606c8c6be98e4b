# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The ordering audit: did Argo CD sync a later wave while an earlier one was not ready?

For every member it keeps the intervals in which it was not ready (from the
best evidence of when that started: health transition, error condition,
creation), and per wave which members are in such an interval now and when
the last one closed, so that judging one changed app costs O(1), not O(apps).
When an app of a later wave shows a new sync (a new operation start, or a
change to ``Synced``), every earlier member that was not ready at that moment
is reported as one ``ordering broken`` line.  No I/O; times come from the
wall clock it is given.

An Application an ApplicationSet generates may appear only after a later
wave has synced: Argo CD counts the set Healthy as soon as it is applied and
moves on while the applicationset-controller is still creating its apps.
Such an app was expected, and missing, since its set declared it
(``floor``): its first sighting opens (or records, when it is already ready)
an interval from that moment, and the syncs of later waves seen before are
checked against it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    AppKey,
    AppState,
    display_name,
    error_conditions,
    meta,
    parse_time,
)

# Argo CD writes operationState.startedAt with whole seconds.
TIMESTAMP_RESOLUTION = timedelta(seconds=1)


def iso(value: Optional[datetime]) -> Optional[str]:
    """RFC 3339 in UTC, with milliseconds when the time has a fraction."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond // 1000:03d}Z" if value.microsecond else "Z")


@dataclass
class BadInterval:
    """A stretch of time in which a member was not ready."""

    start: datetime
    end: Optional[datetime]
    state: str


def _label(state: AppState) -> str:
    return f"{state.sync}/{state.health}" + (f" ({state.conditions[0].split(':')[0]})" if state.conditions else "")


def bad_since(obj: Optional[Mapping], now: datetime) -> datetime:
    """Earliest moment an object is known to have been in its current not-ready state."""
    candidates: List[datetime] = [now]
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


class OrderingAudit:
    """Not-ready intervals per member and the ``ordering broken`` lines they prove."""

    def __init__(self, namespace: str, wall_clock: Callable[[], datetime]):
        self.namespace = namespace
        self.wall = wall_clock
        self.violations: List[str] = []
        self._pairs: Set[Tuple[AppKey, AppKey]] = set()
        self._bad: Dict[AppKey, List[BadInterval]] = {}
        self._seen_op: Dict[AppKey, Optional[datetime]] = {}
        self._seen_sync: Dict[AppKey, str] = {}
        self._bad_open: Dict[int, Set[AppKey]] = {}
        self._bad_until: Dict[int, datetime] = {}
        self._evidence: Dict[AppKey, Tuple[datetime, datetime]] = {}   # later app -> its last sync seen
        self._retro: Dict[AppKey, Optional[int]] = {}                   # backdated members to re-check

    def track(self, key: AppKey, wave: Optional[int], state: AppState, obj: Optional[Mapping],
              floor: Optional[datetime] = None) -> bool:
        """Record the member's latest state; True when a not-ready interval just closed.

        ``floor``: since when the member was expected (a generated app: since its set declared it);
        a member first seen later than that was missing from then on.
        """
        now = self.wall()
        first = key not in self._bad
        intervals = self._bad.setdefault(key, [])
        if first and floor is not None and floor < now:
            self._backdate(key, wave, state, obj, floor, now)
        open_iv = intervals[-1] if intervals and intervals[-1].end is None else None
        if state.ok:
            if open_iv is None:
                return False
            open_iv.end = now
            self._note(key, wave, open_iv)
            return True
        if open_iv is None:
            start = bad_since(obj, now)
            if floor is not None and obj is None:     # listed by its set, not created yet
                start = min(start, floor)
            intervals.append(BadInterval(start, None, _label(state)))
            self._note(key, wave, intervals[-1])
            if first and start < now:
                self._retro[key] = wave
        else:
            open_iv.state = _label(state)
        state.bad_since = intervals[-1].start
        return False

    def _backdate(self, key: AppKey, wave: Optional[int], state: AppState, obj: Optional[Mapping],
                  floor: datetime, now: datetime) -> None:
        """A generated app first seen after its set declared it: missing (then not ready) since ``floor``."""
        created = parse_time(meta(obj).get("creationTimestamp")) if obj is not None else None
        if obj is not None and (created is None or created <= floor):
            return
        end: Optional[datetime] = min(created, now) if created is not None else None
        label = "Missing (not generated yet)"
        if obj is not None and state.ok:
            # ready now: it was not before its health last turned (Healthy) after its creation
            turned = parse_time(((obj.get("status") or {}).get("health") or {}).get("lastTransitionTime"))
            if turned is not None and end is not None and end < turned <= now:
                end, label = turned, "Missing, then not Healthy yet"
        if end is None or end <= floor:
            return
        iv = BadInterval(floor, end, label)
        self._bad[key].append(iv)
        self._note(key, wave, iv)
        self._retro[key] = wave

    def _note(self, key: AppKey, wave: Optional[int], iv: BadInterval) -> None:
        if wave is None:
            return
        if iv.end is None:
            self._bad_open.setdefault(wave, set()).add(key)
            return
        self._bad_open.setdefault(wave, set()).discard(key)
        if wave not in self._bad_until or self._bad_until[wave] < iv.end:
            self._bad_until[wave] = iv.end

    def refile(self, members: Mapping[AppKey, int]) -> None:
        """Rebuild the per-wave summaries after the members or their waves changed."""
        self._bad_open, self._bad_until = {}, {}
        for key, wave in members.items():
            for iv in self._bad.get(key, []):
                self._note(key, wave, iv)

    def check(self, members: Mapping[AppKey, int], states: Mapping[AppKey, AppState],
              wave_members: Mapping[int, List[AppKey]], candidates: Optional[Set[AppKey]] = None) -> None:
        """Look for a later wave synced while an earlier one was not ready.

        ``candidates``: the apps judged again (only their state can bring new evidence).
        """
        for later, lwave in members.items() if candidates is None else (
                (k, members[k]) for k in sorted(candidates, key=lambda k: (k[1], k[0]))):
            st = states[later]
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
            if evidence is None or latest is None:
                continue
            self._evidence[later] = (evidence, latest)
            for earlier, ewave in self._earlier_suspects(lwave, evidence, wave_members):
                self._judge_pair(later, lwave, earlier, ewave, evidence, latest, states)
        self._recheck(members, states)

    def _judge_pair(self, later: AppKey, lwave: int, earlier: AppKey, ewave: int, evidence: datetime,
                    latest: datetime, states: Mapping[AppKey, AppState]) -> None:
        """One ``ordering broken`` line when ``earlier`` was not ready when ``later`` synced."""
        if (later, earlier) in self._pairs:
            return
        for iv in self._bad.get(earlier, []):
            if iv.start <= evidence and (iv.end is None or latest < iv.end):
                self._pairs.add((later, earlier))
                self.violations.append(
                    f"ordering broken: wave {lwave} {_what(later, states, self.namespace)} synced at "
                    f"{iso(evidence)} while wave {ewave} {_what(earlier, states, self.namespace)} "
                    f"was {iv.state}")
                return

    def _recheck(self, members: Mapping[AppKey, int], states: Mapping[AppKey, AppState]) -> None:
        """Members whose first not-ready interval began in the past, against the later syncs already seen."""
        retro, self._retro = self._retro, {}
        for earlier, ewave in retro.items():
            ewave = members.get(earlier, ewave)
            if ewave is None:
                continue
            for later, (evidence, latest) in self._evidence.items():
                lwave = members.get(later)
                if lwave is not None and lwave > ewave:
                    self._judge_pair(later, lwave, earlier, ewave, evidence, latest, states)

    def _earlier_suspects(self, lwave: int, evidence: datetime,
                          wave_members: Mapping[int, List[AppKey]]) -> Iterable[Tuple[AppKey, int]]:
        """Members of waves before ``lwave`` that may have been not ready at ``evidence``.

        A wave none of whose members is in a not-ready interval now, and whose intervals all
        ended by ``evidence``, is skipped whole.
        """
        for ewave in sorted(wave_members):
            if ewave >= lwave:
                break
            until = self._bad_until.get(ewave)
            if not self._bad_open.get(ewave) and (until is None or until <= evidence):
                continue
            for earlier in wave_members[ewave]:
                yield earlier, ewave


def _what(key: AppKey, states: Mapping[AppKey, AppState], home_ns: str) -> str:
    """``app NAME``, ``app NAME (generated by SET)`` or ``applicationset NAME``."""
    state = states.get(key)
    name = display_name(key, home_ns)
    if state is not None and state.kind != "Application":
        return f"applicationset {name}"
    if state is not None and state.owner:
        return f"app {name} (generated by {state.owner})"
    return f"app {name}"
