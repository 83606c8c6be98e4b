"""The benchmark's cluster: the harness's real control plane, plus what the scenarios need.

Only loopback traffic: the harness binds everything to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from tools.localcluster.argocd import MANIFESTS_DIR
from tools.localcluster import binaries
from tools.localcluster.ansible import VENV_BIN, ansible_env
from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import wait_until
from tools.localcluster.versions import REPO_ROOT

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
SHARED = MANIFESTS_DIR
ARGOCD_INSTALL = SHARED / "argo-cd" / "v3.6.1" / "install.yaml"
CALICO_MANIFEST = SHARED / "calico" / "v3.32.1" / "calico.yaml"
HARNESS_UA = "ecoeco-harness"
ADMIN_USER = "kubernetes-admin"
PLAYBOOK = VENV_BIN / "ansible-playbook"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# kwok renews every node's Lease every NODE_LEASE_SECONDS / 4 and refreshes its Ready
# condition every HEARTBEAT_SECONDS (+ up to 50 % jitter).  The harness defaults (60 s / 60 s)
# cost 1,000 nodes about 0.45 of this machine's 2 cores at rest and, on a busy machine, let
# heartbeats fall behind the node monitor grace period, so the node lifecycle controller
# flaps nodes to NotReady and adds/removes its taints while a contender patches them.
# A test-harness setting (no real kubelet is involved); recorded in the results.
NODE_LEASE_SECONDS = 120
HEARTBEAT_SECONDS = 300
# The harness caps kube-apiserver's Go heap softly at 400 MiB (GOMEMLIMIT), enough for the
# tests; with 1,000 nodes and Argo CD's CRDs the heap passes it and the GC runs all the time,
# which shows up as API server CPU on every request. The benchmark gives it room.
APISERVER_MEMLIMIT = "1536MiB"


def start_cluster(workdir: Path | None = None) -> Cluster:
    """Build what is missing, then start etcd, kube-apiserver, controller-manager, scheduler, kwok."""
    binaries.require(("kubernetes", "etcd", "kwok"), log=log)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="ecoeco-bench-"))
    return Cluster(workdir, log=log, node_lease_seconds=NODE_LEASE_SECONDS,
                   heartbeat_seconds=HEARTBEAT_SECONDS, apiserver_memlimit=APISERVER_MEMLIMIT).start()


def harness_settings() -> dict:
    """The harness knobs the results depend on."""
    return {"kwok_node_lease_seconds": NODE_LEASE_SECONDS, "kwok_heartbeat_seconds": HEARTBEAT_SECONDS,
            "kube_apiserver_gomemlimit": APISERVER_MEMLIMIT,
            "note": "kwok renews each node's Lease every lease/4 s and its Ready heartbeat every "
                    "heartbeat..1.5*heartbeat s (harness defaults 60/60; GOMEMLIMIT 400MiB)"}


def machine_load() -> dict:
    """Cores and load average now (other test suites share this machine)."""
    one, five, fifteen = os.getloadavg()
    return {"cores": os.cpu_count(), "load_1m": round(one, 2), "load_5m": round(five, 2),
            "load_15m": round(fifteen, 2), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def crd_docs(path: Path = ARGOCD_INSTALL) -> list[dict]:
    """The CustomResourceDefinition documents of a release manifest."""
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d and d.get("kind") == "CustomResourceDefinition"]


def install_argocd_crds(cluster: Cluster, namespace: str = "argocd") -> None:
    """Argo CD's CRDs (established), its namespace, argocd-cm/argocd-secret and the default AppProject."""
    cluster.apply(yaml.safe_dump_all(crd_docs()))

    def established() -> bool:
        for crd in ("applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io"):
            obj = cluster.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
            conds = (obj.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                return False
        return True

    wait_until("Argo CD CRDs established", established, 60)
    gating = (REPO_ROOT / "roles" / "argocd" / "files" / "application-health-gating.lua").read_text(encoding="utf-8")
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "argocd-cm", "namespace": namespace,
                      "labels": {"app.kubernetes.io/part-of": "argocd"}},
         "data": {"resource.customizations.health.argoproj.io_Application": gating}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "argocd-secret", "namespace": namespace,
                      "labels": {"app.kubernetes.io/part-of": "argocd"}}, "type": "Opaque"},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "argocd-rbac-cm", "namespace": namespace,
                      "labels": {"app.kubernetes.io/part-of": "argocd"}}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
         "metadata": {"name": "default", "namespace": namespace},
         "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                  "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}},
    ]
    cluster.apply(yaml.safe_dump_all(objs))


def contender_requests(cluster: Cluster, since) -> list[dict]:
    """Audit events of the contender: the admin user, not the harness/driver client."""
    return [ev for ev in cluster.audit_events(since=since, user=ADMIN_USER)
            if HARNESS_UA not in (ev.get("userAgent") or "")]


def wait_audit_settled(cluster: Cluster, seconds: float = 1.5) -> None:
    """Give the API server's audit backend a moment to write the last events."""
    time.sleep(seconds)


def bench_env(times_file: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """ansible-* environment: this collection, the timestamping callback, no colour."""
    env = ansible_env()
    env["ANSIBLE_CALLBACK_PLUGINS"] = str(BENCH_DIR / "callback_plugins")
    env["ANSIBLE_CALLBACKS_ENABLED"] = "bench_times"
    env["ANSIBLE_NOCOLOR"] = "1"
    if times_file:
        env["BENCH_TIMES_FILE"] = str(times_file)
    env.update(extra or {})
    return env


def read_times(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_json(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank-with-interpolation percentile (None for no values)."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    pos = (len(vals) - 1) * pct / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return round(vals[lo] + (vals[hi] - vals[lo]) * (pos - lo), 3)
