"""Node labels at scale (issue 10): the node_labels role vs a per-host kubernetes.core.k8s patch loop.

For each size, kwok nodes ``bench-node-0000...`` exist (Ready); before each
contender the managed labels/taints are stripped so it starts from the same
state; then the first run (convergence) and a second, no-op run are measured.
Requests are the audit log's events of the admin user minus the harness's own
client.  Contenders:

- ``node_labels_role``: ``ansible-playbook playbooks/node_labels.yml``, as users run it;
- ``k8s_node_labels_module``: the module process alone (``python k8s_node_labels.py args.json``,
  the same arguments the role passes): what the API pass costs without Ansible's start-up;
- ``k8s_per_host``: the per-host ``kubernetes.core.k8s`` patch loop (``baselines/``).

``ansible_floor`` (a reference, not a contender): ``ansible-playbook`` with the same
inventory and one ``debug`` task, i.e. what any playbook pays before doing work.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Union

import yaml

from benchmarks import env
from benchmarks.measure import run_measured
from tools.localcluster.ansible import parse_recap
from tools.localcluster.cluster import Cluster

PREFIX = "bench-node"
LABEL_PREFIX = "node.ecoeco.io/"
POOLS = ("general", "database", "api", "batch")
CONTENDERS = {
    "ansible_floor": env.BENCH_DIR / "playbooks" / "ansible_floor.yml",
    "k8s_node_labels_module": env.REPO_ROOT / "plugins" / "modules" / "k8s_node_labels.py",
    "node_labels_role": env.REPO_ROOT / "playbooks" / "node_labels.yml",
    "k8s_per_host": env.BENCH_DIR / "baselines" / "node_labels_per_host.yml",
}
REFERENCE = "ansible_floor"
BASELINES = ("k8s_per_host",)
OURS_TIMEOUT = 900.0
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


def module_args(cluster: Cluster, n: int) -> dict:
    """What the role passes to k8s_node_labels for the benchmark inventory of ``n`` hosts."""
    nodes = {}
    for i in range(n):
        want = declared(i)
        nodes[node_name(i)] = {"labels": want["node_labels"], "taints": want["node_taints"]}
    return {"kubeconfig": str(cluster.kubeconfig), "nodes": nodes, "declared_nodes": list(nodes),
            "managed_prefixes": [LABEL_PREFIX], "prune_undeclared_nodes": False, "parallelism": 8}


def _command(contender: str, cluster: Cluster, inventory: Path, workdir: Path, n: int) -> tuple[list[str], dict]:
    if contender == "k8s_node_labels_module":
        args = workdir / f"module-args-{n}.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args(cluster, n)}), encoding="utf-8")
        run_env = dict(os.environ, PYTHONPATH=str(env.REPO_ROOT / ".collections"))
        return [sys.executable, str(CONTENDERS[contender]), str(args)], run_env
    cmd = [str(env.PLAYBOOK), str(CONTENDERS[contender]), "-i", str(inventory),
           "-e", f"ecoeco_kubeconfig={cluster.kubeconfig}"]
    return cmd, env.bench_env(None, {"K8S_AUTH_KUBECONFIG": str(cluster.kubeconfig)})


def _module_result(stdout: str) -> dict:
    """The JSON a module prints (its last line that parses)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def run_contender_measured(cluster: Cluster, contender: str, inventory: Path, workdir: Path,
                           tag: str, timeout: float, hosts: int) -> dict:
    """One measured run; a run stopped at ``timeout`` reports its PATCH rate and a
    projection for all hosts (labelled as such)."""
    cmd, run_env = _command(contender, cluster, inventory, workdir, hosts)
    load_before = env.machine_load()
    mark = cluster.audit_mark()
    measured = run_measured(cmd, env=run_env, cwd=env.REPO_ROOT, timeout=timeout,
                            stdout_path=workdir / f"{tag}.out")
    load_after = env.machine_load()
    env.wait_audit_settled(cluster, 1.0)
    events = env.contender_requests(cluster, mark)
    patches = sum(1 for ev in events if ev["verb"] == "patch")
    out = {"wall_s": measured.wall_s, "cpu_s": measured.cpu_s, "peak_rss_mb": measured.peak_rss_mb,
           "api_requests": len(events), "api_requests_by_verb": _verbs(events),
           "rc": measured.rc, "timed_out": measured.timed_out,
           "load_1m_before": load_before["load_1m"], "load_1m_after": load_after["load_1m"]}
    if contender == "k8s_node_labels_module":
        result = _module_result(measured.stdout)
        out.update({"changed": len(result.get("changed_nodes") or {}),
                    "module_api_requests": result.get("api_requests"), "failed": int(bool(result.get("failed")))})
    else:
        recap = parse_recap(measured.stdout)
        out.update({"changed": sum(h.get("changed", 0) for h in recap.values()),
                    "tasks_ok": sum(h.get("ok", 0) for h in recap.values()),
                    "failed": sum(h.get("failed", 0) for h in recap.values())})
    if measured.rc:
        out["error"] = (measured.stderr.strip() or measured.stdout.strip())[-600:]
    if measured.timed_out:
        out["error"] = f"stopped at the {timeout:.0f}s bound after {patches} node PATCH requests"
        if patches:
            out["projected_wall_s_all_nodes"] = round(measured.wall_s * hosts / patches, 1)
    return out


def _timeout_for(timeout: Union[float, Mapping[int, float]], n: int) -> float:
    if isinstance(timeout, Mapping):
        return float(timeout.get(n, max(timeout.values())))
    return float(timeout)


def run(cluster: Cluster, sizes: list[int], workdir: Path,
        timeout: Union[float, Mapping[int, float]] = 1500.0,
        contenders: tuple[str, ...] = tuple(CONTENDERS), partial=None) -> dict:
    """Every contender at every size; ``timeout`` bounds a baseline run (one value, or one per size);
    ``partial(rows)`` is called after each row (to save progress)."""
    rows = []
    for n in sizes:
        env.log(f"nodes: ensuring {n} kwok nodes (Ready)")
        # Ready first: the node lifecycle controller then leaves the nodes' taints alone
        # (kwok's lease/heartbeat intervals are set in benchmarks.env for 1,000 nodes).
        names = cluster.create_many_nodes(n, prefix=PREFIX, wait=True, timeout=900)
        inventory = write_inventory(workdir / f"inventory-{n}.yml", n)
        for contender in contenders:
            if contender != REFERENCE:
                strip_managed(cluster, names)
            row: dict = {"n_nodes": n, "contender": contender}
            bound = _timeout_for(timeout, n) if contender in BASELINES else OURS_TIMEOUT
            row["timeout_s"] = bound
            for phase in ("first", "rerun"):
                env.log(f"nodes: N={n} {contender} {phase} run")
                res = run_contender_measured(cluster, contender, inventory, workdir,
                                             f"nodes-{n}-{contender}-{phase}", bound, n)
                row[phase] = res
                env.log(f"  -> {res}")
                if res["rc"] != 0 or contender == REFERENCE:
                    break
            row["converged"] = None if contender == REFERENCE else converged(cluster, n)
            row.update({"first_wall_s": row["first"]["wall_s"], "rerun_wall_s": row.get("rerun", {}).get("wall_s"),
                        "first_api_requests": row["first"]["api_requests"],
                        "rerun_api_requests": row.get("rerun", {}).get("api_requests")})
            rows.append(row)
            if partial:
                partial(rows)
    return {"apiserver": cluster.version().get("gitVersion"),
            "baseline_timeout_s": ({str(k): v for k, v in timeout.items()} if isinstance(timeout, Mapping)
                                   else timeout),
            "harness": env.harness_settings(),
            "contenders": {"node_labels_role": "ansible-playbook playbooks/node_labels.yml",
                           "k8s_node_labels_module": "the module process alone: python k8s_node_labels.py "
                                                     "args.json (the role's arguments), no Ansible",
                           "k8s_per_host": "benchmarks/baselines/node_labels_per_host.yml (5 forks)",
                           "ansible_floor": "reference: benchmarks/playbooks/ansible_floor.yml, one debug task "
                                            "on the same inventory (no API request)"},
            "declared": "2 labels per node (node.ecoeco.io/pool, node.ecoeco.io/rack), "
                        "a NoSchedule taint on every 10th node",
            "api_requests": "audit log, user kubernetes-admin minus the harness client, during the run",
            "rows": rows}
