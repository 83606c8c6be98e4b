"""Node labels at scale (issue 10): the node_labels role vs a per-host kubernetes.core.k8s patch loop.

For each size, kwok nodes ``bench-node-0000...`` exist; before each contender
the managed labels/taints are stripped so it starts from the same state; then
the first run (convergence) and a second, no-op run are measured.  Requests
are the audit log's events of the admin user minus the harness's own client.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from benchmarks import env
from benchmarks.measure import run_measured
from tests.harness.ansible import parse_recap
from tests.harness.cluster import Cluster

PREFIX = "bench-node"
LABEL_PREFIX = "node.ecoeco.io/"
POOLS = ("general", "database", "api", "batch")
CONTENDERS = {
    "node_labels_role": env.REPO_ROOT / "playbooks" / "node_labels.yml",
    "k8s_per_host": env.BENCH_DIR / "baselines" / "node_labels_per_host.yml",
}
MERGE = "application/merge-patch+json"


def node_name(i: int) -> str:
    return f"{PREFIX}-{i:04d}"


def declared(i: int) -> dict:
    """What the inventory declares for node ``i``: two labels, a taint on every 10th node."""
    pool = POOLS[i % len(POOLS)]
    out: dict = {"node_labels": {f"{LABEL_PREFIX}pool": pool, f"{LABEL_PREFIX}rack": f"r{i % 16:02d}"}}
    out["node_taints"] = ([{"key": f"{LABEL_PREFIX}dedicated", "value": pool, "effect": "NoSchedule"}]
                          if i % 10 == 0 else [])
    return out


def write_inventory(path: Path, n: int, overrides: dict[int, dict] | None = None) -> Path:
    """An inventory of ``n`` hosts in k8s_cluster, all local connections (nothing is ever dialled)."""
    hosts = {}
    for i in range(n):
        hv = declared(i)
        hv.update((overrides or {}).get(i, {}))
        hosts[node_name(i)] = hv
    inv = {"all": {"vars": {"ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                   "children": {"k8s_cluster": {"hosts": hosts}}}}
    path.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
    return path


def strip_managed(cluster: Cluster, names: list[str]) -> None:
    """Remove every managed label, taint and ownership annotation (the state before a first run)."""
    api = cluster.api
    nodes = {n["metadata"]["name"]: n for n in api.get("/api/v1/nodes")["items"]}

    def strip(name: str) -> None:
        node = nodes.get(name)
        if node is None:
            return
        meta = node["metadata"]
        labels = {k: None for k in meta.get("labels", {}) if k.startswith(LABEL_PREFIX)}
        annotations = {k: None for k in meta.get("annotations", {}) if k.startswith(LABEL_PREFIX)}
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if not t["key"].startswith(LABEL_PREFIX)]
        if labels or annotations or taints != ((node.get("spec") or {}).get("taints") or []):
            api.request("PATCH", f"/api/v1/nodes/{name}",
                        {"metadata": {"labels": labels, "annotations": annotations}, "spec": {"taints": taints}},
                        MERGE)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(strip, names))


def converged(cluster: Cluster, n: int) -> bool:
    """Whether every node carries exactly what the inventory declares (managed keys)."""
    nodes = {x["metadata"]["name"]: x for x in cluster.api.get("/api/v1/nodes")["items"]}
    for i in range(n):
        node = nodes.get(node_name(i))
        if node is None:
            return False
        want = declared(i)
        labels = {k: v for k, v in node["metadata"].get("labels", {}).items() if k.startswith(LABEL_PREFIX)}
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t["key"].startswith(LABEL_PREFIX)]
        if labels != want["node_labels"] or taints != want["node_taints"]:
            return False
    return True


def _verbs(events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ev in events:
        out[ev["verb"]] = out.get(ev["verb"], 0) + 1
    return out


def run_playbook_measured(cluster: Cluster, playbook: Path, inventory: Path, workdir: Path,
                          tag: str, timeout: float, hosts: int) -> dict:
    """One measured ansible-playbook run; a run stopped at ``timeout`` reports its PATCH rate and a
    projection for all hosts (labelled as such)."""
    mark = cluster.audit_mark()
    cmd = [str(env.PLAYBOOK), str(playbook), "-i", str(inventory),
           "-e", f"ecoeco_kubeconfig={cluster.kubeconfig}"]
    measured = run_measured(cmd, env=env.bench_env(None, {"K8S_AUTH_KUBECONFIG": str(cluster.kubeconfig)}),
                            cwd=env.REPO_ROOT, timeout=timeout, stdout_path=workdir / f"{tag}.out")
    env.wait_audit_settled(cluster, 1.0)
    events = env.contender_requests(cluster, mark)
    recap = parse_recap(measured.stdout)
    patches = sum(1 for ev in events if ev["verb"] == "patch")
    out = {"wall_s": measured.wall_s, "cpu_s": measured.cpu_s, "peak_rss_mb": measured.peak_rss_mb,
           "api_requests": len(events), "api_requests_by_verb": _verbs(events),
           "rc": measured.rc, "timed_out": measured.timed_out,
           "changed": sum(h.get("changed", 0) for h in recap.values()),
           "tasks_ok": sum(h.get("ok", 0) for h in recap.values()),
           "failed": sum(h.get("failed", 0) for h in recap.values()),
           **({"error": (measured.stderr.strip() or measured.stdout.strip())[-600:]} if measured.rc else {})}
    if measured.timed_out:
        out["error"] = f"stopped at the {timeout:.0f}s bound after {patches} node PATCH requests"
        if patches:
            out["projected_wall_s_all_nodes"] = round(measured.wall_s * hosts / patches, 1)
    return out


def run(cluster: Cluster, sizes: list[int], workdir: Path, timeout: float = 1500.0,
        contenders: tuple[str, ...] = tuple(CONTENDERS), partial=None) -> dict:
    """Both contenders at every size; ``partial(rows)`` is called after each row (to save progress)."""
    rows = []
    for n in sizes:
        env.log(f"nodes: ensuring {n} kwok nodes")
        # Not waiting for Ready: labels do not need it, and on a loaded machine kwok's
        # heartbeats for 1,000 nodes fall behind (nodes flap to Unknown).
        names = cluster.create_many_nodes(n, prefix=PREFIX, wait=False)
        inventory = write_inventory(workdir / f"inventory-{n}.yml", n)
        for contender in contenders:
            strip_managed(cluster, names)
            row: dict = {"n_nodes": n, "contender": contender}
            for phase in ("first", "rerun"):
                env.log(f"nodes: N={n} {contender} {phase} run")
                res = run_playbook_measured(cluster, CONTENDERS[contender], inventory, workdir,
                                            f"nodes-{n}-{contender}-{phase}",
                                            timeout if contender != "node_labels_role" else 900.0, n)
                row[phase] = res
                env.log(f"  -> {res}")
                if res["rc"] != 0:
                    break
            row["converged"] = converged(cluster, n)
            row.update({"first_wall_s": row["first"]["wall_s"], "rerun_wall_s": row.get("rerun", {}).get("wall_s"),
                        "first_api_requests": row["first"]["api_requests"],
                        "rerun_api_requests": row.get("rerun", {}).get("api_requests")})
            rows.append(row)
            if partial:
                partial(rows)
    return {"apiserver": cluster.version().get("gitVersion"),
            "baseline_timeout_s": timeout,
            "declared": "2 labels per node (node.ecoeco.io/pool, node.ecoeco.io/rack), "
                        "a NoSchedule taint on every 10th node",
            "api_requests": "audit log, user kubernetes-admin minus the harness client, during the run",
            "rows": rows}
