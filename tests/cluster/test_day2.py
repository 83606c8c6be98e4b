"""Day 2 on the podman kubeadm cluster: add a worker, remove it, a blocked drain, upgrade the cluster.

`make test-day2-cluster` (marker ``day2``; not part of `make test`: tens of
minutes on 2 cores). The machinery of tests/cluster (machines.py, ssh.py,
registry.py, pod_network.py, gitops.py, profile.py) and of
test_site_cluster.py's checks, on a cluster built at versions.yml's
``kubernetes_previous``:

1. site.yml builds 1 control plane + 2 workers at kubernetes_previous
   (kubeadm/kubelet/kubectl from ``python -m tools.localcluster.build
   kubernetes_previous``; tests/cluster/images/build.sh with
   ``ECOECO_CLUSTER_PREVIOUS=1`` puts both releases' control-plane, kube-proxy
   and CoreDNS images in the test's registry); the sample repo's waves healthy.
2. A third machine joins: it is added to the inventory (a second inventory
   source of the test's) and site.yml's prerequisites, workers and
   node_labels phases join and label it; the other nodes report changed=0; a
   Deployment whose nodeSelector waited (Pending) for that label runs on it.
3. ``ecoeco.gitops.remove_node`` removes it (``--check`` first: nothing
   changes): drained, Node deleted, real ``kubeadm reset`` on the machine,
   CNI config and KUBE- iptables chains gone.
4. A drain blocked by a PodDisruptionBudget (remove_node on worker1 with a
   short drain timeout) fails within its timeout naming the pod, leaves the
   Node cordoned and in the cluster, and resets nothing.
5. ``ecoeco.gitops.upgrade`` (``--check`` first: nothing changes) upgrades
   cp1, worker1, worker2 to versions.yml's kubernetes, one at a time, the
   waves verified after every node. The first run is interrupted (SIGINT,
   as a user's Ctrl-C) once worker1 is drained, which leaves worker1 cordoned
   and marked ``ecoeco.gitops/upgrading-to``; the rerun skips cp1 (waves
   unchecked: nothing done there) and continues with worker1 and worker2,
   then no node is cordoned or marked. Then every node runs the new kubelet,
   a third run changes nothing, and pods on two nodes reach each other and a
   Service by name and ClusterIP.

Wall time per operation is printed at the end (and on a failure, what was
measured so far). Set ECOECO_CLUSTER_KEEP=1 to keep the machines.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import bring_up, gitops, pod_network, profile
from tests.cluster.machines import REPO_ROOT, Machines
from tests.cluster.test_site_cluster import (LOCAL_REPO, _addons_running, _argocd_available, _check_waves, _kube_system_running,
                                             _wait)
from tools.localcluster.argocd import manifest_path
from tools.localcluster.versions import VERSIONS, cache_dir

pytestmark = [pytest.mark.day2, pytest.mark.slow, pytest.mark.timeout(5400)]

PREVIOUS, CURRENT = VERSIONS["kubernetes_previous"], VERSIONS["kubernetes"]
PREV_BIN = cache_dir() / "bin" / f"kubernetes-{PREVIOUS}"
CUR_BIN = cache_dir() / "bin" / f"kubernetes-{CURRENT}"
CNI_BIN = cache_dir() / "bin" / f"cni-plugins-{VERSIONS['cni_plugins']}"
NEW_WORKER = "worker3"
NEW_LABEL = {"workload": "batch"}
NS = "day2"
UPGRADE_MARK = "ecoeco.gitops/upgrading-to"  # the upgrade role's mark on a node it has begun
KUBECTL = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")
# The site.yml variables that pin the release (role defaults: versions.yml's kubernetes).
AT_PREVIOUS = {"kubeadm_version": PREVIOUS, "control_plane_kubernetes_version": PREVIOUS}
TIMES: dict[str, float] = {}


def _build_images() -> list[str]:
    """The machine image and the cluster's images, both releases (cached); returns their names."""
    import subprocess  # pylint: disable=import-outside-toplevel
    subprocess.run(["bash", str(REPO_ROOT / "tests/images/build.sh"), "bookworm"], check=True, timeout=1800)
    out = subprocess.run(["bash", str(REPO_ROOT / "tests/cluster/images/build.sh")], check=True,
                         timeout=1800, capture_output=True, text=True,
                         env=dict(os.environ, ECOECO_CLUSTER_IMAGE_REPO=LOCAL_REPO,
                                  ECOECO_CLUSTER_PREVIOUS="1")).stdout
    names = Path(out.strip().splitlines()[-1]).read_text(encoding="utf-8").split()
    for release in (PREVIOUS, CURRENT):
        assert f"{LOCAL_REPO}/kube-apiserver:{release}" in names, names
        assert f"{LOCAL_REPO}/kube-proxy:{release}" in names, names
    return names


@pytest.fixture(scope="module")
def machines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             day2_binaries: dict[str, Path]):
    """Three machines (a fourth is added by the test), the registry on the network's gateway."""
    assert day2_binaries["kubernetes_previous"] == PREV_BIN and day2_binaries["kubernetes"] == CUR_BIN
    made = Machines(prefix=os.environ.get("ECOECO_DAY2_PREFIX", "ecoeco-day2"),
                    subnet=os.environ.get("ECOECO_DAY2_SUBNET", "10.213.9.0/24"))
    start = time.monotonic()
    images = _build_images()
    TIMES["images (both releases; cached after the first run)"] = time.monotonic() - start
    made, TIMES[bring_up.PUSHED] = bring_up.machines_with_registry(request, tmp_path_factory, made, images,
                                                                   LOCAL_REPO, before_cleanup=_print_times)
    return made


def _print_times() -> None:
    print("\nday 2, wall time per operation:")
    for name, seconds in TIMES.items():
        print(f"  {name:64s} {seconds:7.1f} s")


def _env(machines: Machines, k8s_bin: Path) -> dict[str, str]:
    return {"ECOECO_CLUSTER_PREFIX": machines.prefix, "ECOECO_K8S_BIN_DIR": str(k8s_bin),
            "ECOECO_CLUSTER_REGISTRY": machines.registry.address,
            "ECOECO_CLUSTER_KUBECONFIG": str(machines.kubeconfig),
            "ECOECO_ARGOCD_MANIFEST": str(manifest_path()), "ECOECO_CLUSTER_SUBNET": machines.subnet,
            **machines.ssh.env()}


def _kubectl(machines: Machines, *argv: str, input_text: str | None = None, check: bool = True,
             timeout: float = 120):
    return machines.exec(machines.hosts[0], *KUBECTL, *argv, input_text=input_text, check=check,
                         timeout=timeout)


def _apply(machines: Machines, *objects: dict[str, Any]) -> None:
    _kubectl(machines, "apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objects)}))


def _nodes(machines: Machines) -> dict[str, dict[str, Any]]:
    return {n["metadata"]["name"]: n for n in machines.kubectl_json("get", "nodes")["items"]}


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def _all_ready(machines: Machines, names: tuple[str, ...]):
    nodes = _nodes(machines)
    state = {n: (_ready(nodes[n]) if n in nodes else None) for n in names}
    return set(nodes) == set(names) and all(state.values()), state


def _pods(machines: Machines, selector: str) -> list[dict[str, Any]]:
    return machines.kubectl_json("get", "pods", "-n", NS, "-l", selector)["items"]


def _deployment(name: str, node_selector: dict[str, str], image: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "nodeSelector": node_selector, "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
                                         "command": ["podnet", "serve", ":8080"]}]}}}}


def _new_worker_inventory(machines: Machines, path: Path) -> Path:
    """A second inventory source: the new machine in k8s_workers (group batch) with its label."""
    octet = machines.address(NEW_WORKER).rsplit(".", 1)[1]
    path.write_text(yaml.safe_dump({"all": {"children": {"k8s_cluster": {"children": {"k8s_workers": {
        "children": {"batch": {"hosts": {NEW_WORKER: {
            "ansible_host": "{{ ecoeco_cluster_net }}." + octet, "node_labels": NEW_LABEL}}}}}}}}}},
        sort_keys=False), encoding="utf-8")
    return path


def _changes(stdout: str) -> list[tuple[str, str, str]]:
    """(task, host, delegated-to host or "") of every ``changed:`` line of a default-callback run."""
    task, found = "", []
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):].split("]", 1)[0]
        match = re.match(r"^changed: \[([^\]\s]+?)(?: -> ([^\]\s(]+)[^\]]*)?\]", line)
        if match:
            found.append((task, match[1], match[2] or ""))
    return found


def _node_marks(machines: Machines, names: tuple[str, ...]) -> dict[str, Any]:
    """Labels, taints and unschedulable of the named Nodes."""
    nodes = _nodes(machines)
    return {n: (nodes[n]["metadata"].get("labels"), nodes[n]["spec"].get("taints"),
                nodes[n]["spec"].get("unschedulable")) for n in names}


def _kubelet_versions(machines: Machines) -> dict[str, str]:
    return {n: node["status"]["nodeInfo"]["kubeletVersion"] for n, node in _nodes(machines).items()}


def _iptables_kube_chains(machines: Machines, host: str) -> list[str]:
    out = machines.exec(host, "sh", "-c", "iptables-save 2>/dev/null; ip6tables-save 2>/dev/null",
                        check=False).stdout
    return [line for line in out.splitlines() if line.startswith(":KUBE-")]


def _timed(name: str):
    class _T:
        def __enter__(self):
            self.start = time.monotonic()
            return self

        def __exit__(self, *exc):
            TIMES[name] = time.monotonic() - self.start
            return False
    return _T()


def test_day2_add_remove_blocked_drain_and_upgrade(machines: Machines, tmp_path: Path) -> None:
    podnet = f"{machines.registry.address}/ecoeco-k8s/podnet:v1"
    original = machines.hosts  # cp1, worker1, worker2
    prev_env, cur_env = _env(machines, PREV_BIN), _env(machines, CUR_BIN)

    # ---- 1. the cluster at the previous release, waves healthy -----------------------------
    run = profile.run_site(profile.HOST_PHASES, prev_env, tmp_path, "build-host", timeout=2400,
                           extra_vars=AT_PREVIOUS)
    TIMES[f"site.yml host phases at {PREVIOUS} (3 machines)"] = run.seconds
    assert run.result.ok, f"host phases: {run.result}"
    with _timed("pod network (test, CNI bridge) + nodes Ready"):
        pod_network.install(machines, CNI_BIN)
        _wait(lambda: _all_ready(machines, original), 240, "all nodes Ready")
        _wait(lambda: _kube_system_running(machines), 240, "kube-system pods Running")
        _wait(lambda: _addons_running(machines), 240, "kube-proxy on every node and CoreDNS ready")
    assert set(_kubelet_versions(machines).values()) == {PREVIOUS}, _kubelet_versions(machines)
    run = profile.run_site(profile.API_PHASES, prev_env, tmp_path, "build-api", timeout=1200,
                           extra_vars=AT_PREVIOUS)
    TIMES["site.yml node_labels + argocd"] = run.seconds
    assert run.result.ok, f"api phases: {run.result}"
    ok, argocd = _argocd_available(machines)
    assert ok, argocd
    with _timed("GitOps repo on the nodes (test)"):
        bare = gitops.materialize(tmp_path)
        gitops.publish(machines, bare)
        gitops.mount_in_repo_server(machines)
    report_file = tmp_path / "waves.json"
    run = profile.run_site(profile.GITOPS_PHASES, prev_env, tmp_path, "build-gitops", timeout=1800,
                           extra_vars={**AT_PREVIOUS, "app_of_apps_report_file": str(report_file)})
    TIMES["site.yml app_of_apps (waves healthy)"] = run.seconds
    assert run.result.ok, f"app_of_apps: {run.result}"
    print("waves at the previous release:\n  " + "\n  ".join(_check_waves(json.loads(report_file.read_text()))))

    # ---- 2. a third worker joins and is labelled ---------------------------------------------
    _kubectl(machines, "create", "namespace", NS)
    _wait(lambda: (bool(_kubectl(machines, "get", "serviceaccount", "default", "-n", NS, check=False)
                        .returncode == 0), "no default ServiceAccount"), 60, "default ServiceAccount")
    _apply(machines, _deployment("batch", NEW_LABEL, podnet))
    time.sleep(5)
    waiting = _pods(machines, "app=batch")
    assert waiting and all(p["status"]["phase"] == "Pending" for p in waiting), waiting
    with _timed(f"machine {NEW_WORKER} made (podman, sshd)"):
        machines.add(NEW_WORKER)
        machines.ssh.authorize(machines, (NEW_WORKER,))
        machines.ssh.check(machines, (NEW_WORKER,))
        gitops.publish(machines, bare, (NEW_WORKER,))  # the repo-server may land on any worker
    inventories = (profile.INVENTORY, _new_worker_inventory(machines, tmp_path / "day2-hosts.yml"))
    marks_before = _node_marks(machines, original)
    join_start = time.monotonic()
    run = profile.run_site(("prerequisites", "workers", "node_labels"), prev_env, tmp_path, "join",
                           timeout=1800, extra_vars=AT_PREVIOUS, inventories=inventories)
    TIMES[f"site.yml prerequisites,workers,node_labels (joins {NEW_WORKER})"] = run.seconds
    assert run.result.ok, f"join: {run.result}"
    # Nothing changed on the machines that were there (no task run on them reported a change).
    # Two delegated tasks are counted for them by Ansible: the join token made on cp1 once per batch
    # (run_once: the batch's first host) and node_labels' API write (the play's host cp1 ->
    # localhost), which labelled the new Node only: the old Nodes' labels and taints are unchanged.
    changes = _changes(run.result.stdout)
    on_old_machines = [c for c in changes if c[1] in original and not c[2]]
    delegated = [c for c in changes if c[1] in original and c[2]]
    print(f"join recap: {run.result.recap}\nchanges Ansible counts for the old nodes (delegated): {delegated}")
    assert on_old_machines == [], (on_old_machines, str(run.result))
    assert all((c[0].endswith("Create a join token on the control plane") and c[2] == original[0])
               or (c[0].startswith("ecoeco.gitops.node_labels :") and c[2] == "localhost")
               for c in delegated), delegated
    assert _node_marks(machines, original) == marks_before, "the join changed the old Nodes' labels or taints"
    assert run.result.recap[NEW_WORKER]["changed"] > 0, str(run.result)
    pod_network.install(machines, CNI_BIN)  # the new node's CNI config and every node's route to it

    def labelled_and_ready():
        node = _nodes(machines).get(NEW_WORKER)
        ok = bool(node) and _ready(node) and node["metadata"]["labels"].get("workload") == "batch"
        return ok, node and (node["metadata"]["labels"], node["status"]["conditions"])
    _wait(labelled_and_ready, 300, f"{NEW_WORKER} Ready and labelled")
    TIMES[f"{NEW_WORKER}: playbook start -> Node Ready and labelled"] = time.monotonic() - join_start

    def batch_running():
        pods = _pods(machines, "app=batch")
        return (bool(pods) and all(p["status"].get("phase") == "Running"
                                   and p["spec"].get("nodeName") == NEW_WORKER for p in pods),
                [(p["spec"].get("nodeName"), p["status"].get("phase")) for p in pods])
    _wait(batch_running, 300, "the waiting workload Running on the new worker")
    TIMES[f"{NEW_WORKER}: playbook start -> waiting workload Running on it"] = time.monotonic() - join_start

    # ---- 3. remove it again (--check first) --------------------------------------------------
    remove_vars = {"remove_node_hosts": NEW_WORKER}
    check = profile.run_profiled("ecoeco.gitops.remove_node", prev_env, tmp_path, "remove-check", check=True,
                                 timeout=600, extra_vars=remove_vars, inventories=inventories)
    TIMES[f"remove_node {NEW_WORKER} --check"] = check.seconds
    assert check.result.ok, f"remove_node --check: {check.result}"
    print(f"remove_node --check recap (what it would change): {check.result.recap}")
    node = _nodes(machines).get(NEW_WORKER)
    assert node and not node["spec"].get("unschedulable"), "--check cordoned or deleted the node"
    assert batch_running()[0], "--check evicted the workload"
    assert machines.exec(NEW_WORKER, "test", "-f", "/etc/kubernetes/kubelet.conf", check=False).returncode == 0
    run = profile.run_profiled("ecoeco.gitops.remove_node", prev_env, tmp_path, "remove", timeout=900,
                               extra_vars=remove_vars, inventories=inventories)
    TIMES[f"remove_node {NEW_WORKER} (drain, delete Node, kubeadm reset, cleanup)"] = run.seconds
    assert run.result.ok, f"remove_node: {run.result}"
    assert NEW_WORKER not in _nodes(machines)
    leftovers = machines.exec(NEW_WORKER, "sh", "-c",
                              "ls /etc/kubernetes/kubelet.conf /var/lib/kubelet/config.yaml /etc/cni/net.d/* "
                              "2>/dev/null; true").stdout.split()
    assert leftovers == [], leftovers
    assert _iptables_kube_chains(machines, NEW_WORKER) == []
    assert machines.exec(NEW_WORKER, "systemctl", "is-active", "kubelet", check=False).stdout.strip() != "active"
    print(f"remove_node recap: {run.result.recap}")
    _kubectl(machines, "delete", "deployment", "batch", "-n", NS, "--wait=false")
    machines.hosts = original  # the machine stays (destroyed at the end); the cluster has 3 nodes again

    # ---- 4. a drain a PodDisruptionBudget blocks -------------------------------------------
    guarded_node = original[1]
    _apply(machines, _deployment("guarded", {"kubernetes.io/hostname": guarded_node}, podnet),
           {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "guarded", "namespace": NS},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})

    def guarded_ready():
        pods = _pods(machines, "app=guarded")
        budget = machines.kubectl_json("get", "pdb", "guarded", "-n", NS).get("status", {})
        return (len(pods) == 1 and pods[0]["status"].get("phase") == "Running"
                and budget.get("currentHealthy") == 1 and budget.get("disruptionsAllowed") == 0,
                (budget, [p["status"].get("phase") for p in pods]))
    _wait(guarded_ready, 180, "the guarded pod Running and its budget observed")
    guarded_pod = _pods(machines, "app=guarded")[0]["metadata"]["name"]
    drain_timeout = 20
    run = profile.run_profiled("ecoeco.gitops.remove_node", prev_env, tmp_path, "blocked", timeout=600,
                               extra_vars={"remove_node_hosts": guarded_node,
                                           "remove_node_drain_timeout": drain_timeout})
    TIMES[f"remove_node {guarded_node}, drain blocked by a PDB (timeout {drain_timeout}s), fails"] = run.seconds
    assert not run.result.ok, f"a PDB-blocked drain must fail: {run.result}"
    assert f"did not finish within {drain_timeout}s" in run.result.stdout, str(run.result)
    assert f"{NS}/{guarded_pod}" in run.result.stdout, str(run.result)
    assert run.seconds < drain_timeout + 90, run.seconds
    node = _nodes(machines).get(guarded_node)
    assert node is not None and node["spec"].get("unschedulable") is True, "the node must stay, cordoned"
    assert _ready(node)
    assert machines.exec(guarded_node, "test", "-f", "/etc/kubernetes/kubelet.conf", check=False).returncode == 0
    _kubectl(machines, "uncordon", guarded_node)
    _kubectl(machines, "delete", "pdb", "guarded", "-n", NS)
    _kubectl(machines, "delete", "deployment", "guarded", "-n", NS, "--wait=false")

    # ---- 5. upgrade, node by node, the waves verified after each -----------------------------
    upgrade_vars = {"upgrade_waves_timeout": 300, "upgrade_drain_timeout": 300}
    check = profile.run_profiled("ecoeco.gitops.upgrade", cur_env, tmp_path, "upgrade-check", check=True,
                                 timeout=900, extra_vars=upgrade_vars)
    TIMES["upgrade --check"] = check.seconds
    assert check.result.ok, f"upgrade --check: {check.result}"
    print(f"upgrade --check recap (what it would change): {check.result.recap}")
    assert set(_kubelet_versions(machines).values()) == {PREVIOUS}, "--check upgraded a node"
    assert not any(n["spec"].get("unschedulable") for n in _nodes(machines).values()), "--check cordoned"
    for host in original:
        version = machines.exec(host, "kubeadm", "version", "-o", "short").stdout.strip()
        assert version == PREVIOUS, (host, version, "--check replaced kubeadm")
    # Interrupted as a user's Ctrl-C would, once worker1 is drained (its next task, the binaries of the new
    # release, has begun): cp1 upgraded, worker1 cordoned.
    stopped_at = original[1]

    def worker_drained(records: list[dict[str, Any]]) -> bool:
        return any(r.get("event") == "ok" and r.get("host") == stopped_at
                   and r.get("task", "").startswith("Install kubeadm, kubelet and kubectl") for r in records)
    run = profile.run_profiled("ecoeco.gitops.upgrade", cur_env, tmp_path, "upgrade", timeout=3600,
                               extra_vars=upgrade_vars, interrupt_when=worker_drained)
    TIMES[f"upgrade {PREVIOUS} -> {CURRENT}, interrupted after {stopped_at}'s drain (SIGINT)"] = run.seconds
    for host, seconds in profile.serial_spans(run.records).items():
        TIMES[f"  upgrade of {host} (drain, kubeadm, kubelet, API settled, Ready, uncordon, waves)"] = seconds
    print(f"upgrade (interrupted) recap: {run.result.recap}\nprofile_tasks:\n{run.profile}")
    print("\n".join(line for line in run.result.stdout.splitlines() if "API server on" in line))
    assert not run.result.ok and worker_drained(run.records), f"upgrade was not interrupted there: {run.result}"
    waves_checked = [r["host"] for r in run.records
                     if r.get("event") == "ok" and r.get("task", "").startswith("Verify the waves")]
    assert waves_checked == [original[0]], (waves_checked, str(run.result))
    versions = _kubelet_versions(machines)
    assert versions[original[0]] == CURRENT and versions[original[2]] == PREVIOUS, versions
    left = _nodes(machines)[stopped_at]
    assert left["spec"].get("unschedulable") is True, "worker1 should stay cordoned"
    assert (left["metadata"].get("annotations") or {}).get(UPGRADE_MARK) == CURRENT, left["metadata"]

    # The rerun continues where it stopped: cp1 is skipped (already at the target; its waves are not checked,
    # which would wait on the pods worker1's drain left Pending), worker1 and worker2 are upgraded.
    run = profile.run_profiled("ecoeco.gitops.upgrade", cur_env, tmp_path, "upgrade-continued", timeout=3600,
                               extra_vars=upgrade_vars)
    TIMES["upgrade rerun after the interruption (continues with the workers)"] = run.seconds
    for host, seconds in profile.serial_spans(run.records).items():
        TIMES[f"  {host}"] = seconds
    print(f"upgrade (continued) recap: {run.result.recap}\nprofile_tasks:\n{run.profile}")
    assert run.result.ok, f"upgrade rerun: {run.result}"
    assert run.result.recap[original[0]]["changed"] == 0, run.result.recap
    waves_checked = [r["host"] for r in run.records
                     if r.get("event") == "ok" and r.get("task", "").startswith("Verify the waves")]
    assert waves_checked == list(original[1:]), waves_checked
    assert f"{original[0]}: kubelet {CURRENT} = target, skipped" in run.result.stdout, str(run.result)
    assert (f"{stopped_at}: kubelet {PREVIOUS} -> {CURRENT}, finishing the upgrade an earlier run left"
            in run.result.stdout), str(run.result)
    assert _kubelet_versions(machines) == {h: CURRENT for h in original}, _kubelet_versions(machines)
    server = machines.exec(original[0], *KUBECTL, "version", "-o", "json").stdout
    assert json.loads(server)["serverVersion"]["gitVersion"] == CURRENT, server
    assert not any(n["spec"].get("unschedulable") for n in _nodes(machines).values())
    assert not any(UPGRADE_MARK in (n["metadata"].get("annotations") or {}) for n in _nodes(machines).values())
    again = profile.run_profiled("ecoeco.gitops.upgrade", cur_env, tmp_path, "upgrade-again", timeout=900,
                                 extra_vars=upgrade_vars)
    TIMES["upgrade again (every node at the target: skipped)"] = again.seconds
    assert again.result.ok and again.result.changed == 0, f"upgrade rerun: {again.result}"

    # ---- 6. the pod network and Services after the upgrade -------------------------------------
    _wait(lambda: _all_ready(machines, original), 240, "all nodes Ready after the upgrade")
    with _timed("pod to pod across workers + Service by name and ClusterIP"):
        across = pod_network.check_across_nodes(machines, podnet)
        service = pod_network.check_service(machines)
    print(f"pod network: {across}\nservices: {service}")
    assert across.endswith("podnet podnet-server"), across
    assert service.count("podnet podnet-server") == 3, service
