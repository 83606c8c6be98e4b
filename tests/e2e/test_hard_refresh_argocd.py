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

Two cases: a child app (verified by label selector), and the root app of an
App-of-Apps whose list of children comes from the base.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

import pytest

from tests.e2e.gitops_e2e import clock, install_health_check, refresh, verify_waves
from tools.localcluster import sample_repo
from tools.localcluster.app_recorder import AppRecorder, error_text, has_error, summary, synced_healthy
from tests.support.cluster_fixtures import record_measurement
from tools.localcluster.procs import wait_until

pytestmark = [pytest.mark.argocd, pytest.mark.slow]

MISSING = "file-that-was-never-committed.yaml"
CACHED = "Manifest generation error (cached)"
STUCK_WINDOW = 75.0      # seconds watched after the fix: two resync periods (30 s) and normal refreshes
MAX_FAILED_REFRESHES = 8
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"


def application(argocd, name: str, path: str, namespace: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": argocd.namespace, "labels": labels or {}},
            "spec": {"project": "default",
                     "source": {"repoURL": argocd.repo_url, "targetRevision": "main", "path": path},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                    "syncOptions": ["CreateNamespace=true"]}}}


@dataclass(frozen=True)
class Case:
    """One app whose kustomization takes a remote base: what is in the base, how to verify, what got applied."""

    id: str
    app: str                                        # the app that gets stuck
    base: Callable[[object, str], str]              # (argocd, version) -> YAML of the base's one resource
    verifier: dict                                  # argocd_sync_waves options selecting what to verify
    applied: Callable[[object, object], str | None]  # (cluster, argocd) -> version live in the cluster
    extra_files: Callable[[object], dict]           # (argocd) -> files the app needs in the GitOps repo


def _settings(_argocd, version: str) -> str:
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n"
            f"data:\n  version: \"{version}\"\n")


def _settings_version(cluster, _argocd) -> str | None:
    cm = cluster.api.get("/api/v1/namespaces/web/configmaps/web-settings", ok404=True)
    return (cm or {}).get("data", {}).get("version")


def _edge_app(argocd, version: str) -> str:
    return json.dumps(application(argocd, "edge", "hard-refresh/edge", "edge", {"ecoeco.io/base-version": version}))


def _edge_version(_cluster, argocd) -> str | None:
    return ((argocd.application("edge") or {}).get("metadata", {}).get("labels") or {}).get("ecoeco.io/base-version")


CASES = [
    Case("child-app", "web", _settings, {"label_selector": "ecoeco.io/e2e=hard-refresh", "expected_apps": ["web"]},
         _settings_version, lambda _argocd: {}),
    # The root's list of children comes from the base: when the root cannot render, the verifier cannot
    # even see the waves.
    Case("root-app", "platform", _edge_app, {"root_app": "platform"}, _edge_version,
         lambda _argocd: {"hard-refresh/edge/settings.yaml": _settings(None, "edge").replace("web-", "edge-")}),
]


def base_files(case: Case, argocd, version: str, broken: bool = False) -> dict[str, str]:
    resources = "  - resource.yaml\n" + (f"  - {MISSING}\n" if broken else "")
    return {f"{case.id}/kustomization.yaml": f"resources:\n{resources}",
            f"{case.id}/resource.yaml": case.base(argocd, version)}


def write(repo, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")


def write_commit(repo, files: dict[str, str], message: str) -> str:
    write(repo, files)
    return sample_repo.commit_all(repo, message)


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hard_refresh_recovers_an_app_stuck_on_a_cached_generation_error(cluster, argocd, tmp_path, case):
    install_health_check(cluster, argocd, "gating")
    bases = tmp_path / "platform-bases"
    write(bases, base_files(case, argocd, "1"))
    sample_repo.init_repo(bases, "platform bases: v1")
    remote = f"{bases.as_uri()}//{case.id}?ref=main"
    kustomization = f"hard-refresh/{case.app}/kustomization.yaml"
    argocd.commit({kustomization: f"resources:\n  - {remote}\n", **case.extra_files(argocd)},
                  f"{case.app} from the platform bases")
    labels = {"ecoeco.io/e2e": "hard-refresh"} if case.id == "child-app" else {}
    cluster.apply(json.dumps(application(argocd, case.app, f"hard-refresh/{case.app}", case.app, labels)))
    rec = AppRecorder(cluster.api, argocd.namespace).start()
    tag = f"[hard refresh {case.id}]"
    try:
        rec.wait_for(case.app, synced_healthy, 240)
        run, result = verify_waves(cluster, argocd, tmp_path, wave_timeout=120, timeout=240, **case.verifier)
        assert run.ok and not result.get("failed"), result.get("msg")
        assert case.applied(cluster, argocd) == "1"

        # The base breaks, and a commit of the app's repo picks it up (a new cache key).
        write_commit(bases, base_files(case, argocd, "1", broken=True), "add a file, forget to commit it")
        argocd.commit({kustomization: f"# base: platform-bases {case.id}, branch main\nresources:\n  - {remote}\n"},
                      f"{case.app}: follow the platform bases")
        failures = 0
        while not has_error(argocd.application(case.app), CACHED):
            assert failures < MAX_FAILED_REFRESHES, \
                f"no cached error after {failures} refreshes: {error_text(argocd.application(case.app))}"
            refresh(argocd, case.app)
            failures += 1
        cached = argocd.application(case.app)
        assert MISSING in error_text(cached), error_text(cached)
        print(f"\n{tag} cached error after {failures} refreshes: {error_text(cached)[:300]}")

        # The base is fixed (and moves on to v2); the app's commit, the cache key, stays.
        write_commit(bases, base_files(case, argocd, "2"), "v2, complete")
        fixed_at = time.time()
        # Without a hard refresh: normal refreshes (a webhook's) and the periodic
        # reconciliation keep serving the cached error.
        normal = 0
        while time.time() - fixed_at < STUCK_WINDOW:
            refresh(argocd, case.app)
            normal += 1
            assert has_error(argocd.application(case.app), CACHED), summary(argocd.application(case.app))
            time.sleep(min(25.0, max(0.0, STUCK_WINDOW - (time.time() - fixed_at))))
        recovered = rec.first(case.app, lambda o: not has_error(o), since=fixed_at)
        assert recovered is None, f"the app left the cached error without a hard refresh at {clock(recovered)}"
        stuck_for = time.time() - fixed_at
        reconciled = len({(e.obj.get("status") or {}).get("reconciledAt") for e in rec.events
                          if e.name == case.app and e.at >= fixed_at})
        print(f"{tag} still cached {stuck_for:.0f}s after the fix, through {normal} normal refreshes "
              f"and {reconciled} reconciliations")
        assert case.applied(cluster, argocd) == "1"

        # The verifier without the option fails on the cached error, naming it.
        run, result = verify_waves(cluster, argocd, tmp_path, wave_timeout=60, timeout=120,
                                   hard_refresh_on_error=False, expect_failure=True, **case.verifier)
        assert run.ok, str(run)
        print(f"{tag} without the option: {result.get('msg', '')[:400]}")
        assert result.get("failed") is True, result
        assert result["refreshed"] == [] and result["changed"] is False
        assert CACHED in result["msg"], result["msg"]
        named = f"wave 0, app {case.app}" if case.id == "child-app" else f"root app {case.app} cannot list"
        assert named in result["msg"], result["msg"]

        # With it: one hard refresh, the app regenerates from the fixed base and passes.
        begin = time.time()
        run, result = verify_waves(cluster, argocd, tmp_path, wave_timeout=180, timeout=300,
                                   hard_refresh_on_error=True, **case.verifier)
        assert run.ok, str(run)
        print(f"{tag} with the option:\n" + "\n".join(result.get("report", [])) + f"\n{result.get('msg')}")
        assert not result.get("failed"), result.get("msg")
        assert result["refreshed"] == [case.app] and result["changed"] is True, result
        assert all(w["healthy"] for w in result["waves"]) and result["waves"], result["waves"]
        hard_at = rec.first(case.app, lambda o: (o.get("metadata", {}).get("annotations") or {})
                            .get(REFRESH_ANNOTATION) == "hard", since=begin)
        healthy_at = rec.first(case.app, synced_healthy, since=begin)
        assert hard_at is not None and healthy_at is not None and healthy_at >= hard_at
        cleared_at = rec.first(case.app, lambda o: not has_error(o), since=hard_at)
        # What the fixed base renders reaches the cluster (for the root: once the root has synced its children;
        # the verifier judges the children themselves, not the root's own sync).
        wait_until("the fixed base applied", lambda: case.applied(cluster, argocd) == "2", 120, interval=0.5)
        record_measurement(
            f"hard_refresh_on_error recovery ({case.id})",
            f"cached error held {stuck_for:.0f}s after the fix through {normal} normal refreshes; with the option "
            f"error gone {cleared_at - hard_at:.1f}s and {case.app} Synced/Healthy {healthy_at - hard_at:.1f}s "
            "after the verifier's hard refresh "
            f"(verifier {result['elapsed']:.1f}s, {result['api_requests']} API requests)")
    finally:
        rec.stop()
        print(f"{tag} timeline:\n  " + "\n  ".join(rec.timeline()[-40:]))
        cluster.kubectl("delete", "application", "-n", argocd.namespace, case.app, "--wait=false", check=False)
