"""prerequisites + containerd on a real Debian machine (systemd in podman)."""

from __future__ import annotations

testinfra_hosts = ["podman://eco-default"]


def test_kernel_modules_load_at_boot(host):
    conf = host.file("/etc/modules-load.d/kubernetes.conf")
    assert conf.exists and conf.mode == 0o644
    lines = [ln for ln in conf.content_string.splitlines() if ln and not ln.startswith("#")]
    assert lines == ["overlay", "br_netfilter"]


def test_sysctls_written_and_live(host):
    conf = host.file("/etc/sysctl.d/99-kubernetes.conf").content_string
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
        assert f"{key} = 1" in conf
        assert host.sysctl(key) == 1


def test_swap_is_off(host):
    assert len(host.file("/proc/swaps").content_string.strip().splitlines()) == 1


def test_base_packages_and_chrony(host):
    for pkg in ("conntrack", "socat", "iptables", "ethtool", "chrony"):
        assert host.package(pkg).is_installed, pkg
    chrony = host.service("chrony")
    assert chrony.is_enabled and chrony.is_running
    conf = host.file("/etc/chrony/chrony.conf").content_string
    assert "server 127.0.0.1 iburst" in conf and "pool " not in conf


def test_containerd_runs_with_systemd_cgroup_and_pinned_sandbox(host):
    containerd = host.service("containerd")
    assert containerd.is_enabled and containerd.is_running
    conf = host.file("/etc/containerd/config.toml").content_string
    assert "SystemdCgroup = true" in conf
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.2"' in conf
    assert "restrict_oom_score_adj = true" in conf
    # what containerd actually loaded, not just the file
    dump = host.check_output("containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.2"' in dump
    assert 'config_path = "/etc/containerd/certs.d"' in dump


def test_cri_is_serving(host):
    out = host.check_output("ctr --address /run/containerd/containerd.sock plugins ls")
    cri = [ln for ln in out.splitlines() if ln.split()[:2] == ["io.containerd.grpc.v1", "cri"]]
    assert cri and cri[0].split()[-1] == "ok", out


def test_registry_mirror_hosts_toml(host):
    toml = host.file("/etc/containerd/certs.d/registry.k8s.io/hosts.toml").content_string
    assert 'server = "https://registry.k8s.io"' in toml
    assert '[host."http://127.0.0.1:5000"]' in toml


def test_runc_present(host):
    assert host.package("runc").is_installed
    assert host.run("runc --version").rc == 0
