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
import time
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


def _pod(name: str, node: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app": "podnet", "ecoeco.io/podnet": name}},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "podnet", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": ["podnet", "serve", ":8080"]}]}}


def check_across_nodes(machines: Machines, image: str, timeout: float = 180) -> str:
    """A pod on the second worker gets an HTTP answer from a pod on the first one; returns it.

    Both pods run tests/cluster/images/podnet (ours, FROM scratch; pulled from
    the test's registry). The answer
    crosses from one node's bridge over the peer route to the other's.
    """
    server_node, client_node = machines.hosts[1], machines.hosts[2]
    pods = {"kind": "List", "apiVersion": "v1",
            "items": [_pod("podnet-server", server_node, image), _pod("podnet-client", client_node, image)]}
    kubectl = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")
    machines.exec(machines.hosts[0], *kubectl, "apply", "-f", "-", input_text=json.dumps(pods))
    machines.exec(machines.hosts[0], *kubectl, "wait", "--for=condition=Ready", "pod", "-l", "app=podnet",
                  f"--timeout={int(timeout)}s", timeout=timeout + 30)
    server = machines.kubectl_json("get", "pod", "podnet-server")
    ip, node = server["status"]["podIP"], server["spec"]["nodeName"]
    client_node_seen = machines.kubectl_json("get", "pod", "podnet-client")["spec"]["nodeName"]
    assert (node, client_node_seen) == (server_node, client_node), (node, client_node_seen)
    answer = machines.exec(machines.hosts[0], *kubectl, "exec", "podnet-client", "--",
                           "podnet", "get", f"http://{ip}:8080/").stdout.strip()
    return f"{client_node} -> {server_node} ({ip}): {answer}"


SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "podnet", "namespace": "default"},
           "spec": {"selector": {"ecoeco.io/podnet": "podnet-server"},
                    "ports": [{"port": 80, "targetPort": 8080}]}}


def check_service(machines: Machines, timeout: float = 120) -> str:
    """The client pod reaches the server pod through a Service: by name (CoreDNS) and by ClusterIP (kube-proxy).

    Call after check_across_nodes (its pods serve and ask). Retries (bounded)
    until the Service's endpoints are programmed; returns what was answered.
    """
    kubectl = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")
    machines.exec(machines.hosts[0], *kubectl, "apply", "-f", "-", input_text=json.dumps(SERVICE))
    cluster_ip = machines.kubectl_json("get", "service", "podnet")["spec"]["clusterIP"]
    answers = {}
    deadline = time.monotonic() + timeout
    for url in ("http://podnet/", "http://podnet.default.svc.cluster.local/", f"http://{cluster_ip}/"):
        while True:
            proc = machines.exec(machines.hosts[0], *kubectl, "exec", "podnet-client", "--",
                                 "podnet", "get", url, check=False)
            if proc.returncode == 0:
                answers[url] = proc.stdout.strip()
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} from podnet-client: {proc.stdout} {proc.stderr}")
            time.sleep(2)
    return "; ".join(f"{url} -> {answer}" for url, answer in answers.items())
