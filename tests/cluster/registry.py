"""The image registry of the in-container cluster (tests/cluster).

Debian's ``docker-registry`` (the CNCF distribution registry, 2.8), run by the
test as a process of its own: its config file and storage in a temporary
directory, plain HTTP, listening only on the gateway address of the podman
network the test made (the host's side of that bridge, which the machines
reach and nothing else does). The images of tests/cluster/images/build.sh are
pushed to it with ``podman push --tls-verify=false``: the ones kubeadm names
under ``<registry>/ecoeco-k8s`` (its imageRepository), the others (Argo CD,
redis, the sample's) under their repository path without the registry host,
which is where containerd's mirror entries for quay.io, public.ecr.aws,
ghcr.io and docker.io send the nodes (inventories/podman). Stopped by PID.
"""
from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster import pod_network
from tests.cluster.machines import Machines, podman
from tools.localcluster.procs import HarnessError, ManagedProcess, wait_until

REGISTRY_BIN = "docker-registry"  # Debian's package of the distribution registry
PORT = 5000
# Manifest requests in the registry's access log (combined log format): remote address, repository, reference.
ACCESS_LINE = re.compile(r'^(?P<ip>[0-9a-fA-F.:]+) - - \[[^\]]*\] "(?:GET|HEAD) /v2/(?P<repo>.+)/manifests/(?P<ref>\S+) HTTP')


def gateway(network: str) -> str:
    """The gateway address of a podman network (the host's address on its bridge)."""
    info = json.loads(podman("network", "inspect", network).stdout)
    return info[0]["subnets"][0]["gateway"]


def repository_path(name: str) -> str:
    """An image name without its registry host: ``quay.io/argoproj/argocd:v3.6.1`` -> ``argoproj/argocd:v3.6.1``.

    A containerd mirror is asked for ``/v2/<this path>/...`` whatever registry
    it stands in for, so that is where the image is pushed.
    """
    first, slash, rest = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        raise ValueError(f"{name}: expected a fully qualified image name")
    return rest


@dataclass
class Registry:
    """One docker-registry process serving on ``address`` (host:port) from ``workdir``."""

    address: str
    workdir: Path
    process: ManagedProcess | None = None
    pushed: dict[str, str] = field(default_factory=dict)  # name the cluster uses -> manifest digest

    @property
    def log_path(self) -> Path:
        """The registry's own log (its access log included)."""
        return self.workdir / "registry.log"

    def start(self, timeout: float = 60) -> None:
        """Write the config, start the registry, wait (bounded) until /v2/ answers."""
        if shutil.which(REGISTRY_BIN) is None:
            raise RuntimeError(f"{REGISTRY_BIN} missing: apt-get install docker-registry (make test-cluster does)")
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        # JSON is YAML: the registry reads it as its config file.
        config.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.address},
        }, indent=2), encoding="utf-8")
        self.process = ManagedProcess("docker-registry", [REGISTRY_BIN, "serve", str(config)], self.log_path).start()

        def answers() -> bool:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=5) as response:
                return response.status == 200

        try:
            wait_until(f"docker-registry on {self.address} answering /v2/", answers, timeout,
                       watch=[self.process], interval=0.5)
        except HarnessError:
            self.stop()
            raise

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the registry by its PID, SIGKILL after ``timeout``."""
        if self.process is not None:
            self.process.stop(grace=timeout)

    def target(self, name: str, local_repo: str) -> str:
        """Where ``name`` goes in this registry, and the name the cluster pulls it by."""
        if name.startswith(local_repo + "/"):
            # kubeadm's images (imageRepository <registry>/ecoeco-k8s), pause, podnet.
            return f"{self.address}/{repository_path(name)}"
        return name

    def push(self, images: list[str], local_repo: str, timeout: float = 900) -> dict[str, str]:
        """Push every image; returns {name the cluster uses: manifest digest}. Fails on two images at one path."""
        paths: dict[str, str] = {}
        for name in images:
            image_id = podman("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()
            path = repository_path(name)
            if paths.setdefault(path, image_id) != image_id:
                raise RuntimeError(f"two different images would be pushed to {self.address}/{path}")
        digest_file = self.workdir / "digest"
        for name in images:
            podman("push", "-q", "--tls-verify=false", "--digestfile", str(digest_file), name,
                   f"docker://{self.address}/{repository_path(name)}", timeout=timeout)
            self.pushed[self.target(name, local_repo)] = digest_file.read_text(encoding="utf-8").strip()
        return self.pushed

    def catalog(self) -> list[str]:
        """The registry's repositories (/v2/_catalog)."""
        with urllib.request.urlopen(f"http://{self.address}/v2/_catalog?n=1000", timeout=10) as response:
            return json.load(response)["repositories"]

    def manifest_requests(self) -> dict[str, set[str]]:
        """Remote address -> repositories whose manifests it asked for (the access log)."""
        seen: dict[str, set[str]] = defaultdict(set)
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = ACCESS_LINE.match(line)
            if match:
                seen[match["ip"]].add(match["repo"])
        return dict(seen)


def node_images(machines: Machines, host: str) -> dict[str, str]:
    """Image name (tag references) -> digest, as containerd on ``host`` has them (k8s.io namespace)."""
    out = machines.exec(host, "ctr", "--namespace", "k8s.io", "images", "list").stdout.splitlines()
    images = {}
    for line in out[1:]:
        fields = line.split()
        if len(fields) >= 3 and "@" not in fields[0] and not fields[0].startswith("sha256:"):
            images[fields[0]] = fields[2]
    return images


def _short(name: str) -> str:
    """``quay.io/argoproj/argocd:v3.6.1`` -> ``argocd``."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def check_pulled(machines: Machines, registry: Registry, everywhere: tuple[str, ...] = ("pause", "kube-proxy"),
                 somewhere: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every image on every node came from the registry; returns node -> images (short names).

    Each tag reference in a node's containerd must be one the test pushed,
    with the digest the registry gave it; the images named ``everywhere`` (by
    short name) are on every node, those named ``somewhere`` on one at least;
    and the registry's access log shows each node (by its address on the
    network) asking for manifests.
    """
    addresses = {host: ip for host, (ip, _cidr) in pod_network.node_addresses(machines).items()}
    requests = registry.manifest_requests()
    problems, seen = [], {}
    for host in machines.hosts:
        images = node_images(machines, host)
        for name, digest in sorted(images.items()):
            if registry.pushed.get(name) != digest:
                problems.append(f"{host}: {name}@{digest} not as pushed ({registry.pushed.get(name)})")
        if not requests.get(addresses[host]):
            problems.append(f"{host} ({addresses[host]}): no manifest request in the registry's log")
        seen[host] = sorted(_short(name) for name in images)
        problems += [f"{host}: no {short}" for short in everywhere if short not in seen[host]]
    every = {short for shorts in seen.values() for short in shorts}
    problems += [f"no node has {short}" for short in somewhere if short not in every]
    assert not problems, problems
    return seen
