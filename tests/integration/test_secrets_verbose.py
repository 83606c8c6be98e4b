"""No secret at any verbosity: every module and role path that handles one, run at -vvvv through ansible-playbook.

Known values go in (Secret ``data`` and ``stringData`` in ``k8s_manifest`` definitions, as a list and as YAML
text, a kubeconfig given as a dictionary, the Argo CD admin password, repository credentials of the argocd role);
the whole output, the Ansible log file and every file the run wrote are searched for the values, their base64
forms and the bcrypt hash the cluster stored.  No task sets ``no_log`` here: the modules must protect the
values themselves.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
import yaml

from tools.localcluster.ansible import run_playbook
from tools.localcluster.argocd import manifest_path

pytestmark = pytest.mark.controlplane

NS = "it-secrets-vvvv"
DATA_VALUE = "data-" + secrets.token_urlsafe(16)
STRING_VALUE = "string-" + secrets.token_urlsafe(16)
TEXT_VALUE = "text-" + secrets.token_urlsafe(16)
TYPO_VALUE = "typo-" + secrets.token_urlsafe(16)
PASSWORD = "pw-" + secrets.token_urlsafe(16)
ROLE_PASSWORD = "role-pw-" + secrets.token_urlsafe(16)
REPO_PASSWORD = "repo-" + secrets.token_urlsafe(16)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_doc(name: str, data: dict | None = None, string_data: dict | None = None) -> dict:
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}, "type": "Opaque"}
    if data:
        doc["data"] = {k: b64(v) for k, v in data.items()}
    if string_data:
        doc["stringData"] = string_data
    return doc


def _task(name: str, module: str, args: dict, register: str, **extra) -> dict:
    return {"name": name, f"ecoeco.gitops.{module}": args, "register": register, "ignore_errors": True, **extra}


@pytest.fixture(scope="module")
def verbose_run(cluster, tmp_path_factory):
    """One playbook at -vvvv with every secret-handling path; its output, log and written files."""
    tmp = tmp_path_factory.mktemp("secrets-vvvv")
    cluster.kubectl("create", "namespace", NS, check=False)
    cluster.kubectl("create", "secret", "generic", "argocd-secret", "-n", NS, "--from-literal=server.secretkey=x",
                    check=False)
    kubeconfig = str(cluster.kubeconfig)
    kubeconfig_dict = yaml.safe_load(Path(kubeconfig).read_text())
    text_manifest = yaml.safe_dump(secret_doc("vvvv-text", string_data={"token": TEXT_VALUE}))
    results = tmp / "results"
    results.mkdir()
    tasks = [
        _task("manifest Secret as a list", "k8s_manifest",
              {"kubeconfig": kubeconfig, "definition": [secret_doc("vvvv-list", {"password": DATA_VALUE},
                                                                   {"token": STRING_VALUE})]}, "r_list"),
        _task("manifest Secret changed, with diff", "k8s_manifest",
              {"kubeconfig": kubeconfig, "definition": [secret_doc("vvvv-list", {"password": DATA_VALUE + "2"},
                                                                   {"token": STRING_VALUE + "2"})]},
              "r_changed", diff=True),
        _task("manifest Secret as YAML text, check mode", "k8s_manifest",
              {"kubeconfig": kubeconfig, "definition": text_manifest}, "r_text", check_mode=True),
        _task("manifest Secret with an argument error", "k8s_manifest",
              {"kubeconfig": kubeconfig, "definition": [secret_doc("vvvv-typo", string_data={"t": TYPO_VALUE})],
               "bogus_option": 1}, "r_typo"),
        _task("kubeconfig as a dictionary", "k8s_node_labels", {"kubeconfig": kubeconfig_dict, "nodes": {}},
              "r_kubeconfig"),
        _task("kubeconfig as a dictionary, failing", "argocd_root_app",
              {"kubeconfig": kubeconfig_dict, "name": "vvvv", "repo_url": "not a url"}, "r_kubeconfig_fail"),
        _task("admin password", "argocd_admin_password",
              {"kubeconfig": kubeconfig, "namespace": NS, "password": PASSWORD}, "r_password", diff=True),
        _task("admin password, failing", "argocd_admin_password",
              {"kubeconfig": kubeconfig, "namespace": "no-such-ns", "password": PASSWORD}, "r_password_fail"),
    ]
    for reg in ("r_list", "r_changed", "r_text", "r_typo", "r_kubeconfig", "r_kubeconfig_fail", "r_password",
                "r_password_fail"):
        tasks.append({"name": f"save {reg}", "ansible.builtin.copy": {
            "content": f"{{{{ {reg} | to_nice_json }}}}", "dest": str(results / f"{reg}.json"), "mode": "0600"},
            "check_mode": False, "diff": False})
    role_play = {
        "name": "The argocd role's secret paths (check mode)", "hosts": "localhost", "gather_facts": False,
        # Check mode: the role's paths run (dry runs), without installing a second Argo CD cluster-wide.
        "check_mode": True,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "module_defaults": {"group/ecoeco.gitops.k8s": {"kubeconfig": kubeconfig}},
        "tasks": [{"name": "argocd role", "ansible.builtin.include_role": {"name": "ecoeco.gitops.argocd"},
                   "vars": {"argocd_manifest_src": str(manifest_path()), "argocd_namespace": NS,
                            "argocd_admin_password": ROLE_PASSWORD, "argocd_wait": False,
                            "argocd_repositories": [{"name": "gitops", "url": "https://git.example.test/o/r.git",
                                                     "username": "ci", "password": REPO_PASSWORD}]}}],
    }
    playbook = tmp / "secrets.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "Secret-handling module paths", "hosts": "localhost", "gather_facts": False,
         "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}, "tasks": tasks},
        role_play], sort_keys=False))
    log = tmp / "ansible.log"
    run = run_playbook(playbook, "localhost,", args=["-c", "local"],
                       verbosity=4, env={"ANSIBLE_LOG_PATH": str(log)}, timeout=900)
    stored = cluster.kubectl("get", "secret", "argocd-secret", "-n", NS, "-o", "json", check=False).stdout
    data = (json.loads(stored).get("data") or {}) if stored.strip() else {}
    bcrypt_hash = base64.b64decode(data["admin.password"]).decode() if "admin.password" in data else ""
    written = {p: p.read_text(errors="replace") for p in results.glob("*.json")}
    written[log] = log.read_text(errors="replace") if log.exists() else ""
    yield run, written, bcrypt_hash, kubeconfig_dict
    cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def _forbidden(kubeconfig_dict: dict, bcrypt_hash: str) -> dict[str, str]:
    values = {}
    for name, value in (("Secret data", DATA_VALUE), ("Secret data (changed)", DATA_VALUE + "2"),
                        ("Secret stringData", STRING_VALUE), ("Secret stringData (changed)", STRING_VALUE + "2"),
                        ("Secret in YAML text", TEXT_VALUE), ("Secret with an argument error", TYPO_VALUE),
                        ("admin password", PASSWORD), ("role admin password", ROLE_PASSWORD),
                        ("repository password", REPO_PASSWORD)):
        values[name] = value
        values[f"{name} (base64)"] = b64(value)
    for user in kubeconfig_dict.get("users") or []:
        for key, value in (user.get("user") or {}).items():
            values[f"kubeconfig {key}"] = value
            if key.endswith("-data"):
                pem = base64.b64decode(value).decode(errors="replace").splitlines()
                body = [line for line in pem if line and not line.startswith("-----")]
                if body:
                    values[f"kubeconfig {key} (decoded)"] = body[len(body) // 2]
    if bcrypt_hash:
        values["bcrypt hash of the admin password"] = bcrypt_hash
        values["bcrypt hash (base64)"] = b64(bcrypt_hash)
    return values


def test_the_paths_really_ran(verbose_run):
    run, written, bcrypt_hash, _kubeconfig = verbose_run
    out = run.stdout + run.stderr
    assert "ESTABLISH LOCAL CONNECTION" in out, out[-3000:]  # really at -vvvv
    results = {p.stem: json.loads(text) for p, text in written.items() if p.suffix == ".json"}
    assert results["r_list"].get("changed") is True, results["r_list"]
    assert results["r_changed"].get("changed") is True, results["r_changed"]
    assert results["r_typo"].get("failed") and "bogus_option" in results["r_typo"]["msg"]
    # -vvvv shows each module's invocation.module_args: the definitions are there, their Secret values masked.
    assert '"module_args"' in out and '"definition"' in out, out[-3000:]
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out or "********" in out
    assert results["r_kubeconfig"].get("failed") is not True, results["r_kubeconfig"]
    assert results["r_kubeconfig_fail"].get("failed") and "repo_url" in results["r_kubeconfig_fail"]["msg"]
    assert results["r_password"].get("changed") is True, results["r_password"]
    assert bcrypt_hash.startswith("$2"), bcrypt_hash
    assert "argocd role" in out


def test_no_secret_in_any_output_or_written_file(verbose_run):
    run, written, bcrypt_hash, kubeconfig_dict = verbose_run
    blobs = {"stdout": run.stdout, "stderr": run.stderr, **{str(p): text for p, text in written.items()}}
    leaks = [f"{what} in {where}" for what, value in _forbidden(kubeconfig_dict, bcrypt_hash).items()
             for where, blob in blobs.items() if value and value in blob]
    assert not leaks, leaks
