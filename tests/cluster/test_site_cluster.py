"""A real kubeadm cluster in podman machines, built by ``ecoeco.gitops.site``, up to healthy waves.

`make test-cluster` (marker ``cluster``; not part of `make test`). Ansible
reaches the machines over SSH as a user reaches servers (sshd in the machine
image, a key pair and known_hosts the test makes, pipelining, ControlPersist;
tests/cluster/ssh.py, inventories/podman). Offline:
kubeadm/kubelet/kubectl and every image come from this machine
(tests/cluster/images/build.sh: control plane FROM scratch from the harness
Go builds, kube-proxy on Debian with iptables, CoreDNS from its Go module,
Argo CD from the harness's argocd binary under install.yaml's image names,
our own stand-in for the sample's workloads), containerd from Debian's
archive. The images are served by a registry the test runs (Debian's
docker-registry, plain HTTP, listening only on the gateway address of the
test's podman network; tests/cluster/registry.py): kubeadm's imageRepository
and containerd's sandbox image point at it, and containerd's mirror entries
send quay.io, public.ecr.aws, ghcr.io and docker.io to it, so the nodes pull
every image for real, under the names the manifests use; nothing is
preloaded. Phases of site.yml that run for real here, in order:
prerequisites -> control_plane (kubeadm init with its kube-proxy and CoreDNS
addons; admin.conf fetched to the control node) -> workers (kubeadm join, one
at a time) -> node_labels and argocd (from the control node over the test's
podman network; Dex left out by the inventory) -> app_of_apps (root
App-of-Apps of the sample repo, waves verified by argocd_sync_waves).
The cni phase (Calico) does not run: Calico cannot be built offline, so the
pod network is the CNI reference bridge plugin plus peer routes
(tests/cluster/pod_network.py). Checked: nodes Ready, kube-system Running,
pod to pod across workers, a Service by name (CoreDNS) and by ClusterIP
(kube-proxy), every Argo CD workload Available, waves 0-3 Synced/Healthy in
order (the verifier's report, and Argo CD's own timestamps), and a second
run of every phase changed=0; every image in every node's containerd has the
digest the registry gave it, and the registry's log shows each node asking
for manifests. Every run is profiled (profile_tasks, and play starts
for a per-phase split; tests/cluster/profile.py): first run per phase, the
no-op second run (one ansible-playbook of every phase, at most 30 s,
changed=0) per phase and their ratio are printed with the slowest tasks, and
``--check --diff`` on the converged cluster must show no change. docs/podman-cluster.md has the details.
The sample repo reaches the in-cluster repo-server as a bare git repo on
every node, mounted by hostPath (tests/cluster/gitops.py), with an overlay
for two workers (tests/cluster/gitops).
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

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster import bring_up, gitops, pod_network, profile, registry
from tests.cluster.machines import REPO_ROOT, Machines
from tools.localcluster.argocd import manifest_path
from tools.localcluster.versions import VERSIONS, cache_dir

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(3000)]

PHASES, API_PHASES, GITOPS_PHASES = profile.HOST_PHASES, profile.API_PHASES, profile.GITOPS_PHASES
# A no-op site.yml on the converged cluster (issue 23), in seconds of wall time.
RERUN_BUDGET = float(os.environ.get("ECOECO_CLUSTER_RERUN_BUDGET", "30"))
# Pulled from the registry by some node (short names), besides pause and kube-proxy on every node.
PULLED_SOMEWHERE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "coredns", "podnet",
                    "argocd", "redis", "postgres", "rabbitmq", "auth-api")
# The sample's waves: the root's child per wave (wave 3 is the ApplicationSet apis) and every
# Application the wave holds (the set's generated apps in its wave).
WAVES = {0: "infrastructure", 1: "databases", 2: "workers", 3: "apis", 4: "gateway"}
WAVE_APPS = {0: ["infrastructure"], 1: ["databases"], 2: ["workers"], 3: ["api-auth", "api-chat", "api-scan"],
             4: ["gateway"]}
LOCAL_REPO = "localhost/ecoeco-k8s"  # build.sh's names for what the cluster pulls from <registry>/ecoeco-k8s
K8S_BIN = cache_dir() / "bin" / f"kubernetes-{VERSIONS['kubernetes']}"
CNI_BIN = cache_dir() / "bin" / f"cni-plugins-{VERSIONS['cni_plugins']}"


def _build_images() -> list[str]:
    """Machine image (debootstrap, cached) and the cluster's images (cached); returns their names."""
    subprocess.run(["bash", str(REPO_ROOT / "tests/images/build.sh"), "bookworm"], check=True, timeout=900)
    out = subprocess.run(["bash", str(REPO_ROOT / "tests/cluster/images/build.sh")], check=True,
                         timeout=900, capture_output=True, text=True,
                         env=dict(os.environ, ECOECO_CLUSTER_IMAGE_REPO=LOCAL_REPO)).stdout
    names = Path(out.strip().splitlines()[-1]).read_text(encoding="utf-8").split()
    assert names, "tests/cluster/images/build.sh listed no image"
    return names


@pytest.fixture(scope="module")
def machines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             cluster_binaries: dict[str, Path]):
    """Three machines on a network of their own and the registry on its gateway; removed even on failure.

    ``cluster_binaries`` builds the Go binaries the images and nodes use when the cache lacks them."""
    assert cluster_binaries["kubernetes"] == K8S_BIN and cluster_binaries["cni-plugins"] == CNI_BIN
    made = Machines(prefix=os.environ.get("ECOECO_CLUSTER_PREFIX", "ecoeco-cluster"),
                    subnet=os.environ.get("ECOECO_CLUSTER_SUBNET", "10.213.7.0/24"))
    made, pushed = bring_up.machines_with_registry(request, tmp_path_factory, made, _build_images(), LOCAL_REPO)
    made.timings[f"{bring_up.PUSHED} (test)"] = pushed
    return made


def _env(machines: Machines) -> dict[str, str]:
    return {"ECOECO_CLUSTER_PREFIX": machines.prefix, "ECOECO_K8S_BIN_DIR": str(K8S_BIN),
            "ECOECO_CLUSTER_REGISTRY": machines.registry.address,
            "ECOECO_CLUSTER_KUBECONFIG": str(machines.kubeconfig),
            "ECOECO_ARGOCD_MANIFEST": str(manifest_path()), "ECOECO_CLUSTER_SUBNET": machines.subnet,
            **machines.ssh.env()}


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


def _addons_running(machines: Machines):
    """kubeadm's addons: one kube-proxy per node and the CoreDNS replicas, all Running and ready."""
    pods = machines.kubectl_json("get", "pods", "-n", "kube-system")["items"]
    seen = {"kube-proxy": [], "kube-dns": []}  # k8s-app labels (kube-dns: CoreDNS)
    for pod in pods:
        app = pod["metadata"].get("labels", {}).get("k8s-app")
        if app in seen:
            ready = all(c.get("ready") for c in pod["status"].get("containerStatuses", [{}]))
            seen[app].append((pod["spec"].get("nodeName"), pod["status"].get("phase"), ready))
    ok = (sorted(n for n, _p, _r in seen["kube-proxy"]) == sorted(machines.hosts) and len(seen["kube-dns"]) >= 1
          and all(p == "Running" and r for pods_ in seen.values() for _n, p, r in pods_))
    return ok, seen


def _argocd_available(machines: Machines):
    """Every Argo CD Deployment Available and the application-controller StatefulSet ready."""
    state = {}
    for kind in ("deployments", "statefulsets"):
        for item in machines.kubectl_json("get", kind, "-n", "argocd")["items"]:
            want = item["spec"].get("replicas", 1)
            status = item.get("status", {})
            state[f"{item['kind']}/{item['metadata']['name']}"] = (status.get("readyReplicas", 0), want)
    ok = bool(state) and all(ready >= want for ready, want in state.values())
    return ok, state


def _check_waves(report: dict) -> list[str]:
    """Waves 0-4 of the sample, each Synced and Healthy, in wave order; returns the report's lines.

    From the verifier's result (app_of_apps_report_file): the apps of every wave
    (the ApplicationSet apis and the apps it generates in wave 3), Synced/Healthy,
    and the waves detected healthy one after the other.
    """
    waves = report["waves"]
    assert [w["wave"] for w in waves] == list(WAVES), waves
    for wave in waves:
        apps = sorted((a["name"], a["sync"], a["health"]) for a in wave["apps"])
        expected = [(name, "Synced", "Healthy") for name in WAVE_APPS[wave["wave"]]]
        if WAVES[wave["wave"]] == "apis":
            expected = sorted(expected + [("apis", "Generated", "Healthy")])
        assert wave["healthy"] and apps == expected, wave
    detected = [w["detected_at"] for w in waves]
    assert detected == sorted(detected) and len(set(detected)) == len(detected), detected
    assert not report["failed"], report["msg"]
    return report["report"]


def _argocd_order(machines: Machines) -> list[str]:
    """Argo CD's own record (second resolution): no wave's app was created before the previous wave was Healthy."""
    apps = {a["metadata"]["name"]: a for a in machines.kubectl_json("get", "applications", "-n", "argocd")["items"]}
    lines, problems = [], []
    for wave, names in WAVE_APPS.items():
        for name in names:
            app = apps[name]
            created = app["metadata"]["creationTimestamp"]
            healthy = app["status"]["health"].get("lastTransitionTime")
            lines.append(f"wave {wave} {name}: created {created}, Healthy since {healthy}")
            if wave and created < max(apps[n]["status"]["health"].get("lastTransitionTime", "")
                                      for n in WAVE_APPS[wave - 1]):
                problems.append(lines[-1])
    assert not problems, problems
    return lines


def test_site_builds_a_real_cluster_and_reruns_unchanged(machines: Machines, tmp_path: Path) -> None:
    timings = dict(machines.timings)
    first: dict[str, profile.ProfiledRun] = {}
    for phase in PHASES:
        first[phase] = run = profile.run_site((phase,), _env(machines), tmp_path, f"first-{phase}", timeout=1500)
        timings[phase] = run.seconds
        assert run.result.ok, f"phase {phase}: {run.result}"

    start = time.monotonic()
    nodes = pod_network.install(machines, CNI_BIN)
    timings["pod network (test, CNI bridge)"] = time.monotonic() - start
    _wait(lambda: _nodes_ready(machines), 180, "all nodes Ready")
    _wait(lambda: _kube_system_running(machines), 180, "kube-system pods Running")
    start = time.monotonic()
    across = pod_network.check_across_nodes(machines, f"{machines.registry.address}/ecoeco-k8s/podnet:v1")
    timings["pod to pod across nodes (test)"] = time.monotonic() - start
    assert across.endswith("podnet podnet-server"), across
    _wait(lambda: _addons_running(machines), 180, "kube-proxy on every node and CoreDNS Running")
    start = time.monotonic()
    service = pod_network.check_service(machines)
    timings["Service by name and ClusterIP (test)"] = time.monotonic() - start
    assert service.count("podnet podnet-server") == 3, service

    for phase in API_PHASES:
        first[phase] = run = profile.run_site((phase,), _env(machines), tmp_path, f"first-{phase}", timeout=900)
        timings[phase] = run.seconds
        assert run.result.ok, f"phase {phase}: {run.result}"
    labels = {n["metadata"]["name"]: n["metadata"]["labels"].get("workload")
              for n in machines.kubectl_json("get", "nodes")["items"]}
    assert labels == {"cp1": None, "worker1": "application", "worker2": "database"}, labels
    # The argocd role waited for the rollout; check it from the cluster's side too.
    ok, argocd = _argocd_available(machines)
    assert ok, argocd
    assert argocd["Deployment/argocd-dex-server"] == (0, 0), argocd  # left out (inventory)

    start = time.monotonic()
    gitops.publish(machines, gitops.materialize(tmp_path))
    gitops.mount_in_repo_server(machines)
    timings["GitOps repo on the nodes (test)"] = time.monotonic() - start
    report_file = tmp_path / "waves.json"
    for phase in GITOPS_PHASES:
        first[phase] = run = profile.run_site((phase,), _env(machines), tmp_path, f"first-{phase}", timeout=1800,
                                              extra_vars={"app_of_apps_report_file": str(report_file)})
        timings[phase] = run.seconds
        assert run.result.ok, f"phase {phase}: {run.result}"
    report = json.loads(report_file.read_text(encoding="utf-8"))
    wave_lines = _check_waves(report)
    order_lines = _argocd_order(machines)

    pulled = registry.check_pulled(machines, machines.registry, somewhere=PULLED_SOMEWHERE)
    catalog = machines.registry.catalog()

    # The converged cluster: site.yml again, one run of every phase, then the same with --check --diff.
    rerun = profile.run_site(profile.ALL_PHASES, _env(machines), tmp_path, "rerun")
    checked = profile.run_site(profile.ALL_PHASES, _env(machines), tmp_path, "check-diff", check=True, diff=True)
    print("\nfirst run, wall time per phase:")
    for name, seconds in timings.items():
        print(f"  {name:36s} {seconds:6.1f} s")
    print(f"\nsecond run, one ansible-playbook of {','.join(profile.ALL_PHASES)}: {rerun.seconds:.1f} s, "
          f"changed={rerun.result.changed}; per phase, against the first run (each phase its own run):")
    print(f"  {'phase':16s} {'first':>8s} {'second':>8s} {'ratio':>6s}")
    for phase in profile.ALL_PHASES:
        again = rerun.phases.get(phase, 0.0)
        print(f"  {phase:16s} {timings[phase]:7.1f}s {again:7.1f}s {again / timings[phase]:6.3f}")
    print(f"  {'(ansible startup)':16s} {'':8s} {rerun.phases.get('startup', 0.0):7.1f}s")
    print(f"  {'all':16s} {sum(timings[p] for p in profile.ALL_PHASES):7.1f}s {rerun.seconds:7.1f}s "
          f"{rerun.seconds / sum(timings[p] for p in profile.ALL_PHASES):6.3f}")
    print(f"--check --diff on the converged cluster: {checked.seconds:.1f} s, changed={checked.result.changed}")
    summary = profile.summary(timings, first, rerun, checked)
    if os.environ.get("ECOECO_CLUSTER_RESULTS"):  # benchmarks/rerun.py (make bench ARGS="--only cluster")
        Path(os.environ["ECOECO_CLUSTER_RESULTS"]).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    for phase, run in first.items():
        print(f"\nprofile_tasks, first run of {phase}:\n{run.profile}")
    print(f"\nprofile_tasks, second run:\n{rerun.profile}")
    print(f"nodes (InternalIP, podCIDR): {nodes}")
    print(f"pod network: {across}")
    print(f"services: {service}")
    print(f"argocd (ready, wanted): {argocd}")
    print(f"registry {machines.registry.address}: {len(catalog)} repositories; pulled per node (digests as pushed):")
    for host, names in pulled.items():
        print(f"  {host}: {' '.join(names)}")
    print("waves (argocd_sync_waves):\n  " + "\n  ".join(wave_lines))
    print(f"verifier's ordering warnings: {report['ordering_violations'] or 'none'}")
    print("waves (Argo CD's timestamps):\n  " + "\n  ".join(order_lines))
    assert rerun.result.ok, f"second run: {rerun.result}"
    assert rerun.result.changed == 0, f"second run: {rerun.result}"
    assert checked.result.ok and checked.result.changed == 0, f"--check --diff: {checked.result}"
    assert rerun.seconds <= RERUN_BUDGET, f"second run took {rerun.seconds:.1f} s > {RERUN_BUDGET} s"
    # Argo CD gated the waves (its own timestamps, above), so the verifier must not say otherwise.
    assert not report["ordering_violations"], report["ordering_violations"]
