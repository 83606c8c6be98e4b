"""The local real cluster itself: version, nodes, real rollouts, tokens/RBAC, audit, port-forward, stop, memory."""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from tools.localcluster.cluster import ARGOCD_NAMESPACE, ARGOCD_POD_PORTS, Cluster
from tools.localcluster.kubeapi import KubeApi
from tools.localcluster.procs import ManagedProcess, wait_until
from tools.localcluster.versions import REPO_ROOT, VERSIONS

pytestmark = pytest.mark.controlplane

PLACEMENT = "harness.ecoeco.test/placement"
RSS_LIMIT = 1.5 * 2**30


def _json(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def test_apiserver_reports_pinned_version(cluster: Cluster) -> None:
    assert cluster.version()["gitVersion"] == VERSIONS["kubernetes"]
    client = cluster.kubectl("version", "-o", "json").stdout
    assert json.loads(client)["clientVersion"]["gitVersion"] == VERSIONS["kubernetes"]


def test_example_nodes_are_ready_and_unlabelled(cluster: Cluster) -> None:
    nodes = _json(cluster, "get", "nodes")["items"]
    names = {n["metadata"]["name"] for n in nodes}
    assert len([n for n in names if n.startswith("k8s-")]) == 14
    for node in nodes:
        if not node["metadata"]["name"].startswith("k8s-"):
            continue
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]
        # labels from the inventory are the node_labels role's to apply
        assert "workload" not in node["metadata"]["labels"]
        assert not [t for t in node["spec"].get("taints", []) if t["key"] == "node.kubernetes.io/not-ready"]


@pytest.fixture
def placement_nodes(cluster: Cluster):
    """Two nodes carrying a test-only label (outside the node_labels role's prefixes)."""
    chosen = ["k8s-postgresql", "k8s-redis"]
    for name in chosen:
        cluster.kubectl("label", "node", name, f"{PLACEMENT}=db", "--overwrite")
    yield chosen
    for name in chosen:
        cluster.kubectl("label", "node", name, f"{PLACEMENT}-")


@pytest.fixture
def namespace(cluster: Cluster):
    name = f"harness-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def _workloads(ns: str) -> str:
    pod = {
        "nodeSelector": {PLACEMENT: "db"},
        "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "main", "image": "registry.invalid/app:1"}],
    }

    def meta(kind: str) -> dict:
        return {"name": f"t-{kind}", "namespace": ns}

    def tmpl(kind: str) -> dict:
        return {"metadata": {"labels": {"app": f"t-{kind}"}}, "spec": pod}

    def sel(kind: str) -> dict:
        return {"matchLabels": {"app": f"t-{kind}"}}
    docs = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("deploy"),
         "spec": {"replicas": 3, "selector": sel("deploy"), "template": tmpl("deploy")}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("sts"),
         "spec": {"replicas": 2, "serviceName": "t-sts", "selector": sel("sts"), "template": tmpl("sts")}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("ds"),
         "spec": {"selector": sel("ds"),
                  "template": {"metadata": {"labels": {"app": "t-ds"}},
                               "spec": {**pod, "nodeSelector": {}}}}},
    ]
    return "\n---\n".join(json.dumps(d) for d in docs)


def test_workloads_roll_out_on_the_selected_nodes(cluster: Cluster, namespace: str,
                                                  placement_nodes: list[str]) -> None:
    cluster.apply(_workloads(namespace))
    for kind in ("deployment/t-deploy", "statefulset/t-sts", "daemonset/t-ds"):
        cluster.kubectl("rollout", "status", kind, "-n", namespace, "--timeout=90s", timeout=120)
    pods = _json(cluster, "get", "pods", "-n", namespace)["items"]
    by_app: dict[str, list[dict]] = {}
    for pod in pods:
        by_app.setdefault(pod["metadata"]["labels"]["app"], []).append(pod)
    for app in ("t-deploy", "t-sts"):
        assert {p["spec"]["nodeName"] for p in by_app[app]} <= set(placement_nodes), app
        assert all(p["status"]["phase"] == "Running" and p["status"].get("podIP") for p in by_app[app])
    ds_nodes = {p["spec"]["nodeName"] for p in by_app["t-ds"]}
    example_nodes = {n["metadata"]["name"] for n in _json(cluster, "get", "nodes")["items"]
                     if n["metadata"]["name"].startswith("k8s-")}
    assert len(example_nodes) == 14 and example_nodes <= ds_nodes


def test_serviceaccount_token_authenticates_and_rbac_denies(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl("create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", namespace)
    cluster.kubectl("create", "rolebinding", "cm-reader", "--role=cm-reader",
                    f"--serviceaccount={namespace}:reader", "-n", namespace)
    token = cluster.kubectl("create", "token", "reader", "-n", namespace, "--duration=10m").stdout.strip()
    api = KubeApi("127.0.0.1", cluster.ports["apiserver"], cluster.pki.ca_cert, token=token)
    who = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
    assert api.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps")[0] == 200
    assert api.raw("GET", f"/api/v1/namespaces/{namespace}/secrets")[0] == 403
    assert api.raw("GET", "/api/v1/namespaces/kube-system/configmaps")[0] == 403
    assert api.raw("GET", "/api/v1/nodes")[0] == 403
    bad = KubeApi("127.0.0.1", cluster.ports["apiserver"], cluster.pki.ca_cert, token=token[:-4] + "AAAA")
    assert bad.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps")[0] == 401


def test_audit_log_counts_requests_by_user_agent(cluster: Cluster, namespace: str) -> None:
    mark = cluster.audit_mark()
    for dummy in range(3):
        cluster.kubectl("get", "configmaps", "-n", namespace)
    events = cluster.audit_events(since=mark, verb="list", resource="configmaps",
                                  user_agent="kubectl", namespace=namespace)
    assert len(events) == 3
    assert all(e["user"]["username"] == "kubernetes-admin" for e in events)


def test_restart_apiserver_keeps_port_and_data(cluster: Cluster, namespace: str) -> None:
    port = cluster.ports["apiserver"]
    cluster.kubectl("create", "configmap", "survives", "-n", namespace)
    down = cluster.restart_apiserver()
    assert cluster.ports["apiserver"] == port
    assert cluster.api.get(f"/api/v1/namespaces/{namespace}/configmaps/survives")
    assert down < 60


def _one_reply_server(port: int, reply: bytes) -> tuple[socket.socket, threading.Thread]:
    """A TCP listener on 127.0.0.1:port answering the first connection's line with ``reply``."""
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(60)

    def serve() -> None:
        try:
            conn, dummy = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            conn.recv(64)
            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_pod_port_forward_reaches_a_local_process_through_kwok(cluster: Cluster) -> None:
    """pods/portforward to a kwok pod of namespace argocd lands on the local process kwok forwards to."""
    # The harness reserves this port for redis (kwok forwards to it); nothing else of this tier uses it.
    assert "argocd-redis" in cluster.ports, cluster.ports
    listener, thread = _one_reply_server(cluster.ports["argocd-redis"], b"+PONG\r\n")
    node = _json(cluster, "get", "nodes")["items"][0]
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == cluster.ports["kwok"]
    created_ns = cluster.api.get(f"/api/v1/namespaces/{ARGOCD_NAMESPACE}", ok404=True) is None
    pod = f"pf-probe-{uuid.uuid4().hex[:6]}"
    forward = None
    try:
        if created_ns:
            cluster.kubectl("create", "namespace", ARGOCD_NAMESPACE)
        # A pod is refused until the controller-manager has made the namespace's default ServiceAccount.
        wait_until("ServiceAccount default in namespace argocd", lambda: cluster.api.get(
            f"/api/v1/namespaces/{ARGOCD_NAMESPACE}/serviceaccounts/default", ok404=True) is not None, 60)
        cluster.api.request("POST", f"/api/v1/namespaces/{ARGOCD_NAMESPACE}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": ARGOCD_NAMESPACE},
            "spec": {"nodeName": node["metadata"]["name"],
                     "containers": [{"name": "redis", "image": "local-process/redis"}]}})
        cluster.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "-n", ARGOCD_NAMESPACE, "--timeout=60s",
                        timeout=90)
        forward = subprocess.Popen(
            [str(cluster.binaries()["kubectl"]), "--kubeconfig", str(cluster.kubeconfig), "-n", ARGOCD_NAMESPACE,
             "port-forward", "--address", "127.0.0.1", f"pod/{pod}", f":{ARGOCD_POD_PORTS['argocd-redis']}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in forward.stdout], daemon=True).start()
        first = lines.get(timeout=60)
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 6379", first)
        assert match, first
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=30) as conn:
            conn.sendall(b"PING\r\n")
            assert conn.recv(16) == b"+PONG\r\n"
    finally:
        if forward is not None:
            forward.terminate()
            forward.wait(timeout=30)
        listener.close()
        thread.join(timeout=5)
        cluster.api.request("DELETE", f"/api/v1/namespaces/{ARGOCD_NAMESPACE}/pods/{pod}", ok404=True)
        wait_until(f"pod {pod} deleted", lambda: cluster.api.get(
            f"/api/v1/namespaces/{ARGOCD_NAMESPACE}/pods/{pod}", ok404=True) is None, 60)
        if created_ns:
            cluster.api.request("DELETE", f"/api/v1/namespaces/{ARGOCD_NAMESPACE}", ok404=True)
            wait_until(f"namespace {ARGOCD_NAMESPACE} deleted", lambda: cluster.api.get(
                f"/api/v1/namespaces/{ARGOCD_NAMESPACE}", ok404=True) is None, 120)


def test_memory_stays_under_limit(cluster: Cluster) -> None:
    rss = cluster.rss_bytes()
    print(cluster.rss_report())
    assert all(rss.values()), rss
    assert sum(rss.values()) < RSS_LIMIT


def test_cli_up_down_stops_exactly_its_pids(tmp_path) -> None:
    """`up` leaves a detached cluster and state.json; `down` stops those PIDs and no more."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tools.localcluster", "--dir", str(tmp_path), *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    up = run("up", "--nodes", "2")
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    procs = [ManagedProcess.from_state(p) for p in state["processes"]]
    assert [p.name for p in procs] == ["etcd", "kube-apiserver", "kube-controller-manager",
                                       "kube-scheduler", "kwok"]
    assert all(p.alive() for p in procs)
    assert (tmp_path / "kubeconfig").is_file()
    status = run("status")
    assert status.returncode == 0 and "nodes: 2 (2 Ready)" in status.stdout, status.stdout + status.stderr
    down = run("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [p.pid for p in procs if p.alive()]
    assert not (tmp_path / "state.json").exists()
