"""Rerun cost (issue 8): first run vs second (no-op) run of the node_labels, calico and argocd roles.

On the harness's cluster with the example inventory's 14 nodes, each role's
playbook runs twice with the same inputs (upstream manifests from local files,
never fetched): wall time, CPU, tasks (recap ok/changed) and API requests.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from benchmarks import env
from benchmarks.measure import run_measured
from tests.harness.ansible import parse_recap
from tests.harness.cluster import Cluster
from tests.harness.nodes import inventory_nodes

STAGES = {
    "node_labels": ("node_labels.yml", {}),
    "calico": ("cni.yml", {"calico_manifest_src": str(env.CALICO_MANIFEST), "calico_pod_cidr": "10.244.0.0/16"}),
    "argocd": ("argocd.yml", {"argocd_manifest_src": str(env.ARGOCD_INSTALL)}),
}


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


def _tasks(recap: dict) -> dict:
    keys = ("ok", "changed", "skipped", "failed")
    return {k: sum(h.get(k, 0) for h in recap.values()) for k in keys}


def run(cluster: Cluster, workdir: Path, timeout: float = 900.0, stages: tuple[str, ...] = tuple(STAGES),
        previous: dict | None = None) -> dict:
    """First and no-op run of each of ``stages``; rows of other stages are kept from ``previous``."""
    cluster.create_nodes()
    inventory = write_inventory(workdir / "inventory-example.yml")
    rows = []
    for stage, (playbook, extra) in STAGES.items():
        if stage not in stages:
            kept = next((r for r in (previous or {}).get("rows", []) if r.get("stage") == stage), None)
            if kept:
                rows.append(kept)
            continue
        row: dict = {"stage": stage, "playbook": f"playbooks/{playbook}",
                     "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "load_1m_before": env.machine_load()["load_1m"]}
        for phase in ("first", "rerun"):
            env.log(f"rerun: {stage} {phase} run")
            mark = cluster.audit_mark()
            cmd = [str(env.PLAYBOOK), str(env.REPO_ROOT / "playbooks" / playbook), "-i", str(inventory),
                   "-e", f"ecoeco_kubeconfig={cluster.kubeconfig}"]
            for key, value in extra.items():
                cmd += ["-e", f"{key}={value}"]
            m = run_measured(cmd, env=env.bench_env(None, {"K8S_AUTH_KUBECONFIG": str(cluster.kubeconfig)}),
                             cwd=env.REPO_ROOT, timeout=timeout, stdout_path=workdir / f"rerun-{stage}-{phase}.out")
            env.wait_audit_settled(cluster, 1.0)
            events = env.contender_requests(cluster, mark)
            writes = sum(1 for ev in events if ev["verb"] in ("create", "update", "patch", "delete"))
            row[phase] = {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "tasks": _tasks(parse_recap(m.stdout)),
                          "api_requests": len(events), "api_writes": writes, "rc": m.rc}
            if m.rc:
                row[phase]["error"] = (m.stderr.strip() or m.stdout.strip())[-800:]
            env.log(f"  -> {row[phase]}")
            if m.rc:
                break
        if "rerun" in row and row["first"]["wall_s"]:
            row["rerun_over_first"] = round(row["rerun"]["wall_s"] / row["first"]["wall_s"], 3)
        rows.append(row)
    return {"apiserver": cluster.version().get("gitVersion"), "nodes": 14,
            "manifests": {"calico": str(env.CALICO_MANIFEST), "argocd": str(env.ARGOCD_INSTALL)},
            "gitops_stages": "not measured: needs the harness's Argo CD processes (optional in this run)",
            "rows": rows}
