"""The GitOps stages of site.yml on real Argo CD, as a user runs them.

``ansible-playbook ecoeco.gitops.site --tags gitops`` (node labels, Argo CD, App of Apps) against the
harness's real kube-apiserver and Argo CD (application-controller,
repo-server, redis) with the sample repo served as ``file://``.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.harness.ansible import PlaybookResult, run_playbook
from tests.harness.demo import demo_extra_vars
from tests.harness.nodes import DEFAULT_INVENTORY

pytestmark = [pytest.mark.argocd, pytest.mark.slow]

# A row of the wave table as the role prints it (inside a debug list: quoted).
ROW = re.compile(r'^\s*"?\s*(-?\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+([^\s",]+)', re.MULTILINE)
WAVES = {"infrastructure": 0, "databases": 1, "workers": 2, "apis": 3}
BROKEN_KUSTOMIZATION = "resources:\n  - deployment-that-does-not-exist.yaml\n"


def site(cluster, argocd, tags: str, **extra) -> PlaybookResult:
    """One run of the site playbook's GitOps stages against the local cluster."""
    extra_vars = {**demo_extra_vars(cluster, argocd), **extra}
    return run_playbook("ecoeco.gitops.site", DEFAULT_INVENTORY, extra_vars=extra_vars,
                        args=["--tags", tags], timeout=1500)


def push(argocd, files: dict | None = None, message: str = "") -> None:
    """Commit (or reset the repo), then refresh every app as Git's webhook would.

    A file:// repo has no webhook: without the refresh Argo CD would notice the
    commit only at its reconciliation period (3 minutes by default).
    """
    if files is None:
        argocd.reset_repo()
    else:
        argocd.commit(files, message)
    for app in argocd.applications():
        argocd.refresh(app["metadata"]["name"], hard=False)
    head = argocd.head()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        root = argocd.application("root") or {}
        if root.get("status", {}).get("sync", {}).get("revision") == head:
            return
        time.sleep(1)
    raise AssertionError(f"Argo CD did not see commit {head} within 120s")


def report_rows(stdout: str) -> dict[str, tuple[int, str, str, str]]:
    """App -> (wave, sync, health, seconds) from the printed wave table."""
    rows = {}
    for wave, app, sync, health, seconds in ROW.findall(stdout):
        if app in WAVES:
            rows[app] = (int(wave), sync, health, seconds)
    return rows


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
    assert set(rows) == set(WAVES), f"report rows {rows}\n{converged}"
    for app, (wave, sync, health, seconds) in rows.items():
        assert wave == WAVES[app]
        assert (sync, health) == ("Synced", "Healthy"), (app, sync, health)
        assert float(seconds) >= 0
    by_wave = [max(float(s) for a, (w, _s, _h, s) in rows.items() if w == n) for n in range(4)]
    assert by_wave == sorted(by_wave), f"seconds to healthy per wave not increasing: {by_wave}"
    print(f"[e2e] seconds to healthy per wave (module clock): {by_wave}")
    # With the gating check Argo CD creates a wave's apps only after the earlier
    # wave is healthy: creation times follow the waves, and nothing was out of order.
    created = {a["metadata"]["name"]: a["metadata"]["creationTimestamp"] for a in argocd.applications()}
    stamps = [created[name] for name in sorted(WAVES, key=WAVES.get)]
    assert stamps == sorted(stamps), f"child apps created out of wave order: {created}"
    assert "ordering broken" not in converged.stdout


def test_second_run_changes_nothing_and_only_reverifies(cluster, argocd, converged):
    assert converged.ok, str(converged)
    again = site(cluster, argocd, "gitops")
    assert again.ok, str(again)
    if again.changed:
        # Known flake (open): see test_roles_k8s.test_argocd_rerun_changes_nothing.
        print(f"[e2e] first rerun reported changed={again.changed}; rerunning once")
        again = site(cluster, argocd, "gitops")
    assert again.ok and again.changed == 0, str(again)
    assert set(report_rows(again.stdout)) == set(WAVES)
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
    assert all((s, h) == ("Synced", "Healthy") for _w, s, h, _sec in rows.values()), rows


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
