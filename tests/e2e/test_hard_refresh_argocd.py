"""``hard_refresh_on_error`` on real Argo CD: an app stuck on a cached manifest-generation error.

The app's kustomization pulls its base from a second git repository (shared
"platform bases", as teams keep them), by a kustomize remote URL. Argo CD's
repo-server caches a failed manifest generation under the commit of the app's
own repository: after three failures in a row
(``ARGOCD_REPO_SERVER_PAUSE_GEN_AFTER_FAILED_GENERATION_ATTEMPTS``, default 3)
it answers ``Manifest generation error (cached)`` for 60 minutes without
trying again, unless asked for a hard refresh. Fixing the base commits to the
bases repository and leaves the app's commit, the cache key, as it was:
normal refreshes (what a Git webhook asks for) and the controller's periodic
reconciliation keep serving the cached error. The test shows that, then that
the verifier without the option fails on the cached error, and with it sets
one hard refresh and passes, with the fixed base synced.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.gitops_e2e import clock, install_health_check, refresh, verify_waves
from tests.harness import sample_repo
from tests.harness.app_recorder import AppRecorder, error_text, has_error, summary, synced_healthy
from tests.harness.fixtures import record_measurement

pytestmark = [pytest.mark.argocd, pytest.mark.slow]

APP = "web"
NAMESPACE = "web"
SELECTOR = "ecoeco.io/e2e=hard-refresh"
APP_KUSTOMIZATION = "hard-refresh/web/kustomization.yaml"
MISSING = "settings-that-do-not-exist.yaml"
CACHED = "Manifest generation error (cached)"
STUCK_WINDOW = 75.0      # seconds watched after the fix: two resync periods (30 s) and normal refreshes
MAX_FAILED_REFRESHES = 8


def base_files(version: str, broken: bool = False) -> dict[str, str]:
    resources = "  - settings.yaml\n" + (f"  - {MISSING}\n" if broken else "")
    return {
        "web/kustomization.yaml": f"resources:\n{resources}",
        "web/settings.yaml": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n"
                              f"data:\n  version: \"{version}\"\n"),
    }


def write(repo, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")


def write_commit(repo, files: dict[str, str], message: str) -> str:
    write(repo, files)
    return sample_repo.commit_all(repo, message)


def application(argocd) -> str:
    return json.dumps({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": APP, "namespace": argocd.namespace, "labels": {"ecoeco.io/e2e": "hard-refresh"}},
        "spec": {"project": "default",
                 "source": {"repoURL": argocd.repo_url, "targetRevision": "main", "path": "hard-refresh/web"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                "syncOptions": ["CreateNamespace=true"]}}})


def settings_version(cluster) -> str | None:
    cm = cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/web-settings", ok404=True)
    return (cm or {}).get("data", {}).get("version")


@pytest.mark.timeout(1500)
def test_hard_refresh_recovers_an_app_stuck_on_a_cached_generation_error(cluster, argocd, tmp_path):
    install_health_check(cluster, argocd, "gating")
    bases = tmp_path / "platform-bases"
    write(bases, base_files("1"))
    sample_repo.init_repo(bases, "platform bases: web settings v1")
    remote = f"{bases.as_uri()}//web?ref=main"
    argocd.commit({APP_KUSTOMIZATION: f"resources:\n  - {remote}\n"}, "web from the platform bases")
    cluster.apply(application(argocd))
    rec = AppRecorder(cluster.api, argocd.namespace).start()
    try:
        rec.wait_for(APP, synced_healthy, 240)
        assert settings_version(cluster) == "1"

        # The base breaks, and a commit of the app's repo picks it up (a new cache key).
        write_commit(bases, base_files("1", broken=True), "web settings: add a file, forget to commit it")
        argocd.commit({APP_KUSTOMIZATION: f"# base: platform-bases web, branch main\nresources:\n  - {remote}\n"},
                      "web: follow the platform bases")
        failures = 0
        while not has_error(argocd.application(APP), CACHED):
            assert failures < MAX_FAILED_REFRESHES, \
                f"no cached error after {failures} refreshes: {error_text(argocd.application(APP))}"
            refresh(argocd, APP)
            failures += 1
        cached = argocd.application(APP)
        assert MISSING in error_text(cached), error_text(cached)
        print(f"\n[hard refresh] cached error after {failures} refreshes: {error_text(cached)[:300]}")

        # The base is fixed (and moves on to v2); the app's commit, the cache key, stays.
        write_commit(bases, base_files("2"), "web settings v2, complete")
        fixed_at = time.time()
        # Without a hard refresh: normal refreshes (a webhook's) and the periodic
        # reconciliation keep serving the cached error.
        normal = 0
        while time.time() - fixed_at < STUCK_WINDOW:
            refresh(argocd, APP)
            normal += 1
            assert has_error(argocd.application(APP), CACHED), summary(argocd.application(APP))
            time.sleep(min(25.0, max(0.0, STUCK_WINDOW - (time.time() - fixed_at))))
        recovered = rec.first(APP, lambda o: not has_error(o), since=fixed_at)
        assert recovered is None, f"the app left the cached error without a hard refresh at {clock(recovered)}"
        stuck_for = time.time() - fixed_at
        reconciled = len({(o.obj.get("status") or {}).get("reconciledAt") for o in rec.events
                          if o.name == APP and o.at >= fixed_at})
        print(f"[hard refresh] still cached {stuck_for:.0f}s after the fix, through {normal} normal refreshes "
              f"and {reconciled} reconciliations")
        assert settings_version(cluster) == "1"

        # The verifier without the option fails on the cached error, naming it.
        run, result = verify_waves(cluster, argocd, tmp_path, label_selector=SELECTOR, expected_apps=[APP],
                                   wave_timeout=60, timeout=120, hard_refresh_on_error=False, expect_failure=True)
        assert run.ok, str(run)
        print(f"[hard refresh] without the option: {result.get('msg', '')[:400]}")
        assert result.get("failed") is True, result
        assert result["refreshed"] == [] and result["changed"] is False
        assert f"wave 0, app {APP}" in result["msg"] and CACHED in result["msg"], result["msg"]

        # With it: one hard refresh, the app regenerates from the fixed base and passes.
        begin = time.time()
        run, result = verify_waves(cluster, argocd, tmp_path, label_selector=SELECTOR, expected_apps=[APP],
                                   wave_timeout=180, timeout=300, hard_refresh_on_error=True)
        assert run.ok, str(run)
        print("[hard refresh] with the option:\n" + "\n".join(result.get("report", [])) + f"\n{result.get('msg')}")
        assert not result.get("failed"), result.get("msg")
        assert result["refreshed"] == [APP] and result["changed"] is True, result
        assert [(w["wave"], w["healthy"]) for w in result["waves"]] == [(0, True)]
        hard_at = rec.first(APP, lambda o: (o.get("metadata", {}).get("annotations") or {})
                            .get("argocd.argoproj.io/refresh") == "hard", since=begin)
        healthy_at = rec.first(APP, synced_healthy, since=begin)
        assert hard_at is not None and healthy_at is not None and healthy_at >= hard_at
        assert settings_version(cluster) == "2"
        record_measurement(
            "hard_refresh_on_error recovery",
            f"cached error held {stuck_for:.0f}s after the fix through {normal} normal refreshes; with the option "
            f"Synced/Healthy {healthy_at - hard_at:.1f}s after the verifier's hard refresh "
            f"(verifier {result['elapsed']:.1f}s, {result['api_requests']} API requests)")
    finally:
        rec.stop()
        print("[hard refresh] timeline:\n  " + "\n  ".join(rec.timeline([APP])[-40:]))
        cluster.kubectl("delete", "application", "-n", argocd.namespace, APP, "--wait=false", check=False)
