"""The machine-side cleanup of ``ecoeco.gitops.remove_node`` (tasks/reset.yml) for real, in a network
namespace of the test's own (``unshare -n``): real iptables/ip6tables rules of kube-proxy (KUBE-) and
Calico (cali-) chains, and the jumps to them, are removed; other chains and rules stay; CNI config files
are removed; a rerun changes nothing. ``kubeadm reset`` is skipped because this machine has no kubeadm
state (the test refuses to run where it has: it must never reset the machine running it); it runs for
real in tests/cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.localcluster.ansible import VENV_BIN, ansible_env

pytestmark = pytest.mark.controlplane

SETUP = """
set -e
iptables -N KUBE-SERVICES
iptables -N KUBE-FIREWALL
iptables -A INPUT -j KUBE-FIREWALL
iptables -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -t nat -N KUBE-POSTROUTING
iptables -t nat -A POSTROUTING -j KUBE-POSTROUTING
iptables -N cali-INPUT
iptables -A INPUT -j cali-INPUT
iptables -N SITE-KEEP
iptables -A INPUT -p tcp --dport 22 -j SITE-KEEP
ip6tables -N KUBE-SERVICES
ip6tables -A OUTPUT -j KUBE-SERVICES
"""

PLAYBOOK = """
- name: Clean what kubeadm reset leaves
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the remove_node role's machine cleanup
      ansible.builtin.include_role:
        name: ecoeco.gitops.remove_node
        tasks_from: reset.yml
"""


def test_cleanup_removes_kube_and_calico_chains_and_cni_config(tmp_path: Path) -> None:
    for tool in ("unshare", "iptables", "iptables-save", "iptables-restore", "ip6tables-save"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (tests/tools/ensure-podman.sh installs iptables)")
    for state in ("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf", "/var/lib/kubelet/config.yaml"):
        assert not Path(state).exists(), f"{state} exists: this test must not run kubeadm reset on this machine"
    cni = tmp_path / "net.d"
    cni.mkdir()
    (cni / "10-calico.conflist").write_text("{}", encoding="utf-8")
    (cni / "calico-kubeconfig").write_text("x", encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    play = (f"'{VENV_BIN}/ansible-playbook' -i localhost, '{tmp_path}/play.yml' "
            f"-e remove_node_cni_conf_dir='{cni}' -e ansible_python_interpreter='{sys.executable}'")
    script = (f"{SETUP}\n{play} > '{tmp_path}/first.log'\niptables-save > '{tmp_path}/v4'\n"
              f"ip6tables-save > '{tmp_path}/v6'\n{play} > '{tmp_path}/second.log'\n")
    proc = subprocess.run(["unshare", "-n", "bash", "-c", script], env=ansible_env(), capture_output=True,
                          text=True, timeout=600, check=False)
    logs = {n: (tmp_path / f"{n}.log").read_text(encoding="utf-8") if (tmp_path / f"{n}.log").exists() else ""
            for n in ("first", "second")}
    assert proc.returncode == 0, f"{proc.stderr}\n{logs}"
    v4 = (tmp_path / "v4").read_text(encoding="utf-8")
    v6 = (tmp_path / "v6").read_text(encoding="utf-8")
    assert "KUBE-" not in v4 and "cali-" not in v4 and "KUBE-" not in v6, v4 + v6
    assert ":SITE-KEEP" in v4 and "-A INPUT -p tcp -m tcp --dport 22 -j SITE-KEEP" in v4, v4
    assert list(cni.iterdir()) == []
    assert "changed=2 " in logs["first"], logs["first"]  # the CNI files, the iptables chains
    assert "TASK [ecoeco.gitops.remove_node : Run kubeadm reset]" in logs["first"]
    assert "changed=0 " in logs["second"] and "failed=0 " in logs["second"], logs["second"]
    print(f"[cleanup] first run:\n{logs['first'][-600:]}")
