"""SSH access to the podman machines of tests/cluster, as a user reaches their servers.

The machines run sshd (tests/cluster/images/Containerfile.node: the user
``debian`` with passwordless sudo, host keys made at each machine's first
boot). ``SshAccess`` keeps everything on the control node's side in one
directory of the test (``ECOECO_CLUSTER_SSH_DIR`` for inventories/podman):

- ``id_ed25519``: a key pair made for the test (never committed, gone with
  the test's temporary directory), whose public half goes into each
  machine's ``~debian/.ssh/authorized_keys`` when the machine is made (what
  cloud-init does with an EC2 key pair);
- ``known_hosts``: each machine's host key by its address, read from the
  machine itself, so Ansible checks host keys (``ansible_host_key_checking``);
- ``cp/``: Ansible's ControlPersist sockets (one master connection per
  machine, kept across the test's ansible-playbook runs); ``close`` ends
  those masters with ``ssh -O exit`` on each socket, so no ssh process the
  test caused outlives it.

Reusable by any test that makes ``Machines`` (issue 22's day-2 tests).
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.machines import Machines

USER = "debian"


@dataclass
class SshAccess:
    """The test's key pair, known_hosts and ControlPersist socket directory, in ``directory``."""

    directory: Path

    @property
    def key(self) -> Path:
        """The private key Ansible logs in with."""
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """The machines' host keys by address."""
        return self.directory / "known_hosts"

    @property
    def control_dir(self) -> Path:
        """Where Ansible's ControlPersist sockets live."""
        return self.directory / "cp"

    def make_key(self) -> None:
        """Make the test's ed25519 key pair (no passphrase: the test is its only user)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.control_dir.mkdir(mode=0o700, exist_ok=True)
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ecoeco-cluster-test",
                            "-f", str(self.key)], check=True, timeout=60)

    def authorize(self, machines: Machines, hosts: tuple[str, ...] | None = None) -> None:
        """Put the public key in each machine's ~debian/.ssh and record each host key by its address.

        ``hosts`` (default: all of them, known_hosts written anew) adds those
        machines' keys to known_hosts (a machine made later, day 2)."""
        public = self.key.with_suffix(".pub").read_text(encoding="utf-8")
        lines = []
        if hosts is not None and self.known_hosts.exists():
            lines = self.known_hosts.read_text(encoding="utf-8").splitlines()
        for host in machines.hosts if hosts is None else hosts:
            machines.exec(host, "install", "-d", "-m", "0700", "-o", USER, "-g", USER, f"/home/{USER}/.ssh")
            machines.exec(host, "sh", "-c", f"umask 077; cat >/home/{USER}/.ssh/authorized_keys; "
                          f"chown {USER}:{USER} /home/{USER}/.ssh/authorized_keys", input_text=public)
            host_key = self.wait_host_key(machines, host)
            lines.append(f"{machines.address(host)} {host_key}")
        self.known_hosts.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @staticmethod
    def wait_host_key(machines: Machines, host: str, timeout: float = 60) -> str:
        """The machine's ed25519 host key (``type base64``) once sshd is up with it (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            active = machines.exec(host, "systemctl", "is-active", "ssh.service", check=False).stdout.strip()
            key = machines.exec(host, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False)
            if active == "active" and key.returncode == 0:
                return " ".join(key.stdout.split()[:2])
            if time.monotonic() > deadline:
                raise TimeoutError(f"{host}: sshd is {active!r} after {timeout}s")
            time.sleep(1)

    def env(self) -> dict[str, str]:
        """What inventories/podman reads: the directory with the key, known_hosts and cp/."""
        return {"ECOECO_CLUSTER_SSH_DIR": str(self.directory)}

    def check(self, machines: Machines, hosts: tuple[str, ...] | None = None) -> None:
        """Log in to every machine (or ``hosts``) with the key and host-key checking, as Ansible will."""
        for host in machines.hosts if hosts is None else hosts:
            proc = subprocess.run(["ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                                   "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                                   "-o", "ConnectTimeout=10", f"{USER}@{machines.address(host)}",
                                   "sudo", "-n", "true"], capture_output=True, text=True, timeout=60, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"ssh {USER}@{machines.address(host)} ({host}): {proc.stderr.strip()}")

    def close(self) -> list[str]:
        """End the ControlPersist masters (``ssh -O exit`` per socket); returns the errors (never raises)."""
        errors = []
        for socket in sorted(self.control_dir.glob("*")) if self.control_dir.is_dir() else []:
            proc = subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "machine"],
                                  capture_output=True, text=True, timeout=30, check=False)
            if proc.returncode != 0 and socket.exists():
                errors.append(f"ssh -O exit {socket.name}: {proc.stderr.strip()}")
        return errors
