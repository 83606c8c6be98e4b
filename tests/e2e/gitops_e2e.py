"""Steps the end-to-end tests on the harness's real Argo CD share.

- :func:`site`: ``ansible-playbook ecoeco.gitops.site --tags ...`` against the
  local cluster, as a user runs it (root app ``root``).
- :func:`push`: commit to the ``file://`` repo (or reset it), then refresh the
  apps as Git's webhook would; the repo has no webhook.
- :func:`verify_waves`: ``ecoeco.gitops.argocd_sync_waves`` alone through
  ansible-playbook, with its full result (waves, report, refreshed, ...).
- :func:`install_health_check`: put one of the argocd role's Application
  health checks into argocd-cm directly (tests that do not run the role);
  :func:`install_appset_health_check` the same for ApplicationSets.
- :func:`refresh`: one refresh of one app, waiting until the controller has
  processed it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tools.localcluster.ansible import PlaybookResult, run_playbook
from tools.localcluster.app_recorder import error_text, has_error
from tools.localcluster.demo import demo_extra_vars
from tools.localcluster.nodes import DEFAULT_INVENTORY
from tools.localcluster.procs import wait_until

ROOT_DIR = Path(__file__).resolve().parents[2]
SYNC_WAVES_PLAYBOOK = ROOT_DIR / "tests" / "integration" / "playbooks" / "sync_waves.yml"
ROLE_FILES = ROOT_DIR / "roles" / "argocd" / "files"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
APPSET_HEALTH_KEY = "resource.customizations.health.argoproj.io_ApplicationSet"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"

# The root app site.yml's app_of_apps role creates (app_of_apps_name's default).
SITE_ROOT = "root"
# The sample repo's root children and their waves: Applications, and the ApplicationSet apis (wave 3),
# which generates one Application per API (in its wave).
WAVES = {"infrastructure": 0, "databases": 1, "workers": 2, "apis": 3, "gateway": 4}
APPSET = "apis"
GENERATED = ("api-auth", "api-chat", "api-scan")
REPORTED = {**WAVES, **{name: WAVES[APPSET] for name in GENERATED}}   # every row of the wave report
APPLICATIONS = {name: wave for name, wave in REPORTED.items() if name != APPSET}
OVERLAY = "k8s/{app}/overlays/prod/kustomization.yaml"
MISSING_FILE = "deployment-that-does-not-exist.yaml"
BROKEN_KUSTOMIZATION = f"resources:\n  - {MISSING_FILE}\n"
# A row of the wave table as the role prints it (inside a debug list: quoted); a set's name is followed
# by "(ApplicationSet)", its generated apps are indented under it.
ROW = re.compile(r'^\s*"?\s*(-?\d+)\s+(\S+)(?: \(ApplicationSet\))?\s+(\S+)\s+(\S+)\s+([^\s",]+)', re.MULTILINE)


def site(cluster, argocd, tags: str, **extra: Any) -> PlaybookResult:
    """One run of the site playbook's GitOps stages against the local cluster."""
    extra_vars = {**demo_extra_vars(cluster, argocd), **extra}
    return run_playbook("ecoeco.gitops.site", DEFAULT_INVENTORY, extra_vars=extra_vars,
                        args=["--tags", tags], timeout=1500)


def report_rows(stdout: str) -> dict[str, tuple[int, str, str, str]]:
    """App (or set) -> (wave, sync, health, seconds) from the printed wave table of the sample's apps."""
    rows = {}
    for wave, app, sync, health, seconds in ROW.findall(stdout):
        if app in REPORTED:
            rows[app] = (int(wave), sync, health, seconds)
    return rows


def refresh(argocd, name: str, hard: bool = False, timeout: float = 90.0) -> float:
    """Ask for a refresh of one app and wait until the controller has processed it (annotation gone)."""
    begin = time.monotonic()
    argocd.refresh(name, hard=hard)

    def processed() -> bool:
        annotations = ((argocd.application(name) or {}).get("metadata") or {}).get("annotations") or {}
        return REFRESH_ANNOTATION not in annotations

    wait_until(f"{'hard' if hard else 'normal'} refresh of {name} processed", processed, timeout, interval=0.5)
    return time.monotonic() - begin


def push(argocd, files: dict | None = None, message: str = "", root: str = SITE_ROOT,
         timeout: float = 120.0) -> str:
    """Commit (or reset the repo), then refresh every app as Git's webhook would; return the commit.

    A file:// repo has no webhook: without the refresh Argo CD would notice the
    commit only at its reconciliation period (3 minutes by default). Waits until
    the root app has compared against the new commit.
    """
    if files is None:
        argocd.reset_repo()
    else:
        argocd.commit(files, message)
    for app in argocd.applications():
        argocd.refresh(app["metadata"]["name"], hard=False)
    head = argocd.head()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = argocd.application(root) or {}
        if app.get("status", {}).get("sync", {}).get("revision") == head:
            return head
        time.sleep(1)
    raise AssertionError(f"Argo CD did not see commit {head} within {timeout:.0f}s")


def install_health_check(cluster, argocd, kind: str) -> None:
    """Set argocd-cm's Application health check to the argocd role's ``gating`` or ``documented`` Lua, or none."""
    value = None if kind == "none" else (ROLE_FILES / f"application-health-{kind}.lua").read_text()
    cluster.api.request("PATCH", f"/api/v1/namespaces/{argocd.namespace}/configmaps/argocd-cm",
                        {"data": {HEALTH_KEY: value}}, content_type="application/merge-patch+json")


def install_appset_health_check(cluster, argocd, kind: str) -> None:
    """Set argocd-cm's ApplicationSet health check to the argocd role's ``gating`` Lua, or none.

    The harness runs the applicationset-controller with progressive syncs on, as the role configures it
    with this check.
    """
    value = None if kind == "none" else (ROLE_FILES / f"applicationset-health-{kind}.lua").read_text()
    cluster.api.request("PATCH", f"/api/v1/namespaces/{argocd.namespace}/configmaps/argocd-cm",
                        {"data": {APPSET_HEALTH_KEY: value}}, content_type="application/merge-patch+json")


def verify_waves(cluster, argocd, tmp_path: Path, *, expect_failure: bool = False, timeout_run: float = 900,
                 **options: Any) -> tuple[PlaybookResult, dict]:
    """Run argocd_sync_waves once (options without the ``sw_`` prefix); return the run and the module result."""
    result_file = tmp_path / f"sync-waves-{time.monotonic_ns()}.json"
    extra = {"kubeconfig": str(cluster.kubeconfig), "result_file": str(result_file),
             "sw_namespace": argocd.namespace, "sw_expect_failure": expect_failure}
    extra.update({f"sw_{key}": value for key, value in options.items()})
    run = run_playbook(SYNC_WAVES_PLAYBOOK, extra_vars=extra, timeout=timeout_run)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return run, result


def rfc3339(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as the API server or the verifier writes it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def clock(at: float | None) -> str:
    """A wall time as ``HH:MM:SS.mmmZ`` for test output."""
    if at is None:
        return "-"
    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


# -- a broken kustomization in a middle wave (issue #13) ------------------------------------------------
BROKEN_APP = "databases"          # wave 1 of the sample
LATER_APPS = ("workers", "gateway")  # waves 2 and 4 (wave 3 is the ApplicationSet apis)


def apply_root_over_a_broken_middle_wave(cluster, argocd, recorder, **extra: Any) -> tuple[float, str]:
    """Break wave 1's overlay, run site.yml's GitOps stages without the verification; wait for Argo CD's error.

    Returns the wall time the recorder saw the ComparisonError on the broken app,
    and Argo CD's error text.
    """
    argocd.commit({OVERLAY.format(app=BROKEN_APP): BROKEN_KUSTOMIZATION}, f"break the {BROKEN_APP} overlay")
    setup = site(cluster, argocd, "gitops", app_of_apps_verify=False, **extra)
    assert setup.ok, str(setup)
    broken_at = recorder.wait_for(BROKEN_APP, lambda o: has_error(o, MISSING_FILE), 300)
    text = error_text(recorder.current(BROKEN_APP))
    print(f"\n[waves e2e] site.yml --tags gitops (verification off) {setup.seconds:.0f}s; "
          f"{BROKEN_APP} broken at {clock(broken_at)}: {text[:300]}")
    return broken_at, text


def verify_fails_on_the_broken_app(cluster, argocd, argocd_error: str, label: str,
                                   where: str = f"wave 1, app {BROKEN_APP}") -> tuple[PlaybookResult, float]:
    """Run site.yml's verify stage; assert it failed naming ``where``, the ComparisonError and Argo CD's text.

    Returns the run and its seconds (printed with the wave report under ``label``).
    """
    begin = time.monotonic()
    run = site(cluster, argocd, "verify", app_of_apps_wave_timeout=120, app_of_apps_timeout=300)
    took = time.monotonic() - begin
    print(f"[{label}] verifier failed after {took:.0f}s (playbook):\n{wave_report(run.stdout, 600)}")
    assert not run.ok, str(run)
    text = run.stdout.replace('\\"', '"')
    assert where in text, str(run)
    assert "ComparisonError" in text and MISSING_FILE in text, str(run)
    # Argo CD's message as the API shows it (after its 'desc = '), as far as kustomize's own words
    core = argocd_error.split("desc = ", 1)[-1]
    core = core.replace("Manifest generation error (cached): ", "")[:90]
    assert core in text, f"Argo CD's error text {core!r} not in the output\n{run}"
    return run, took


def wave_report(stdout: str, width: int = 700) -> str:
    """The last wave report the role printed (the debug list) and the fail message, for test output.

    The message is shortened to ``width`` characters, but keeps its ``ordering broken`` and
    ``health check`` parts.
    """
    blocks = re.findall(r'"msg": \[\n(.*?)\n\s*\]', stdout, re.DOTALL)
    lines = [line.strip().rstrip(",").strip('"') for line in blocks[-1].splitlines()] if blocks else []
    failed = re.findall(r'FAILED! => (\{.*\})', stdout)
    if failed:
        try:
            message = json.loads(failed[-1]).get("msg", "")
        except ValueError:
            message = failed[-1]
        parts = message.split(" || ")
        lines.append(parts[0] if len(parts[0]) <= width else parts[0][:width] + " ...")
        lines.extend(part for part in parts[1:] if part.startswith(("ordering broken", "health check")))
    return "\n".join(lines)
