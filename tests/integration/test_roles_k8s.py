"""The Kubernetes-API-side roles against the harness's real kube-apiserver and kwok nodes.

node_labels, calico and argocd run through ``ansible-playbook`` (the collection's
phase playbooks) exactly as a user runs them, with the example inventory; the
assertions read the cluster back through the API.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tools.localcluster import audit
from tools.localcluster.ansible import PlaybookResult, run_playbook
from tools.localcluster.cluster import Cluster
from tools.localcluster.nodes import inventory_nodes
from tools.localcluster.versions import REPO_ROOT, VERSIONS

pytestmark = pytest.mark.controlplane

INVENTORY = REPO_ROOT / "inventories" / "example" / "hosts.yml"
MANIFESTS = REPO_ROOT.parent / "shared" / "manifests"
CALICO_MANIFEST = MANIFESTS / "calico" / "v3.32.1" / "calico.yaml"
ARGOCD_MANIFEST = MANIFESTS / "argo-cd" / VERSIONS["argocd"] / "install.yaml"
ARGOCD_PREVIOUS_MANIFEST = MANIFESTS / "argo-cd" / VERSIONS["argocd_previous"] / "install.yaml"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
ARGOCD_FILES = REPO_ROOT / "roles" / "argocd" / "files"
FOREIGN_LABEL = ("team.example.com/owner", "payments")


def _get(cluster: Cluster, path: str) -> Any:
    return cluster.api.get(path, ok404=True)


def _node(cluster: Cluster, name: str) -> dict[str, Any]:
    return _get(cluster, f"/api/v1/nodes/{name}")


def _taints(node: dict[str, Any]) -> list[dict[str, str]]:
    return [{k: t[k] for k in ("key", "value", "effect") if t.get(k) not in (None, "")}
            for t in node["spec"].get("taints") or []]


def _play(name: str, kubeconfig: str, inventory: Path = INVENTORY, **kwargs: Any) -> PlaybookResult:
    extra = {"ecoeco_kubeconfig": kubeconfig, **kwargs.pop("extra_vars", {})}
    result = run_playbook(REPO_ROOT / "playbooks" / f"{name}.yml", inventory, extra_vars=extra, **kwargs)
    print(f"[{name}] rc={result.rc} changed={result.changed} {result.seconds:.1f}s"
          f"{' check' if kwargs.get('check') else ''}{' diff' if kwargs.get('diff') else ''}")
    return result


def _inventory_copy(tmp_path: Path, edit) -> Path:
    """A copy of the example inventory (with its group_vars) after ``edit(hosts_yml_data)``."""
    target = tmp_path / "inventory"
    shutil.copytree(INVENTORY.parent, target, dirs_exist_ok=True)
    data = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
    edit(data)
    (target / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (target / "hosts.ini").unlink(missing_ok=True)
    return target / "hosts.yml"


def _host_entry(data: dict[str, Any], host: str) -> dict[str, Any]:
    """The vars dict of ``host`` somewhere in a YAML inventory."""
    stack = [data]
    while stack:
        group = stack.pop()
        if not isinstance(group, dict):
            continue
        if host in (group.get("hosts") or {}):
            return group["hosts"][host]
        stack.extend(group.values())
    raise KeyError(host)


# --------------------------------------------------------------------- node_labels
@pytest.fixture(scope="module")
def labelled(cluster: Cluster, kubeconfig: str) -> PlaybookResult:
    """The example inventory's labels and taints applied once by the node_labels playbook."""
    cluster.kubectl("label", "node", "k8s-worker-1", f"{FOREIGN_LABEL[0]}={FOREIGN_LABEL[1]}", "--overwrite")
    result = _play("node_labels", kubeconfig)
    assert result.ok, str(result)
    return result


def test_node_labels_applies_the_inventory(cluster: Cluster, labelled: PlaybookResult) -> None:
    specs = inventory_nodes(INVENTORY)
    assert len(specs) == 14
    for spec in specs:
        node = _node(cluster, spec.name)
        assert node, f"node {spec.name} missing"
        labels = node["metadata"]["labels"]
        for key, value in spec.labels.items():
            assert labels.get(key) == str(value), (spec.name, key, labels)
        for taint in spec.taints:
            assert taint in _taints(node), (spec.name, taint, node["spec"].get("taints"))
    assert "k8s-postgresql" in labelled.stdout  # the changed nodes are printed


def test_node_labels_rerun_changes_nothing(kubeconfig: str, labelled: PlaybookResult) -> None:
    again = _play("node_labels", kubeconfig)
    assert again.ok, str(again)
    assert again.changed == 0, str(again)
    assert "no node changed" in again.stdout


def test_node_labels_removed_label_is_removed_and_foreign_kept(
        cluster: Cluster, kubeconfig: str, labelled: PlaybookResult, tmp_path: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        entry = _host_entry(data, "k8s-api-auth")
        entry["node_labels"] = {k: v for k, v in entry["node_labels"].items() if k != "node-role"}
        _host_entry(data, "k8s-postgresql").pop("node_taints", None)

    inventory = _inventory_copy(tmp_path, drop)
    before = {n: copy.deepcopy(_node(cluster, n)) for n in ("k8s-api-auth", "k8s-postgresql")}
    assert before["k8s-api-auth"]["metadata"]["labels"].get("node-role") == "auth"

    # check mode: reports the change, changes nothing; --diff shows it
    checked = _play("node_labels", kubeconfig, inventory, check=True, diff=True)
    assert checked.ok and checked.changed == 1, str(checked)
    assert "node-role" in checked.stdout and "dedicated" in checked.stdout, str(checked)
    for name, node in before.items():
        now = _node(cluster, name)
        assert now["metadata"]["labels"] == node["metadata"]["labels"]
        assert _taints(now) == _taints(node)

    applied = _play("node_labels", kubeconfig, inventory, diff=True)
    assert applied.ok and applied.changed == 1, str(applied)
    auth = _node(cluster, "k8s-api-auth")
    assert "node-role" not in auth["metadata"]["labels"]
    assert auth["metadata"]["labels"]["workload"] == "application"
    assert not [t for t in _taints(_node(cluster, "k8s-postgresql")) if t["key"] == "dedicated"]
    worker = _node(cluster, "k8s-worker-1")
    assert worker["metadata"]["labels"].get(FOREIGN_LABEL[0]) == FOREIGN_LABEL[1]
    # kubelet/kwok labels were never the role's
    assert auth["metadata"]["labels"].get("kubernetes.io/hostname") == "k8s-api-auth"

    restored = _play("node_labels", kubeconfig)
    assert restored.ok and restored.changed == 1, str(restored)
    assert _node(cluster, "k8s-api-auth")["metadata"]["labels"].get("node-role") == "auth"


def test_node_labels_limit_touches_only_the_limited_hosts(
        cluster: Cluster, kubeconfig: str, labelled: PlaybookResult, tmp_path: Path) -> None:
    def relabel(data: dict[str, Any]) -> None:
        _host_entry(data, "k8s-worker-1")["node_labels"]["node.ecoeco.io/tier"] = "gold"
        _host_entry(data, "k8s-worker-2")["node_labels"]["node.ecoeco.io/tier"] = "silver"

    inventory = _inventory_copy(tmp_path, relabel)
    limited = _play("node_labels", kubeconfig, inventory, limit="k8s-worker-1")
    assert limited.ok and limited.changed == 1, str(limited)
    assert _node(cluster, "k8s-worker-1")["metadata"]["labels"].get("node.ecoeco.io/tier") == "gold"
    assert "node.ecoeco.io/tier" not in _node(cluster, "k8s-worker-2")["metadata"]["labels"]
    # the other nodes were not stripped of their labels because they were outside --limit
    assert _node(cluster, "k8s-worker-2")["metadata"]["labels"].get("workload") == "async-workers"
    restored = _play("node_labels", kubeconfig)
    assert restored.ok, str(restored)
    assert "node.ecoeco.io/tier" not in _node(cluster, "k8s-worker-1")["metadata"]["labels"]


# ---------------------------------------------------------------------------- calico
CALICO_CIDR = "10.244.0.0/16"


def _calico_env(cluster: Cluster) -> dict[str, str]:
    ds = _get(cluster, "/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node")
    container = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "calico-node")
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.fixture(scope="module")
def calico(cluster: Cluster, kubeconfig: str) -> PlaybookResult:
    result = _play("cni", kubeconfig, extra_vars={"calico_manifest_src": str(CALICO_MANIFEST),
                                                  "calico_pod_cidr": CALICO_CIDR})
    assert result.ok, str(result)
    return result


def test_calico_rolls_out_on_the_kwok_nodes(cluster: Cluster, calico: PlaybookResult) -> None:
    ds = _get(cluster, "/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node")
    status = ds["status"]
    nodes = _get(cluster, "/api/v1/nodes")["items"]
    assert status["desiredNumberScheduled"] == len(nodes) >= 14, status
    assert status["numberReady"] == status["desiredNumberScheduled"], status
    deploy = _get(cluster, "/apis/apps/v1/namespaces/kube-system/deployments/calico-kube-controllers")
    assert deploy["status"].get("readyReplicas") == deploy["spec"]["replicas"], deploy["status"]
    assert _calico_env(cluster)["CALICO_IPV4POOL_CIDR"] == CALICO_CIDR
    print(f"[calico] applied and rolled out on {status['numberReady']} nodes in {calico.seconds:.1f}s")


def _writes_since(cluster: Cluster, mark) -> list[str]:
    """Writes the playbooks made (the admin user, not the harness's own client), from the audit log."""
    time.sleep(1.0)  # the audit backend writes asynchronously
    return [f"{ev['verb']} {(ev.get('objectRef') or {}).get('resource')}/{(ev.get('objectRef') or {}).get('name')}"
            for ev in audit.writes(cluster.audit_events(since=mark, user="kubernetes-admin"))
            if "ecoeco-harness" not in (ev.get("userAgent") or "")]


def test_calico_rerun_changes_nothing(cluster: Cluster, kubeconfig: str, calico: PlaybookResult) -> None:
    mark = cluster.audit_mark()
    again = _play("cni", kubeconfig, extra_vars={"calico_manifest_src": str(CALICO_MANIFEST),
                                                 "calico_pod_cidr": CALICO_CIDR})
    assert again.ok and again.changed == 0, str(again)
    assert _writes_since(cluster, mark) == [], "a no-op rerun must not write"


def test_calico_reads_the_pod_cidr_from_kubeadm_config(cluster: Cluster, kubeconfig: str,
                                                       calico: PlaybookResult) -> None:
    def kubeadm_config(subnet: str) -> None:
        cluster.apply(yaml.safe_dump({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml.safe_dump({
                "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                "networking": {"podSubnet": subnet, "serviceSubnet": "10.96.0.0/12"}})}}))

    try:
        kubeadm_config(f"{CALICO_CIDR},fd00:10:244::/56")
        same = _play("cni", kubeconfig, extra_vars={"calico_manifest_src": str(CALICO_MANIFEST)})
        assert same.ok and same.changed == 0, str(same)
        kubeadm_config("10.250.0.0/16")
        other = _play("cni", kubeconfig, check=True, diff=True,
                      extra_vars={"calico_manifest_src": str(CALICO_MANIFEST)})
        assert other.ok and other.changed == 1, str(other)
        assert "10.250.0.0/16" in other.stdout
        assert _calico_env(cluster)["CALICO_IPV4POOL_CIDR"] == CALICO_CIDR  # check mode persisted nothing
    finally:
        cluster.kubectl("delete", "configmap", "-n", "kube-system", "kubeadm-config", "--ignore-not-found")


def test_calico_without_any_pod_cidr_fails_clearly(kubeconfig: str, calico: PlaybookResult) -> None:
    result = _play("cni", kubeconfig, extra_vars={"calico_manifest_src": str(CALICO_MANIFEST)})
    assert not result.ok
    assert "calico_pod_cidr is empty" in result.stdout


# ---------------------------------------------------------------------------- argocd
ADMIN_PASSWORD = "adm-" + secrets.token_urlsafe(18)
REPO_PASSWORD = "tok-" + secrets.token_urlsafe(18)


def _argocd_vars(**overrides: Any) -> dict[str, Any]:
    return {
        "argocd_manifest_src": str(ARGOCD_MANIFEST),
        "argocd_admin_password": ADMIN_PASSWORD,
        "argocd_repositories": [{"name": "gitops", "url": "https://git.example.test/platform/gitops.git",
                                 "username": "ci-bot", "password": REPO_PASSWORD, "project": "platform"}],
        "argocd_projects": [{"name": "platform", "spec": {
            "description": "platform layers",
            "sourceRepos": ["https://git.example.test/platform/*"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}}],
        "argocd_wait_timeout": 180,
        **overrides,
    }


def _argocd_cm(cluster: Cluster) -> dict[str, str]:
    return _get(cluster, "/api/v1/namespaces/argocd/configmaps/argocd-cm").get("data") or {}


def test_argocd_check_mode_on_a_bare_cluster_creates_nothing(cluster: Cluster, kubeconfig: str) -> None:
    # Runs before argocd_installed: no argocd namespace and no Argo CD CRDs yet.
    checked = _play("argocd", kubeconfig, check=True, diff=True, extra_vars=_argocd_vars())
    assert checked.ok and checked.changed > 0, str(checked)
    assert _get(cluster, "/api/v1/namespaces/argocd") is None
    assert _get(cluster, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.argoproj.io") is None


@pytest.fixture(scope="module")
def argocd_upgraded_from(cluster: Cluster, kubeconfig: str) -> PlaybookResult:
    """The previous release installed by the role, before the pinned one."""
    result = _play("argocd", kubeconfig, extra_vars=_argocd_vars(argocd_manifest_src=str(ARGOCD_PREVIOUS_MANIFEST)))
    assert result.ok, str(result)
    return result


@pytest.fixture(scope="module")
def argocd_installed(cluster: Cluster, kubeconfig: str, argocd_upgraded_from: PlaybookResult) -> PlaybookResult:
    """The pinned release, installed by the role over the previous one (an upgrade), at -vvv."""
    result = _play("argocd", kubeconfig, verbosity=3, extra_vars=_argocd_vars())
    assert result.ok, str(result)
    return result


def test_argocd_upgrade_from_the_previous_release(
        cluster: Cluster, argocd_upgraded_from: PlaybookResult, argocd_installed: PlaybookResult) -> None:
    assert argocd_installed.changed > 0, str(argocd_installed)
    server = _get(cluster, "/apis/apps/v1/namespaces/argocd/deployments/argocd-server")
    images = {c["image"] for c in server["spec"]["template"]["spec"]["containers"]}
    assert any(image.endswith(":" + VERSIONS["argocd"]) for image in images), images
    print(f"[argocd] {VERSIONS['argocd_previous']} install {argocd_upgraded_from.seconds:.1f}s, "
          f"upgrade to {VERSIONS['argocd']} {argocd_installed.seconds:.1f}s (-vvv)")


def test_argocd_never_prints_secrets(argocd_installed: PlaybookResult) -> None:
    out = argocd_installed.stdout + argocd_installed.stderr
    for secret in (ADMIN_PASSWORD, REPO_PASSWORD,
                   base64.b64encode(REPO_PASSWORD.encode()).decode()):
        assert secret not in out, "a secret reached the output at -vvv"
    assert "ESTABLISH LOCAL CONNECTION" in out  # it really ran at -vvv


def test_argocd_admin_password_is_bcrypt(cluster: Cluster, argocd_installed: PlaybookResult) -> None:
    data = _get(cluster, "/api/v1/namespaces/argocd/secrets/argocd-secret")["data"]
    stored = base64.b64decode(data["admin.password"])
    assert stored.startswith(b"$2"), "admin.password is not a bcrypt hash"
    assert bcrypt.checkpw(ADMIN_PASSWORD.encode(), stored)
    assert "admin.passwordMtime" in data


def test_argocd_workloads_rolled_out(cluster: Cluster, argocd_installed: PlaybookResult) -> None:
    deployments = _get(cluster, "/apis/apps/v1/namespaces/argocd/deployments")["items"]
    statefulsets = _get(cluster, "/apis/apps/v1/namespaces/argocd/statefulsets")["items"]
    names = {d["metadata"]["name"] for d in deployments} | {s["metadata"]["name"] for s in statefulsets}
    assert {"argocd-server", "argocd-repo-server", "argocd-application-controller"} <= names
    for workload in deployments + statefulsets:
        status = workload.get("status", {})
        assert status.get("readyReplicas") == workload["spec"]["replicas"], (workload["metadata"]["name"], status)
    crd = _get(cluster, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.argoproj.io")
    assert crd is not None
    print(f"[argocd] install + password + health check + repo + project in {argocd_installed.seconds:.1f}s (-vvv)")


def test_argocd_health_check_and_declared_objects(cluster: Cluster, argocd_installed: PlaybookResult) -> None:
    cm = _argocd_cm(cluster)
    assert cm[HEALTH_KEY] == (ARGOCD_FILES / "application-health-gating.lua").read_text(encoding="utf-8")
    secret = _get(cluster, "/api/v1/namespaces/argocd/secrets/repo-gitops")
    assert secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded["url"] == "https://git.example.test/platform/gitops.git"
    assert decoded["password"] == REPO_PASSWORD and decoded["project"] == "platform"
    project = _get(cluster, "/apis/argoproj.io/v1alpha1/namespaces/argocd/appprojects/platform")
    assert project["spec"]["sourceRepos"] == ["https://git.example.test/platform/*"]


def _reads_since(cluster: Cluster, mark) -> list[tuple[str, str, str]]:
    """(verb, resource, namespace) of the reads the playbooks made of namespaced or cluster objects."""
    time.sleep(1.0)  # the audit backend writes asynchronously
    return [(ev["verb"], (ev.get("objectRef") or {}).get("resource", ""), (ev.get("objectRef") or {}).get("namespace", ""))
            for ev in cluster.audit_events(since=mark, user="kubernetes-admin")
            if ev.get("verb") in ("get", "list") and ev.get("objectRef")
            and "ecoeco-harness" not in (ev.get("userAgent") or "")]


def test_argocd_rerun_changes_nothing(cluster: Cluster, kubeconfig: str, argocd_installed: PlaybookResult) -> None:
    mark = cluster.audit_mark()
    again = _play("argocd", kubeconfig, extra_vars=_argocd_vars())
    assert again.ok and again.changed == 0, str(again)
    assert _writes_since(cluster, mark) == [], "a no-op rerun must not write"
    # install.yaml read by one LIST per kind and namespace with several objects, not one GET per object;
    # CRDs one GET each (never a LIST of every CRD); the rollout wait needs no read of its own.
    reads = _reads_since(cluster, mark)
    manifest = yaml.safe_load_all(ARGOCD_MANIFEST.read_text(encoding="utf-8"))
    kinds = [d["kind"] for d in manifest if d]
    assert ("list", "configmaps", "argocd") in reads and ("list", "clusterroles", "") in reads, reads
    assert ("list", "customresourcedefinitions", "") not in reads, reads
    assert reads.count(("get", "customresourcedefinitions", "")) == kinds.count("CustomResourceDefinition")
    # The one StatefulSet of install.yaml (a kind with one object: a GET) and the one Deployment of the
    # progressive-syncs task; no GET of a workload for the rollout wait.
    gets_of_workloads = sorted(r for r in reads if r[0] == "get" and r[1] in ("deployments", "statefulsets"))
    assert gets_of_workloads == [("get", "deployments", "argocd"), ("get", "statefulsets", "argocd")], reads
    print(f"[argocd] rerun: {len(reads)} reads for {len(kinds)} objects of install.yaml "
          f"({sum(1 for r in reads if r[0] == 'list')} LISTs)")
    checked = _play("argocd", kubeconfig, check=True, diff=True, extra_vars=_argocd_vars())
    assert checked.ok and checked.changed == 0, str(checked)


def test_argocd_drift_read_by_a_list_is_found_and_fixed(
        cluster: Cluster, kubeconfig: str, argocd_installed: PlaybookResult) -> None:
    """Objects read by a LIST on a rerun: a changed Service port, a deleted ConfigMap and a removed label of a
    ClusterRole are found, shown by --check --diff and put back."""
    cluster.kubectl("patch", "service", "argocd-server", "-n", "argocd", "--type", "json",
                    "-p", json.dumps([{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8181}]))
    cluster.kubectl("delete", "configmap", "argocd-ssh-known-hosts-cm", "-n", "argocd")
    cluster.kubectl("label", "clusterrole", "argocd-server", "app.kubernetes.io/component-")
    checked = _play("argocd", kubeconfig, check=True, diff=True, extra_vars=_argocd_vars())
    assert checked.ok and checked.changed == 1, str(checked)
    assert "8181" in checked.stdout and "argocd-ssh-known-hosts-cm" in checked.stdout
    fixed = _play("argocd", kubeconfig, extra_vars=_argocd_vars())
    assert fixed.ok and fixed.changed == 1, str(fixed)
    service = _get(cluster, "/api/v1/namespaces/argocd/services/argocd-server")
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert _get(cluster, "/api/v1/namespaces/argocd/configmaps/argocd-ssh-known-hosts-cm") is not None
    role = _get(cluster, "/apis/rbac.authorization.k8s.io/v1/clusterroles/argocd-server")
    assert role["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    again = _play("argocd", kubeconfig, extra_vars=_argocd_vars())
    assert again.ok and again.changed == 0, str(again)
    checked = _play("argocd", kubeconfig, check=True, diff=True, extra_vars=_argocd_vars())
    assert checked.ok and checked.changed == 0, str(checked)


def test_argocd_health_check_choice_keeps_other_argocd_cm_keys(
        cluster: Cluster, kubeconfig: str, argocd_installed: PlaybookResult) -> None:
    # a key someone else owns (kubectl, another tool) must survive every choice
    cluster.kubectl("patch", "configmap", "argocd-cm", "-n", "argocd", "--type", "merge",
                    "-p", json.dumps({"data": {"timeout.reconciliation": "90s"}}))
    try:
        documented = _play("argocd", kubeconfig, extra_vars=_argocd_vars(argocd_application_health_check="documented"))
        assert documented.ok and documented.changed == 1, str(documented)
        cm = _argocd_cm(cluster)
        assert cm[HEALTH_KEY] == (ARGOCD_FILES / "application-health-documented.lua").read_text(encoding="utf-8")
        assert cm["timeout.reconciliation"] == "90s"

        none = _play("argocd", kubeconfig, extra_vars=_argocd_vars(argocd_application_health_check="none"))
        assert none.ok and none.changed == 1, str(none)
        cm = _argocd_cm(cluster)
        assert HEALTH_KEY not in cm
        assert cm["timeout.reconciliation"] == "90s"
    finally:
        gating = _play("argocd", kubeconfig, extra_vars=_argocd_vars())
    assert gating.ok, str(gating)
    cm = _argocd_cm(cluster)
    assert cm[HEALTH_KEY] == (ARGOCD_FILES / "application-health-gating.lua").read_text(encoding="utf-8")
    assert cm["timeout.reconciliation"] == "90s"


def test_argocd_wrong_variable_stops_before_anything(cluster: Cluster, kubeconfig: str,
                                                     argocd_installed: PlaybookResult) -> None:
    before = _argocd_cm(cluster)
    start = time.monotonic()
    bad = _play("argocd", kubeconfig, extra_vars=_argocd_vars(argocd_application_health_check="lenient"))
    assert not bad.ok
    assert "argocd_application_health_check" in bad.stdout
    assert _argocd_cm(cluster) == before
    assert time.monotonic() - start < 60


# ----------------------------------------------------------------------- app_of_apps
ROOT = "roles-it-root"


def test_app_of_apps_applies_root_and_fails_with_the_report(
        cluster: Cluster, kubeconfig: str, argocd_installed: PlaybookResult) -> None:
    """Role wiring against the real API (no Argo CD controller here: the e2e tier proves the waves)."""
    root_vars = {"app_of_apps_name": ROOT, "app_of_apps_repo_url": "https://git.example.test/platform/gitops.git",
                 "app_of_apps_revision": "main", "app_of_apps_verify": False}
    try:
        created = _play("app_of_apps", kubeconfig, extra_vars=root_vars)
        assert created.ok and created.changed == 1, str(created)
        app = _get(cluster, f"/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{ROOT}")
        assert app["spec"]["source"] == {"repoURL": root_vars["app_of_apps_repo_url"],
                                         "targetRevision": "main", "path": "argocd/applications"}
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert "resources-finalizer.argocd.argoproj.io" in app["metadata"].get("finalizers", [])

        again = _play("app_of_apps", kubeconfig, extra_vars=root_vars)
        assert again.ok and again.changed == 0, str(again)

        checked = _play("verify", kubeconfig, check=True, extra_vars={"app_of_apps_name": ROOT})
        assert checked.ok and checked.changed == 0, str(checked)
        assert "WAVE  APP" in checked.stdout

        # nobody syncs the root here: the verifier must fail within its timeout, report first
        stuck = _play("verify", kubeconfig, extra_vars={"app_of_apps_name": ROOT,
                                                        "app_of_apps_wave_timeout": 10, "app_of_apps_timeout": 15})
        assert not stuck.ok, str(stuck)
        assert "Show the wave report" in stuck.stdout and "WAVE  APP" in stuck.stdout
        assert "timeout 15s reached" in stuck.stdout and ROOT in stuck.stdout
    finally:
        cluster.kubectl("patch", "applications.argoproj.io", ROOT, "-n", "argocd", "--type", "merge",
                        "-p", '{"metadata": {"finalizers": null}}', check=False)
        cluster.kubectl("delete", "applications.argoproj.io", ROOT, "-n", "argocd", "--ignore-not-found")
