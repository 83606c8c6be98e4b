"""Rerun cost (issue 8): first run vs second (no-op) run of the node_labels, calico and argocd roles,
and of the GitOps stages of ``ecoeco.gitops.site``.

On the harness's cluster with the example inventory's 14 nodes, each role's
playbook runs twice with the same inputs (upstream manifests from local files,
never fetched): wall time, CPU, tasks (recap ok/changed) and API requests.
``gitops_stages`` is ``ansible-playbook ecoeco.gitops.site --tags gitops`` as
``make demo`` runs it, with the harness's real Argo CD processes syncing the
sample repo: the first run installs and waits for waves 0-3, the second only
re-verifies.

``run_cluster`` (``make bench ARGS="--only cluster"``) is the same question on
real machines: ``make test-cluster``'s three podman machines reached over SSH,
site.yml's first run phase by phase, then one no-op run of every phase and a
``--check --diff`` run, with the per-phase split of the rerun, the ratio and
the slowest tasks (the test writes that summary; this reads it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

from benchmarks import env
from benchmarks import wave_scenario as ws
from benchmarks.measure import run_measured
from tools.localcluster import audit
from tools.localcluster.ansible import parse_recap
from tools.localcluster.argocd import ArgoCD
from tools.localcluster.cluster import Cluster
from tools.localcluster.demo import demo_extra_vars
from tools.localcluster.nodes import DEFAULT_INVENTORY, inventory_nodes

STAGES = {
    "node_labels": ("node_labels.yml", {}),
    "calico": ("cni.yml", {"calico_manifest_src": str(env.CALICO_MANIFEST), "calico_pod_cidr": "10.244.0.0/16"}),
    "argocd": ("argocd.yml", {"argocd_manifest_src": str(env.ARGOCD_INSTALL)}),
}
# Not a role: the site playbook's GitOps stages (needs the harness's Argo CD processes).
GITOPS = "gitops_stages"
ALL_STAGES = (*STAGES, GITOPS)


def write_inventory(path: Path) -> Path:
    """The example inventory's cluster hosts, with local connections only (nothing is dialled)."""
    specs = inventory_nodes()
    hosts = {s.name: {"node_labels": s.labels, "node_taints": s.taints} for s in specs}
    inv = {"all": {"vars": {"ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                   "children": {"k8s_cluster": {"children": {
                       "k8s_control_plane": {"hosts": {s.name: None for s in specs if s.control_plane}},
                       "k8s_workers": {"hosts": {s.name: None for s in specs if not s.control_plane}}},
                       "hosts": hosts}}}}
    path.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
    return path


def slowest_tasks(records: list[dict], top: int = 5) -> list[dict]:
    """The ``top`` tasks by wall time (task start to the next task's start), from bench_times records."""
    starts = sorted((r["t"], r["task"]) for r in records if r.get("event") == "task_start")
    end = max((r["t"] for r in records), default=None)
    spans: dict[str, float] = {}
    for i, (t, name) in enumerate(starts):
        nxt = starts[i + 1][0] if i + 1 < len(starts) else end
        spans[name] = spans.get(name, 0.0) + (nxt - t if nxt is not None else 0.0)
    ranked = sorted(spans.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [{"task": name, "wall_s": round(secs, 2)} for name, secs in ranked]


def _tasks(recap: dict) -> dict:
    keys = ("ok", "changed", "skipped", "failed")
    return {k: sum(h.get(k, 0) for h in recap.values()) for k in keys}


def _measure_twice(cluster: Cluster, workdir: Path, stage: str, label: str, cmd: list[str],
                   timeout: float) -> dict:
    """Run ``cmd`` twice (first, rerun): wall, CPU, recap task counts, API requests and writes."""
    row: dict = {"stage": stage, "playbook": label,
                 "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "load_1m_before": env.machine_load()["load_1m"]}
    for phase in ("first", "rerun"):
        env.log(f"rerun: {stage} {phase} run")
        mark = cluster.audit_mark()
        times = workdir / f"rerun-{stage}-{phase}.times.jsonl"
        times.unlink(missing_ok=True)
        m = run_measured(cmd, env=env.bench_env(times, {"K8S_AUTH_KUBECONFIG": str(cluster.kubeconfig)}),
                         cwd=env.REPO_ROOT, timeout=timeout, stdout_path=workdir / f"rerun-{stage}-{phase}.out")
        env.wait_audit_settled(cluster, 1.0)
        events = env.contender_requests(cluster, mark)
        row[phase] = {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "tasks": _tasks(parse_recap(m.stdout)),
                      "api_requests": len(events), "api_writes": len(audit.writes(events)), "rc": m.rc,
                      "slowest_tasks": slowest_tasks(env.read_times(times))}
        if m.rc:
            row[phase]["error"] = (m.stderr.strip() or m.stdout.strip())[-800:]
        env.log(f"  -> {row[phase]}")
        if m.rc:
            break
    if "rerun" in row and row["first"]["wall_s"]:
        row["rerun_over_first"] = round(row["rerun"]["wall_s"] / row["first"]["wall_s"], 3)
    return row


def _role_cmd(cluster: Cluster, inventory: Path, playbook: str, extra: dict) -> list[str]:
    cmd = [str(env.PLAYBOOK), str(env.REPO_ROOT / "playbooks" / playbook), "-i", str(inventory),
           "-e", f"ecoeco_kubeconfig={cluster.kubeconfig}"]
    for key, value in extra.items():
        cmd += ["-e", f"{key}={value}"]
    return cmd


def _gitops_row(cluster: Cluster, workdir: Path, timeout: float) -> dict:
    """site.yml --tags gitops twice, with the harness's Argo CD syncing the sample repo."""
    app = ArgoCD(cluster, workdir / "argocd", log=env.log).start()
    try:
        cmd = [str(env.PLAYBOOK), "ecoeco.gitops.site", "-i", str(DEFAULT_INVENTORY), "--tags", "gitops",
               "-e", json.dumps(demo_extra_vars(cluster, app))]
        row = _measure_twice(cluster, workdir, GITOPS, "ecoeco.gitops.site --tags gitops", cmd, timeout)
        row["argocd"] = {"version": app.version, "processes": "application-controller, repo-server, redis"}
        row["note"] = ("measured after the rows above on the same cluster: node_labels and the argocd role are "
                       "already applied, so the first run's work is the root app and waves 0-3 converging; "
                       "the rerun applies nothing and re-verifies the waves")
        return row
    finally:
        ws.delete_all(cluster)  # the sample's apps, so later sections start clean
        app.stop()


def run(cluster: Cluster, workdir: Path, timeout: float = 900.0, stages: tuple[str, ...] = ALL_STAGES,
        previous: dict | None = None) -> dict:
    """First and no-op run of each of ``stages``; rows of other stages are kept from ``previous``."""
    cluster.create_nodes()
    inventory = write_inventory(workdir / "inventory-example.yml")
    rows = []
    for stage in ALL_STAGES:
        if stage not in stages:
            kept = next((r for r in (previous or {}).get("rows", []) if r.get("stage") == stage), None)
            if kept:
                rows.append(kept)
            continue
        if stage == GITOPS:
            rows.append(_gitops_row(cluster, workdir, timeout))
            continue
        playbook, extra = STAGES[stage]
        rows.append(_measure_twice(cluster, workdir, stage, f"playbooks/{playbook}",
                                   _role_cmd(cluster, inventory, playbook, extra), timeout))
    return {"apiserver": cluster.version().get("gitVersion"), "nodes": 14,
            "manifests": {"calico": str(env.CALICO_MANIFEST), "argocd": str(env.ARGOCD_INSTALL)},
            "rows": rows}


def run_cluster(workdir: Path, timeout: float = 3600.0) -> dict:
    """site.yml's first and no-op run on make test-cluster's SSH machines: the test's own summary."""
    summary = workdir / "cluster-summary.json"
    summary.unlink(missing_ok=True)
    # Its own basetemp: pytest runs beside it would rotate a numbered one away (the SSH key, the registry).
    cmd = [sys.executable, "-m", "pytest", "-m", "cluster", "tests/cluster/test_site_cluster.py", "-q", "-s",
           "-p", "no:cacheprovider", f"--basetemp={workdir / 'pytest'}"]
    env.log("rerun: make test-cluster (first run per phase, then the no-op rerun), about 10-15 min")
    m = run_measured(cmd, env=dict(os.environ, ECOECO_CLUSTER_RESULTS=str(summary)), cwd=env.REPO_ROOT,
                     timeout=timeout, stdout_path=workdir / "cluster-test.out")
    result = json.loads(summary.read_text(encoding="utf-8")) if summary.exists() else {}
    result.update({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "test_rc": m.rc,
                   "test_wall_s": m.wall_s, "machines": "3 podman systemd machines over SSH (inventories/podman)"})
    if m.rc:
        result["error"] = (m.stdout.strip() or m.stderr.strip())[-1500:]
    return result
