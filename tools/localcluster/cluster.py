"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and kwok playing the kubelets.

    cluster = Cluster(workdir)
    cluster.start()                  # ports, certs, processes, /readyz
    cluster.create_nodes()           # the example inventory's 14 hosts, Ready via kwok
    cluster.kubectl("get", "nodes")
    cluster.stop()                   # reverse order, each by its PID

Everything the cluster writes (certs, etcd data, logs, kubeconfig, audit log)
lives in ``workdir``.  ``state()``/``Cluster.attach(state)`` let the command
line stop a cluster started by an earlier process.
"""

from __future__ import annotations

import base64
import json
import ipaddress
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import yaml

from tools.localcluster import audit, build
from tools.localcluster.kubeapi import ApiError, KubeApi
from tools.localcluster.kwok_stages import port_forward, stages_yaml
from tools.localcluster.nodes import NodeSpec, inventory_nodes, node_body
from tools.localcluster.pki import Pki, make_pki
from tools.localcluster.procs import HarnessError, ManagedProcess, free_port, wait_until

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# ``argocd ... --core`` port-forwards (through the API server and the "kubelet", i.e. kwok) to the
# pods labelled app.kubernetes.io/name=argocd-redis (6379) and argocd-repo-server (8081) of the
# argocd namespace; kwok forwards those pod ports to the local processes on these reserved ports
# (tools/localcluster/argocd.py starts redis-server and the repo-server there).
ARGOCD_NAMESPACE = "argocd"
ARGOCD_POD_PORTS = {"argocd-redis": 6379, "argocd-repo-server": 8081}


def _ready_nodes(nodes: list[dict]) -> set[str]:
    ready = set()
    for node in nodes:
        for cond in node.get("status", {}).get("conditions", []):
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.add(node["metadata"]["name"])
    return ready


class Cluster:
    """One local control plane; see the module docstring."""

    def __init__(self, workdir: str | Path, *, service_cidr: str = SERVICE_CIDR,
                 pod_cidr: str = POD_CIDR, node_lease_seconds: int = 60,
                 heartbeat_seconds: int = 60, log: Callable[[str], None] = print,
                 ready_timeout: float = 120.0, apiserver_memlimit: str = "400MiB"):
        self.apiserver_memlimit = apiserver_memlimit
        self.workdir = Path(workdir).resolve()
        self.service_cidr = service_cidr
        self.pod_cidr = pod_cidr
        self.node_lease_seconds = node_lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.ready_timeout = ready_timeout
        self.log = log
        self.ports: dict[str, int] = {}
        self.procs: dict[str, ManagedProcess] = {}
        self.timings: dict[str, float] = {}
        self.pki = Pki(self.workdir / "pki")
        self._api: KubeApi | None = None

    # ------------------------------------------------------------------ paths
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "logs" / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def _log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    @staticmethod
    def binaries() -> dict[str, Path]:
        """Paths of the cached binaries (build them first with build.ensure)."""
        k8s, etcd, kwok = (build.components()[n] for n in ("kubernetes", "etcd", "kwok"))
        return {
            "etcd": etcd.path("etcd"),
            "kube-apiserver": k8s.path("kube-apiserver"),
            "kube-controller-manager": k8s.path("kube-controller-manager"),
            "kube-scheduler": k8s.path("kube-scheduler"),
            "kubectl": k8s.path("kubectl"),
            "kwok": kwok.path("kwok"),
        }

    # ------------------------------------------------------------- API client
    @property
    def api(self) -> KubeApi:
        """The harness's admin client (client certificate, system:masters)."""
        if self._api is None:
            self._api = KubeApi("127.0.0.1", self.ports["apiserver"], self.pki.ca_cert,
                                self.pki.cert("admin"), self.pki.key("admin"))
        return self._api

    def version(self) -> dict:
        """The API server's /version."""
        return self.api.get("/version")

    # ------------------------------------------------------------ config files
    def _kubeconfig_for(self, name: str, path: Path) -> Path:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "ecoeco-local", "cluster": {
                "server": self.server, "certificate-authority-data": b64(self.pki.ca_cert)}}],
            "users": [{"name": name, "user": {
                "client-certificate-data": b64(self.pki.cert(name)),
                "client-key-data": b64(self.pki.key(name))}}],
            "contexts": [{"name": f"{name}@ecoeco-local",
                          "context": {"cluster": "ecoeco-local", "user": name}}],
            "current-context": f"{name}@ecoeco-local",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    def _prepare(self) -> None:
        for sub in ("logs", "etcd", "conf"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        if not self.ports:
            for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok",
                         *ARGOCD_POD_PORTS):
                self.ports[name] = free_port()
        service_ip = str(next(ipaddress.ip_network(self.service_cidr).hosts()))
        if not self.pki.ca_cert.exists():
            make_pki(self.pki.dir, service_ip)
        conf = self.workdir / "conf"
        (conf / "audit-policy.yaml").write_text(audit.POLICY, encoding="utf-8")
        forwards = {pod_port: self.ports[name] for name, pod_port in ARGOCD_POD_PORTS.items()
                    if name in self.ports}
        extra = [port_forward("argocd-local-processes", [ARGOCD_NAMESPACE], forwards)] if forwards else []
        (conf / "kwok.yaml").write_text(
            stages_yaml(heartbeat_seconds=self.heartbeat_seconds, extra=extra), encoding="utf-8")
        self._kubeconfig_for("admin", self.kubeconfig)
        for name in ("controller-manager", "scheduler", "kwok"):
            self._kubeconfig_for(name, conf / f"{name}.kubeconfig")

    # ---------------------------------------------------------- process argvs
    def _argv(self, name: str) -> list[str]:
        b, p, pki, conf = self.binaries(), self.ports, self.pki, self.workdir / "conf"
        if name == "etcd":
            client, peer = f"http://127.0.0.1:{p['etcd']}", f"http://127.0.0.1:{p['etcd-peer']}"
            return [str(b["etcd"]), "--name", "local", "--data-dir", str(self.workdir / "etcd"),
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", f"local={peer}", "--unsafe-no-fsync",
                    "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn"]
        if name == "kube-apiserver":
            return [str(b["kube-apiserver"]),
                    "--etcd-servers", f"http://127.0.0.1:{p['etcd']}",
                    "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                    "--secure-port", str(p["apiserver"]),
                    "--endpoint-reconciler-type", "none",
                    "--client-ca-file", str(pki.ca_cert),
                    "--tls-cert-file", str(pki.cert("apiserver")),
                    "--tls-private-key-file", str(pki.key("apiserver")),
                    "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                    "--service-account-key-file", str(pki.sa_pub),
                    "--service-account-signing-key-file", str(pki.sa_key),
                    "--service-cluster-ip-range", self.service_cidr,
                    "--authorization-mode", "Node,RBAC",
                    "--enable-admission-plugins", "NodeRestriction",
                    "--enable-bootstrap-token-auth",
                    "--requestheader-client-ca-file", str(pki.ca_cert),
                    "--requestheader-allowed-names", "front-proxy-client",
                    "--requestheader-username-headers", "X-Remote-User",
                    "--requestheader-group-headers", "X-Remote-Group",
                    "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
                    "--allow-privileged",
                    # Reach "kubelets" (kwok) by their InternalIP, 127.0.0.1: by default the API server
                    # tries the node's Hostname first, a name only the machine's resolver could answer.
                    "--kubelet-preferred-address-types", "InternalIP",
                    "--audit-log-path", str(self.audit_log),
                    "--audit-policy-file", str(conf / "audit-policy.yaml"),
                    "--audit-log-maxsize", "500", "--audit-log-maxbackup", "1",
                    "--profiling=false", "-v", "1"]
        if name == "kube-controller-manager":
            kc = str(conf / "controller-manager.kubeconfig")
            return [str(b["kube-controller-manager"]), "--kubeconfig", kc,
                    "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
                    "--bind-address", "127.0.0.1", "--secure-port", str(p["controller-manager"]),
                    "--use-service-account-credentials",
                    "--root-ca-file", str(pki.ca_cert),
                    "--service-account-private-key-file", str(pki.sa_key),
                    "--cluster-signing-cert-file", str(pki.ca_cert),
                    "--cluster-signing-key-file", str(pki.ca_key),
                    "--service-cluster-ip-range", self.service_cidr,
                    "--leader-elect=false", "--controllers", "*,-nodeipam",
                    # Generous: kwok's lease renewals may lag on a busy machine, and nothing
                    # here needs fast detection of dead nodes.
                    "--node-monitor-grace-period", f"{max(120, 2 * self.node_lease_seconds)}s",
                    "--profiling=false", "-v", "1"]
        if name == "kube-scheduler":
            kc = str(conf / "scheduler.kubeconfig")
            return [str(b["kube-scheduler"]), "--kubeconfig", kc,
                    "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
                    "--bind-address", "127.0.0.1", "--secure-port", str(p["scheduler"]),
                    "--leader-elect=false", "--profiling=false", "-v", "1"]
        if name == "kwok":
            return [str(b["kwok"]), "--kubeconfig", str(conf / "kwok.kubeconfig"),
                    "--manage-all-nodes=true", "--config", str(conf / "kwok.yaml"),
                    "--cidr", self.pod_cidr, "--node-ip", "127.0.0.1",
                    "--node-lease-duration-seconds", str(self.node_lease_seconds),
                    # kwok's server is every node's kubelet endpoint (daemonEndpoints port, see
                    # kwok_stages): the API server's pods/portforward lands there.
                    "--server-address", f"127.0.0.1:{p['kwok']}", "--node-port", str(p["kwok"]),
                    "-v", "WARN"]
        raise KeyError(name)

    # ------------------------------------------------------------ readiness
    def _https_ok(self, port: int, path: str) -> bool:
        import ssl
        import urllib.request
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed, loopback
        with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=3) as r:
            return r.status == 200

    def _http_ok(self, url: str) -> bool:
        import urllib.request
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status == 200

    def _apiserver_ready(self) -> bool:
        status, text = self.api.raw("GET", "/readyz")
        return status == 200 and text.strip() == "ok"

    def _wait_ready(self, name: str) -> float:
        proc = self.procs[name]
        p = self.ports
        checks: dict[str, Callable[[], bool]] = {
            "etcd": lambda: self._http_ok(f"http://127.0.0.1:{p['etcd']}/health"),
            "kube-apiserver": self._apiserver_ready,
            "kube-controller-manager": lambda: self._https_ok(p["controller-manager"], "/healthz"),
            "kube-scheduler": lambda: self._https_ok(p["scheduler"], "/healthz"),
            "kwok": lambda: self._http_ok(f"http://127.0.0.1:{p['kwok']}/healthz"),
        }
        took = wait_until(f"{name} ready", checks[name], self.ready_timeout, watch=[proc])
        self.timings[f"{name}_ready_s"] = round(took, 2)
        return took

    # --------------------------------------------------------------- lifecycle
    def start_process(self, name: str) -> ManagedProcess:
        """Start one component (ports/certs must be prepared) and wait until it is ready."""
        env = {"GOMAXPROCS": "2"}
        if name == "kube-apiserver":
            # Soft limit: the Go GC returns memory sooner (Argo CD's CRDs make a big transient heap).
            env["GOMEMLIMIT"] = self.apiserver_memlimit
        proc = ManagedProcess(name, self._argv(name), self._log_path(name), env=env,
                              cwd=self.workdir).start()
        self.procs[name] = proc
        self._wait_ready(name)
        return proc

    def start(self) -> "Cluster":
        """Start etcd, apiserver, controller-manager, scheduler and kwok; stop all on failure."""
        missing = [str(p) for p in self.binaries().values() if not p.is_file()]
        if missing:
            raise HarnessError(f"binaries missing (run `python -m tools.localcluster.build`): {missing}")
        begin = time.monotonic()
        self._prepare()
        try:
            for name in ORDER:
                self.start_process(name)
                self.log(f"[cluster] {name} ready (pid {self.procs[name].pid}, "
                         f"{self.timings[f'{name}_ready_s']:.1f}s)")
            self._wait_default_service_account()
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = round(time.monotonic() - begin, 2)
        self.log(f"[cluster] control plane up in {self.timings['start_s']:.1f}s at {self.server}; "
                 f"kubeconfig {self.kubeconfig}")
        return self

    def _wait_default_service_account(self) -> None:
        took = wait_until("ServiceAccount default/default (controller-manager working)",
                          lambda: self.api.get("/api/v1/namespaces/default/serviceaccounts/default",
                                               ok404=True) is not None,
                          self.ready_timeout, watch=list(self.procs.values()))
        self.timings["default_sa_s"] = round(took, 2)

    def stop(self, grace: float = 10.0) -> None:
        """Stop every started process in reverse order, each by its PID (TERM, grace, KILL)."""
        if self._api is not None:
            self._api.close()
            self._api = None
        for name in reversed(list(self.procs)):
            self.procs[name].stop(grace)
        self.procs = {n: p for n, p in self.procs.items() if p.alive()}

    def restart_apiserver(self, down_seconds: float = 0.0) -> float:
        """Stop kube-apiserver, optionally stay down, start it on the same port; return downtime."""
        begin = time.monotonic()
        self.procs["kube-apiserver"].stop()
        if self._api is not None:
            self._api.close()
        if down_seconds:
            time.sleep(down_seconds)
        self.start_process("kube-apiserver")
        return time.monotonic() - begin

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items() if p.pid is not None}

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each running component, bytes."""
        return {n: p.rss() for n, p in self.procs.items()}

    def rss_report(self) -> str:
        rss = self.rss_bytes()
        parts = ", ".join(f"{n} {v / 2**20:.0f}" for n, v in rss.items())
        return f"RSS total {sum(rss.values()) / 2**20:.0f} MiB ({parts})"

    # ------------------------------------------------------------- CLI state
    def state(self) -> dict:
        return {"workdir": str(self.workdir), "kubeconfig": str(self.kubeconfig),
                "server": self.server, "ports": self.ports,
                "service_cidr": self.service_cidr, "pod_cidr": self.pod_cidr,
                "processes": [p.state() for p in self.procs.values()]}

    @classmethod
    def attach(cls, state: dict, log: Callable[[str], None] = print) -> "Cluster":
        """A Cluster for processes started earlier (from ``state()``), e.g. to stop them."""
        cluster = cls(state["workdir"], service_cidr=state["service_cidr"],
                      pod_cidr=state["pod_cidr"], log=log)
        cluster.ports = dict(state["ports"])
        for data in state["processes"]:
            proc = ManagedProcess.from_state(data)
            cluster.procs[proc.name] = proc
        return cluster

    # ---------------------------------------------------------------- kubectl
    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run the built kubectl against this cluster (admin)."""
        proc = subprocess.run([str(self.binaries()["kubectl"]), "--kubeconfig", str(self.kubeconfig),
                               *args], input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise HarnessError(f"kubectl {' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()[-2000:]}")
        return proc

    def apply(self, yaml_text: str, server_side: bool = True) -> str:
        """``kubectl apply -f -`` (server-side by default: big CRDs fit)."""
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--force-conflicts", "--field-manager", "ecoeco-harness"]
        return self.kubectl(*args, input=yaml_text).stdout

    # ------------------------------------------------------------------ audit
    def audit_mark(self) -> audit.AuditMark:
        return audit.mark(self.audit_log)

    def audit_events(self, since=None, **filters) -> list[dict]:
        """Audit events since a mark/datetime, filtered (see :func:`audit.events`)."""
        return audit.events(self.audit_log, since, **filters)

    # ------------------------------------------------------------------ nodes
    def create_nodes(self, inventory: str | Path | None = None, *, pre_label: bool = False,
                     wait: bool = True, timeout: float = 120.0) -> list[str]:
        """Create a Node per cluster host of ``inventory`` (default: the example's 14)."""
        specs = inventory_nodes(inventory)
        return self._create(specs, pre_label=pre_label, wait=wait, timeout=timeout)

    def create_many_nodes(self, n: int, prefix: str = "kwok-node", *, labels: dict | None = None,
                          wait: bool = True, timeout: float = 600.0) -> list[str]:
        """Create ``n`` kwok nodes ``<prefix>-0000``... for scale tests.

        kwok renews one Lease per node every ``node_lease_seconds / 4``: for a
        thousand nodes on a busy 2-core machine start the cluster with
        ``Cluster(..., node_lease_seconds=120, heartbeat_seconds=300)`` so the
        renewals (~8/s) never fall behind the node monitor grace period.
        """
        specs = [NodeSpec(f"{prefix}-{i:04d}") for i in range(n)]
        return self._create(specs, wait=wait, timeout=timeout, extra_labels=labels)

    def _create(self, specs: list[NodeSpec], *, pre_label: bool = False, wait: bool = True,
                timeout: float = 120.0, extra_labels: dict | None = None) -> list[str]:
        begin = time.monotonic()

        def create(spec: NodeSpec) -> None:
            try:
                self.api.request("POST", "/api/v1/nodes", node_body(spec, pre_label, extra_labels))
            except ApiError as exc:
                if exc.status != 409:
                    raise

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(create, specs))
        names = [s.name for s in specs]
        if wait:
            self.wait_nodes_ready(names, timeout)
        self.timings[f"nodes_{len(names)}_ready_s"] = round(time.monotonic() - begin, 2)
        self.log(f"[cluster] {len(names)} nodes created"
                 f"{' and Ready' if wait else ''} in {time.monotonic() - begin:.1f}s")
        return names

    def wait_nodes_ready(self, names: list[str], timeout: float = 120.0) -> float:
        """Wait until every named node is Ready and has lost the not-ready taint."""
        want = set(names)

        def done() -> bool:
            nodes = self.api.get("/api/v1/nodes")["items"]
            ready = _ready_nodes(nodes)
            tainted = {n["metadata"]["name"] for n in nodes
                       if any(t.get("key") == "node.kubernetes.io/not-ready"
                              for t in n.get("spec", {}).get("taints", []) or [])}
            return want <= ready and not (want & tainted)

        # Listing a thousand nodes is megabytes: poll big sets less often.
        interval = 0.5 if len(want) <= 100 else 3.0
        return wait_until(f"{len(want)} nodes Ready", done, timeout, watch=list(self.procs.values()),
                          interval=interval)

    def delete_nodes(self, names: list[str]) -> None:
        for name in names:
            self.api.request("DELETE", f"/api/v1/nodes/{name}", ok404=True)


def dump_state(cluster: Cluster, path: Path, extra: dict | None = None) -> None:
    """Write ``cluster.state()`` (plus ``extra``) as JSON."""
    data = cluster.state()
    data.update(extra or {})
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.chmod(path, 0o600)
