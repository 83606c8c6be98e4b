"""A real kubeadm cluster in podman machines, built by ``ecoeco.gitops.site``.

`make test-cluster` (marker ``cluster``; not part of `make test`). Offline:
kubeadm/kubelet/kubectl and the control-plane images come from the harness
Go builds (images FROM scratch, tests/cluster/images/build.sh), containerd
from Debian's archive. Phases of site.yml that run for real here:
prerequisites -> control_plane (kubeadm init, admin.conf fetched to the
control node) -> workers (kubeadm join, one at a time) -> node_labels (from
the control node over the test's podman network). The cni phase (Calico)
does not: Calico cannot be built offline, so the pod network is the CNI
reference bridge plugin plus peer routes (tests/cluster/pod_network.py), and
a pod on worker2 gets an HTTP answer from a pod on worker1 across them.
argocd and app_of_apps do not run here (no kube-proxy, CoreDNS or Argo CD
images in this cluster); the harness tiers cover them.
Set ECOECO_CLUSTER_KEEP=1 to keep the machines for a look after the test.

Cgroups on cgroup v1/hybrid hosts (seen): with podman's systemd mode and a
private cgroup namespace, every machine's systemd took the host's
name=systemd root for its own, so all machines (and those of concurrent
molecule runs) shared system.slice/containerd.service; cgroups were pruned
under a running cluster (runc "error adding pid ... to cgroups", Ansible
UNREACHABLE). tests/images/machine-init, the machines' PID 1, fixes it (each
systemd stays in its own libpod-<id> cgroup); machines.py checks it.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster import pod_network
from tests.cluster.machines import REPO_ROOT, Machines
from tests.harness.ansible import run_playbook
from tests.harness.versions import VERSIONS, cache_dir

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(3000)]

INVENTORY = REPO_ROOT / "inventories" / "podman" / "hosts.yml"
PHASES = ("prerequisites", "control_plane", "workers")
API_PHASES = ("node_labels",)
PODNET_IMAGE = "localhost/ecoeco-k8s/podnet:v1"
K8S_BIN = cache_dir() / "bin" / f"kubernetes-{VERSIONS['kubernetes']}"
CNI_BIN = cache_dir() / "bin" / f"cni-plugins-{VERSIONS['cni_plugins']}"


def _build_images() -> Path:
    """Machine image (debootstrap, cached) and the control-plane image archive (cached)."""
    subprocess.run(["bash", str(REPO_ROOT / "tests/images/build.sh"), "bookworm"], check=True, timeout=900)
    out = subprocess.run(["bash", str(REPO_ROOT / "tests/cluster/images/build.sh")], check=True,
                         timeout=900, capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def machines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Three machines on a network of their own; removed by name even on failure."""
    for path in (K8S_BIN / "kubeadm", CNI_BIN / "bridge"):
        if not path.exists():
            pytest.fail(f"{path} missing: run `python -m tests.harness.build` first")
    made = Machines(prefix=os.environ.get("ECOECO_CLUSTER_PREFIX", "ecoeco-cluster"),
                    subnet=os.environ.get("ECOECO_CLUSTER_SUBNET", "10.213.7.0/24"))

    def finalize() -> None:
        if os.environ.get("ECOECO_CLUSTER_KEEP") == "1":
            print(f"\nkept: {made.made_containers} {made.made_volumes} {made.made_network}")
            return
        errors = made.destroy()
        assert not errors, errors

    request.addfinalizer(finalize)
    made.images = _build_images()
    # control_plane fetches admin.conf here; node_labels reaches the API with it.
    made.kubeconfig = tmp_path_factory.mktemp("cluster") / "admin.conf"
    made.create()
    return made


def _env(machines: Machines) -> dict[str, str]:
    return {"ECOECO_CLUSTER_PREFIX": machines.prefix, "ECOECO_K8S_BIN_DIR": str(K8S_BIN),
            "ECOECO_CLUSTER_IMAGES": str(machines.images), "ECOECO_CLUSTER_KUBECONFIG": str(machines.kubeconfig)}


def _wait(predicate, timeout: float, what: str, interval: float = 3) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout}s: {last}")


def _nodes_ready(machines: Machines):
    nodes = machines.kubectl_json("get", "nodes")["items"]
    state = {n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
             for n in nodes}
    return len(state) == len(machines.hosts) and set(state.values()) == {"True"}, state


def _kube_system_running(machines: Machines):
    pods = machines.kubectl_json("get", "pods", "-n", "kube-system")["items"]
    phases = {p["metadata"]["name"]: p["status"].get("phase") for p in pods}
    return bool(phases) and set(phases.values()) == {"Running"}, phases


def test_site_builds_a_real_cluster_and_reruns_unchanged(machines: Machines) -> None:
    timings = {}
    for phase in PHASES:
        result = run_playbook("ecoeco.gitops.site", INVENTORY, tags=phase, env=_env(machines), timeout=1500)
        timings[phase] = result.seconds
        assert result.ok, f"phase {phase}: {result}"

    start = time.monotonic()
    nodes = pod_network.install(machines, CNI_BIN)
    timings["pod network (test, CNI bridge)"] = time.monotonic() - start
    _wait(lambda: _nodes_ready(machines), 180, "all nodes Ready")
    _wait(lambda: _kube_system_running(machines), 180, "kube-system pods Running")
    start = time.monotonic()
    across = pod_network.check_across_nodes(machines, PODNET_IMAGE)
    timings["pod to pod across nodes (test)"] = time.monotonic() - start
    assert across.endswith("podnet podnet-server"), across

    for phase in API_PHASES:
        result = run_playbook("ecoeco.gitops.site", INVENTORY, tags=phase, env=_env(machines), timeout=900)
        timings[phase] = result.seconds
        assert result.ok, f"phase {phase}: {result}"
    labels = {n["metadata"]["name"]: n["metadata"]["labels"].get("workload")
              for n in machines.kubectl_json("get", "nodes")["items"]}
    assert labels == {"cp1": None, "worker1": "application", "worker2": "database"}, labels

    rerun = run_playbook("ecoeco.gitops.site", INVENTORY, tags=",".join(PHASES + API_PHASES),
                         env=_env(machines), timeout=1500)
    print("\nfirst run, wall time per phase:")
    for name, seconds in timings.items():
        print(f"  {name:32s} {seconds:6.1f} s")
    print(f"second run ({','.join(PHASES + API_PHASES)}): {rerun.seconds:.1f} s, changed={rerun.changed}")
    print(f"nodes (InternalIP, podCIDR): {nodes}")
    print(f"pod network: {across}")
    assert rerun.ok, f"second run: {rerun}"
    assert rerun.changed == 0, f"second run: {rerun}"
