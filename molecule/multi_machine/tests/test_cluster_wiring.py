"""1 control plane + 2 workers: every node prepared, the control plane configured, workers not joined."""

from __future__ import annotations

import pytest
import testinfra

NODES = {"eco-mm-cp1": "control-plane", "eco-mm-worker1": "worker", "eco-mm-worker2": "worker"}


@pytest.fixture(scope="module", params=sorted(NODES))
def node(request):
    return request.param, testinfra.get_host(f"podman://{request.param}")


def test_every_node_has_containerd_and_kubeadm(node):
    _name, host = node
    assert host.service("containerd").is_running
    assert "SystemdCgroup = true" in host.file("/etc/containerd/config.toml").content_string
    assert host.check_output("kubeadm version -o short") == "v1.37.2"
    assert host.service("kubelet").is_enabled
    assert host.sysctl("net.ipv4.ip_forward") == 1


def test_only_the_control_plane_has_the_init_config(node):
    name, host = node
    config = host.file("/etc/kubernetes/kubeadm-config.yaml")
    assert config.exists == (NODES[name] == "control-plane")
    if config.exists:
        host.run_expect([0], "kubeadm config validate --config /etc/kubernetes/kubeadm-config.yaml")


def test_workers_did_not_join_in_dry_run(node):
    name, host = node
    if NODES[name] == "worker":
        assert not host.file("/etc/kubernetes/kubelet.conf").exists
        # the join configuration went through stdin: no token file on disk
        out = host.run("grep -rlE '[a-z0-9]{6}[.][a-z0-9]{16}' /etc/kubernetes 2>/dev/null")
        assert out.stdout.strip() == ""


def test_nodes_reach_each_other_on_the_scenario_network(node):
    name, host = node
    for other in NODES:
        if other != name:
            assert host.run(f"getent hosts {other}").rc == 0, other
