"""The sample GitOps repository (examples/gitops-repo) renders and is laid out in waves.

Every overlay is rendered with the real kustomize binary the harness builds
(the version Argo CD's repo-server uses), or ``kubectl kustomize`` when that
binary is not built yet.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.localcluster import sample_repo
from tools.localcluster.versions import REPO_ROOT

# The unit tier builds the pinned kustomize itself (seconds when cached), not relying on `make build`.
pytestmark = pytest.mark.usefixtures("kustomize_bin")

SAMPLE = sample_repo.SAMPLE_DIR
INVENTORY = REPO_ROOT / "inventories" / "example"
# The node roles of the seed cluster (namespaces-and-node-placement.md).
SEED_WORKLOADS = {"application", "async-workers", "database", "cache", "message-queue", "monitoring"}
EXPECTED_WAVES = {"infrastructure": 0, "databases": 1, "workers": 2, "apis": 3}
EXPECTED_PLACEMENT = {
    ("data", "postgresql"): "database",
    ("data", "redis"): "cache",
    ("messaging", "rabbitmq"): "message-queue",
}
OVERLAYS = sorted(p for p in (SAMPLE / "k8s").glob("*/overlays/*") if (p / "kustomization.yaml").is_file())


def render(path: Path) -> list[dict]:
    """``kustomize build`` with the pinned kustomize (the module's ``kustomize_bin`` fixture builds it)."""
    return sample_repo.render(path)


def applications() -> dict[str, dict]:
    apps = {}
    for path in sorted((SAMPLE / "argocd" / "applications").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if doc.get("kind") == "Application":
            apps[doc["metadata"]["name"]] = doc
    return apps


def inventory_workloads() -> set[str]:
    """Every `workload` label value the example inventory declares (INI or YAML)."""
    found: set[str] = set()
    pattern = re.compile(r"""["']?workload["']?\s*[:=]\s*["']?([a-z0-9][a-z0-9.-]*)""")
    for path in INVENTORY.rglob("*"):
        if path.is_file() and path.suffix in ("", ".ini", ".yml", ".yaml"):
            found.update(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found


def pod_specs(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(SAMPLE / "k8s")))
def test_every_overlay_renders(overlay: Path) -> None:
    docs = render(overlay)
    assert docs, f"{overlay} rendered nothing"
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name")


def test_both_environments_exist_for_every_layer() -> None:
    layers = {p.parent.parent.name for p in OVERLAYS}
    assert layers == {"infrastructure", "databases", "workers", "apis"}
    for layer in layers:
        assert {p.name for p in OVERLAYS if p.parent.parent.name == layer} == {"dev", "prod"}


def test_applications_are_waves_0_to_3() -> None:
    apps = applications()
    waves = {name: app["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave")
             for name, app in apps.items()}
    assert all(isinstance(w, str) for w in waves.values()), f"an Application has no sync-wave: {waves}"
    assert {n: int(w) for n, w in waves.items()} == EXPECTED_WAVES
    assert sorted(int(w) for w in waves.values()) == [0, 1, 2, 3]


def test_applications_point_at_rendering_overlays_with_seed_sync_policy() -> None:
    root = yaml.safe_load((SAMPLE / "argocd" / "root-app.yaml").read_text(encoding="utf-8"))
    assert root["spec"]["source"]["path"] == "argocd/applications"
    for app in [root, *applications().values()]:
        src, policy = app["spec"]["source"], app["spec"]["syncPolicy"]
        assert src["repoURL"] == sample_repo.PLACEHOLDER_REPO_URL
        assert src["targetRevision"] == sample_repo.BRANCH
        assert (SAMPLE / src["path"]).is_dir(), src["path"]
        assert policy["automated"] == {**policy["automated"], "prune": True, "selfHeal": True}
        assert policy["retry"]["backoff"] == {"duration": "5s", "factor": 2, "maxDuration": "3m"}
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
    for app in applications().values():
        assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
        assert (SAMPLE / app["spec"]["source"]["path"]) in OVERLAYS


def test_infrastructure_declares_the_seed_namespaces() -> None:
    docs = render(SAMPLE / "k8s" / "infrastructure" / "overlays" / "prod")
    kinds: dict[str, set[str]] = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], set()).add(doc["metadata"].get("namespace") or doc["metadata"]["name"])
    namespaces = {"api", "async", "data", "messaging", "monitoring"}
    assert kinds["Namespace"] == namespaces
    assert kinds["ResourceQuota"] == namespaces
    assert kinds["NetworkPolicy"] == namespaces
    assert kinds["StorageClass"]
    for doc in docs:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["labels"]["ecoeco.io/workload"] in SEED_WORKLOADS


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_workloads_land_on_inventory_node_labels(env: str) -> None:
    known = inventory_workloads() or SEED_WORKLOADS
    assert SEED_WORKLOADS - {"monitoring"} <= known, f"inventory lacks seed workload labels: {known}"
    declared_ns = {d["metadata"]["name"] for d in render(SAMPLE / "k8s" / "infrastructure" / "overlays" / env)
                   if d["kind"] == "Namespace"}
    placement = {}
    for layer in ("databases", "workers", "apis"):
        for doc, spec in pod_specs(render(SAMPLE / "k8s" / layer / "overlays" / env)):
            ns, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
            selector = spec.get("nodeSelector", {})
            assert set(selector) == {"workload"}, f"{ns}/{name}: nodeSelector {selector}"
            assert selector["workload"] in known, f"{ns}/{name}: no node is labelled workload={selector['workload']}"
            assert ns in declared_ns, f"{ns}/{name}: namespace {ns} is not created by wave 0"
            assert 1 <= doc["spec"].get("replicas", 1) <= 2, f"{ns}/{name}: keep the sample small"
            for c in spec["containers"]:
                assert c.get("imagePullPolicy") == "IfNotPresent" and c.get("resources", {}).get("requests")
            placement[(ns, name)] = selector["workload"]
            if layer == "workers":
                assert (ns, selector["workload"]) == ("async", "async-workers")
            if layer == "apis":
                assert (ns, selector["workload"]) == ("api", "application")
    for key, workload in EXPECTED_PLACEMENT.items():
        assert placement.get(key) == workload, f"{key}: {placement.get(key)}"


def test_services_select_only_their_own_pods() -> None:
    docs = render(SAMPLE / "k8s" / "apis" / "overlays" / "prod")
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for svc in (d for d in docs if d["kind"] == "Service"):
        matches = [n for n, d in deployments.items()
                   if svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert matches == [svc["metadata"]["name"]], f"Service {svc['metadata']['name']} selects {matches}"


def test_materialize_replaces_the_placeholder_and_commits(tmp_path: Path) -> None:
    assert shutil.which("git"), "git is missing (Debian's git; the e2e harness needs it too)"
    dest = tmp_path / "repo"
    sha = sample_repo.materialize(dest)
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    url = dest.resolve().as_uri()
    for path in dest.rglob("*.yaml"):
        if ".git" not in path.parts:
            assert sample_repo.PLACEHOLDER_REPO_URL not in path.read_text(encoding="utf-8"), path
    root = yaml.safe_load((dest / "argocd" / "root-app.yaml").read_text(encoding="utf-8"))
    assert root["spec"]["source"]["repoURL"] == url
    branch = subprocess.run(["git", "-C", str(dest), "branch", "--show-current"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert branch == sample_repo.BRANCH
