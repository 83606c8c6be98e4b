"""Issue #13 with the argocd role's default (gating) Application health check, on real Argo CD.

The sample repo's wave-1 overlay (databases) is broken: kustomize cannot build
it, Argo CD shows a ComparisonError. With the gating check the root stops at
wave 1: the Applications of waves 2 and 3 are never created (watched through
the API for a bounded window), and the verifier fails naming the wave, the app
and Argo CD's error text.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.gitops_e2e import (
    BROKEN_APP,
    HEALTH_KEY,
    LATER_APPS,
    ROLE_FILES,
    SITE_ROOT,
    apply_root_over_a_broken_middle_wave,
    clock,
    report_rows,
    verify_fails_on_the_broken_app,
)
from tools.localcluster.app_recorder import AppRecorder
from tests.support.cluster_fixtures import record_measurement

pytestmark = [pytest.mark.argocd, pytest.mark.slow]

WINDOW = 90.0  # seconds watched after the error appeared: the root's first retries (5 s, 10 s, 20 s, 40 s)


@pytest.mark.timeout(1800)
def test_default_check_never_creates_the_waves_after_a_broken_one(cluster, argocd):
    rec = AppRecorder(cluster.api, argocd.namespace).start()
    try:
        broken_at, argocd_error = apply_root_over_a_broken_middle_wave(cluster, argocd, rec)
        cm = cluster.api.get(f"/api/v1/namespaces/{argocd.namespace}/configmaps/argocd-cm")
        assert cm["data"][HEALTH_KEY] == (ROLE_FILES / "application-health-gating.lua").read_text()

        # Bounded observation: Argo CD keeps the root at wave 1 and never creates waves 2 and 3.
        time.sleep(max(0.0, broken_at + WINDOW - time.time()))
        root = argocd.application(SITE_ROOT)["status"]
        operation = root.get("operationState") or {}
        print(f"[gating] {WINDOW:.0f}s after the error, root: sync {root['sync']['status']}, operation "
              f"{operation.get('phase')} ({operation.get('message', '')[:200]}), retries {operation.get('retryCount')}")
        for app in LATER_APPS:
            assert not rec.ever_existed(app), f"Argo CD created {app} past the broken wave"

        verify, took = verify_fails_on_the_broken_app(cluster, argocd, argocd_error, "gating")
        rows = report_rows(verify.stdout)
        assert rows[BROKEN_APP][:2] == (1, "Unknown"), rows
        assert {app: rows[app][1:3] for app in LATER_APPS} == {app: ("Missing", "Missing") for app in LATER_APPS}
        assert "ordering broken" not in verify.stdout
        assert "will not hold back" not in verify.stdout + verify.stderr
        for app in LATER_APPS:
            assert not rec.ever_existed(app), f"Argo CD created {app} past the broken wave"
        watched = time.time() - broken_at
        record_measurement("gating check, broken wave 1",
                           f"waves 2-3 never created during {watched:.0f}s after {BROKEN_APP}'s ComparisonError "
                           f"(at {clock(broken_at)}); verifier failed in {took:.0f}s")
    finally:
        rec.stop()
        print("[gating] timeline:\n  " + "\n  ".join(rec.timeline()[-40:]))
