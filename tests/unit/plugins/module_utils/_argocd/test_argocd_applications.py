"""Verdicts on real-shaped Application objects: health alone never passes an app."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    ERROR,
    OK,
    WAIT,
    caused_by,
    child_app_keys,
    evaluate,
    parse_wave,
    stale_comparison,
    target_revision_of,
    tracks_to,
    wave_of,
    wave_problem,
)
from tests.support.argocd_objects import (
    CACHED_ERROR,
    COMMIT,
    OLD_COMMIT,
    application,
    child_entry,
    comparison_error,
    root_app,
    workload_resource,
)

ROOT = target_revision_of(root_app([]))


def judge(app, **kw):
    kw.setdefault("root_source", ROOT)
    return evaluate(app, ("argocd", app["metadata"]["name"] if app else "x"), 0, **kw)


@pytest.mark.parametrize("value, wave", [(None, 0), ("", 0), ("0", 0), ("3", 3), ("-2", -2), (" 10 ", 10), (5, 5)])
def test_parse_wave(value, wave):
    assert parse_wave(value, "Application x") == wave


@pytest.mark.parametrize("value", ["one", "1.5", True, "2a"])
def test_bad_wave_counts_as_zero_as_in_argo_cd_and_is_named(value):
    app = application("db", value)
    assert wave_of(app) == 0
    assert wave_problem(app).startswith("Application db: annotation argocd.argoproj.io/sync-wave=")
    assert "syncs it as wave 0" in wave_problem(app)
    assert wave_problem(application("db", "3")) is None


def test_missing_annotation_is_wave_zero():
    assert wave_of(application("ns", None)) == 0


def test_synced_healthy_passes():
    state = judge(application("db", 1))
    assert state.verdict == OK and state.ok
    assert (state.sync, state.health, state.operation, state.revision) == ("Synced", "Healthy", "Succeeded", COMMIT)
    assert state.message == ""


def test_outofsync_progressing_waits():
    state = judge(application("db", 1, sync="OutOfSync", health="Progressing"))
    assert state.verdict == WAIT
    assert "sync OutOfSync" in state.message and "health Progressing" in state.message


def test_synced_degraded_is_an_error():
    app = application("db", 1, health="Degraded")
    app["status"]["health"]["message"] = "Back-off pulling image"
    state = judge(app)
    assert state.verdict == ERROR
    assert "health Degraded: Back-off pulling image" in state.message


def test_comparison_error_with_healthy_health_is_an_error():
    # Seen on Argo CD v3.6.1: app path missing -> sync Unknown, health Healthy.
    app = application("broken", 5, sync="Unknown", health="Healthy", conditions=[comparison_error()],
                      operation_phase=None)
    state = judge(app)
    assert state.verdict == ERROR
    assert state.health == "Healthy" and state.sync == "Unknown"
    assert f"ComparisonError: {CACHED_ERROR}" in state.message
    assert "Manifest generation error (cached)" in state.conditions[0]


def test_invalid_spec_error_fails_even_when_synced():
    app = application("db", 1, conditions=[{"type": "InvalidSpecError",
                                            "message": "application references project nope which does not exist"}])
    assert judge(app).verdict == ERROR


def test_warning_conditions_do_not_fail():
    app = application("db", 1, conditions=[{"type": "SharedResourceWarning", "message": "Namespace/data is part of"}])
    assert judge(app).verdict == OK


def test_stale_compared_to_is_not_synced():
    # spec moved to release-2, the controller still reports the comparison against main
    app = application("db", 1, revision="release-2", compared_revision="main")
    assert stale_comparison(app) == "compared to main, spec wants release-2 (stale comparison)"
    state = judge(app, root_source=target_revision_of(root_app([], revision="release-2")))
    assert state.verdict == WAIT
    assert "stale comparison" in state.message


def test_missing_status_waits():
    state = judge(application("db", 1, sync=None))
    assert state.verdict == WAIT
    assert "no status yet" in state.message


def test_not_created_app_is_missing():
    state = evaluate(None, ("argocd", "apis"), 3)
    assert (state.exists, state.sync, state.health, state.verdict) == (False, "Missing", "Missing", WAIT)


def test_running_operation_waits_even_when_synced_and_healthy():
    state = judge(application("db", 1, operation_phase="Running"))
    assert state.verdict == WAIT
    assert "operation Running: waiting for completion of hook batch/Job/migrate" in state.message


def test_requested_operation_waits():
    app = application("db", 1)
    app["operation"] = {"sync": {"revision": COMMIT}}
    state = judge(app)
    assert state.verdict == WAIT and state.operation == "Requested"


def test_failed_operation_on_current_revision_is_an_error():
    state = judge(application("db", 1, operation_phase="Failed"))
    assert state.verdict == ERROR
    assert "operation Failed" in state.message


def test_failed_operation_of_an_older_revision_does_not_count():
    state = judge(application("db", 1, operation_phase="Failed", op_revision=OLD_COMMIT))
    assert state.verdict == OK


def test_child_must_track_the_roots_revision():
    state = judge(application("db", 1, revision="v1.0", commit=OLD_COMMIT))
    assert state.verdict == WAIT
    assert "tracks v1.0, the root tracks main" in state.message


def test_same_commit_as_the_root_passes_with_another_ref_name():
    assert judge(application("db", 1, revision="HEAD")).verdict == OK   # root main at COMMIT, child HEAD at COMMIT


def test_other_repository_is_not_held_to_the_root_revision():
    app = application("db", 1, revision="v9")
    app["spec"]["source"]["repoURL"] = app["status"]["sync"]["comparedTo"]["source"]["repoURL"] = "https://charts.x"
    assert judge(app).verdict == OK


@pytest.mark.parametrize("expected, verdict", [(COMMIT[:7], OK), (COMMIT, OK), ("main", OK),
                                               (OLD_COMMIT[:8], WAIT), ("release-2", WAIT)])
def test_explicit_target_revision(expected, verdict):
    assert judge(application("db", 1), expected_revision=expected).verdict == verdict


def test_multi_source_app():
    app = application("db", 1)
    srcs = [{"repoURL": "https://charts.x", "chart": "pg", "targetRevision": "15.2.0"},
            {"repoURL": "file:///srv/gitops", "path": "values", "targetRevision": "main", "ref": "values"}]
    app["spec"].pop("source")
    app["spec"]["sources"] = srcs
    app["status"]["sync"]["comparedTo"] = {"sources": [dict(s) for s in srcs]}
    app["status"]["sync"].pop("revision")
    app["status"]["sync"]["revisions"] = ["15.2.0", COMMIT]
    assert judge(app).verdict == OK
    app["status"]["sync"]["comparedTo"]["sources"][0]["targetRevision"] = "15.1.0"
    assert "stale comparison" in judge(app).message


def test_children_and_tracking():
    root = root_app([child_entry("ns", 0), child_entry("db", 1, status="Missing", health=None),
                     workload_resource("Deployment", "argocd", "x", "Healthy")])
    assert child_app_keys(root) == [(("argocd", "ns"), 0), (("argocd", "db"), 1)]
    assert tracks_to(application("db", 1), ("argocd", "root"))
    assert not tracks_to(application("db", 1, root="other"), ("argocd", "root"))
    legacy = application("db", 1, root=None)
    legacy["metadata"]["labels"] = {"app.kubernetes.io/instance": "root"}
    assert tracks_to(legacy, ("argocd", "root"))


def test_nested_parent_is_judged_by_its_children_not_its_lagging_health():
    parent = application("platform", 2, health="Progressing",
                         resources=[child_entry("monitoring", 0, health="Progressing")])
    kid_ok = judge(application("monitoring", 0, root="platform"))
    state = judge(parent, children=[kid_ok])
    assert state.verdict == OK and state.health == "Healthy"
    kid_bad = judge(application("monitoring", 0, root="platform", health="Degraded"))
    state = judge(parent, children=[kid_bad])
    assert state.verdict == ERROR and "child app monitoring" in state.message
    kid_wait = judge(application("monitoring", 0, root="platform", sync="OutOfSync", health="Progressing"))
    assert judge(parent, children=[kid_wait]).verdict == WAIT


def test_caused_by_parses_argo_cds_health_message():
    app = application("databases", 1, health="Progressing")
    app["status"]["health"]["message"] = ("Caused by apps/StatefulSet:data/postgresql, "
                                          "argoproj.io/Application:argocd/db, /Namespace:/data")
    assert caused_by(app) == [("apps", "StatefulSet", "data", "postgresql"),
                              ("argoproj.io", "Application", "argocd", "db"), ("", "Namespace", "", "data")]
    assert caused_by(application("x", 0)) == []


def test_parent_blaming_a_non_application_resource_waits():
    parent = application("platform", 2, health="Progressing",
                         resources=[child_entry("monitoring", 0), workload_resource("Deployment", "ops", "x", None)])
    parent["status"]["resources"][1].pop("health")
    parent["status"]["health"]["message"] = "Caused by apps/Deployment:ops/x"
    kid = judge(application("monitoring", 0, root="platform"))
    state = judge(parent, children=[kid])
    assert state.verdict == WAIT and "caused by Deployment ops/x" in state.message
    parent["status"]["health"]["message"] = "Caused by argoproj.io/Application:argocd/monitoring"
    assert judge(parent, children=[kid]).verdict == OK
