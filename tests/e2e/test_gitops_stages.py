"""The GitOps stages of site.yml on real Argo CD, as a user runs them.

``ansible-playbook ecoeco.gitops.site --tags gitops`` (node labels, Argo CD, App of Apps) against the
harness's real kube-apiserver and Argo CD (application-controller,
repo-server, redis) with the sample repo served as ``file://``.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.gitops_e2e import APPLICATIONS, APPSET, BROKEN_KUSTOMIZATION, REPORTED, push, report_rows, site

pytestmark = [pytest.mark.argocd, pytest.mark.slow]


@pytest.fixture(scope="module")
def converged(cluster, argocd):
    """The first run of the GitOps stages, timed from root-app apply to last wave healthy."""
    argocd.reset_repo()
    result = site(cluster, argocd, "gitops")
    print(f"\n[e2e] GitOps stages first run: {result.seconds:.1f}s rc={result.rc}")
    return result


def test_waves_become_healthy_in_order_with_a_report(cluster, argocd, converged):
    assert converged.ok, str(converged)
    rows = report_rows(converged.stdout)
    assert set(rows) == set(REPORTED), f"report rows {rows}\n{converged}"
    for app, (wave, sync, health, seconds) in rows.items():
        assert wave == REPORTED[app]
        assert (sync, health) == ("Generated" if app == APPSET else "Synced", "Healthy"), (app, sync, health)
        assert float(seconds) >= 0
    by_wave = [max(float(s) for a, (w, _s, _h, s) in rows.items() if w == n) for n in range(5)]
    assert by_wave == sorted(by_wave), f"seconds to healthy per wave not increasing: {by_wave}"
    print(f"[e2e] seconds to healthy per wave (module clock): {by_wave}")
    # With the gating check Argo CD creates a wave's apps only after the earlier
    # wave is healthy: creation times follow the waves, and nothing was out of order.
    created = {a["metadata"]["name"]: a["metadata"]["creationTimestamp"] for a in argocd.applications()}
    per_wave = [[created[name] for name, w in APPLICATIONS.items() if w == n] for n in range(5)]
    assert all(max(a) <= min(b) for a, b in zip(per_wave, per_wave[1:])), \
        f"child apps created out of wave order: {created}"
    assert "ordering broken" not in converged.stdout
    # The report names the health checks in use: the argocd role's defaults, which gate (for the
    # ApplicationSet: its check and the applicationset-controller's progressive syncs).
    assert "health check: gating (argocd-cm)" in converged.stdout, str(converged)
    assert "ApplicationSet check: gating (argocd-cm, progressive syncs on)" in converged.stdout, str(converged)


def test_second_run_changes_nothing_and_only_reverifies(cluster, argocd, converged):
    assert converged.ok, str(converged)
    again = site(cluster, argocd, "gitops")
    assert again.ok, str(again)
    assert again.ok and again.changed == 0, str(again)
    assert set(report_rows(again.stdout)) == set(REPORTED)
    print(f"[e2e] second run: {again.seconds:.1f}s (first {converged.seconds:.1f}s)")


def test_broken_kustomization_in_wave_2_fails_naming_it_then_the_fix_passes(cluster, argocd, converged):
    assert converged.ok, str(converged)
    push(argocd, {"k8s/workers/overlays/prod/kustomization.yaml": BROKEN_KUSTOMIZATION},
         "break the workers overlay")
    start = time.monotonic()
    broken = site(cluster, argocd, "app_of_apps", app_of_apps_wave_timeout=120,
                  app_of_apps_timeout=300, app_of_apps_hard_refresh_on_error=False)
    print(f"[e2e] broken wave 2 detected in {time.monotonic() - start:.1f}s")
    assert not broken.ok, str(broken)
    text = broken.stdout
    assert "wave 2" in text and "workers" in text, str(broken)
    assert "ComparisonError" in text or "Manifest generation error" in text, str(broken)
    assert "deployment-that-does-not-exist.yaml" in text, str(broken)

    push(argocd)
    fixed = site(cluster, argocd, "app_of_apps", app_of_apps_wave_timeout=300)
    assert fixed.ok, str(fixed)
    rows = report_rows(fixed.stdout)
    assert set(rows) == set(REPORTED), rows
    assert all((s, h) == ("Generated" if app == APPSET else "Synced", "Healthy")
               for app, (_w, s, h, _sec) in rows.items()), rows


def test_without_the_health_check_the_verifier_warns_waves_cannot_gate(cluster, argocd, converged):
    assert converged.ok, str(converged)
    try:
        off = site(cluster, argocd, "argocd", argocd_application_health_check="none")
        assert off.ok, str(off)
        verify = site(cluster, argocd, "verify", app_of_apps_wave_timeout=120)
        assert verify.ok, str(verify)
        assert "will not hold back later" in verify.stdout + verify.stderr, str(verify)
    finally:
        restored = site(cluster, argocd, "argocd")
        assert restored.ok, str(restored)
