"""Issue #13 with Argo CD's documented Application health check, on real Argo CD.

The argocd role installs the documented check (``argocd_application_health_check:
documented``), which copies ``status.health``. The sample repo's wave-1 overlay
(databases) is broken: its app shows a ComparisonError, sync ``Unknown`` and
health ``Healthy``, so Argo CD syncs waves 2 and 3 anyway (asserted, so that
the test notices if Argo CD changes). The verifier still fails on wave 1, warns
that Argo CD does not hold back later waves, and reports the broken ordering
naming both apps of each pair.
"""

from __future__ import annotations

import pytest

from tests.e2e.gitops_e2e import (
    BROKEN_APP,
    HEALTH_KEY,
    LATER_APPS,
    ROLE_FILES,
    WAVES,
    apply_root_over_a_broken_middle_wave,
    clock,
    report_rows,
    verify_fails_on_the_broken_app,
)
from tools.localcluster.app_recorder import AppRecorder, synced_by_operation
from tests.support.cluster_fixtures import record_measurement

pytestmark = [pytest.mark.argocd, pytest.mark.slow]


@pytest.mark.timeout(1800)
def test_documented_check_lets_argocd_sync_past_a_broken_wave_and_the_verifier_says_so(cluster, argocd):
    rec = AppRecorder(cluster.api, argocd.namespace).start()
    try:
        broken_at, argocd_error = apply_root_over_a_broken_middle_wave(
            cluster, argocd, rec, argocd_application_health_check="documented")
        cm = cluster.api.get(f"/api/v1/namespaces/{argocd.namespace}/configmaps/argocd-cm")
        assert cm["data"][HEALTH_KEY] == (ROLE_FILES / "application-health-documented.lua").read_text()
        broken = rec.current(BROKEN_APP)["status"]
        print(f"[documented] {BROKEN_APP}: sync {broken['sync']['status']}, health {broken['health']['status']}")

        # Argo CD syncs the later waves past the broken one.
        synced = {app: rec.wait_for(app, synced_by_operation, 300) for app in LATER_APPS}
        for app, at in synced.items():
            created = rec.created_at(app)
            print(f"[documented] {app} (wave {WAVES[app]}) created {clock(created)}, synced {clock(at)}; "
                  f"{BROKEN_APP} broken since {clock(broken_at)}")
            assert created is not None and created > broken_at

        verify, took = verify_fails_on_the_broken_app(cluster, argocd, argocd_error, "documented")
        output = verify.stdout + verify.stderr
        assert "will not hold back later" in output, output
        for app in LATER_APPS:
            assert (f"ordering broken: wave {WAVES[app]} app {app} synced at" in verify.stdout
                    and f"while wave 1 app {BROKEN_APP} was" in verify.stdout), f"no broken ordering for {app}\n{verify}"
        rows = report_rows(verify.stdout)
        assert rows[BROKEN_APP][:2] == (1, "Unknown"), rows
        assert all(rows[app][1] == "Synced" for app in LATER_APPS), rows
        # The later apps still exist (Argo CD does not undo what it synced).
        assert all(rec.current(app) is not None for app in LATER_APPS)
        record_measurement("documented check, broken wave 1",
                           "Argo CD synced " + ", ".join(f"{app} {synced[app] - broken_at:.1f}s" for app in LATER_APPS)
                           + f" after {BROKEN_APP}'s ComparisonError; verifier failed in {took:.0f}s")
    finally:
        rec.stop()
        print("[documented] timeline:\n  " + "\n  ".join(rec.timeline()[-50:]))
