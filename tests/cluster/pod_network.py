"""The pod network of the in-container cluster: CNI reference plugins.

Calico cannot be built offline (its v3 release tags are not valid Go module
versions; the module proxy has only a 2025 pseudo-version), so each node gets
the CNI reference plugins (bridge, host-local, loopback, portmap from the
harness build), a bridge conflist with the node's ``spec.podCIDR`` (the
controller-manager allocates them from kubeadm's podSubnet) and one route
per peer node's pod CIDR via that node's address.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.cluster.machines import Machines, podman

PLUGINS = ("bridge", "host-local", "loopback", "portmap")
CONFLIST = "/etc/cni/net.d/10-ecoeco-bridge.conflist"


def conflist(pod_cidr: str) -> str:
    """Bridge + portmap conflist for one node's pod CIDR."""
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "ecoeco-bridge",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2)


def node_addresses(machines: Machines) -> dict[str, tuple[str, str]]:
    """Node name -> (InternalIP, podCIDR); waits for nothing (call after the joins)."""
    result = {}
    for node in machines.kubectl_json("get", "nodes")["items"]:
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        result[node["metadata"]["name"]] = (ip, node["spec"].get("podCIDR", ""))
    return result


def install(machines: Machines, plugin_dir: Path) -> dict[str, tuple[str, str]]:
    """Plugins, conflist and peer routes on every node (idempotent)."""
    nodes = node_addresses(machines)
    missing = [n for n, (_address, cidr) in nodes.items() if not cidr]
    if missing:
        raise RuntimeError(f"no podCIDR on {missing}: is podSubnet set and nodeipam running?")
    for host in machines.hosts:
        machines.exec(host, "mkdir", "-p", "/opt/cni/bin", "/etc/cni/net.d")
        for plugin in PLUGINS:
            podman("cp", str(plugin_dir / plugin), f"{machines.container(host)}:/opt/cni/bin/{plugin}")
        machines.exec(host, "sh", "-c", f"cat > {CONFLIST}", input_text=conflist(nodes[host][1]))
        for peer, (ip, cidr) in nodes.items():
            if peer != host:
                machines.exec(host, "ip", "route", "replace", cidr, "via", ip)
    return nodes
