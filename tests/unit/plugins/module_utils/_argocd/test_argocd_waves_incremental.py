"""Incremental judging: a watch event re-judges only the app it changed, with the same verdicts as a full pass."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import applications, waves
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.app_watch import ApplicationWatch, CountingClient
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.waves import WaveTracker
from tests.support.argocd_objects import (
    application,
    child_entry,
    comparison_error,
    event,
    root_app,
)
from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient, FakeClock

T0 = datetime(2026, 11, 24, 14, 0, 10, tzinfo=timezone.utc)
NS = "argocd"


class Wall:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.base = clock()

    def __call__(self):
        return T0 + timedelta(seconds=self.clock() - self.base)


def key(name):
    return (NS, name)


def index(apps):
    return {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in apps.values()}


def snapshot(t: WaveTracker, out) -> dict:
    """Everything a caller can see of a tracker after an update."""
    return {
        "phase": out.phase, "message": out.message, "failing_wave": out.failing_wave,
        "failing_apps": out.failing_apps, "refresh": out.refresh,
        "states": {k: (s.verdict, s.sync, s.health, s.message, s.bad_since) for k, s in t.states.items()},
        "waves": {w: (r.members, r.started, r.completed, r.detected_at) for w, r in t.waves.items()},
        "ok_at": dict(t.ok_at), "violations": sorted(t.violations), "remaining": t.remaining(),
    }


def scenario_step(rng: random.Random, apps: dict, names: list, step: int) -> set:
    """Change the apps the way Argo CD would (one to three apps at a time); return the changed names."""
    changed = set()
    for _round in range(rng.randint(1, 3)):
        roll = rng.random()
        name = rng.choice(names)
        wave = int(name.split("-")[1])
        since = (T0 + timedelta(seconds=step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if roll < 0.45:
            apps[name] = application(name, wave, op_started=since, rv=str(1000 + step))
        elif roll < 0.6:
            apps[name] = application(name, wave, sync="OutOfSync", health="Progressing", health_since=since,
                                     operation_phase=None, rv=str(1000 + step))
        elif roll < 0.68:
            apps[name] = application(name, wave, health="Degraded", health_since=since, rv=str(1000 + step))
        elif roll < 0.75:
            apps[name] = application(name, wave, sync="Unknown", conditions=[comparison_error(since=since)],
                                     operation_phase=None, rv=str(1000 + step))
        elif roll < 0.8:
            apps.pop(name, None)                                  # deleted: Missing (or not a child any more)
        elif roll < 0.85:
            extra = f"late-{rng.randint(0, 3)}-{step}"            # a new child found by its tracking id
            apps[extra] = application(extra, int(extra.split("-")[1]), sync="OutOfSync", health="Missing",
                                      operation_phase=None, rv=str(1000 + step))
            names.append(extra)
            name = extra
        elif roll < 0.9:
            apps[name] = application(name, (wave + 1) % 4, rv=str(1000 + step))   # moved to another wave
        elif roll < 0.95 and "platform-0" in apps:
            # a nested child changes: only its parent's verdict reads it
            kid = rng.choice(["monitoring", "logging"])
            apps[kid] = application(kid, 0, root="platform-0", health=rng.choice(["Healthy", "Progressing"]),
                                    rv=str(1000 + step))
            name = kid
        else:
            name = "root"                                         # the root itself changes
            apps["root"] = root_app(apps["root"]["status"]["resources"], rv=str(1000 + step))
        changed.add(name)
    return changed


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("hard_refresh", [False, True])
def test_incremental_updates_match_full_passes(seed, hard_refresh):
    rng = random.Random(seed)
    names = [f"app-{w}-{i}" for w in range(4) for i in range(5)] + ["platform-0"]
    apps = {n: application(n, int(n.split("-")[1]), sync="OutOfSync", health="Missing", operation_phase=None)
            for n in names}
    apps["platform-0"] = application("platform-0", 0,
                                     resources=[child_entry("monitoring", 0), child_entry("logging", 0)])
    apps["monitoring"] = application("monitoring", 0, root="platform-0", health="Progressing")
    apps["logging"] = application("logging", 0, root="platform-0")
    apps["root"] = root_app([child_entry(n, int(n.split("-")[1])) for n in names])
    clock = FakeClock()
    full = WaveTracker(NS, "root", clock=clock, wall_clock=Wall(clock), wave_timeout=600, timeout=900,
                       hard_refresh_on_error=hard_refresh)
    incr = WaveTracker(NS, "root", clock=clock, wall_clock=Wall(clock), wave_timeout=600, timeout=900,
                       hard_refresh_on_error=hard_refresh)
    # the reference looks at every earlier member for ordering evidence (no wave skipped)
    full._earlier_suspects = lambda lwave, evidence: [  # type: ignore[method-assign]
        (k, w) for w in sorted(full.waves) if w < lwave for k in full.waves[w].members]
    assert snapshot(full, full.update(index(apps))) == snapshot(incr, incr.update(index(apps), None))
    for step in range(60):
        clock.advance(rng.choice([0.0, 0.5, 2.0]))
        changed = scenario_step(rng, apps, names, step)
        a, b = full.update(index(apps)), incr.update(index(apps), {key(n) for n in changed})
        assert snapshot(full, a) == snapshot(incr, b), f"step {step}, changed {sorted(changed)}"
        for k in a.refresh:
            full.refresh_sent(k, str(2000 + step))
            incr.refresh_sent(k, str(2000 + step))
    VIOLATIONS[(seed, hard_refresh)] = len(full.violations)


VIOLATIONS: dict = {}


def test_the_scenarios_above_did_break_the_ordering():
    """The comparison covered ordering violations, not only waves in order."""
    assert sum(1 for n in VIOLATIONS.values() if n) >= len(VIOLATIONS) // 2, VIOLATIONS


def test_an_event_judges_only_the_app_it_changed(monkeypatch):
    clock = FakeClock()
    names = [f"app-{w}-{i}" for w in range(4) for i in range(50)]
    apps = {n: application(n, int(n.split("-")[1]), sync="OutOfSync", health="Missing", operation_phase=None)
            for n in names}
    apps["root"] = root_app([child_entry(n, int(n.split("-")[1])) for n in names])
    t = WaveTracker(NS, "root", clock=clock, wall_clock=Wall(clock))
    t.update(index(apps))
    judged = []
    real = applications.evaluate

    def counting(app, k, wave, **kw):
        judged.append(k)
        return real(app, k, wave, **kw)

    monkeypatch.setattr(waves, "evaluate", counting)
    apps["app-0-7"] = application("app-0-7", 0)
    out = t.update(index(apps), {key("app-0-7")})
    assert judged == [key("app-0-7")]
    assert out.phase == "waiting" and out.failing_wave == 0 and key("app-0-7") not in out.failing_apps
    judged.clear()
    assert t.update(index(apps), set()).phase == "waiting" and judged == []   # nothing changed: nothing judged
    apps["root"] = root_app([child_entry(n, int(n.split("-")[1])) for n in names], rv="200")
    t.update(index(apps), {key("root")})
    assert len(judged) == len(names)                                        # the root changed: full pass


def test_a_nested_child_rejudges_its_parent_only():
    clock = FakeClock()
    parent = application("platform", 0, health="Progressing", resources=[child_entry("monitoring", 0)])
    apps = {"root": root_app([child_entry("platform", 0), child_entry("other", 1)]), "platform": parent,
            "other": application("other", 1, sync="OutOfSync", operation_phase=None),
            "monitoring": application("monitoring", 0, root="platform", health="Progressing")}
    t = WaveTracker(NS, "root", clock=clock, wall_clock=Wall(clock))
    assert t.update(index(apps)).failing_apps == [key("platform")]
    clock.advance(3)
    apps["monitoring"] = application("monitoring", 0, root="platform")
    out = t.update(index(apps), {key("monitoring")})
    assert out.failing_wave == 1 and t.states[key("platform")].ok
    assert t.ok_at[key("platform")] == pytest.approx(3)


def test_watch_reports_what_changed_between_two_updates():
    clock = FakeClock()
    client = FakeClient(clock, [application("ns", 0, rv="100"), application("db", 1, rv="101")], list_rv="150")
    client.streams = [[event("MODIFIED", application("ns", 0, health="Progressing", rv="151")),
                       event("DELETED", application("db", 1, rv="152"))]]
    w = ApplicationWatch(CountingClient(client), NS, clock=clock, sleep=clock.sleep)
    w.relist()
    assert w.take_changed() is None                 # after a LIST: everything
    assert w.take_changed() == set()
    assert w.wait_for_change(30) and w.wait_for_change(30)
    assert w.take_changed() == {key("ns"), key("db")}
    assert w.take_changed() == set()
    w.relist()
    assert w.take_changed() is None


def test_a_ready_wave_that_breaks_again_is_still_checked_for_ordering():
    clock = FakeClock()
    apps = {"root": root_app([child_entry("a", 0), child_entry("b", 1)]),
            "a": application("a", 0, op_started="2026-11-24T13:59:00Z"),
            "b": application("b", 1, sync="OutOfSync", health="Missing", operation_phase=None)}
    t = WaveTracker(NS, "root", clock=clock, wall_clock=Wall(clock))
    assert t.update(index(apps)).failing_wave == 1 and t.violations == []
    clock.advance(2)
    apps["a"] = application("a", 0, health="Progressing", health_since="2026-11-24T14:00:12Z",
                            op_started="2026-11-24T13:59:00Z")
    t.update(index(apps), {key("a")})
    clock.advance(1)
    apps["b"] = application("b", 1, operation_phase=None)
    t.update(index(apps), {key("b")})
    assert t.violations == ["ordering broken: wave 1 app b synced at 2026-11-24T14:00:13Z while wave 0 app a "
                            "was Synced/Progressing"]


def test_a_sync_that_started_during_an_earlier_trouble_is_a_violation_after_it_ended():
    clock = FakeClock()
    apps = {"root": root_app([child_entry("a", 0), child_entry("b", 1)]),
            "a": application("a", 0, health="Progressing", health_since="2026-11-24T14:00:10Z"),
            "b": application("b", 1, sync="OutOfSync", health="Missing", operation_phase=None)}
    t = WaveTracker(NS, "root", clock=clock, wall_clock=Wall(clock))
    t.update(index(apps))
    clock.advance(5)
    apps["a"] = application("a", 0)
    t.update(index(apps), {key("a")})           # a's trouble ended at 14:00:15
    clock.advance(5)
    apps["b"] = application("b", 1, op_started="2026-11-24T14:00:12Z")
    assert t.update(index(apps), {key("b")}).phase == "done"
    assert t.violations == ["ordering broken: wave 1 app b synced at 2026-11-24T14:00:12Z while wave 0 app a "
                            "was Synced/Progressing"]
