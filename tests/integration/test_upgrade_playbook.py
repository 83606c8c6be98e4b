"""``ecoeco.gitops.upgrade`` on the real kube-apiserver with kwok nodes: what the API side decides.

The machine steps (kubeadm upgrade, kubelet, kubectl) need real machines: tests/cluster/test_day2.py.
Here the hosts are kwok nodes reached with the local connection (nothing runs on them before the
API has decided), and these are checked:

- ``--check`` reports the nodes it would upgrade and writes nothing (audit log);
- a node whose kubelet already reports the target version is skipped, waves unchecked (a rerun goes
  on where an interrupted upgrade stopped);
- a node an interrupted run left at the target version, cordoned and marked
  ``ecoeco.gitops/upgrading-to`` is finished: uncordoned, mark cleared, waves verified;
- when the waves are not healthy after a node (here: no root Application at all), the play stops
  there and the next node is not touched.

A guard keeps the local machine safe: the inventory's kubeadm artifact directory does not exist,
so had the upgrade reached a machine step, it would have stopped before any change.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tools.localcluster import audit
from tools.localcluster.ansible import PlaybookResult, run_playbook
from tools.localcluster.cluster import Cluster
from tools.localcluster.versions import VERSIONS

pytestmark = pytest.mark.controlplane

TARGET = VERSIONS["kubernetes"]
HOSTS = ("k8s-master", "k8s-worker-1", "k8s-api-scan")
MARK = "ecoeco.gitops/upgrading-to"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    local = {"ansible_connection": "local", "ansible_become": False, "ansible_python_interpreter": sys.executable,
             "kubeadm_install_method": "artifacts", "kubeadm_artifact_dir": "/nonexistent/ecoeco-upgrade-guard"}
    data = {"all": {"vars": local, "children": {"k8s_cluster": {"children": {
        "k8s_control_plane": {"hosts": {HOSTS[0]: {}}},
        "k8s_workers": {"hosts": {h: {} for h in HOSTS[1:]}}}}}}}
    path = tmp_path_factory.mktemp("upgrade") / "hosts.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")  # HOSTS order
    return path


@pytest.fixture(scope="module")
def master_at_target(cluster: Cluster) -> None:
    """The control plane's kubelet already reports the target version (kwok keeps what nodeInfo says)."""
    cluster.kubectl("patch", "node", HOSTS[0], "--subresource=status", "--type", "merge",
                    "-p", f'{{"status":{{"nodeInfo":{{"kubeletVersion":"{TARGET}"}}}}}}')
    node = cluster.api.get(f"/api/v1/nodes/{HOSTS[0]}")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == TARGET


def _upgrade(kubeconfig: str, inventory: Path, **kwargs: Any) -> PlaybookResult:
    extra = {"ecoeco_kubeconfig": kubeconfig, "upgrade_waves_timeout": 10, **kwargs.pop("extra_vars", {})}
    result = run_playbook("ecoeco.gitops.upgrade", inventory, extra_vars=extra, timeout=300, **kwargs)
    print(f"[upgrade] rc={result.rc} changed={result.changed} {result.seconds:.1f}s"
          f"{' check' if kwargs.get('check') else ''}")
    return result


def _unschedulable(cluster: Cluster, name: str) -> bool:
    return bool(cluster.api.get(f"/api/v1/nodes/{name}")["spec"].get("unschedulable"))


def test_check_mode_skips_upgraded_nodes_and_writes_nothing(
        cluster: Cluster, kubeconfig: str, inventory: Path, master_at_target: None) -> None:
    mark = cluster.audit_mark()
    result = _upgrade(kubeconfig, inventory, check=True, extra_vars={"upgrade_verify_waves": False})
    assert result.ok, str(result)
    assert f"{HOSTS[0]}: kubelet {TARGET} = target, skipped" in result.stdout, str(result)
    for worker in HOSTS[1:]:
        assert f"{worker}: kubelet kwok-" in result.stdout and f"-> {TARGET}" in result.stdout, str(result)
        assert not _unschedulable(cluster, worker)
    assert set(result.recap) == set(HOSTS)
    time.sleep(1.0)
    writes = [f"{ev['verb']} {ev.get('requestURI')}"
              for ev in audit.writes(cluster.audit_events(since=mark, user="kubernetes-admin"))
              if "ecoeco-harness" not in (ev.get("userAgent") or "") and "dryRun=All" not in ev.get("requestURI", "")]
    assert writes == [], writes


@pytest.fixture()
def worker_left_mid_upgrade(cluster: Cluster) -> Iterator[str]:
    """HOSTS[1] as an interrupted run leaves it after its kubelet restart: at the target, cordoned, marked."""
    name = HOSTS[1]
    before = cluster.api.get(f"/api/v1/nodes/{name}")["status"]["nodeInfo"]["kubeletVersion"]
    cluster.kubectl("patch", "node", name, "--subresource=status", "--type", "merge",
                    "-p", f'{{"status":{{"nodeInfo":{{"kubeletVersion":"{TARGET}"}}}}}}')
    cluster.kubectl("annotate", "node", name, f"{MARK}={TARGET}", "--overwrite")
    cluster.kubectl("cordon", name)
    yield name
    cluster.kubectl("patch", "node", name, "--subresource=status", "--type", "merge",
                    "-p", f'{{"status":{{"nodeInfo":{{"kubeletVersion":"{before}"}}}}}}')
    cluster.kubectl("annotate", "node", name, f"{MARK}-")
    cluster.kubectl("uncordon", name)


def test_a_rerun_finishes_the_interrupted_node_and_unhealthy_waves_stop_it(
        cluster: Cluster, kubeconfig: str, inventory: Path, master_at_target: None,
        worker_left_mid_upgrade: str) -> None:
    begin = time.monotonic()
    result = _upgrade(kubeconfig, inventory)
    assert not result.ok, str(result)
    assert time.monotonic() - begin < 10 + 120
    # The control plane is done and unmarked: skipped, and its waves not checked (which would have failed
    # here and stopped the rerun before the node it has to finish).
    assert f"{HOSTS[0]}: kubelet {TARGET} = target, skipped" in result.stdout, str(result)
    assert result.recap[HOSTS[0]]["failed"] == 0, str(result)
    assert (f"{worker_left_mid_upgrade}: kubelet {TARGET} = target, finishing the upgrade an earlier run left"
            in result.stdout), str(result)
    node = cluster.api.get(f"/api/v1/nodes/{worker_left_mid_upgrade}")
    assert not node["spec"].get("unschedulable"), node["spec"]
    assert MARK not in (node["metadata"].get("annotations") or {}), node["metadata"]
    # Then the waves after it are not healthy (no root Application): the play stops there.
    assert "Verify the waves of the root Application" in result.stdout
    assert result.recap[worker_left_mid_upgrade]["failed"] == 1, str(result)
    last = HOSTS[2]  # serial 1 + max_fail_percentage 0: never reached
    assert last not in result.recap or result.recap[last]["ok"] == 0, str(result)
    assert not _unschedulable(cluster, last)
