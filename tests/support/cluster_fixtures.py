"""pytest fixtures for the local real cluster (loaded by tests/conftest.py).

- ``cluster``: session-scoped :class:`~tools.localcluster.cluster.Cluster` with the
  example inventory's 14 nodes Ready (unlabelled: applying labels is the
  node_labels role's job). Builds missing binaries first (cold build prints
  progress); a failed build fails the test naming the component.
- ``kubeconfig``: path (str) of the cluster's admin kubeconfig.
- ``kubeadm_bin``, ``kustomize_bin``: paths of the harness's kubeadm and
  kustomize (the pinned one, which sample_repo.render prefers); ``cluster_binaries``: the
  builds the podman kubeadm cluster (tests/cluster) uses. Both build what is
  missing, before the first test as the others do.
- ``argocd``: session-scoped :class:`~tools.localcluster.argocd.ArgoCD` processes
  (repo-server, application-controller, redis) on that cluster.

``ECOECO_ARGOCD_APP_RESYNC`` sets the controller's ``--app-resync`` (default 30 s).
Set ``ECOECO_CLUSTER_STATE=.cluster/state.json`` to reuse a cluster started
with ``make cluster-up`` instead of starting one (it is not stopped then).

The run ends with a "harness" section: API server version, cold build, warm
start, node readiness, RSS; and a "measured" section with what tests recorded
through :func:`record_measurement`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator

import pytest

from tools.localcluster import binaries, build
from tools.localcluster.build import BuildError
from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import HarnessError

CONTROL_PLANE = ("kubernetes", "etcd", "kwok")
ARGOCD = ("argocd", "kustomize", "helm")
# The podman kubeadm cluster (tests/cluster): its nodes and images use these builds.
CLUSTER = ("kubernetes", "etcd", "argocd", "kustomize", "cni-plugins")
REPORT: dict[str, str] = {}
# What tests measured (``record_measurement``), shown in a section of their own at the end.
MEASURED: dict[str, str] = {}
BUILD_ERRORS: dict[str, str] = {}


def _say(config: pytest.Config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def log(msg: str) -> None:
        if reporter is not None:
            reporter.write_line(msg)
        else:
            print(msg, flush=True)
    return log


def _require(config: pytest.Config, names: tuple[str, ...]) -> None:
    """Build what is missing (once per session); a failed build fails the caller's test."""
    for name in names:
        if name in BUILD_ERRORS:
            pytest.fail(f"cannot build the local cluster's binaries: {BUILD_ERRORS[name]}", pytrace=False)
        if f"build {name}" in REPORT:
            continue
        try:
            secs = binaries.require([name], log=_say(config))[name]
        except BuildError as exc:
            BUILD_ERRORS[name] = str(exc)
            pytest.fail(f"cannot build the local cluster's binaries: {exc}", pytrace=False)
        REPORT[f"build {name}"] = f"cold build {secs:.0f}s" if secs else "cached"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before the first test: a cold build takes longer than a
    test's timeout (pytest-timeout counts fixture setup), so it happens here, with progress."""
    if session.config.option.collectonly or os.environ.get("ECOECO_CLUSTER_STATE"):
        return
    used = set()
    for item in session.items:
        used.update(getattr(item, "fixturenames", ()))
    names: tuple[str, ...] = ()
    if used & {"cluster", "kubeconfig", "argocd"}:
        names += CONTROL_PLANE
    if "argocd" in used:
        names += ARGOCD
    if "kubeadm_bin" in used:
        names += ("kubernetes",)
    if "kustomize_bin" in used:
        names += ("kustomize",)
    if "helm_bin" in used:
        names += ("helm",)
    if "cluster_binaries" in used:
        names += CLUSTER
    if "day2_binaries" in used:
        names += CLUSTER + ("kubernetes_previous",)
    for name in dict.fromkeys(names):
        try:
            secs = binaries.require([name], log=_say(session.config))[name]
            REPORT[f"build {name}"] = f"cold build {secs:.0f}s" if secs else "cached"
        except BuildError as exc:
            BUILD_ERRORS[name] = str(exc)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The local control plane with the example's 14 kwok nodes Ready."""
    log = _say(request.config)
    state_file = os.environ.get("ECOECO_CLUSTER_STATE")
    if state_file:
        c = Cluster.attach(json.loads(Path(state_file).read_text(encoding="utf-8")), log=log)
        REPORT["cluster"] = f"reused {state_file}"
        REPORT["apiserver version"] = c.version()["gitVersion"]
        yield c
        return
    _require(request.config, CONTROL_PLANE)
    c = Cluster(tmp_path_factory.mktemp("cluster"), log=log)
    try:
        begin = time.monotonic()
        try:
            c.start()
        except HarnessError as exc:
            pytest.fail(f"local control plane did not start: {exc}", pytrace=False)
        REPORT["warm start"] = f"{c.timings['start_s']:.1f}s (apiserver /readyz after " \
                               f"{c.timings['kube-apiserver_ready_s']:.1f}s)"
        version = c.version()["gitVersion"]
        REPORT["apiserver version"] = version
        log(f"[cluster] kube-apiserver /version: {version}")
        nodes = c.create_nodes()
        REPORT["nodes"] = f"{len(nodes)} Ready in {c.timings[f'nodes_{len(nodes)}_ready_s']:.1f}s " \
                          f"(cluster usable {time.monotonic() - begin:.1f}s after start)"
        REPORT["rss after start"] = c.rss_report()
        log(f"[cluster] {REPORT['rss after start']}")
        yield c
        REPORT["rss at end"] = c.rss_report()
    finally:
        c.stop()


@pytest.fixture(scope="session")
def kubeadm_bin(request: pytest.FixtureRequest) -> Path:
    """The harness's kubeadm (built first when the cache lacks it)."""
    _require(request.config, ("kubernetes",))
    return build.components()["kubernetes"].path("kubeadm")


@pytest.fixture(scope="session")
def kustomize_bin(request: pytest.FixtureRequest) -> Path:
    """The pinned kustomize, the one Argo CD's repo-server runs (built first when the cache lacks it)."""
    _require(request.config, ("kustomize",))
    return build.components()["kustomize"].path()


@pytest.fixture(scope="session")
def helm_bin(request: pytest.FixtureRequest) -> Path:
    """The pinned helm, the one Argo CD's repo-server runs for Helm sources (built first when missing)."""
    _require(request.config, ("helm",))
    return build.components()["helm"].path()


@pytest.fixture(scope="session")
def cluster_binaries(request: pytest.FixtureRequest) -> dict[str, Path]:
    """Binary directories of the podman kubeadm cluster's builds, by component (built first when missing)."""
    _require(request.config, CLUSTER)
    comps = build.components()
    return {name: comps[name].bin_dir for name in CLUSTER}


@pytest.fixture(scope="session")
def day2_binaries(request: pytest.FixtureRequest) -> dict[str, Path]:
    """``cluster_binaries`` plus ``kubernetes_previous`` (the release day 2 installs first and upgrades from)."""
    names = CLUSTER + ("kubernetes_previous",)
    _require(request.config, names)
    comps = build.components()
    return {name: comps[name].bin_dir for name in names}


@pytest.fixture(scope="session")
def kubeconfig(cluster: Cluster) -> str:
    """Path of the cluster's admin kubeconfig."""
    return str(cluster.kubeconfig)


@pytest.fixture(scope="session")
def argocd(request: pytest.FixtureRequest, cluster: Cluster,
           tmp_path_factory: pytest.TempPathFactory):
    """Argo CD (repo-server, application-controller, applicationset-controller, redis) against ``cluster``."""
    from tools.localcluster.argocd import ArgoCD

    log = _say(request.config)
    _require(request.config, ARGOCD)
    resync = int(os.environ.get("ECOECO_ARGOCD_APP_RESYNC", "30"))
    app = ArgoCD(cluster, tmp_path_factory.mktemp("argocd"), log=log, app_resync=resync)
    try:
        try:
            app.start()
        except HarnessError as exc:
            pytest.fail(f"Argo CD did not start: {exc}", pytrace=False)
        REPORT["argocd start"] = f"{app.timings.get('start_s', 0):.1f}s"
        REPORT["rss with argocd"] = f"{cluster.rss_report()}; argocd {app.rss_report()}"
        log(f"[argocd] {REPORT['rss with argocd']}")
        yield app
    finally:
        app.stop()


def record_measurement(key: str, value: str) -> None:
    """Print a figure a test measured now, and again in the summary at the end of the run."""
    MEASURED[key] = value
    print(f"[measured] {key}: {value}", flush=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    """Print what the harness measured (versions, build/start times, memory) and what tests recorded."""
    if REPORT:
        terminalreporter.section("local cluster harness")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {value}")
    if MEASURED:
        terminalreporter.section("measured by the tests")
        for key, value in MEASURED.items():
            terminalreporter.write_line(f"{key}: {value}")
