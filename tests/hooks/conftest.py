"""Fixtures of the hook tests: the hook identity on the real API server, and a small root app.

Everything here runs against the harness's session cluster (and Argo CD where
a test asks for it), so it only adds objects of its own: the hook's
ServiceAccount/RBAC in ``argocd``, test labels under ``node.ecoeco.io/hook-test``,
and the ``hooks-root`` Application tree, and removes what would disturb others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tools.localcluster import sample_repo
from tools.localcluster.procs import wait_until
from tests.hooks import hookenv

ROOT_APP = "hooks-root"
DEMO_NAMESPACE = "hooks-demo"


@pytest.fixture(scope="session")
def admin(cluster):
    """The collection's client with the harness's admin kubeconfig."""
    return hookenv.admin_client(cluster)


@pytest.fixture(scope="session")
def hook_rbac(cluster, admin) -> list[dict]:
    """deploy/hooks' ServiceAccount and RBAC, applied as rendered (the Jobs are not)."""
    hookenv.ensure_namespace(cluster, hookenv.HOOK_NAMESPACE)
    docs = hookenv.render_hooks()
    hookenv.apply(cluster, *hookenv.rbac_docs(docs))
    return docs


@pytest.fixture(scope="session")
def hook_sa_dir(cluster, admin, hook_rbac, tmp_path_factory) -> Path:
    """A pod's service-account directory for the hook identity (a real TokenRequest)."""
    return hookenv.service_account_dir(admin, cluster, tmp_path_factory.mktemp("hook-sa") / "serviceaccount")


@pytest.fixture
def short_grant(cluster, admin, hook_rbac, tmp_path):
    """Make a second hook identity whose RBAC lacks some verbs; returns its service-account dir."""
    made: list[dict] = []

    def make(suffix: str, drop: dict[str, set[str]]) -> Path:
        docs = hookenv.rbac_docs(hook_rbac, suffix=suffix, drop=drop)
        hookenv.apply(cluster, *docs)
        made.extend(docs)
        return hookenv.service_account_dir(admin, cluster, tmp_path / f"sa{suffix}",
                                           sa=hookenv.HOOK_SA + suffix)

    yield make
    for doc in reversed(made):
        ref = hookenv.REFS[doc["kind"]]
        admin.delete(ref, doc["metadata"]["name"], doc["metadata"].get("namespace") if ref.namespaced else None)


@dataclass
class RootApp:
    """A two-wave App of Apps synced by the real Argo CD."""

    name: str
    namespace: str
    repo: Path
    children: tuple[str, ...]


def _write_tree(repo: Path, url: str, prefix: str, broken_wave: int | None) -> tuple[str, ...]:
    apps, manifests = repo / "apps", repo / "manifests"
    children = []
    for wave in (0, 1):
        (manifests / f"wave{wave}").mkdir(parents=True, exist_ok=True)
        (manifests / f"wave{wave}" / "configmap.yaml").write_text(f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {prefix}-wave{wave}
  namespace: {DEMO_NAMESPACE}
data:
  wave: "{wave}"
""", encoding="utf-8")
    apps.mkdir(parents=True, exist_ok=True)
    for wave in (0, 1):
        child = f"{prefix}-wave{wave}"
        path = f"manifests/wave{wave}" if wave != broken_wave else "manifests/does-not-exist"
        (apps / f"{child}.yaml").write_text(f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {child}
  namespace: argocd
  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
spec:
  project: default
  source: {{repoURL: "{url}", targetRevision: main, path: {path}}}
  destination: {{server: "https://kubernetes.default.svc", namespace: {DEMO_NAMESPACE}}}
  syncPolicy:
    automated: {{prune: true, selfHeal: true}}
    syncOptions: [CreateNamespace=true]
""", encoding="utf-8")
        children.append(child)
    return tuple(children)


def _make_root(cluster, base: Path, name: str, broken_wave: int | None = None) -> RootApp:
    repo = base / name
    repo.mkdir(parents=True)
    url = repo.resolve().as_uri()
    children = _write_tree(repo, url, name, broken_wave)
    sample_repo.init_repo(repo, f"{name} test repo")
    hookenv.apply(cluster, {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": url, "targetRevision": "main", "path": "apps"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "argocd"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    })
    return RootApp(name, "argocd", repo, children)


def _remove_root(admin, root: RootApp) -> None:
    ref = hookenv.REFS["Application"]
    for name in (root.name, *root.children):
        admin.delete(ref, name, "argocd")
    wait_until(f"root app {root.name} deleted", lambda: not admin.get(ref, root.name, "argocd"), 30, interval=0.5)


@pytest.fixture(scope="session")
def root_app(argocd, cluster, admin, tmp_path_factory) -> Iterator[RootApp]:
    """``hooks-root`` -> hooks-root-wave0 (wave 0), hooks-root-wave1 (wave 1), from a local git repo."""
    root = _make_root(cluster, tmp_path_factory.mktemp("hooks-gitops"), ROOT_APP)
    yield root
    _remove_root(admin, root)
    admin.delete(hookenv.REFS["Namespace"], DEMO_NAMESPACE)


@pytest.fixture
def broken_root_app(argocd, cluster, admin, tmp_path) -> Iterator[RootApp]:
    """``hooks-broken``: wave 0 fine, wave 1 points at a path that does not exist (ComparisonError)."""
    root = _make_root(cluster, tmp_path, "hooks-broken", broken_wave=1)
    yield root
    _remove_root(admin, root)
