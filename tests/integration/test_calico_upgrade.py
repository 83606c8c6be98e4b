"""The calico role upgrades an installed Calico v3.31.7 to v3.32.1 on the real kube-apiserver.

The manifests are read where they are (/work/shared/manifests, beside the repo), never copied.
v3.32.1 dropped two CRDs of v3.31.7 (adminnetworkpolicies and baselineadminnetworkpolicies
of policy.networking.k8s.io): the role reports them by kind and name and deletes them only
with ``calico_prune_dropped=true``. Check mode reports and writes nothing (the audit log says so);
a rerun changes and writes nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tools.localcluster import audit
from tools.localcluster.ansible import PlaybookResult, run_playbook
from tools.localcluster.cluster import Cluster
from tools.localcluster.versions import REPO_ROOT, VERSIONS

pytestmark = pytest.mark.controlplane

INVENTORY = REPO_ROOT / "inventories" / "example" / "hosts.yml"
CALICO_DIR = REPO_ROOT.parent / "shared" / "manifests" / "calico"
OLD, NEW = "v3.31.7", VERSIONS["calico"]
CIDR = "10.244.0.0/16"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
DROPPED = {"adminnetworkpolicies.policy.networking.k8s.io",
           "baselineadminnetworkpolicies.policy.networking.k8s.io"}
ADDED = "clusternetworkpolicies.policy.networking.k8s.io"


def _names(version: str) -> set[tuple[str, str]]:
    docs = yaml.safe_load_all((CALICO_DIR / version / "calico.yaml").read_text(encoding="utf-8"))
    return {(d["kind"], d["metadata"]["name"]) for d in docs if d}


def _cni(kubeconfig: str, version: str, **kwargs: Any) -> PlaybookResult:
    extra = {"ecoeco_kubeconfig": kubeconfig, "calico_version": version, "calico_pod_cidr": CIDR,
             "calico_manifest_src": str(CALICO_DIR / version / "calico.yaml"), **kwargs.pop("extra_vars", {})}
    result = run_playbook(REPO_ROOT / "playbooks" / "cni.yml", INVENTORY, extra_vars=extra, **kwargs)
    print(f"[cni {version}] rc={result.rc} changed={result.changed} {result.seconds:.1f}s"
          f"{' check' if kwargs.get('check') else ''}")
    return result


def _image_tag(cluster: Cluster) -> str:
    ds = cluster.api.get("/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node")
    image = next(c["image"] for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "calico-node")
    return image.rsplit(":", 1)[1]


def _crd(cluster: Cluster, name: str) -> Any:
    return cluster.api.get(f"{CRDS}/{name}", ok404=True)


def _recorded(cluster: Cluster) -> set[str]:
    cm = cluster.api.get("/api/v1/namespaces/kube-system/configmaps/ecoeco-calico-objects", ok404=True)
    return {o["name"] for o in json.loads(cm["data"]["objects"])} if cm else set()


def _writes_since(cluster: Cluster, mark) -> list[str]:
    """Writes the playbooks made (not the harness's own client, not dry runs), from the audit log."""
    time.sleep(1.0)  # the audit backend writes asynchronously
    return [f"{ev['verb']} {(ev.get('objectRef') or {}).get('resource')}/{(ev.get('objectRef') or {}).get('name')}"
            for ev in audit.writes(cluster.audit_events(since=mark, user="kubernetes-admin"))
            if "ecoeco-harness" not in (ev.get("userAgent") or "") and "dryRun=All" not in ev.get("requestURI", "")]


def _reported(result: PlaybookResult) -> set[str]:
    return {name for name in DROPPED if f"CustomResourceDefinition/{name}" in result.stdout}


@pytest.fixture(scope="module")
def installed_old(cluster: Cluster, kubeconfig: str) -> PlaybookResult:
    assert {("CustomResourceDefinition", n) for n in DROPPED} <= _names(OLD) - _names(NEW), \
        "the test data changed: v3.32.1 no longer drops what this test expects"
    result = _cni(kubeconfig, OLD)
    assert result.ok, str(result)
    assert _image_tag(cluster) == OLD
    assert DROPPED <= _recorded(cluster)
    return result


def test_check_mode_reports_the_upgrade_and_writes_nothing(
        cluster: Cluster, kubeconfig: str, installed_old: PlaybookResult) -> None:
    mark = cluster.audit_mark()
    checked = _cni(kubeconfig, NEW, check=True)
    assert checked.ok and checked.changed >= 1, str(checked)
    assert _reported(checked) == DROPPED, str(checked)
    assert _writes_since(cluster, mark) == []
    assert _image_tag(cluster) == OLD
    assert _crd(cluster, ADDED) is None


def test_upgrade_applies_the_new_release_and_reports_what_it_dropped(
        cluster: Cluster, kubeconfig: str, installed_old: PlaybookResult) -> None:
    begin = time.monotonic()
    upgraded = _cni(kubeconfig, NEW)
    assert upgraded.ok, str(upgraded)
    assert _reported(upgraded) == DROPPED, str(upgraded)
    assert "calico_prune_dropped=true" in upgraded.stdout
    assert _image_tag(cluster) == NEW
    ds = cluster.api.get("/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node")["status"]
    assert ds["updatedNumberScheduled"] == ds["numberReady"] == ds["desiredNumberScheduled"] >= 14, ds
    assert _crd(cluster, ADDED) is not None
    for name in DROPPED:  # reported, not pruned
        assert _crd(cluster, name) is not None, name
    assert DROPPED <= _recorded(cluster)
    print(f"[calico] {OLD} -> {NEW} applied and rolled out in {time.monotonic() - begin:.1f}s")

    mark = cluster.audit_mark()
    again = _cni(kubeconfig, NEW)
    assert again.ok and again.changed == 0, str(again)
    assert _reported(again) == DROPPED  # still there, still reported
    assert _writes_since(cluster, mark) == []


def test_prune_deletes_the_dropped_objects_only_when_asked(
        cluster: Cluster, kubeconfig: str, installed_old: PlaybookResult) -> None:
    if _image_tag(cluster) == OLD:
        assert _cni(kubeconfig, NEW).ok
    mark = cluster.audit_mark()
    checked = _cni(kubeconfig, NEW, check=True, extra_vars={"calico_prune_dropped": True})
    assert checked.ok and checked.changed >= 1, str(checked)
    assert _writes_since(cluster, mark) == []
    for name in DROPPED:
        assert _crd(cluster, name) is not None, name

    pruned = _cni(kubeconfig, NEW, extra_vars={"calico_prune_dropped": True})
    assert pruned.ok and pruned.changed >= 1, str(pruned)
    assert _reported(pruned) == DROPPED
    for name in DROPPED:
        assert _crd(cluster, name) is None, name
    assert not DROPPED & _recorded(cluster)
    assert _crd(cluster, ADDED) is not None

    again = _cni(kubeconfig, NEW, extra_vars={"calico_prune_dropped": True})
    assert again.ok and again.changed == 0, str(again)
    assert not _reported(again)
