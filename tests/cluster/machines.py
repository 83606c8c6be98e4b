"""Podman machines of the in-container kubeadm cluster (tests/cluster).

Three privileged systemd containers on a podman network made for the test
(each at a fixed address, running sshd: Ansible reaches them over SSH, tests/cluster/ssh.py),
each with a named volume on /var (overlayfs snapshots need a non-overlay
filesystem under /var/lib/containerd), private cgroup namespace, tmpfs /tmp
and /run and the lowered ulimits this machine kind needs. Everything made is
recorded by name and removed by name in ``destroy``.

PID 1 is tests/images/machine-init, which removes podman's bind mount of the
host's whole name=systemd hierarchy on a cgroup v1/hybrid host before it
execs systemd: with it, every machine's systemd shared the host's root
system.slice, and machines emptied each other's cgroups (see that script).
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO_ROOT / "tests" / "images" / "containers.conf"
MACHINE_INIT = REPO_ROOT / "tests" / "images" / "machine-init"
# The machine image plus sshd and the login user (tests/cluster/images/Containerfile.node).
MACHINE_IMAGE = os.environ.get("ECOECO_NODE_IMAGE", "localhost/ecoeco-node") + ":bookworm"
# The hosts' addresses on the test's network: <subnet>.11, .12, ... in the order of ``hosts``
# (inventories/podman derives the same from ECOECO_CLUSTER_SUBNET).
FIRST_HOST_OFFSET = 11
ULIMITS = ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=16384:16384"]


def podman(*args: str, check: bool = True, timeout: float = 300,
           input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run podman with the machine-kind settings (runc, lowered ulimits)."""
    env = dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))
    proc = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, input=input_text)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class Machines:
    """The machines, network and volumes one test session made."""

    prefix: str
    subnet: str
    hosts: tuple[str, ...] = ("cp1", "worker1", "worker2")
    made_containers: list[str] = field(default_factory=list)
    made_volumes: list[str] = field(default_factory=list)
    made_network: str | None = None
    registry: Any = None  # the tests.cluster.registry.Registry serving the cluster's images
    timings: dict[str, float] = field(default_factory=dict)  # wall time of the test's own setup steps
    kubeconfig: Path | None = None  # where the control_plane role fetches admin.conf
    ssh: Any = None  # the tests.cluster.ssh.SshAccess Ansible logs in with

    @property
    def network(self) -> str:
        """Name of the podman network of the cluster."""
        return f"{self.prefix}-net"

    def address(self, host: str) -> str:
        """The machine's fixed address on the test's network (Ansible's ansible_host)."""
        net = ipaddress.ip_network(self.subnet)
        if net.prefixlen != 24:
            raise ValueError(f"ECOECO_CLUSTER_SUBNET={self.subnet}: inventories/podman expects a /24")
        return str(net[FIRST_HOST_OFFSET + self.hosts.index(host)])

    def container(self, host: str) -> str:
        """Container name of an inventory host (inventories/podman: <prefix>-<host>)."""
        return f"{self.prefix}-{host}"

    def create(self) -> None:
        """Make the network, one /var volume per machine and the machines."""
        podman("network", "create", "--subnet", self.subnet, self.network)
        self.made_network = self.network
        for host in self.hosts:
            self._run(host)
        for host in self.hosts:
            self.wait_running(host, timeout=120)
            self.check_own_cgroup(host)

    def add(self, host: str) -> None:
        """One more machine on the network, at the next address (day 2: a node that joins later).

        ``hosts`` gains it, so ``address`` gives it ``<subnet>.(11 + its index)``
        (the inventory the test writes for it says the same)."""
        if host in self.hosts:
            raise ValueError(f"{host} is already a machine of this test")
        self.hosts = (*self.hosts, host)
        self._run(host)
        self.wait_running(host, timeout=120)
        self.check_own_cgroup(host)

    def _run(self, host: str) -> None:
        name = self.container(host)
        podman("volume", "create", f"{name}-var")
        self.made_volumes.append(f"{name}-var")
        podman("run", "-d", "--name", name, "--hostname", host, "--network", self.network,
               "--ip", self.address(host),
               "--privileged", "--systemd=always", "--cgroupns=private",
               "--tmpfs", "/tmp", "--tmpfs", "/run", "-v", f"{name}-var:/var",
               "--device", "/dev/kmsg", "-v", f"{MACHINE_INIT}:/usr/local/sbin/machine-init:ro",
               *ULIMITS, MACHINE_IMAGE, "/usr/local/sbin/machine-init")
        self.made_containers.append(name)

    def check_own_cgroup(self, host: str) -> None:
        """Fail when the machine's systemd sits outside its own cgroup namespace (shared with others)."""
        lines = self.exec(host, "cat", "/proc/1/cgroup").stdout.splitlines()
        escaped = [line for line in lines if ":/.." in line]
        if escaped:
            raise RuntimeError(f"{host}: systemd runs outside its cgroup namespace: {escaped}")

    def wait_running(self, host: str, timeout: float) -> None:
        """Wait (bounded) until systemd in the machine reports running or degraded."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.exec(host, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(1)
        raise TimeoutError(f"{host}: systemd is {state!r} after {timeout}s")

    def exec(self, host: str, *argv: str, check: bool = True, timeout: float = 120,
             input_text: str | None = None) -> subprocess.CompletedProcess:
        """Run a command in a machine."""
        return podman("exec", *(["-i"] if input_text is not None else []), self.container(host),
                      *argv, check=check, timeout=timeout, input_text=input_text)

    def kubectl_json(self, *argv: str) -> dict:
        """kubectl ... -o json on the control plane with the admin kubeconfig."""
        out = self.exec(self.hosts[0], "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
                        *argv, "-o", "json").stdout
        return json.loads(out)

    def destroy(self) -> list[str]:
        """Remove what this session made, by name; returns the errors (never raises)."""
        errors = []
        steps = ([("rm", "-f", "-t", "5", c) for c in self.made_containers]
                 + [("volume", "rm", "-f", v) for v in self.made_volumes]
                 + ([("network", "rm", "-f", self.made_network)] if self.made_network else []))
        for step in steps:
            proc = podman(*step, check=False, timeout=120)
            if proc.returncode != 0:
                errors.append(f"podman {' '.join(step)}: {proc.stderr.strip()}")
        return errors
