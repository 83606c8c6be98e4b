"""control_plane role (dry run) on a prepared node: config validated, init dry-run passes."""

from __future__ import annotations

import yaml

testinfra_hosts = ["podman://eco-cp"]
CONFIG = "/etc/kubernetes/kubeadm-config.yaml"


def documents(host):
    return {d["kind"]: d for d in yaml.safe_load_all(host.file(CONFIG).content_string) if d}


def test_config_is_private(host):
    f = host.file(CONFIG)
    assert f.user == "root" and f.mode == 0o600


def test_config_passes_kubeadm_validate(host):
    host.run_expect([0], f"kubeadm config validate --config {CONFIG}")


def test_config_contents(host):
    docs = documents(host)
    init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
    assert cluster["kubernetesVersion"] == "v1.37.2"
    assert cluster["controlPlaneEndpoint"] == "k8s-api.molecule.test:6443"
    assert cluster["networking"]["podSubnet"] == "192.168.0.0/16"
    assert cluster["apiServer"]["certSANs"] == ["k8s-api.molecule.test"]
    assert init["nodeRegistration"]["imagePullPolicy"] == "Never"
    assert "SystemVerification" in init["nodeRegistration"]["ignorePreflightErrors"]
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["failSwapOn"] is False and kubelet["failCgroupV1"] is False


def test_converge_left_no_dry_run_certificates(host):
    # runs before the dry run below (pytest keeps file order)
    assert host.run("ls -d /etc/kubernetes/tmp/kubeadm-init-dryrun* 2>/dev/null").stdout.strip() == ""


def test_init_dry_run_succeeds_and_changes_nothing(host):
    out = host.run(f"kubeadm init --config {CONFIG} --dry-run --skip-token-print")
    assert out.rc == 0, out.stderr
    assert "[dryrun]" in out.stdout
    assert not host.file("/etc/kubernetes/admin.conf").exists
    assert not host.file("/etc/kubernetes/manifests/kube-apiserver.yaml").exists
    host.run("rm -rf /etc/kubernetes/tmp/kubeadm-init-dryrun*")


def test_node_prepared(host):
    assert host.service("containerd").is_running
    assert host.service("kubelet").is_enabled
