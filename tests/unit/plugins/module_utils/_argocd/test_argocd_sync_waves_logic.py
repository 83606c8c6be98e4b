"""The verifier end to end over a fake API: requests, fail fast, diagnosis, check mode, validation."""

from __future__ import annotations

import copy
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.health_check import (
    DOCUMENTED,
    GATING,
    MISSING,
    classify_script,
    script_from_configmap,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.sync_waves import validate, verify_sync_waves
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError
from tests.support.argocd_objects import (
    application,
    child_entry,
    comparison_error,
    event,
    root_app,
    workload_resource,
)
from tests.support.failure import failure
from tests.unit.plugins.module_utils._argocd.fake_k8s import Advance, FakeClient, FakeClock, dropped

DOCUMENTED_LUA = """hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil then
  if obj.status.health ~= nil then
    hs.status = obj.status.health.status
    if obj.status.health.message ~= nil then
      hs.message = obj.status.health.message
    end
  end
end
return hs
"""
GATING_LUA = """-- gates on sync and conditions
local hs = {}
if obj.status ~= nil and obj.status.sync ~= nil and obj.status.sync.status ~= "Synced" then
  hs.status = "Progressing"
  return hs
end
hs.status = obj.status.health.status
return hs
"""
GATING_CM = {"metadata": {"name": "argocd-cm"},
             "data": {"resource.customizations.health.argoproj.io_Application": GATING_LUA}}

PARAMS = {"root_app": "root", "namespace": "argocd", "label_selector": None, "expected_apps": [],
          "target_revision": None, "check_root_revision": True, "wave_timeout": 60.0, "timeout": 300.0,
          "hard_refresh_on_error": False, "require_health_check": False}
ENTRIES = [child_entry("ns", 0), child_entry("db", 1), child_entry("apis", 2)]


T0 = datetime(2026, 11, 24, 14, 0, 10, tzinfo=timezone.utc)


def run(client, clock, check_mode=False, **over):
    params = dict(PARAMS, **over)
    base = clock()
    return verify_sync_waves(client, params, check_mode=check_mode, clock=clock, sleep=clock.sleep,
                             wall_clock=lambda: T0 + timedelta(seconds=clock() - base))


def rollout():
    """Argo CD gating: each wave is created and turns Synced/Healthy a few seconds after the previous one."""
    clock = FakeClock()
    client = FakeClient(clock, [root_app(ENTRIES), application("ns", 0, sync="OutOfSync", health="Missing")],
                        configmap=GATING_CM)
    client.streams = [[
        Advance(1.5), event("MODIFIED", application("ns", 0, operation_phase="Running", health="Progressing",
                                                    rv="101")),
        Advance(1.0), event("MODIFIED", application("ns", 0, rv="102", op_started="2026-11-24T14:00:10Z")),
        Advance(2.0), event("ADDED", application("db", 1, sync=None, rv="103")),
        Advance(0.5), event("MODIFIED", application("db", 1, sync="OutOfSync", health="Missing", rv="104",
                                                    operation_phase=None)),
        Advance(3.0), event("MODIFIED", application("db", 1, rv="105", op_started="2026-11-24T14:00:20Z")),
        Advance(2.0), event("ADDED", application("apis", 2, rv="106", op_started="2026-11-24T14:00:30Z")),
    ]]
    return clock, client


def test_waits_wave_by_wave_with_few_requests():
    clock, client = rollout()
    result = run(client, clock)
    assert result["msg"]
    assert result["changed"] is False
    assert [w["wave"] for w in result["waves"]] == [0, 1, 2]
    assert all(w["healthy"] for w in result["waves"])
    assert [w["seconds_to_healthy"] for w in result["waves"]] == [2.5, 8.0, 10.0]
    assert result["waves"][1]["apps"][0]["name"] == "db"
    assert result["health_check"] == GATING and result["ordering_violations"] == []
    # GET argocd-cm + LIST + one WATCH for all three waves: never a GET per app
    assert result["api_requests"] == 3 == len(client.calls)
    assert client.count("get") == 1
    assert result["report"][0].split() == ["WAVE", "APP", "SYNC", "HEALTH", "SECONDS", "NOTE"]
    assert result["msg"] == "all waves are Synced and Healthy"


def test_requests_do_not_grow_with_the_number_of_apps():
    clock = FakeClock()
    entries = [child_entry(f"app{i:02d}", i % 4) for i in range(40)]
    apps = [root_app(entries)] + [application(f"app{i:02d}", i % 4, sync="OutOfSync", health="Progressing",
                                              rv=str(200 + i)) for i in range(40)]
    client = FakeClient(clock, apps, configmap=GATING_CM)
    healthy = [event("MODIFIED", application(f"app{i:02d}", i % 4, rv=str(300 + i), op_started="2026-11-24T14:59:00Z"))
               for i in sorted(range(40), key=lambda i: i % 4)]
    client.streams = [[Advance(0.1)] + healthy]
    result = run(client, clock)
    assert all(w["healthy"] for w in result["waves"]) and len(result["waves"]) == 4
    assert result["api_requests"] == 3


def test_survives_apiserver_restart_and_expired_watch():
    clock, client = rollout()
    stream = client.streams[0]
    client.streams = [stream[:4] + [dropped("connection reset by peer")], dropped(), dropped(),
                      [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
                      stream[4:]]
    client.apps[("argocd", "db")] = application("db", 1, sync=None, rv="103")
    result = run(client, clock)
    assert result["msg"]
    assert result["watch"] == {"relists": 2, "resumes": 0, "reconnects": 3}
    assert all(w["healthy"] for w in result["waves"])


def test_degraded_fails_fast_and_diagnoses_down_to_the_pod():
    clock = FakeClock()
    sts = workload_resource("StatefulSet", "data", "pg", "Progressing", "Waiting for 1 pods to be ready...")
    db = application("db", 1, health="Degraded", resources=[sts])
    client = FakeClient(clock, [root_app(ENTRIES[:2]), application("ns", 0), db], configmap=GATING_CM)
    client.objects[("statefulsets", "data", "pg")] = {
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pg"}}},
        "status": {"replicas": 1, "readyReplicas": 0, "currentRevision": "pg-6d5f", "updateRevision": "pg-7c9a"}}
    client.pods = [{"metadata": {"name": "pg-0", "labels": {"app": "pg", "controller-revision-hash": "pg-6d5f"}},
                    "status": {"phase": "Pending", "conditions": [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/14 nodes are available: 14 node(s) didn't match Pod's node "
                                   "affinity/selector."}]}}]
    msg, result = failure(run, client, clock)
    assert msg.startswith("wave 1, app db: sync Synced, health Degraded, operation Succeeded")
    assert ("StatefulSet data/pg 0/1 ready, pod pg-0 Pending - 0/14 nodes are available: 14 node(s) didn't "
            "match Pod's node affinity/selector.") in msg
    assert "Kubernetes will not replace a Pending pod of a StatefulSet - delete the pod" in msg
    assert clock() == 1000.0                           # failed without waiting
    assert ("list", "pods", "data", "app=pg") in client.calls
    assert result["waves"][1]["healthy"] is False and result["waves"][0]["healthy"] is True


def test_outofsync_times_out_with_the_report():
    clock = FakeClock()
    client = FakeClient(clock, [root_app(ENTRIES[:2]), application("ns", 0),
                                application("db", 1, sync="OutOfSync", health="Healthy")], configmap=GATING_CM)
    msg, result = failure(run, client, clock, wave_timeout=30.0)
    assert msg.startswith("wave timeout 30s reached; wave 1, app db: sync OutOfSync, health Healthy")
    assert clock() - 1000.0 == pytest.approx(30, abs=1)
    lines = result["report"]
    assert lines[1].split()[:5] == ["0", "ns", "Synced", "Healthy", "0.0"]
    assert lines[2].split()[:5] == ["1", "db", "OutOfSync", "Healthy", "-"]
    assert "sync OutOfSync" in lines[2]


def test_comparison_error_is_reported_with_argo_cds_text_and_ordering():
    clock = FakeClock()
    cm = {"metadata": {}, "data": {"resource.customizations.health.argoproj.io_Application": DOCUMENTED_LUA}}
    client = FakeClient(clock, [root_app(ENTRIES[:2]),
                                application("ns", 0, sync="Unknown", conditions=[comparison_error()],
                                            operation_phase=None),
                                application("db", 1, op_started="2026-11-24T14:00:05Z")], configmap=cm)
    msg, result = failure(run, client, clock)
    assert result["health_check"] == DOCUMENTED
    assert "Manifest generation error (cached)" in msg
    assert result["ordering_violations"][0].startswith("ordering broken: wave 1 app db synced at")
    assert any("will not hold back later waves" in w for w in result["warnings"])


def test_hard_refresh_marks_changed():
    clock = FakeClock()
    broken = application("ns", 0, sync="Unknown", conditions=[comparison_error()], rv="200")
    client = FakeClient(clock, [root_app(ENTRIES[:1]), broken], configmap=GATING_CM)
    client.streams = [[Advance(0.2)] + [
        event("MODIFIED", application("ns", 0, rv="1201", annotations={"argocd.argoproj.io/refresh": "hard"},
                                      sync="Unknown", conditions=[comparison_error()])),
        Advance(1), event("MODIFIED", application("ns", 0, rv="1202"))]]
    result = run(client, clock, hard_refresh_on_error=True)
    assert result["msg"]
    assert result["changed"] is True and result["refreshed"] == ["ns"]
    patches = [c for c in client.calls if c[0] == "patch"]
    assert patches == [("patch", "applications", "argocd", "ns",
                        {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}})]


def test_check_mode_reports_without_waiting_or_refreshing():
    clock = FakeClock()
    client = FakeClient(clock, [root_app(ENTRIES[:2]), application("ns", 0),
                                application("db", 1, sync="Unknown", conditions=[comparison_error()])],
                        configmap=GATING_CM)
    result = run(client, clock, check_mode=True, hard_refresh_on_error=True)
    assert "msg" in result
    assert result["changed"] is False and clock() == 1000.0
    assert client.count("watch") == 0 and client.count("patch") == 0
    assert result["msg"].startswith("check mode, current state: wave 1, app db")
    assert [w["healthy"] for w in result["waves"]] == [True, False]


def test_missing_health_check_warns_or_fails():
    clock = FakeClock()
    client = FakeClient(clock, [root_app([])], configmap={"metadata": {}, "data": {}})
    result = run(client, clock)
    assert result["health_check"] == MISSING
    assert "Argo CD will not hold back later waves" in result["warnings"][0]
    msg, result = failure(run, FakeClient(clock, [root_app([])], configmap=None), clock, require_health_check=True)
    assert msg.startswith("require_health_check: ConfigMap argocd/argocd-cm does not exist")


def test_unreadable_configmap_is_unknown():
    clock = FakeClock()
    client = FakeClient(clock, [root_app([])], configmap=K8sError("forbidden", 403))
    assert run(client, clock)["health_check"] == "unknown"


@pytest.mark.parametrize("data, kind", [
    ({}, MISSING),
    ({"resource.customizations.health.argoproj.io_Application": DOCUMENTED_LUA}, DOCUMENTED),
    ({"resource.customizations.health.argoproj.io_Application": GATING_LUA}, GATING),
    ({"resource.customizations": "argoproj.io/Application:\n  health.lua: |\n"
                                 + "".join("    " + line + "\n" for line in DOCUMENTED_LUA.splitlines())},
     DOCUMENTED),
    ({"resource.customizations": "apps/Deployment:\n  ignoreDifferences: x\n"}, MISSING),
    ({"resource.customizations": ": not yaml ["}, MISSING),
])
def test_health_check_classification(data, kind):
    assert classify_script(script_from_configmap(data)) == kind


@pytest.mark.parametrize("name, kind", [("gating", GATING), ("documented", DOCUMENTED)])
def test_the_argocd_roles_checks_are_recognised(name, kind):
    lua = Path(__file__).resolve().parents[5] / "roles" / "argocd" / "files" / f"application-health-{name}.lua"
    assert classify_script(lua.read_text()) == kind


@pytest.mark.parametrize("over, text", [
    ({"root_app": None}, "one of root_app or label_selector is required"),
    ({"namespace": " "}, "namespace must not be empty"),
    ({"wave_timeout": 0}, "wave_timeout must be a positive number"),
    ({"timeout": -1.0}, "timeout must be a positive number"),
    ({"wave_timeout": 900.0, "timeout": 300.0}, "wave_timeout (900.0) must not exceed timeout (300.0)"),
    ({"root_app": None, "label_selector": "a=b; rm"}, "label_selector 'a=b; rm' is not a Kubernetes label"),
    ({"target_revision": ""}, "target_revision must not be empty"),
    ({"expected_apps": ["a/b/c"]}, "expected_apps: 'a/b/c'"),
])
def test_validation_names_the_option(over, text):
    with pytest.raises(ValidationError) as err:
        validate(dict(PARAMS, **over))
    assert text in str(err.value)


def test_validation_failure_makes_no_request():
    clock = FakeClock()
    client = FakeClient(clock, [])
    with pytest.raises(ValidationError):
        run(client, clock, wave_timeout=-5.0)
    assert client.calls == []


def test_bad_wave_annotation_is_wave_zero_with_a_warning_naming_the_app():
    # Argo CD v3.6.1 syncs an app whose sync-wave is not an integer as wave 0: judge what it does, and warn
    clock = FakeClock()
    client = FakeClient(clock, [root_app([child_entry("ns", 0)]), application("ns", "first")], configmap=GATING_CM)
    result = run(client, clock)
    assert "msg" in result
    assert [w["wave"] for w in result["waves"]] == [0]
    assert any("Application ns: annotation argocd.argoproj.io/sync-wave='first' is not an integer" in w
               for w in result["warnings"])


def test_deep_copy_safety_of_fixtures():
    a = application("x", 0)
    b = copy.deepcopy(a)
    assert a == b


def _pending_sts_client(clock, app):
    client = FakeClient(clock, [root_app([child_entry("databases", 0)]), app], configmap=GATING_CM)
    client.objects[("statefulsets", "data", "postgresql")] = {
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "postgresql"}}},
        "status": {"replicas": 1, "readyReplicas": 0, "currentRevision": "r1", "updateRevision": "r1"}}
    client.objects[("statefulsets", "data", "redis")] = {
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "redis"}}},
        "status": {"replicas": 1, "readyReplicas": 1}}
    client.pods = [{"metadata": {"name": "postgresql-0", "labels": {"app": "postgresql"}},
                    "status": {"phase": "Pending", "conditions": [{
                        "type": "PodScheduled", "status": "False",
                        "message": "0/14 nodes are available: 14 node(s) didn't match Pod's node affinity/selector."}]}}]
    return client


def _app_tree_app(message):
    # Argo CD v3.6 keeps resource health in its cache: status.resources carry no health (seen)
    res = [{"group": "apps", "version": "v1", "kind": "StatefulSet", "namespace": "data", "name": n,
            "status": "Synced"} for n in ("postgresql", "redis")]
    app = application("databases", 0, health="Progressing", resources=res)
    app["status"]["resourceHealthSource"] = "appTree"
    if message:
        app["status"]["health"]["message"] = message
    return app


def test_diagnosis_follows_argo_cds_caused_by_message():
    clock = FakeClock()
    app = _app_tree_app("Caused by apps/StatefulSet:data/postgresql")
    msg, result = failure(run, _pending_sts_client(clock, app), clock, wave_timeout=5.0)
    assert ("StatefulSet data/postgresql 0/1 ready, pod postgresql-0 Pending - 0/14 nodes are available"
            in msg)
    assert "data/redis" not in msg


def test_diagnosis_without_resource_health_looks_at_the_workloads_and_shows_the_blocked_ones():
    clock = FakeClock()
    client = _pending_sts_client(clock, _app_tree_app(None))
    msg, result = failure(run, client, clock, wave_timeout=5.0)
    assert "StatefulSet data/postgresql 0/1 ready, pod postgresql-0 Pending" in msg
    assert "StatefulSet data/redis" not in msg           # ready: not shown
    assert ("get", "statefulsets", "data", "redis") in client.calls      # but looked at


def test_diagnosis_names_every_stuck_workload_not_only_argo_cds_culprit():
    # Argo CD names one culprit (redis); postgresql is stuck too and must be reported as well
    clock = FakeClock()
    client = _pending_sts_client(clock, _app_tree_app("Caused by apps/StatefulSet:data/redis"))
    client.objects[("statefulsets", "data", "redis")]["status"]["readyReplicas"] = 0
    client.pods.append({"metadata": {"name": "redis-0", "labels": {"app": "redis"}},
                        "status": {"phase": "Pending", "conditions": [{
                            "type": "PodScheduled", "status": "False",
                            "message": "0/14 nodes are available: 14 node(s) didn't match Pod's node affinity/selector."}]}})
    msg, result = failure(run, client, clock, wave_timeout=5.0)
    assert "StatefulSet data/redis 0/1 ready, pod redis-0 Pending" in msg
    assert "StatefulSet data/postgresql 0/1 ready, pod postgresql-0 Pending" in msg
