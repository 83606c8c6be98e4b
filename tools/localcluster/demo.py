"""``make demo``: the GitOps stages of ``ecoeco.gitops.site`` against the local cluster.

The cluster and Argo CD are already up (``python -m tools.localcluster demo``
starts them); this runs ``ansible-playbook ecoeco.gitops.site --tags
gitops`` (node labels, Argo CD, App of Apps) on the example inventory with the local kubeconfig, the
release manifest from the shared directory and the local git repo, streaming
the output, and ends with how to inspect and stop the cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from argparse import Namespace
from typing import Callable

from datetime import datetime

from tools.localcluster.ansible import VENV_BIN, ansible_env
from tools.localcluster.app_recorder import AppRecorder, synced_healthy
from tools.localcluster.argocd import ArgoCD, manifest_path
from tools.localcluster.cluster import Cluster
from tools.localcluster.nodes import DEFAULT_INVENTORY
from tools.localcluster.versions import REPO_ROOT

DEMO_TIMEOUT = 1800.0


def demo_extra_vars(cluster: Cluster, app: ArgoCD) -> dict:
    """The variables that point the site playbook at the local cluster."""
    return {
        "ecoeco_kubeconfig": str(cluster.kubeconfig),
        "app_of_apps_repo_url": app.repo_url,
        "argocd_manifest_src": str(manifest_path(app.version)),
        # Every host of the example inventory is a made-up address: run every task
        # here, with this venv's Python (API tasks talk to the loopback API server only).
        "ansible_connection": "local",
        "ansible_python_interpreter": str(VENV_BIN / "python"),
    }


def run_demo(cluster: Cluster, app: ArgoCD, args: Namespace, say: Callable[[str], None],
             stop_hint: str = "make cluster-down") -> int:
    """Run the GitOps stages, streaming ansible's output; return its exit code."""
    inventory = args.inventory or str(DEFAULT_INVENTORY)
    report_file = cluster.workdir / "wave-report.json"
    report_file.unlink(missing_ok=True)
    extra_vars = {**demo_extra_vars(cluster, app), "app_of_apps_report_file": str(report_file)}
    cmd = [str(VENV_BIN / "ansible-playbook"), "ecoeco.gitops.site", "-i", inventory,
           "--tags", "gitops", "-e", json.dumps(extra_vars)]
    # Independent of the verifier: when did each Application really turn Synced/Healthy in the API?
    recorder = AppRecorder(cluster.api, app.namespace).start()
    say(f"[demo] ansible-playbook ecoeco.gitops.site -i {inventory} --tags gitops "
        f"-e ecoeco_kubeconfig={cluster.kubeconfig} -e app_of_apps_repo_url={app.repo_url}")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=ansible_env({"ANSIBLE_FORCE_COLOR": "0"}),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if time.monotonic() - start > DEMO_TIMEOUT:
                proc.terminate()
                say(f"[demo] ansible-playbook exceeded {DEMO_TIMEOUT:.0f}s; stopped")
                break
        rc = proc.wait(timeout=60)
    except BaseException:
        proc.kill()
        raise
    finally:
        recorder.stop()
    for line in detection_lines(recorder, report_file):
        say(line)
    kc = cluster.kubeconfig
    say(f"[demo] playbook rc={rc} in {time.monotonic() - start:.0f}s; "
        f"{cluster.rss_report()}; argocd {app.rss_report()}")
    say("")
    say(f"inspect: kubectl --kubeconfig {kc.relative_to(REPO_ROOT) if kc.is_relative_to(REPO_ROOT) else kc}"
        " get applications -A")
    say(f"stop:    {stop_hint}")
    return rc


def detection_lines(recorder: AppRecorder, report_file) -> list[str]:
    """Root apply to last wave healthy, and per wave the verifier's delay after the API showed it healthy."""
    if not report_file.exists():
        return ["[demo] no wave report file: the verification did not run"]
    result = json.loads(report_file.read_text(encoding="utf-8"))
    lines = []
    waves = [w for w in result.get("waves", []) if w.get("detected_at")]
    root = ((result.get("invocation") or {}).get("module_args") or {}).get("root_app") or "root"
    root_at = recorder.created_at(root)
    if waves and root_at is not None:
        last = datetime.fromisoformat(waves[-1]["detected_at"]).timestamp()
        lines.append(f"[demo] root app applied -> last wave healthy: {last - root_at:.1f}s")
    lines.append("[demo] WAVE  LAST APP (API Synced/Healthy)   VERIFIER NOTICED  DETECTION DELAY")
    for wave in waves:
        # Applications only (an ApplicationSet's row has no Application to time; its apps have rows)
        names = [a["name"] for a in wave.get("apps", []) if a.get("kind", "Application") == "Application"]
        settled = {n: recorder.settled_at(n, synced_healthy) for n in names}
        if not names or None in settled.values():
            continue
        last_app = max(settled, key=settled.get)
        noticed = datetime.fromisoformat(wave["detected_at"]).timestamp()
        lines.append(f"[demo] {wave['wave']:>4}  {last_app:<16} {_clock(settled[last_app])}  "
                     f"{_clock(noticed)}      {noticed - settled[last_app]:+.3f}s")
    return lines


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}"
