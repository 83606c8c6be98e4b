"""Real Argo CD on the local cluster, as processes: redis-server, repo-server,
application-controller and applicationset-controller (one ``argocd`` binary;
``ARGOCD_BINARY_NAME`` picks the part).

    app = ArgoCD(cluster, workdir)
    app.start()           # CRDs + ConfigMaps/Secrets of install.yaml, AppProject default,
                          # redis, repo-server, application-controller,
                          # applicationset-controller, local git repo
    app.repo_url          # file:///... of the git repo made from examples/gitops-repo
    sha = app.commit({"k8s/x.yaml": "..."}, "break x")
    app.reset_repo()
    app.stop()

Only the CRDs, ConfigMaps and Secrets of the release's install.yaml are
created (read from ../shared/manifests/argo-cd/<version>/, never copied into
the repo); the Deployments would only be kwok pods.  The Application and
ApplicationSet health customizations in argocd-cm are the argocd role's job,
not the harness's.  The repo-server finds ``kustomize`` and ``helm`` (both
built from Go modules, cached by version) on its PATH.  The
applicationset-controller runs with progressive syncs on
(``progressive_syncs``), as the argocd role configures it by default
(``argocd_applicationset_health_check: gating``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable

import yaml

from tools.localcluster import build, sample_repo
from tools.localcluster.cluster import ARGOCD_NAMESPACE, ARGOCD_POD_PORTS, Cluster
from tools.localcluster.kubeapi import ApiError
from tools.localcluster.procs import HarnessError, ManagedProcess, free_port, wait_until
from tools.localcluster.versions import REPO_ROOT, VERSIONS

MANIFESTS_DIR = Path(os.environ.get("ECOECO_MANIFESTS_DIR", REPO_ROOT.parent / "shared" / "manifests"))
COMPONENTS = ("redis-server", "argocd-repo-server", "argocd-application-controller",
              "argocd-applicationset-controller")
APPSET = "argocd-applicationset-controller"
PROGRESSIVE_SYNCS_KEY = "applicationsetcontroller.enable.progressive.syncs"
APPLICATIONS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications"
APPPROJECTS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/appprojects"
APPLICATIONSETS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applicationsets"
REPO_TOOLS = (("kustomize", "kustomize"), ("helm", "helm"))   # (component, binary) on the repo-server's PATH

# v3.6.1 runs this on every manifest generation even with GPG off; ours checks the
# signature when there is one and never fails an unsigned commit.
GIT_VERIFY_WRAPPER = """#!/bin/sh
# ecoeco harness stand-in for Argo CD's git-verify-wrapper.sh: report, never fail.
git verify-commit --raw "$1" 2>&1 || true
exit 0
"""


def core_kubeconfig(cluster: Cluster, path: Path, namespace: str = ARGOCD_NAMESPACE) -> Path:
    """A copy of the admin kubeconfig whose context namespace is ``namespace`` (what ``argocd --core`` reads)."""
    config = yaml.safe_load(cluster.kubeconfig.read_text(encoding="utf-8"))
    for ctx in config["contexts"]:
        ctx["context"]["namespace"] = namespace
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def run_core(cluster: Cluster, workdir: Path, *args: str, namespace: str = ARGOCD_NAMESPACE,
             home: Path | None = None, attempts: int = 3, timeout: float = 120) -> subprocess.CompletedProcess:
    """``argocd <args> --core`` with the admin kubeconfig in ``namespace``; the last attempt's result.

    Retried only on the CLI's own start-up race: its in-process API server loads argocd-rbac-cm in
    the background and exits fatally ("... context canceled") when a short command ends before that
    GET returns, which on a busy machine it sometimes does.
    """
    argv = [str(build.components()["argocd"].path("argocd")), *args, "--core"]
    kubeconfig = core_kubeconfig(cluster, workdir / f"kubeconfig-{namespace}", namespace)
    run_env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    if home is not None:
        run_env["HOME"] = str(home)
    for dummy in range(attempts):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=run_env, check=False)
        if proc.returncode == 0 or "context canceled" not in proc.stderr:
            break
    return proc


def manifest_path(version: str | None = None) -> Path:
    """The release's install.yaml in the shared manifests directory."""
    return MANIFESTS_DIR / "argo-cd" / (version or VERSIONS["argocd"]) / "install.yaml"


def ensure_redis(log: Callable[[str], None] = print) -> str:
    """Path of redis-server; installs Debian's package when it is missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    log("[argocd] redis-server missing: apt-get install -y redis-server ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "redis-server"]
    proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600, check=False)
        proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600, check=False)
    found = shutil.which("redis-server")
    if not found:
        raise HarnessError(f"redis-server: apt-get install failed: {proc.stderr[-1500:]}")
    # Debian starts a system instance on 6379; we never use it (ours is on a free port).
    return found


class ArgoCD:
    """Argo CD's controller, repo-server and redis for one :class:`Cluster`."""

    def __init__(self, cluster: Cluster, workdir: str | Path, *, namespace: str = "argocd",
                 version: str | None = None, app_resync: int = 30, source: str | Path | None = None,
                 log: Callable[[str], None] = print, ready_timeout: float = 120.0,
                 components: tuple[str, ...] = COMPONENTS, progressive_syncs: bool = True):
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown Argo CD components {sorted(unknown)}; choose from {COMPONENTS}")
        self.components = tuple(c for c in COMPONENTS if c in components)
        self.cluster = cluster
        self.workdir = Path(workdir).resolve()
        self.namespace = namespace
        self.version = version or VERSIONS["argocd"]
        self.app_resync = app_resync
        self.source = Path(source) if source else None
        self.log = log
        self.ready_timeout = ready_timeout
        self.progressive_syncs = progressive_syncs
        self.ports: dict[str, int] = {}
        self.procs: dict[str, ManagedProcess] = {}
        self.timings: dict[str, float] = {}
        self.repo_path = self.workdir / "gitops-repo"
        self.initial_sha: str | None = None

    # ----------------------------------------------------------------- repo
    @property
    def repo_url(self) -> str:
        return self.repo_path.as_uri()

    def init_repo(self, source: str | Path | None = None) -> str:
        """(Re)create the local git repo from ``source`` (default examples/gitops-repo)."""
        src = Path(source) if source else self.source
        if src is None or src.resolve() == sample_repo.SAMPLE_DIR.resolve():
            sha = sample_repo.materialize(self.repo_path, self.repo_url)
        else:
            if self.repo_path.exists():
                shutil.rmtree(self.repo_path)
            shutil.copytree(src, self.repo_path, ignore=shutil.ignore_patterns(".git"))
            sample_repo.substitute_repo_url(self.repo_path, self.repo_url)
            subprocess.run(["git", "init", "-q", "-b", sample_repo.BRANCH, str(self.repo_path)],
                           check=True, capture_output=True, timeout=60)
            sha = sample_repo.commit_all(self.repo_path, f"content of {src}")
        self.initial_sha = sha
        return sha

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Write (text) or delete (None) files in the repo, commit on main; return the sha."""
        for rel, text in files.items():
            target = (self.repo_path / rel).resolve()
            if self.repo_path not in target.parents:
                raise ValueError(f"{rel} is outside the repository")
            if text is None:
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        return sample_repo.commit_all(self.repo_path, message)

    def read(self, rel: str) -> str:
        return (self.repo_path / rel).read_text(encoding="utf-8")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        return sample_repo._git(self.repo_path, *args)  # noqa: SLF001 - same harness

    def reset_repo(self) -> str:
        """Back to the initial content, as a new commit (a fresh revision Argo CD must fetch)."""
        if not self.initial_sha:
            raise HarnessError("the repository was not created")
        self.git("rm", "-q", "-r", "--cached", "--ignore-unmatch", ".")
        self.git("checkout", self.initial_sha, "--", ".")
        self.git("clean", "-q", "-fdx")
        if self.git("status", "--porcelain") == "" and self.head() == self.initial_sha:
            return self.initial_sha
        return sample_repo.commit_all(self.repo_path, "reset to the initial content")

    # ------------------------------------------------------------ manifests
    def install_manifests(self) -> None:
        """Namespace, CRDs, then the ConfigMaps and Secrets of install.yaml; AppProject default."""
        path = manifest_path(self.version)
        if not path.is_file():
            raise HarnessError(f"Argo CD {self.version} manifest not found at {path}")
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        api, ns = self.cluster.api, self.namespace
        self._create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns}})
        crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
        for crd in crds:
            self._create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        for kind, plural in (("ConfigMap", "configmaps"), ("Secret", "secrets")):
            for doc in (d for d in docs if d["kind"] == kind):
                doc = dict(doc, metadata=dict(doc["metadata"], namespace=ns))
                if doc["metadata"]["name"] == "argocd-cmd-params-cm" and self.progressive_syncs:
                    # In a real install the controller's env comes from this key; here the env is set
                    # directly (_argvs), and the key says so to whoever reads the ConfigMap (the verifier).
                    doc["data"] = dict(doc.get("data") or {}, **{PROGRESSIVE_SYNCS_KEY: "true"})
                self._create(f"/api/v1/namespaces/{ns}/{plural}", doc)

        def served() -> bool:
            # Cheap list calls on each new resource (an Established CRD is served);
            # re-reading the big CRD objects costs seconds each on a busy machine.
            for crd in crds:
                group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
                version = next(v["name"] for v in crd["spec"]["versions"] if v.get("served", True))
                status, dummy = api.raw("GET", f"/apis/{group}/{version}/{plural}?limit=1")
                if status != 200:
                    return False
            return True

        wait_until("Argo CD CRDs established and served", served, self.ready_timeout)
        self._create(APPPROJECTS.format(ns=ns), {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": ns},
            "spec": {"sourceRepos": ["*"],
                     "destinations": [{"server": "*", "namespace": "*"}],
                     "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}})

    def _create(self, path: str, body: dict) -> None:
        try:
            self.cluster.api.request("POST", path, body)
        except ApiError as exc:
            if exc.status != 409:
                raise

    # ------------------------------------------------------------ processes
    def _tools_dir(self) -> Path:
        tools = self.workdir / "bin"
        tools.mkdir(parents=True, exist_ok=True)
        wrapper = tools / "git-verify-wrapper.sh"
        wrapper.write_text(GIT_VERIFY_WRAPPER, encoding="utf-8")
        wrapper.chmod(0o755)
        for comp, binary in REPO_TOOLS:
            link = tools / binary
            target = build.components()[comp].path(binary)
            if not target.is_file():
                raise HarnessError(f"{binary} {build.components()[comp].version} is not built "
                                   f"({target}): run `make build`")
            if not link.exists():
                link.symlink_to(target)
        return tools

    def _env(self, binary_name: str) -> dict[str, str]:
        tmp = self.workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {
            "ARGOCD_BINARY_NAME": binary_name,
            "ARGOCD_GPG_ENABLED": "false",
            "PATH": f"{self._tools_dir()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "TMPDIR": str(tmp),
            "HOME": str(self.workdir),
        }

    def _argvs(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        argocd = str(build.components()["argocd"].path("argocd"))
        p = self.ports
        redis = f"127.0.0.1:{p['redis']}"
        controller_env = self._env("argocd-application-controller")
        # With ARGOCD_FAKE_IN_CLUSTER the in-cluster destination (https://kubernetes.default.svc)
        # is built from the default kubeconfig loading rules: point them at ours.
        controller_env.update({"ARGOCD_FAKE_IN_CLUSTER": "true",
                               "KUBECONFIG": str(self.cluster.kubeconfig),
                               "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                               "KUBERNETES_SERVICE_PORT": str(self.cluster.ports["apiserver"])})
        appset_env = dict(controller_env, ARGOCD_BINARY_NAME=APPSET,
                          ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_PROGRESSIVE_SYNCS=str(
                              self.progressive_syncs).lower())
        return {
            "redis-server": ([ensure_redis(self.log), "--port", str(p["redis"]), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--daemonize", "no",
                              "--dir", str(self.workdir)], {}),
            "argocd-repo-server": ([argocd, "--address", "127.0.0.1", "--port", str(p["repo"]),
                                    "--disable-tls", "--client-ca-path", "",
                                    "--metrics-address", "127.0.0.1",
                                    "--metrics-port", str(p["repo-metrics"]),
                                    "--redis", redis, "--loglevel", "info"],
                                   self._env("argocd-repo-server")),
            "argocd-application-controller": (
                [argocd, "--kubeconfig", str(self.cluster.kubeconfig), "--namespace", self.namespace,
                 "--repo-server", f"127.0.0.1:{p['repo']}", "--repo-server-plaintext",
                 "--redis", redis, "--metrics-port", str(p["controller-metrics"]),
                 "--app-resync", str(self.app_resync), "--loglevel", "info"],
                controller_env),
            # Its metrics, probe and webhook listeners default to every interface: loopback only.
            APPSET: (
                [argocd, "--kubeconfig", str(self.cluster.kubeconfig), "--namespace", self.namespace,
                 "--argocd-repo-server", f"127.0.0.1:{p['repo']}", "--repo-server-plaintext",
                 "--metrics-addr", f"127.0.0.1:{p['appset-metrics']}",
                 "--probe-addr", f"127.0.0.1:{p['appset-probe']}",
                 "--webhook-addr", f"127.0.0.1:{p['appset-webhook']}", "--loglevel", "info",
                 *(["--enable-progressive-syncs"] if self.progressive_syncs else [])],
                appset_env),
        }

    def _ready_check(self, name: str) -> Callable[[], bool]:
        p = self.ports
        if name == "redis-server":
            def ping() -> bool:
                with socket.create_connection(("127.0.0.1", p["redis"]), timeout=2) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            return ping
        port = p["repo-metrics"] if name == "argocd-repo-server" else p["controller-metrics"]
        if name == APPSET:   # its probe listener has no readyz check registered (404): metrics it is
            port = p["appset-metrics"]
        url = f"http://127.0.0.1:{port}/metrics"

        def http_ok() -> bool:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.status == 200
        if name == "argocd-repo-server":
            def grpc_and_metrics() -> bool:
                with socket.create_connection(("127.0.0.1", p["repo"]), timeout=2):
                    pass
                return http_ok()
            return grpc_and_metrics
        return http_ok

    def start(self) -> "ArgoCD":
        """Install CRDs/config, start redis, repo-server, controller; stop them all on failure."""
        begin = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        # redis and the repo-server on the ports kwok forwards the argocd-redis/argocd-repo-server
        # pods' 6379/8081 to (see cluster.ARGOCD_POD_PORTS): `argocd ... --core` reaches them.
        if self.namespace == ARGOCD_NAMESPACE:
            for name, key in (("redis", "argocd-redis"), ("repo", "argocd-repo-server")):
                if key in self.cluster.ports:
                    self.ports.setdefault(name, self.cluster.ports[key])
        for name in ("redis", "repo", "repo-metrics", "controller-metrics", "appset-metrics", "appset-probe",
                     "appset-webhook"):
            self.ports.setdefault(name, free_port())
        try:
            if not (self.repo_path / ".git").exists():
                self.init_repo()
            step = time.monotonic()
            self.install_manifests()
            self.timings["manifests_s"] = round(time.monotonic() - step, 2)
            self.log(f"[argocd] CRDs, ConfigMaps, Secrets, AppProject default in "
                     f"{self.timings['manifests_s']:.1f}s")
            for name, (argv, env) in self._argvs().items():
                if name not in self.components:
                    continue
                proc = ManagedProcess(name, argv, self.workdir / "logs" / f"{name}.log", env=env,
                                      cwd=self.workdir).start()
                self.procs[name] = proc
                took = wait_until(f"{name} ready", self._ready_check(name), self.ready_timeout,
                                  watch=[proc])
                self.timings[f"{name}_ready_s"] = round(took, 2)
                self.log(f"[argocd] {name} ready (pid {proc.pid}, {took:.1f}s)")
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = round(time.monotonic() - begin, 2)
        self.log(f"[argocd] Argo CD {self.version} up in {self.timings['start_s']:.1f}s; "
                 f"repo {self.repo_url}")
        return self

    def create_pods(self, node: str) -> list[str]:
        """kwok pods standing for the local redis and repo-server, bound to ``node``; return their names.

        ``argocd ... --core`` port-forwards to a Ready pod labelled ``app.kubernetes.io/name=argocd-redis``
        (6379) and one labelled ``argocd-repo-server`` (8081); kwok (the pod's "kubelet") forwards
        those ports to our processes (see ``cluster.ARGOCD_POD_PORTS``).
        """
        if self.namespace != ARGOCD_NAMESPACE or not all(k in self.cluster.ports for k in ARGOCD_POD_PORTS):
            raise HarnessError(f"kwok forwards pod ports of namespace {ARGOCD_NAMESPACE} only "
                               "(a cluster started by this harness version)")
        names = []
        for name, port in ARGOCD_POD_PORTS.items():
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"{name}-local", "namespace": self.namespace,
                                 "labels": {"app.kubernetes.io/name": name,
                                            "app.kubernetes.io/part-of": "argocd"}},
                    "spec": {"nodeName": node, "containers": [{
                        "name": name, "image": f"local-process/{name}",
                        "ports": [{"containerPort": port, "protocol": "TCP"}]}]}}
            self._create(f"/api/v1/namespaces/{self.namespace}/pods", body)
            names.append(body["metadata"]["name"])

        def ready() -> bool:
            for pod in names:
                obj = self.cluster.api.get(f"/api/v1/namespaces/{self.namespace}/pods/{pod}", ok404=True) or {}
                conds = (obj.get("status") or {}).get("conditions") or []
                if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                    return False
            return True

        wait_until("kwok pods argocd-redis/argocd-repo-server Ready", ready, self.ready_timeout)
        return names

    def delete_pods(self, names: list[str]) -> None:
        """Delete pods made by :meth:`create_pods` (kwok removes them)."""
        for pod in names:
            self.cluster.api.request("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{pod}", ok404=True)

    def stop(self, grace: float = 10.0) -> None:
        """Stop controller, repo-server, redis (reverse order), each by its PID."""
        for name in reversed(list(self.procs)):
            self.procs[name].stop(grace)
        self.procs = {n: p for n, p in self.procs.items() if p.alive()}

    def restart(self, name: str) -> None:
        """Restart one component (e.g. the repo-server, to drop its caches)."""
        proc = self.procs[name]
        proc.stop()
        proc.start()
        wait_until(f"{name} ready", self._ready_check(name), self.ready_timeout, watch=[proc])

    def rss_bytes(self) -> dict[str, int]:
        return {n: p.rss() for n, p in self.procs.items()}

    def rss_report(self) -> str:
        rss = self.rss_bytes()
        parts = ", ".join(f"{n} {v / 2**20:.0f}" for n, v in rss.items())
        return f"RSS {sum(rss.values()) / 2**20:.0f} MiB ({parts})"

    def state(self) -> dict:
        return {"workdir": str(self.workdir), "repo_url": self.repo_url, "ports": self.ports,
                "namespace": self.namespace, "processes": [p.state() for p in self.procs.values()]}

    # ---------------------------------------------------------- applications
    def application(self, name: str) -> dict | None:
        """The Application object (None when absent)."""
        return self.cluster.api.get(f"{APPLICATIONS.format(ns=self.namespace)}/{name}", ok404=True)

    def applications(self) -> list[dict]:
        return self.cluster.api.get(APPLICATIONS.format(ns=self.namespace))["items"]

    def applicationset(self, name: str) -> dict | None:
        """The ApplicationSet object (None when absent)."""
        return self.cluster.api.get(f"{APPLICATIONSETS.format(ns=self.namespace)}/{name}", ok404=True)

    def refresh(self, name: str, hard: bool = True) -> None:
        """Ask the controller to refresh an Application (hard: regenerate manifests)."""
        self.cluster.api.request(
            "PATCH", f"{APPLICATIONS.format(ns=self.namespace)}/{name}",
            {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard" if hard else "normal"}}},
            content_type="application/merge-patch+json")

    def wait_application(self, name: str, *, sync: str | None = "Synced", health: str | None = "Healthy",
                         timeout: float = 180.0) -> dict:
        """Wait until the Application reports the given sync and health status; return it."""
        last: dict = {}

        def reached() -> bool:
            nonlocal last
            last = self.application(name) or {}
            status = last.get("status", {})
            return ((sync is None or status.get("sync", {}).get("status") == sync)
                    and (health is None or status.get("health", {}).get("status") == health))

        try:
            wait_until(f"Application {name} {sync}/{health}", reached, timeout,
                       watch=list(self.procs.values()), interval=0.5)
        except HarnessError as exc:
            status = last.get("status", {})
            raise HarnessError(f"{exc}\nlast status: sync={status.get('sync', {}).get('status')} "
                               f"health={status.get('health', {}).get('status')} "
                               f"conditions={status.get('conditions')}") from None
        return last
