"""One verification carried over several calls (slice_seconds / progress): the same clocks, the same report."""

from __future__ import annotations

from datetime import timedelta

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.sync_waves import verify_sync_waves
from tests.support.failure import failure
from tests.support.argocd_objects import application, child_entry, event, root_app
from tests.unit.plugins.module_utils._argocd.fake_k8s import Advance, FakeClient, FakeClock
from tests.unit.plugins.module_utils._argocd.test_argocd_sync_waves_logic import GATING_CM, PARAMS, T0


def call(client, clock, **over):
    params = dict(PARAMS, **over)
    return verify_sync_waves(client, params, clock=clock, sleep=clock.sleep,
                             wall_clock=lambda: T0 + timedelta(seconds=clock() - 1000.0))


def _tree(clock):
    client = FakeClient(clock, [root_app([child_entry("ns", 0), child_entry("db", 1)]), application("ns", 0),
                                application("db", 1, sync="OutOfSync", health="Progressing")], configmap=GATING_CM)
    return client


def test_a_slice_returns_the_report_so_far_and_the_next_goes_on():
    clock = FakeClock()
    client = _tree(clock)
    client.streams = [[Advance(10)]]
    first = call(client, clock, slice_seconds=10.0)
    assert first["done"] is False and first["msg"].startswith("still waiting after 10s: wave 1: waiting for db")
    assert [w["healthy"] for w in first["waves"]] == [True, False]
    assert first["api_requests"] == 3                      # argocd-cm, LIST, WATCH: the same every slice
    clock.advance(2)                                       # Ansible starts the next call
    client.streams = [[Advance(3), event("MODIFIED", application("db", 1, rv="300"))]]
    second = call(client, clock, slice_seconds=10.0, progress=first["progress"])
    assert second["done"] is True and second["msg"] == "all waves are Synced and Healthy"
    db = second["waves"][1]["apps"][0]
    assert db["seconds_to_healthy"] == 15.0                # counted from the first call's start: 10 + 2 + 3
    assert second["waves"][0]["seconds_to_healthy"] == 0.0
    assert second["progress"]["started_at"] == first["progress"]["started_at"]


def test_the_wave_timeout_runs_on_across_slices():
    clock = FakeClock()
    client = _tree(clock)
    progress = None
    outcomes = []
    for _slice in range(10):
        try:
            result = call(client, clock, slice_seconds=10.0, wave_timeout=25.0, timeout=300.0,
                          **({"progress": progress} if progress else {}))
        except Exception:  # noqa: BLE001 - the failing slice is read below
            msg, result = failure(call, client, clock, slice_seconds=10.0, wave_timeout=25.0, timeout=300.0,
                                  progress=progress)
            outcomes.append(msg)
            break
        outcomes.append(result["msg"])
        progress = result["progress"]
        clock.advance(1)
    assert outcomes[-1].startswith("wave timeout 25s reached; wave 1, app db: sync OutOfSync")
    assert outcomes[:2] == ["still waiting after 10s: wave 1: waiting for db",
                            "still waiting after 21s: wave 1: waiting for db"]
    assert len(outcomes) == 3                              # 10 s, 1 s between calls, 10 s, 1 s: 25 s in the third


def test_progress_that_is_not_the_modules_is_refused():
    clock = FakeClock()
    client = _tree(clock)
    import pytest
    from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
    with pytest.raises(ValidationError, match="progress must be the 'progress' value"):
        call(client, clock, progress={"waves": {}})
    with pytest.raises(ValidationError, match="slice_seconds must be a positive"):
        call(client, clock, slice_seconds=0.0)
    assert client.calls == []
