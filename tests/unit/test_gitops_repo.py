"""The sample GitOps repository (examples/gitops-repo) renders and is laid out in waves.

Every overlay is rendered with the real kustomize binary the harness builds
(the version Argo CD's repo-server uses), or ``kubectl kustomize`` when that
binary is not built yet; the Helm chart with the pinned helm. Every source of
every Application, and of every Application the ApplicationSet generates,
renders.
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
pytestmark = pytest.mark.usefixtures("kustomize_bin", "helm_bin")

SAMPLE = sample_repo.SAMPLE_DIR
INVENTORY = REPO_ROOT / "inventories" / "example"
# The node roles of the seed cluster (namespaces-and-node-placement.md).
SEED_WORKLOADS = {"application", "async-workers", "database", "cache", "message-queue", "monitoring"}
# Applications and the ApplicationSet the root lists, with their waves (the AppProject is wave -1).
EXPECTED_WAVES = {"infrastructure": 0, "databases": 1, "workers": 2, "apis": 3, "gateway": 4}
GENERATED = {"api-auth": "auth", "api-scan": "scan", "api-chat": "chat"}
EXPECTED_PLACEMENT = {
    ("data", "postgresql"): "database",
    ("data", "redis"): "cache",
    ("messaging", "rabbitmq"): "message-queue",
}
OVERLAYS = sorted(p for p in (SAMPLE / "k8s").glob("*/overlays/*") if (p / "kustomization.yaml").is_file())
VALUES = sorted((SAMPLE / "k8s").glob("*/overlays/*/values.yaml"))


def render(path: Path) -> list[dict]:
    """``kustomize build`` with the pinned kustomize (the module's ``kustomize_bin`` fixture builds it)."""
    return sample_repo.render(path)


def root_objects() -> list[dict]:
    """What the root renders: argocd/applications with kustomize (it recurses into the sub-directories)."""
    return render(SAMPLE / "argocd" / "applications")


def applications(kind: str = "Application") -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in root_objects() if doc.get("kind") == kind}


def every_app() -> dict[str, dict]:
    """The root's Applications and the ones its ApplicationSets generate."""
    apps = dict(applications())
    for appset in applications("ApplicationSet").values():
        apps.update({a["metadata"]["name"]: a for a in sample_repo.generated_apps(appset)})
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


@pytest.mark.parametrize("values", VALUES, ids=lambda p: str(p.relative_to(SAMPLE / "k8s")))
def test_every_helm_values_overlay_renders_the_chart(values: Path) -> None:
    docs = sample_repo.render_helm(SAMPLE / "charts" / values.parent.parent.parent.name, [values], "x", "api")
    assert {d["kind"] for d in docs} == {"Deployment", "Service"}
    env = values.parent.name
    assert all(d["metadata"]["labels"]["ecoeco.io/environment"] == env for d in docs)


def test_both_environments_exist_for_every_layer() -> None:
    layers = {p.parent.parent.name for p in OVERLAYS}
    assert layers == {"infrastructure", "databases", "workers", "apis"}
    for layer in layers:
        assert {p.name for p in OVERLAYS if p.parent.parent.name == layer} == {"dev", "prod"}
    assert {(p.parent.parent.parent.name, p.parent.name) for p in VALUES} == {("gateway", "dev"), ("gateway", "prod")}
    for env in ("dev", "prod"):     # one overlay per API, the directories the ApplicationSet renders
        assert {p.name for p in (SAMPLE / "k8s" / "apis" / "overlays" / env).iterdir() if p.is_dir()} == \
            set(GENERATED.values())


def test_root_lists_the_project_the_apps_and_the_set_in_waves_from_sub_directories() -> None:
    objs = root_objects()
    waves = {(d["kind"], d["metadata"]["name"]): d["metadata"].get("annotations", {}).get(
        "argocd.argoproj.io/sync-wave") for d in objs}
    assert all(isinstance(w, str) for w in waves.values()), f"a root child has no sync-wave: {waves}"
    assert waves.pop(("AppProject", "ecoeco")) == "-1"
    assert {n: int(w) for (_k, n), w in waves.items()} == EXPECTED_WAVES
    assert {n for (k, n) in waves if k == "ApplicationSet"} == {"apis"}
    listed = (SAMPLE / "argocd" / "applications" / "kustomization.yaml").read_text(encoding="utf-8")
    subdirs = [p.name for p in (SAMPLE / "argocd" / "applications").iterdir() if p.is_dir()]
    assert len(subdirs) >= 3 and all(f"  - {d}" in listed for d in subdirs)
    assert [p.name for p in (SAMPLE / "argocd" / "applications").glob("*.yaml")] == ["kustomization.yaml"]


def test_the_apis_set_generates_one_app_per_api_with_go_templates() -> None:
    appset = applications("ApplicationSet")["apis"]
    assert appset["spec"]["goTemplate"] is True
    assert set(appset["spec"]["generators"][0]) == {"list"}
    generated = {a["metadata"]["name"]: a for a in sample_repo.generated_apps(appset)}
    assert set(generated) == set(GENERATED)
    for name, svc in GENERATED.items():
        app = generated[name]
        assert app["spec"]["source"]["path"] == f"k8s/apis/overlays/prod/{svc}"
        assert "argocd.argoproj.io/sync-wave" not in (app["metadata"].get("annotations") or {}), \
            "Argo CD orders generated apps by the set's wave only"
        assert app["spec"]["project"] == "ecoeco"


def test_gateway_is_a_multi_source_helm_app_with_values_per_overlay() -> None:
    app = applications()["gateway"]
    sources = app["spec"]["sources"]
    chart = next(s for s in sources if s.get("path"))
    ref = next(s for s in sources if s.get("ref"))
    assert (SAMPLE / chart["path"] / "Chart.yaml").is_file()
    assert chart["helm"]["valueFiles"] == [f"${ref['ref']}/k8s/gateway/overlays/prod/values.yaml"]
    assert ref["repoURL"] == chart["repoURL"] == sample_repo.PLACEHOLDER_REPO_URL


def test_projects_allow_what_their_apps_deploy() -> None:
    project = applications("AppProject")["ecoeco"]["spec"]
    allowed = {d["namespace"] for d in project["destinations"]}
    assert project["sourceRepos"] == [sample_repo.PLACEHOLDER_REPO_URL]
    for name, app in every_app().items():
        if app["spec"]["project"] == "default":
            continue
        assert app["spec"]["project"] == "ecoeco", name
        namespaces = {d["metadata"].get("namespace") or app["spec"]["destination"]["namespace"]
                      for d in sample_repo.render_source(app) if d["kind"] != "Namespace"}
        assert namespaces <= allowed, f"{name} deploys into {namespaces - allowed}, not in project ecoeco"


@pytest.mark.parametrize("name", sorted({*EXPECTED_WAVES, *GENERATED} - {"apis"}))
def test_every_application_source_renders(name: str) -> None:
    app = every_app()[name]
    docs = sample_repo.render_source(app)
    assert docs and all(d.get("apiVersion") and d.get("kind") and d["metadata"].get("name") for d in docs)


def test_applications_point_at_rendering_sources_with_seed_sync_policy() -> None:
    root = yaml.safe_load((SAMPLE / "argocd" / "root-app.yaml").read_text(encoding="utf-8"))
    assert root["spec"]["source"]["path"] == "argocd/applications"
    for app in [root, *every_app().values()]:
        policy = app["spec"]["syncPolicy"]
        for src in app["spec"].get("sources") or [app["spec"]["source"]]:
            assert src["repoURL"] == sample_repo.PLACEHOLDER_REPO_URL
            assert src["targetRevision"] == sample_repo.BRANCH
            assert src.get("ref") or (SAMPLE / src["path"]).is_dir(), src
        assert policy["automated"] == {**policy["automated"], "prune": True, "selfHeal": True}
        assert policy["retry"]["backoff"] == {"duration": "5s", "factor": 2, "maxDuration": "3m"}
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
    for name in ("infrastructure", "databases", "workers"):
        app = applications()[name]
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
    gateway = sample_repo.render_helm(SAMPLE / "charts" / "gateway",
                                      [SAMPLE / "k8s" / "gateway" / "overlays" / env / "values.yaml"], "gateway", "api")
    for layer in ("databases", "workers", "apis", "gateway"):
        docs = gateway if layer == "gateway" else render(SAMPLE / "k8s" / layer / "overlays" / env)
        for doc, spec in pod_specs(docs):
            doc["metadata"].setdefault("namespace", "api")
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
            if layer in ("apis", "gateway"):
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
