"""argocd_admin_password against a real kube-apiserver (run through ansible-playbook)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import bcrypt
import pytest

from tools.localcluster.ansible import run_playbook

pytestmark = pytest.mark.controlplane

PLAYBOOK = Path(__file__).parent / "playbooks" / "admin_password.yml"
NS = "it-argocd-pw"
PASSWORD = "Int3gration-Secret-Pw"


def set_password(cluster, tmp_path, password, *, check=False, diff=False, verbosity=0, expect_failure=False):
    result_file = tmp_path / f"result-{time.monotonic_ns()}.json"
    run = run_playbook(PLAYBOOK, extra_vars={
        "kubeconfig": str(cluster.kubeconfig), "pw_namespace": NS, "pw_password": password,
        "result_file": str(result_file), "pw_expect_failure": expect_failure,
    }, check=check, diff=diff, verbosity=verbosity, timeout=300)
    text = result_file.read_text() if result_file.exists() else "{}"
    return run, json.loads(text), text


def secret_data(cluster) -> dict:
    data = json.loads(cluster.kubectl("get", "secret", "argocd-secret", "-n", NS, "-o", "json").stdout)
    return {k: base64.b64decode(v) for k, v in (data.get("data") or {}).items()}


@pytest.fixture(scope="module")
def namespace(cluster):
    cluster.kubectl("create", "namespace", NS, check=False)
    yield NS
    cluster.kubectl("delete", "secret", "argocd-secret", "-n", NS, "--ignore-not-found", check=False)


def test_missing_secret_fails_clearly(cluster, namespace, tmp_path):
    run, result, _events = set_password(cluster, tmp_path, PASSWORD, expect_failure=True)
    assert result.get("failed") is True, str(run)
    assert f"Secret {NS}/argocd-secret does not exist" in result["msg"]


def test_set_then_rerun_unchanged_and_password_never_shown(cluster, namespace, tmp_path):
    cluster.kubectl("create", "secret", "generic", "argocd-secret", "-n", NS,
                    "--from-literal=server.secretkey=abc")
    run, result, text = set_password(cluster, tmp_path, PASSWORD, diff=True, verbosity=3)
    assert run.ok and run.changed == 1, str(run)
    stored = secret_data(cluster)
    assert bcrypt.checkpw(PASSWORD.encode(), stored["admin.password"])
    assert stored["server.secretkey"] == b"abc"
    mtime = stored["admin.passwordMtime"].decode()
    assert result["password_mtime"] == mtime
    assert "<hidden" in run.stdout
    for blob in (run.stdout, run.stderr, text):
        assert PASSWORD not in blob
        assert stored["admin.password"].decode() not in blob

    run, result, _events = set_password(cluster, tmp_path, PASSWORD)
    assert run.ok and run.changed == 0, str(run)
    assert secret_data(cluster)["admin.passwordMtime"].decode() == mtime

    run, result, _events = set_password(cluster, tmp_path, "Another-Pw-123", check=True)
    assert run.ok and run.changed == 1, str(run)
    assert bcrypt.checkpw(PASSWORD.encode(), secret_data(cluster)["admin.password"])
