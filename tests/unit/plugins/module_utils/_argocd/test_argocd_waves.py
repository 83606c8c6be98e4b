"""Walking the waves: discovery, order, deadlines, fail fast, hard refresh, ordering violations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.waves import WaveTracker, group_by_wave
from tests.support.argocd_objects import (
    application,
    child_entry,
    comparison_error,
    root_app,
)
from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClock

T0 = datetime(2026, 11, 24, 14, 0, 10, tzinfo=timezone.utc)


class Wall:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.base = clock()

    def __call__(self):
        return T0 + timedelta(seconds=self.clock() - self.base)


def tracker(clock, **kw):
    kw.setdefault("wave_timeout", 60)
    kw.setdefault("timeout", 300)
    return WaveTracker("argocd", kw.pop("root", "root"), clock=clock, wall_clock=Wall(clock), **kw)


def index(*apps):
    return {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in apps}


ENTRIES = [child_entry("infra", -1), child_entry("ns", 0), child_entry("db", 1), child_entry("apis", 2)]


def test_group_by_wave_sorts_waves_and_names():
    members = {("argocd", "b"): 0, ("argocd", "a"): 0, ("argocd", "neg"): -5, ("argocd", "z"): 10}
    assert group_by_wave(members) == [(-5, [("argocd", "neg")]), (0, [("argocd", "a"), ("argocd", "b")]),
                                      (10, [("argocd", "z")])]


def test_waves_complete_in_order_with_detection_times():
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ENTRIES), application("infra", -1), application("ns", 0, sync="OutOfSync", health="Missing"),
            application("db", 1, sync=None), application("apis", 2, sync=None)]
    out = t.update(index(*apps))
    assert out.phase == "waiting" and out.failing_wave == 0 and out.failing_apps == [("argocd", "ns")]
    assert t.waves[-1].completed is not None and t.waves[0].completed is None
    clock.advance(4)
    apps[2] = application("ns", 0)
    out = t.update(index(*apps))
    assert out.failing_wave == 1
    assert t.ok_at[("argocd", "ns")] == pytest.approx(4)
    assert t.waves[0].completed - t.start == pytest.approx(4)
    clock.advance(3)
    apps[3] = application("db", 1, op_started="2026-11-24T14:00:16Z")
    apps[4] = application("apis", 2, op_started="2026-11-24T14:00:17Z")
    assert t.update(index(*apps)).phase == "done"
    assert t.waves[1].completed - t.start == pytest.approx(7)
    assert t.waves[2].detected_at == T0 + timedelta(seconds=7)
    assert t.violations == []


def test_missing_children_from_root_status_are_waited_for():
    clock = FakeClock()
    t = tracker(clock)
    out = t.update(index(root_app(ENTRIES), application("infra", -1), application("ns", 0), application("db", 1)))
    assert out.phase == "waiting" and out.failing_wave == 2
    assert t.states[("argocd", "apis")].sync == "Missing"


def test_children_found_by_tracking_id_even_before_the_root_lists_them():
    clock = FakeClock()
    t = tracker(clock)
    out = t.update(index(root_app([child_entry("ns", 0)]), application("ns", 0),
                         application("late", 3, sync="OutOfSync", health="Progressing"),
                         application("stranger", 0, root="someone-else", health="Degraded")))
    assert out.phase == "waiting" and out.failing_apps == [("argocd", "late")]
    assert ("argocd", "stranger") not in t.states


def test_root_not_compared_yet_keeps_waiting():
    clock = FakeClock()
    t = tracker(clock)
    root = root_app([child_entry("ns", 0)], revision="release-2", compared_revision="main")
    out = t.update(index(root, application("ns", 0, revision="release-2")))
    assert out.phase == "waiting" and "root app root" in out.message and "stale" in out.message


def test_missing_root_fails_with_its_name():
    out = tracker(FakeClock()).update(index(application("ns", 0)))
    assert out.phase == "failed" and "root app root does not exist in namespace argocd" in out.message


def test_root_that_cannot_render_fails():
    root = root_app([])
    root["status"]["conditions"] = [comparison_error("app path does not exist")]
    out = tracker(FakeClock()).update(index(root))
    assert out.phase == "failed" and "cannot list its children: ComparisonError: app path" in out.message


def test_label_selector_mode_with_expected_apps():
    clock = FakeClock()
    t = WaveTracker("argocd", None, expected_apps=("apis",), clock=clock, wall_clock=Wall(clock))
    out = t.update(index(application("ns", 0, root=None), application("db", 1, root=None)))
    assert out.phase == "waiting" and out.failing_apps == [("argocd", "apis")]
    assert t.update(index(application("ns", 0, root=None), application("db", 1, root=None),
                          application("apis", 2, root=None))).phase == "done"


def test_degraded_app_fails_the_wave_fast_naming_it():
    clock = FakeClock()
    t = tracker(clock)
    out = t.update(index(root_app(ENTRIES[1:3]), application("ns", 0),
                         application("db", 1, health="Degraded", operation_phase="Succeeded")))
    assert out.phase == "failed" and out.failing_wave == 1 and out.failing_apps == [("argocd", "db")]
    assert out.message.startswith("wave 1, app db: sync Synced, health Degraded, operation Succeeded")


def test_error_in_a_later_wave_waits_its_turn():
    clock = FakeClock()
    t = tracker(clock)
    out = t.update(index(root_app(ENTRIES[1:3]), application("ns", 0, sync="OutOfSync", health="Progressing"),
                         application("db", 1, health="Degraded")))
    assert out.phase == "waiting" and out.failing_wave == 0


def test_wave_timeout_and_overall_timeout_on_the_monotonic_clock():
    clock = FakeClock()
    t = tracker(clock, wave_timeout=30, timeout=50)
    apps = [root_app(ENTRIES[1:3]), application("ns", 0, sync="OutOfSync", health="Progressing"),
            application("db", 1, sync="OutOfSync")]
    t.update(index(*apps))
    assert t.remaining() == pytest.approx(30)
    clock.advance(20)
    apps[1] = application("ns", 0)
    t.update(index(*apps))
    assert t.remaining() == pytest.approx(30)        # wave 1's own 30 s ...
    clock.advance(25)
    assert t.remaining() == pytest.approx(5)         # ... capped by the overall 50 s
    clock.advance(5)
    assert t.remaining() == 0
    out = t.timed_out()
    assert out.phase == "failed" and out.failing_wave == 1
    assert out.message.startswith("overall timeout 50s reached; wave 1, app db: sync OutOfSync")


def test_wave_timeout_message():
    clock = FakeClock()
    t = tracker(clock, wave_timeout=10, timeout=100)
    t.update(index(root_app(ENTRIES[1:2]), application("ns", 0, sync="OutOfSync", health="Healthy")))
    clock.advance(10)
    assert t.remaining() == 0
    assert t.timed_out().message.startswith("wave timeout 10s reached; wave 0, app ns: sync OutOfSync")


def test_hard_refresh_once_then_fail_when_the_error_stays():
    clock = FakeClock()
    t = tracker(clock, hard_refresh_on_error=True)
    broken = application("ns", 0, sync="Unknown", conditions=[comparison_error()], rv="200")
    out = t.update(index(root_app(ENTRIES[1:2]), broken))
    assert out.phase == "waiting" and out.refresh == [("argocd", "ns")]
    t.refresh_sent(("argocd", "ns"), "300")
    assert t.update(index(root_app(ENTRIES[1:2]), broken)).refresh == []   # old copy: refresh not processed yet
    annotated = application("ns", 0, sync="Unknown", conditions=[comparison_error()], rv="300",
                            annotations={"argocd.argoproj.io/refresh": "hard"})
    out = t.update(index(root_app(ENTRIES[1:2]), annotated))
    assert out.phase == "waiting" and out.refresh == []
    processed = application("ns", 0, sync="Unknown", conditions=[comparison_error()], rv="301")
    out = t.update(index(root_app(ENTRIES[1:2]), processed))
    assert out.phase == "failed" and "Manifest generation error (cached)" in out.message


def test_hard_refresh_that_fixes_the_app_passes():
    clock = FakeClock()
    t = tracker(clock, hard_refresh_on_error=True)
    t.update(index(root_app(ENTRIES[1:2]), application("ns", 0, sync="Unknown", conditions=[comparison_error()])))
    t.refresh_sent(("argocd", "ns"), "300")
    assert t.update(index(root_app(ENTRIES[1:2]), application("ns", 0, rv="301"))).phase == "done"


def test_ordering_violation_from_operation_start_times():
    # documented check: wave 1 synced at 14:00:05 while wave 0 has had a ComparisonError since 14:00:02
    clock = FakeClock()
    t = tracker(clock)
    broken = application("ns", 0, sync="Unknown", conditions=[comparison_error(since="2026-11-24T14:00:02Z")],
                         operation_phase=None)
    out = t.update(index(root_app(ENTRIES[1:3]), broken, application("db", 1, op_started="2026-11-24T14:00:05Z")))
    assert out.phase == "failed"
    assert t.violations == ["ordering broken: wave 1 app db synced at 2026-11-24T14:00:05Z while wave 0 app ns "
                            "was Unknown/Healthy (ComparisonError)"]


def test_no_ordering_violation_when_the_later_wave_started_in_the_second_the_earlier_turned_ready():
    # Argo CD's startedAt has whole seconds: "14:00:12Z" may be 14:00:12.9, after ns turned ready at 14:00:12.4
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ENTRIES[1:3]), application("ns", 0, sync="OutOfSync", health="Progressing"),
            application("db", 1, sync=None, operation_phase=None)]
    t.update(index(*apps))
    clock.advance(2.4)  # the watch sees ns ready at 14:00:12.4
    apps[1] = application("ns", 0)
    t.update(index(*apps))
    apps[2] = application("db", 1, op_started="2026-11-24T14:00:12Z")
    t.update(index(*apps))
    assert t.violations == []


def test_no_ordering_violation_when_the_later_wave_synced_before_the_trouble():
    clock = FakeClock()
    t = tracker(clock)
    flapping = application("ns", 0, health="Progressing", health_since="2026-11-24T14:00:09Z")
    t.update(index(root_app(ENTRIES[1:3]), flapping, application("db", 1, op_started="2026-11-24T13:50:00Z")))
    assert t.violations == []


def test_ordering_violation_seen_live_and_reported_once():
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ENTRIES[1:3]), application("ns", 0, sync="OutOfSync", health="Progressing"),
            application("db", 1, sync="OutOfSync", operation_phase=None)]
    t.update(index(*apps))
    clock.advance(2)
    apps[2] = application("db", 1, operation_phase=None)
    t.update(index(*apps))
    t.update(index(*apps))
    assert len(t.violations) == 1
    assert t.violations[0].startswith("ordering broken: wave 1 app db synced at 2026-11-24T14:00:12")
    assert t.violations[0].endswith("while wave 0 app ns was OutOfSync/Progressing")


def test_gated_rollout_has_no_violation():
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ENTRIES[1:3]), application("ns", 0, sync=None)]
    t.update(index(*apps))
    clock.advance(3)
    apps[1] = application("ns", 0, health_since="2026-11-24T14:00:12Z", op_started="2026-11-24T14:00:11Z")
    t.update(index(*apps))
    clock.advance(3)
    apps.append(application("db", 1, op_started="2026-11-24T14:00:15Z"))
    assert t.update(index(*apps)).phase == "done"
    assert t.violations == []


CACHE_TIMEOUT = ('Failed to load live state: failed to get cluster info for "https://kubernetes.default.svc": '
                 'error synchronizing cache state : failed to load open api schema while syncing cluster cache: '
                 'Get "https://127.0.0.1:6443/openapi/v2?timeout=32s": context deadline exceeded')


def test_root_that_argocd_cannot_compare_for_a_slow_api_server_keeps_waiting():
    # Argo CD retries a cluster-cache timeout by itself: no fail-fast, the timeout bounds the wait.
    root = root_app([])
    root["status"]["conditions"] = [comparison_error(CACHE_TIMEOUT)]
    out = tracker(FakeClock(), hard_refresh_on_error=True).update(index(root))
    assert out.phase == "waiting" and out.refresh == []
    assert "Argo CD retries: ComparisonError" in out.message and "context deadline exceeded" in out.message


def test_child_with_a_transient_comparison_error_waits_and_passes_once_it_clears():
    clock = FakeClock()
    t = tracker(clock)
    child = application("ns", 0, sync="Unknown")
    child["status"]["conditions"] = [comparison_error(CACHE_TIMEOUT)]
    out = t.update(index(root_app([child_entry("ns", 0)]), child))
    assert out.phase == "waiting" and out.failing_wave == 0
    assert "Argo CD retries" in t.states[("argocd", "ns")].message
    clock.advance(3)
    assert t.update(index(root_app([child_entry("ns", 0)]), application("ns", 0))).phase == "done"


def test_nested_app_of_apps_is_healthy_as_soon_as_its_children_are():
    clock = FakeClock()
    t = tracker(clock)
    parent = application("platform", 0, health="Progressing",
                         resources=[child_entry("monitoring", 0, health="Progressing"),
                                    child_entry("logging", 1, status="Missing", health=None)])
    apps = [root_app([child_entry("platform", 0)]), parent,
            application("monitoring", 0, root="platform", sync="OutOfSync", health="Progressing")]
    out = t.update(index(*apps))
    assert out.phase == "waiting"
    assert "child app logging: not created yet" in t.states[("argocd", "platform")].message
    clock.advance(2)
    apps[2] = application("monitoring", 0, root="platform")
    apps.append(application("logging", 1, root="platform"))
    assert t.update(index(*apps)).phase == "done"          # parent's own health still says Progressing
    assert t.waves[0].completed - t.start == pytest.approx(2)


def test_root_that_cannot_render_gets_one_hard_refresh_then_fails():
    clock = FakeClock()
    t = tracker(clock, hard_refresh_on_error=True)
    root = root_app([], rv="200")
    root["status"]["conditions"] = [comparison_error()]
    out = t.update(index(root))
    assert out.phase == "waiting" and out.refresh == [("argocd", "root")]
    assert "cannot list its children: ComparisonError" in out.message
    t.refresh_sent(("argocd", "root"), "300")
    annotated = root_app([], rv="300")
    annotated["status"]["conditions"] = [comparison_error()]
    annotated["metadata"]["annotations"]["argocd.argoproj.io/refresh"] = "hard"
    out = t.update(index(annotated))
    assert out.phase == "waiting" and out.refresh == []
    processed = root_app([], rv="301")
    processed["status"]["conditions"] = [comparison_error()]
    out = t.update(index(processed))
    assert out.phase == "failed" and "Manifest generation error (cached)" in out.message


def test_root_fixed_by_the_hard_refresh_goes_on_to_its_children():
    clock = FakeClock()
    t = tracker(clock, hard_refresh_on_error=True)
    root = root_app([], rv="200")
    root["status"]["conditions"] = [comparison_error()]
    assert t.update(index(root)).refresh == [("argocd", "root")]
    t.refresh_sent(("argocd", "root"), "300")
    out = t.update(index(root_app(ENTRIES[1:2], rv="301"), application("ns", 0)))
    assert out.phase == "done", out.message
