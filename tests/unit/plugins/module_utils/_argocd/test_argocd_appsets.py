"""ApplicationSets in the waves: their verdict, their generated apps, waves, owners, ordering, the report."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import set_key
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.appsets import evaluate_set, owner_set
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.report import format_table, wave_entries
from tests.support.failure import failure
from tests.support.argocd_objects import (
    appset,
    application,
    child_entry,
    comparison_error,
    error_occurred,
    generated,
    root_app,
    set_entry,
)
from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClock
from tests.unit.plugins.module_utils._argocd.test_argocd_waves import index, tracker

APIS = set_key("argocd", "apis")
ROOT = [child_entry("infra", -1), set_entry("apis", 3), child_entry("routes", 10)]


def sets(*objs):
    return {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in objs}


def judge(obj, present=()):
    return evaluate_set(obj, APIS, 3, lambda k: k[1] in present)


# -- the verdict on one ApplicationSet ------------------------------------------------------------
def test_a_reconciled_set_whose_apps_exist_passes():
    state = judge(appset("apis", ["a", "b"]), present={"a", "b"})
    assert state.ok and state.sync == "Generated" and state.health == "Healthy" and state.kind == "ApplicationSet"


def test_apps_listed_but_not_created_yet_are_waited_for():
    state = judge(appset("apis", ["a", "b"]), present={"a"})
    assert state.verdict == "wait" and "1 of 2 generated apps exist, waiting for b" in state.message


def test_resources_count_beyond_the_listed_apps_is_waited_for():
    state = judge(appset("apis", ["a"], count=3), present={"a"})
    assert state.verdict == "wait" and "status lists 1 of 3 generated apps" in state.message


def test_no_status_yet_waits():
    state = judge(appset("apis", ["a"], status=False))
    assert state.verdict == "wait" and "applicationset-controller has not reconciled it" in state.message


def test_error_occurred_fails_with_the_condition():
    state = judge(appset("apis", [], conditions=error_occurred('template: :1: function "nope" not defined')))
    assert state.verdict == "error" and state.health == "Degraded" and state.sync == "Error"
    assert state.message.startswith("ErrorOccurred (ApplicationGenerationFromParamsError): template")
    assert state.message.count("function") == 1          # the same text on ResourcesUpToDate is not repeated


def test_resources_up_to_date_false_fails():
    conds = [{"type": "ResourcesUpToDate", "status": "False", "reason": "ApplicationSetUpToDateError",
              "message": "cannot update Application apis-a: admission webhook denied"}]
    state = judge(appset("apis", ["a"], conditions=conds), present={"a"})
    assert state.verdict == "error" and "admission webhook denied" in state.message


def test_progressive_sync_waits_and_names_the_step():
    conds = [{"type": "RolloutProgressing", "status": "True", "reason": "ApplicationSetModified",
              "message": "ApplicationSet Rollout Rollout started"}, {"type": "ResourcesUpToDate", "status": "True"}]
    steps = [{"application": "a", "status": "Healthy", "step": "1"},
             {"application": "b", "status": "Progressing", "step": "2"}]
    state = judge(appset("apis", ["a", "b"], conditions=conds, application_status=steps), present={"a", "b"})
    assert state.verdict == "wait" and "progressive sync: step 2: b Progressing" in state.message


def test_missing_and_deleted_sets():
    assert judge(None).message == "not created yet"
    assert evaluate_set(None, APIS, 3, lambda k: False, seen_before=True).message == "deleted during the run"


def test_owner_set_reads_the_controller_reference():
    assert owner_set(generated("a", "apis")) == ("apis", "uid-apis")
    assert owner_set(application("a", 0)) is None


# -- the tracker ----------------------------------------------------------------------------------------
def _tree(broken=False, **kw):
    apps = [root_app(ROOT), application("infra", -1),
            generated("apis-a", "apis", 3),
            generated("apis-b", "apis", 3, **({"sync": "Unknown", "conditions": [comparison_error(
                "apis/missing: app path does not exist")]} if broken else {})),
            application("routes", 10, **kw)]
    return apps, sets(appset("apis", ["apis-a", "apis-b"]))


def test_generated_apps_are_members_in_the_sets_wave():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    out = t.update(index(*apps), None, s, None)
    assert out.phase == "done"
    assert t.waves[3].members == [APIS, ("argocd", "apis-a"), ("argocd", "apis-b")]
    assert t.wants_sets


def test_the_issues_false_green_a_broken_generated_app_fails_its_wave():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree(broken=True)
    out = t.update(index(*apps), None, s, None)
    assert out.phase == "failed" and out.failing_wave == 3
    assert "wave 3, app apis-b (generated by apis): sync Unknown" in out.message
    assert "app path does not exist" in out.message


def test_a_generated_app_not_created_yet_holds_the_wave():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    del apps[3]
    out = t.update(index(*apps), None, s, None)
    assert out.phase == "waiting" and out.failing_wave == 3
    assert "applicationset apis" in out.message and "apis-b (generated by apis)" in out.message
    assert t.states[("argocd", "apis-b")].message == "not created yet"
    apps.append(generated("apis-b", "apis", 3))
    clock.advance(2)
    out = t.update(index(*apps), {("argocd", "apis-b")}, s, set())
    assert out.phase == "done"
    assert t.ok_at[("argocd", "apis-b")] == pytest.approx(2)


def test_a_template_wave_other_than_the_sets_is_judged_in_the_sets_wave_with_a_warning():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    apps[2] = generated("apis-a", "apis", 50)
    t.update(index(*apps), None, s, None)
    assert ("argocd", "apis-a") in t.waves[3].members and 50 not in t.waves
    assert any("apis-a: its sync-wave annotation says 50, but Argo CD orders it by its ApplicationSet "
               "apis's wave 3" in n for n in t.notes)


def test_an_app_of_the_root_and_of_a_set_has_two_owners_and_the_roots_wave():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    apps[0] = root_app(ROOT + [child_entry("apis-a", 44)])
    apps[2] = generated("apis-a", "apis", 0)        # the live annotation was rewritten by the set
    t.update(index(*apps), None, s, None)
    assert ("argocd", "apis-a") in t.waves[44].members
    assert any("apis-a has two owners: root app root lists it (wave 44) and ApplicationSet apis generates it "
               "(wave 3)" in n for n in t.notes)


def test_apps_of_a_set_outside_the_root_are_not_pulled_in():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    apps.append(generated("other-a", "other", 1, sync="Unknown"))
    s.update(sets(appset("other", ["other-a"])))
    out = t.update(index(*apps), None, s, None)
    assert out.phase == "done" and ("argocd", "other-a") not in t.states


def test_a_set_deleted_mid_run_is_reported():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    t.update(index(*apps), None, s, None)
    out = t.update(index(*[a for a in apps if not a["metadata"]["name"].startswith("apis-")]), None, {}, None)
    assert out.phase == "waiting" and out.failing_wave == 3
    assert t.states[APIS].message == "deleted during the run"


def test_a_set_error_fails_naming_the_set_and_the_condition():
    clock = FakeClock()
    t = tracker(clock)
    apps, _s = _tree()
    s = sets(appset("apis", [], conditions=error_occurred("failed to execute go template")))
    out = t.update(index(*apps[:2], apps[4]), None, s, None)
    assert out.phase == "failed" and out.failing_apps == [APIS]
    assert out.message.startswith("wave 3, applicationset apis: Error, health Degraded - ErrorOccurred")


def test_ordering_broken_when_a_later_wave_synced_past_a_generated_app():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree(broken=True, sync="OutOfSync", operation_phase=None)
    t.update(index(*apps), None, s, None)
    clock.advance(5)
    apps[4] = application("routes", 10, op_started="2026-11-24T14:00:14Z")
    t.update(index(*apps), {("argocd", "routes")}, s, set())
    assert len(t.violations) == 1
    assert t.violations[0].startswith("ordering broken: wave 10 app routes synced at 2026-11-24T14:00:14Z while "
                                      "wave 3 app apis-b (generated by apis) was Unknown/Healthy")


def test_a_set_status_change_alone_is_judged_incrementally():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    t.update(index(*apps), None, s, None)
    calls = []
    t._update_all = lambda *a: calls.append(a)           # a full pass would be recorded here
    s2 = sets(appset("apis", ["apis-a", "apis-b"], rv="101"))
    out = t.update(index(*apps), set(), s2, {("argocd", "apis")})
    assert calls == [] and out.phase == "done"


def test_a_new_element_in_the_generator_is_a_full_pass_and_is_waited_for():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    t.update(index(*apps), None, s, None)
    s2 = sets(appset("apis", ["apis-a", "apis-b", "apis-c"], rv="101"))
    out = t.update(index(*apps), set(), s2, {("argocd", "apis")})
    assert out.phase == "waiting" and ("argocd", "apis-c") in t.waves[3].members
    apps.append(generated("apis-c", "apis", 3))
    assert t.update(index(*apps), {("argocd", "apis-c")}, s2, set()).phase == "done"


def test_report_rows_show_the_set_and_its_apps_under_it():
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    t.update(index(*apps), None, s, None)
    waves = wave_entries(t)
    wave3 = next(w for w in waves if w["wave"] == 3)
    assert [(a["name"], a["kind"], a["owner"]) for a in wave3["apps"]] == [
        ("apis", "ApplicationSet", None), ("apis-a", "Application", "apis"), ("apis-b", "Application", "apis")]
    table = format_table(waves)
    rows = [line.split()[:2] for line in table[1:]]
    assert ["3", "apis"] in rows and table[2].split()[1:3] == ["apis", "(ApplicationSet)"]
    assert any(line.startswith("   3    apis-a") for line in table), table


# -- the module's driver over a fake API: two kinds watched at once ------------------------------------
def _client(apps, set_objs):
    from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient
    from tests.unit.plugins.module_utils._argocd.test_argocd_sync_waves_logic import GATING_CM
    clock = FakeClock()
    client = FakeClient(clock, apps, configmap=GATING_CM)
    client.sets = sets(*set_objs)
    return clock, client


def _run(client, clock, **over):
    from tests.unit.plugins.module_utils._argocd.test_argocd_sync_waves_logic import run
    try:
        return run(client, clock, **over)
    finally:
        client.stop.set()


def test_driver_waits_for_a_generated_app_and_counts_a_list_and_watch_per_kind():
    from tests.support.argocd_objects import event
    from tests.unit.plugins.module_utils._argocd.fake_k8s import Advance
    apps, _s = _tree()
    clock, client = _client([a for a in apps if a["metadata"]["name"] != "apis-b"],
                            [appset("apis", ["apis-a", "apis-b"])])
    client.streams = [[Advance(2), event("ADDED", generated("apis-b", "apis", 3, rv="200"))]]
    result = _run(client, clock)
    wave3 = next(w for w in result["waves"] if w["wave"] == 3)
    assert [(a["name"], a["ready"], a["seconds_to_healthy"]) for a in wave3["apps"]] == [
        ("apis", True, 2.0), ("apis-a", True, 0.0), ("apis-b", True, 2.0)]
    verbs = [(c[0], c[1]) for c in client.calls]
    assert sorted(verbs) == sorted([("get", "configmaps"), ("list", "applications"), ("list", "applicationsets"),
                                    ("watch", "applications"), ("watch", "applicationsets")])
    assert result["api_requests"] == 5


def test_driver_without_sets_never_lists_them():
    apps = [root_app([child_entry("infra", 0)]), application("infra", 0)]
    clock, client = _client(apps, [])
    result = _run(client, clock)
    assert result["api_requests"] == 2 and all(c[1] != "applicationsets" for c in client.calls)


def test_driver_fails_on_a_broken_generated_app_naming_wave_set_app_and_error():
    apps, s = _tree(broken=True)
    clock, client = _client(apps, list(s.values()))
    msg, _result = failure(_run, client, clock)
    assert msg.startswith("wave 3, app apis-b (generated by apis): sync Unknown, health Healthy")
    assert "apis/missing: app path does not exist" in msg


def test_driver_fails_when_the_set_reports_an_error_with_no_app_changing():
    from tests.support.argocd_objects import event
    apps, s = _tree()
    apps = [a for a in apps if not a["metadata"]["name"].startswith("apis-")]
    clock, client = _client(apps, [appset("apis", [], status=False)])
    client.idle_blocks = True
    client.set_streams = [[event("MODIFIED", appset("apis", [], rv="300", conditions=error_occurred(
        'template: apis:1:7: executing "apis" at <.nope>: map has no entry for key "nope"')))]]
    msg, _result = failure(_run, client, clock)
    assert msg.startswith("wave 3, applicationset apis: Error, health Degraded - ErrorOccurred")
    assert 'map has no entry for key "nope"' in msg


def test_a_new_list_element_not_generated_yet_holds_the_set():
    # a commit added an element; the applicationset-controller has not acted on it: no false green
    obj = appset("apis", ["a", "b"])
    obj["spec"]["generators"][0]["list"]["elements"].append({"name": "c"})
    state = judge(obj, present={"a", "b"})
    assert state.verdict == "wait" and "declares 3 elements, 2 apps generated so far" in state.message
    assert judge(appset("apis", ["a", "b", "c"]), present={"a", "b", "c"}).ok


def test_generators_other_than_plain_lists_are_not_counted():
    from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.appsets import declared_elements
    obj = appset("apis", ["a"])
    assert declared_elements(obj) == 1
    obj["spec"]["generators"] = [{"git": {"repoURL": "x", "directories": [{"path": "apps/*"}]}}]
    assert declared_elements(obj) is None
    obj["spec"]["generators"] = [{"list": {"elementsYaml": "{{ .x }}"}}]
    assert declared_elements(obj) is None


# -- ordering: generated apps that appear only after a later wave synced ----------------------------------
def _declared_at(obj, when):
    """The set's spec last written by the root's sync at ``when`` (its status by the appset controller later)."""
    obj["metadata"]["managedFields"] = [
        {"manager": "argocd-controller", "operation": "Update", "time": when},
        {"manager": "argocd-applicationset-controller", "operation": "Update", "subresource": "status",
         "time": "2026-11-24T14:00:09Z"}]
    return obj


def _created(app, when):
    app["metadata"]["creationTimestamp"] = when
    return app


def test_ordering_broken_when_the_later_wave_synced_before_the_set_generated_its_apps():
    # Argo CD counted the set Healthy when applied (14:00:00) and synced wave 10 at 14:00:03; the
    # applicationset-controller created apis-a at 14:00:05 and apis-b at 14:00:06. The run starts at
    # 14:00:10: the set is reconciled and both apps exist, so no member was seen not ready before 14:00:06.
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ROOT), application("infra", -1),
            _created(generated("apis-a", "apis", 3, health_since="2026-11-24T14:00:08Z"), "2026-11-24T14:00:05Z"),
            _created(generated("apis-b", "apis", 3, sync="Unknown", conditions=[comparison_error(
                "apis/missing: app path does not exist", since="2026-11-24T14:00:07Z")]), "2026-11-24T14:00:06Z"),
            application("routes", 10, op_started="2026-11-24T14:00:03Z")]
    s = sets(_declared_at(appset("apis", ["apis-a", "apis-b"]), "2026-11-24T14:00:00Z"))
    out = t.update(index(*apps), None, s, None)
    assert out.phase == "failed"
    assert ("ordering broken: wave 10 app routes synced at 2026-11-24T14:00:03Z while wave 3 app apis-a "
            "(generated by apis) was Missing, then not Healthy yet") in t.violations
    assert ("ordering broken: wave 10 app routes synced at 2026-11-24T14:00:03Z while wave 3 app apis-b "
            "(generated by apis) was Missing (not generated yet)") in t.violations


def test_ordering_broken_when_a_generated_app_is_first_seen_after_the_later_sync_was_judged():
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ROOT), application("infra", -1), generated("apis-a", "apis", 3),
            application("routes", 10, op_started="2026-11-24T14:00:03Z")]
    half = _declared_at(appset("apis", ["apis-a", "apis-b"]), "2026-11-24T14:00:00Z")
    half["status"]["resources"] = half["status"]["resources"][:1]
    half["status"]["resourcesCount"] = 1
    out = t.update(index(*apps), None, sets(half), None)
    assert out.phase == "waiting" and t.violations == []      # routes' sync judged; nothing seen not ready then
    clock.advance(5)
    apps.append(_created(generated("apis-b", "apis", 3), "2026-11-24T14:00:14Z"))
    full = _declared_at(appset("apis", ["apis-a", "apis-b"], rv="101"), "2026-11-24T14:00:00Z")
    out = t.update(index(*apps), {("argocd", "apis-b")}, sets(full), {("argocd", "apis")})
    assert out.phase == "done"
    assert t.violations == ["ordering broken: wave 10 app routes synced at 2026-11-24T14:00:03Z while wave 3 "
                            "app apis-b (generated by apis) was Missing (not generated yet)"]


def test_an_element_added_after_the_later_wave_synced_is_no_ordering_violation():
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ROOT), application("infra", -1), generated("apis-a", "apis", 3),
            _created(generated("apis-c", "apis", 3), "2026-11-24T14:00:09Z"),
            application("routes", 10, op_started="2026-11-24T14:00:03Z")]
    s = sets(_declared_at(appset("apis", ["apis-a", "apis-c"]), "2026-11-24T14:00:08Z"))   # new commit at :08
    assert t.update(index(*apps), None, s, None).phase == "done"
    assert t.violations == []


def test_a_generated_app_of_a_git_generator_is_not_backdated():
    clock = FakeClock()
    t = tracker(clock)
    apps = [root_app(ROOT), application("infra", -1), generated("apis-a", "apis", 3),
            _created(generated("apis-b", "apis", 3), "2026-11-24T14:00:06Z"),
            application("routes", 10, op_started="2026-11-24T14:00:03Z")]
    obj = _declared_at(appset("apis", ["apis-a", "apis-b"]), "2026-11-24T14:00:00Z")
    obj["spec"]["generators"] = [{"git": {"repoURL": "https://example.invalid/x.git", "revision": "main",
                                          "directories": [{"path": "apps/*"}]}}]
    assert t.update(index(*apps), None, sets(obj), None).phase == "done"
    assert t.violations == []


def test_generated_apps_without_a_wave_of_their_own_get_no_warning():
    # Argo CD v3.6.1's generated apps carry no sync-wave annotation unless the template sets one.
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    apps[2], apps[3] = generated("apis-a", "apis"), generated("apis-b", "apis")
    assert t.update(index(*apps), None, s, None).phase == "done"
    assert ("argocd", "apis-a") in t.waves[3].members
    assert not any("sync-wave annotation" in n for n in t.notes), t.notes


def test_a_root_not_yet_synced_to_a_new_element_is_waited_for():
    # A commit added an element: the root compared it (OutOfSync) but its automated sync has not applied
    # the set's new spec yet, so the set still declares and generates the old list.
    clock = FakeClock()
    t = tracker(clock)
    apps, s = _tree()
    apps[0] = root_app(ROOT, sync="OutOfSync")
    out = t.update(index(*apps), None, s, None)
    assert out.phase == "waiting" and "root app root: OutOfSync" in out.message, out.message
    apps[0] = root_app(ROOT, rv="91")
    assert t.update(index(*apps), {("argocd", "root")}, s, set()).phase == "done"


# -- does Argo CD itself hold later waves behind a set's apps? ------------------------------------------
def _set_cm(script=None, progressive=None):
    from tests.unit.plugins.module_utils._argocd.test_argocd_sync_waves_logic import GATING_CM
    cm = {"metadata": {"name": "argocd-cm"}, "data": dict(GATING_CM["data"])}
    if script is not None:
        cm["data"]["resource.customizations.health.argoproj.io_ApplicationSet"] = script
    objects = {}
    if progressive is not None:
        objects[("configmaps", "argocd", "argocd-cmd-params-cm")] = {
            "metadata": {"name": "argocd-cmd-params-cm"},
            "data": {"applicationsetcontroller.enable.progressive.syncs": progressive}}
    return cm, objects


def _role_set_lua():
    from pathlib import Path
    return (Path(__file__).resolve().parents[5] / "roles" / "argocd" / "files"
            / "applicationset-health-gating.lua").read_text()


@pytest.mark.parametrize("script, progressive, verdict, gets", [
    ("role", "true", "gating", 2),
    (None, None, "missing", 1),
    ("role", None, "no-progressive-syncs", 2),
    ("role", "false", "no-progressive-syncs", 2),
    ('hs = {}\nhs.status = "Healthy"\nreturn hs', "true", "not-gating", 1),
])
def test_the_report_says_whether_argo_cd_gates_on_the_sets_apps(script, progressive, verdict, gets):
    from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient
    apps, s = _tree()
    cm, objects = _set_cm(_role_set_lua() if script == "role" else script, progressive)
    clock = FakeClock()
    client = FakeClient(clock, apps, configmap=cm, objects=objects)
    client.sets = s
    result = _run(client, clock)
    assert result["applicationset_health_check"] == verdict
    assert sum(1 for c in client.calls if c[:2] == ("get", "configmaps")) == gets
    assert result["report"][-1].startswith(f"ApplicationSet check: {'gating' if verdict == 'gating' else ''}")
    warned = [w for w in result["warnings"] if w.startswith("ApplicationSet check:")]
    if verdict == "gating":
        assert not warned and "holds back later waves" in result["report"][-1]
    else:
        assert len(warned) == 1 and "the verifier's ordering audit is the guard" in warned[0]
        assert "ecoeco.gitops.argocd role" in warned[0]


def test_a_failure_with_a_non_gating_set_check_says_so():
    from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient
    apps, s = _tree(broken=True)
    cm, _objects = _set_cm()
    clock = FakeClock()
    client = FakeClient(clock, apps, configmap=cm)
    client.sets = s
    msg, result = failure(_run, client, clock)
    assert msg.startswith("wave 3, app apis-b (generated by apis)")
    assert "|| ApplicationSet check: missing (Argo CD does not hold later waves behind generated apps)" in msg
    assert result["applicationset_health_check"] == "missing"


def test_a_tree_without_sets_does_not_judge_the_set_check():
    apps = [root_app([child_entry("infra", 0)]), application("infra", 0)]
    clock, client = _client(apps, [])
    result = _run(client, clock)
    assert result["applicationset_health_check"] is None
    assert not any(line.startswith("ApplicationSet check") for line in result["report"])
    assert [c for c in client.calls if c[:2] == ("get", "configmaps")] == [("get", "configmaps", "argocd", "argocd-cm")]


def test_an_unreadable_argocd_cm_makes_the_set_check_unknown():
    from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError
    from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient
    apps, s = _tree()
    clock = FakeClock()
    client = FakeClient(clock, apps, configmap=K8sError("forbidden", status=403))
    client.sets = s
    result = _run(client, clock)
    assert result["applicationset_health_check"] == "unknown"
    assert result["report"][-1].startswith("ApplicationSet check: unknown")
