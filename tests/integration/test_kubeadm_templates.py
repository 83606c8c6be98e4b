"""The control_plane and workers templates render configurations real kubeadm accepts.

Rendered with ansible's own template module; validated with `kubeadm config
validate` of the harness's Kubernetes build (the ``kubeadm_bin`` fixture
builds it when the cache lacks it). In the integration tier, not the unit
tier: the unit tier must not depend on a build an earlier run left behind.
`kubeadm config validate` reads the file and dials nothing; the addresses in
it are loopback ones all the same, but for the advertise address, which kubeadm
refuses as loopback: 192.0.2.10 of RFC 5737's documentation range, routed nowhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.localcluster.ansible import VENV_BIN, ansible_env
from tools.localcluster.versions import REPO_ROOT, VERSIONS

pytestmark = pytest.mark.controlplane
ROLES = REPO_ROOT / "roles"


def defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text(encoding="utf-8"))


def render(template: Path, variables: dict, tmp_path: Path) -> str:
    """Render a role template with ansible's template module on localhost."""
    out = tmp_path / "out.yaml"
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(variables), encoding="utf-8")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-m", "ansible.builtin.template", "-a", f"src={template} dest={out}", "-e", f"@{varfile}",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=ansible_env(), timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_text(encoding="utf-8")


def validate(kubeadm: Path, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(kubeadm), "config", "validate", "--config", "/dev/stdin"],
                          input=text, capture_output=True, text=True, timeout=60, check=False)


def control_plane_vars(**overrides) -> dict:
    values = {k: v for k, v in defaults("control_plane").items() if "{{" not in str(v)}
    values.update(control_plane_node_name="cp1", **overrides)
    return values


def test_kubernetes_version_default_is_the_pinned_one() -> None:
    assert defaults("control_plane")["control_plane_kubernetes_version"] == VERSIONS["kubernetes"]
    assert defaults("kubeadm")["kubeadm_version"] == VERSIONS["kubernetes"]


def test_default_init_config_is_valid(kubeadm_bin: Path, tmp_path: Path) -> None:
    text = render(ROLES / "control_plane/templates/kubeadm-config.yaml.j2", control_plane_vars(), tmp_path)
    docs = {d["kind"]: d for d in yaml.safe_load_all(text) if d}
    assert set(docs) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"}
    assert "controlPlaneEndpoint" not in docs["ClusterConfiguration"]
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert "taints" not in docs["InitConfiguration"]["nodeRegistration"]
    proc = validate(kubeadm_bin, text)
    assert proc.returncode == 0, proc.stderr


def test_every_optional_field_renders_valid(kubeadm_bin: Path, tmp_path: Path) -> None:
    text = render(ROLES / "control_plane/templates/kubeadm-config.yaml.j2", control_plane_vars(
        control_plane_endpoint="k8s-api.internal:6443",
        control_plane_advertise_address="192.0.2.10",  # RFC 5737 TEST-NET-1: kubeadm refuses loopback
        control_plane_etcd_image_tag="v3.6.16",
        control_plane_cert_sans=["k8s-api.internal", "127.0.0.100"],
        control_plane_apiserver_extra_args={"audit-log-maxage": 7},
        control_plane_schedulable=True,
        control_plane_skip_phases=["addon/kube-proxy", "addon/coredns"],
        control_plane_ignore_preflight_errors=["SystemVerification", "Swap"],
        control_plane_image_pull_policy="Never",
        control_plane_kubelet_fail_swap_on=False,
        control_plane_kubelet_fail_cgroup_v1=False,
        control_plane_kubelet_extra_config={"evictionHard": {"nodefs.available": "0%"}},
    ), tmp_path)
    docs = {d["kind"]: d for d in yaml.safe_load_all(text) if d}
    cluster, init, kubelet = docs["ClusterConfiguration"], docs["InitConfiguration"], docs["KubeletConfiguration"]
    assert cluster["controlPlaneEndpoint"] == "k8s-api.internal:6443"
    assert cluster["etcd"]["local"]["imageTag"] == "v3.6.16"
    assert cluster["apiServer"]["extraArgs"] == [{"name": "audit-log-maxage", "value": "7"}]
    assert init["nodeRegistration"]["taints"] == []
    assert init["skipPhases"] == ["addon/kube-proxy", "addon/coredns"]
    assert kubelet["failCgroupV1"] is False and kubelet["evictionHard"] == {"nodefs.available": "0%"}
    proc = validate(kubeadm_bin, text)
    assert proc.returncode == 0, proc.stderr


def test_invalid_input_is_refused_by_kubeadm(kubeadm_bin: Path, tmp_path: Path) -> None:
    text = render(ROLES / "control_plane/templates/kubeadm-config.yaml.j2",
                  control_plane_vars(control_plane_pod_subnet="not-a-cidr"), tmp_path)
    proc = validate(kubeadm_bin, text)
    assert proc.returncode != 0 and "podSubnet" in proc.stderr


@pytest.mark.parametrize("as_control_plane", [False, True])
def test_join_configuration_is_valid(kubeadm_bin: Path, tmp_path: Path, as_control_plane: bool) -> None:
    values = {k: v for k, v in defaults("workers").items() if "{{" not in str(v)}
    values.update(
        workers_node_name="worker1",
        workers_as_control_plane=as_control_plane,
        workers_credentials={
            "endpoint": "127.0.0.10:6443",
            "token": "abcdef.0123456789abcdef",
            "ca_cert_hash": "sha256:" + "0" * 64,
            "certificate_key": "a" * 64,
        },
    )
    text = render(ROLES / "workers/templates/join-configuration.yaml.j2", values, tmp_path)
    doc = yaml.safe_load(text)
    assert doc["kind"] == "JoinConfiguration"
    assert ("controlPlane" in doc) is as_control_plane
    proc = validate(kubeadm_bin, text)
    assert proc.returncode == 0, proc.stderr
