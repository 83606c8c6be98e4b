"""Every module's timeout bounds its API calls: an API server that stops answering fails the module in time.

A loopback TCP proxy stands in for the API server: it accepts connections and then hangs (never a byte back),
or relays to the real kube-apiserver until the test tells it to stop answering mid-wait.  The module runs as
its own process (as Ansible runs it) and must end within its timeout plus the client's grace and process start,
with a message that names the server and what it was waiting for.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.support.module_process import run_module
from tests.support.argocd_crds import install_argocd_crds
from tools.localcluster.procs import wait_until

pytestmark = pytest.mark.controlplane

GRACE = 5.0        # k8s_client.DEADLINE_GRACE
SLACK = 8.0        # the module's exit on a loaded machine
# The bound runs from the module's first connection: Python's start and imports (tens of seconds on a loaded
# 2-core machine) come before any request and are no part of the module's timeout.
STARTUP = 90.0
NS = "it-timeouts"


class HangingProxy:
    """127.0.0.1:<port> that relays to ``target`` while ``answering`` is set, and otherwise hangs.

    A connection accepted while not answering is held open without a byte back; a relayed connection stops
    relaying (both ways) the moment ``answering`` is cleared, as an API server that froze mid-stream.
    """

    def __init__(self, target: tuple[str, int] | None = None):
        self.target = target
        self.answering = threading.Event()
        if target:
            self.answering.set()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.accepted = 0
        self.first_accept: float | None = None
        self.thread = threading.Thread(target=self._serve, name="hanging-proxy", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.first_accept is None:
                self.first_accept = time.monotonic()
            self.held.append(conn)
            if self.target and self.answering.is_set():
                upstream = socket.create_connection(self.target, timeout=5)
                self.held.append(upstream)
                for src, dst in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.2)
        while not self.stopped.is_set():
            if not self.answering.is_set():
                time.sleep(0.2)  # frozen: hold the connection, relay nothing
                continue
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        for conn in self.held:
            try:
                conn.close()
            except OSError:
                pass
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def hanging():
    proxy = HangingProxy()
    yield proxy
    proxy.close()


def _token_auth(proxy: HangingProxy) -> dict:
    return {"host": proxy.url, "api_key": "not-a-real-token", "validate_certs": False}


@pytest.mark.parametrize("module, args, limit, what", [
    ("argocd_sync_waves", {"root_app": "root", "wave_timeout": 5, "timeout": 10}, 10, "the sync waves of root"),
    ("argocd_sync_waves", {"label_selector": "team=a", "timeout": 6, "wave_timeout": 6, "slice_seconds": 4}, 4,
     "the sync waves of team=a"),
    ("argocd_root_app", {"name": "root", "repo_url": "https://git.example.test/org/repo.git", "wait_timeout": 5}, 5,
     "Application argocd/root"),
    ("argocd_root_app", {"name": "root", "state": "absent", "wait_timeout": 4}, 4, "Application argocd/root"),
])
def test_unresponsive_api_server_fails_within_the_timeout(hanging, module, args, limit, what):
    started = time.monotonic()
    run = run_module(module, dict(args, **_token_auth(hanging)), timeout=limit + GRACE + STARTUP)
    ended = started + run.seconds
    assert run.failed, run.result
    assert hanging.first_accept is not None, run.msg
    waited = ended - hanging.first_accept
    assert waited < limit + GRACE + SLACK, f"{module} ran {waited:.1f}s after its first request, timeout {limit}s"
    assert hanging.url in run.msg and what in run.msg, run.msg
    assert "did not answer within" in run.msg or "ran out before this request" in run.msg, run.msg


def test_a_server_that_refuses_connections_is_named(hanging):
    port = hanging.port
    hanging.close()  # nothing listens any more: connection refused, retried inside the deadline
    args = {"root_app": "root", "wave_timeout": 3, "timeout": 3, "host": f"https://127.0.0.1:{port}",
            "api_key": "x-token", "validate_certs": False}
    run = run_module("argocd_sync_waves", args, timeout=3 + GRACE + STARTUP)
    assert run.failed, (run.seconds, run.msg)
    assert f"cannot reach the API server https://127.0.0.1:{port}" in run.msg, run.msg


# -- an API server that stops answering in the middle of a wait ----------------------------------

@pytest.fixture(scope="module")
def argocd_crds(cluster):
    install_argocd_crds(cluster)
    cluster.kubectl("create", "namespace", NS, check=False)
    yield


def _proxied_kubeconfig(cluster, proxy: HangingProxy) -> dict:
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config = copy.deepcopy(config)
    for entry in config["clusters"]:
        entry["cluster"]["server"] = proxy.url
    return config


def test_api_server_freezing_mid_wait_ends_the_wait_in_time(cluster, argocd_crds):
    port = int(cluster.server.rsplit(":", 1)[1])
    proxy = HangingProxy(("127.0.0.1", port))
    try:
        # Nobody creates the expected app (no Argo CD controller here): the verifier lists, then watches.
        args = {"label_selector": "it=frozen", "namespace": NS, "expected_apps": ["never-created"],
                "wave_timeout": 12, "timeout": 12, "kubeconfig": _proxied_kubeconfig(cluster, proxy)}
        froze_at: list[float] = []

        def freeze() -> None:
            # Freeze 3 s after the module's first request: past its LIST, inside its WATCH.
            wait_until("the module's first request", lambda: proxy.first_accept is not None, 120, interval=0.1)
            time.sleep(3)
            proxy.answering.clear()
            froze_at.append(time.monotonic())
        timer = threading.Thread(target=freeze, daemon=True)
        started = time.monotonic()
        timer.start()
        run = run_module("argocd_sync_waves", args, timeout=12 + GRACE + STARTUP)
        ended = started + run.seconds
        timer.join(timeout=10)
    finally:
        proxy.close()
    assert froze_at, "the proxy never froze"
    assert run.failed, run.result
    assert proxy.first_accept is not None, run.msg
    waited = ended - proxy.first_accept
    assert waited < 12 + GRACE + SLACK, f"ran {waited:.1f}s after its first request, timeout 12s: {run.msg}"
    # Either the wait's own timeout (the report names the app) or the client's deadline (names the server).
    assert "never-created" in run.msg or proxy.url in run.msg, run.msg
