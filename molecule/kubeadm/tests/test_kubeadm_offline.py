"""kubeadm role, offline method: binaries, kubelet unit and drop-in, pinned version."""

from __future__ import annotations

import pytest
import yaml
from pathlib import Path

testinfra_hosts = ["podman://eco-kubeadm"]

VERSION = yaml.safe_load((Path(__file__).resolve().parents[3] / "versions.yml").read_text())["kubernetes"]


@pytest.mark.parametrize("binary", ["kubeadm", "kubelet", "kubectl"])
def test_binary_installed_executable(host, binary):
    f = host.file(f"/usr/local/bin/{binary}")
    assert f.is_file and f.user == "root" and f.mode == 0o755


def test_versions_pinned(host):
    assert host.check_output("/usr/local/bin/kubeadm version -o short") == VERSION
    assert host.check_output("/usr/local/bin/kubelet --version") == f"Kubernetes {VERSION}"
    assert f"Client Version: {VERSION}" in host.check_output("/usr/local/bin/kubectl version --client")


def test_kubelet_unit_and_kubeadm_dropin(host):
    unit = host.file("/etc/systemd/system/kubelet.service").content_string
    assert "ExecStart=/usr/local/bin/kubelet" in unit
    dropin = host.file("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf").content_string
    assert "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf" in dropin
    assert "--config=/var/lib/kubelet/config.yaml" in dropin
    assert "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env" in dropin
    # systemd merged the drop-in into the unit it runs
    show = host.check_output("systemctl show kubelet -p DropInPaths -p ExecStart -p UnitFileState")
    assert "10-kubeadm.conf" in show
    assert "$KUBELET_KUBEADM_ARGS" in show or "KUBELET_KUBEADM_ARGS" in show


def test_kubelet_enabled(host):
    assert host.service("kubelet").is_enabled
