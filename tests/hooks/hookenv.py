"""Run the hook playbooks the way the hook Job runs them, against the harness's API server.

A Job's pod has a ServiceAccount token and CA in a directory,
``KUBERNETES_SERVICE_HOST``/``PORT`` in its environment and no kubeconfig.
:func:`service_account_dir` makes that directory from a real TokenRequest;
:func:`job_env` the environment; :func:`run_hook_playbook` runs
``ansible-playbook ecoeco.gitops.<name>`` with exactly that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import yaml
from typing import Any, Iterable
from urllib.parse import urlparse

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import (
    NAMESPACES,
    K8sClient,
    ResourceRef,
)
from tools.localcluster import sample_repo
from tools.localcluster.ansible import PlaybookResult, ansible_env, parse_recap
from tools.localcluster.versions import REPO_ROOT

HOOKS_DIR = REPO_ROOT / "deploy" / "hooks"
HOOK_NAMESPACE = "argocd"
HOOK_SA = "ecoeco-gitops-hook"
REFS = {
    "Namespace": NAMESPACES,
    "ServiceAccount": ResourceRef("", "v1", "serviceaccounts"),
    "ConfigMap": ResourceRef("", "v1", "configmaps"),
    "ClusterRole": ResourceRef("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False),
    "ClusterRoleBinding": ResourceRef("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False),
    "Role": ResourceRef("rbac.authorization.k8s.io", "v1", "roles"),
    "RoleBinding": ResourceRef("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "Application": ResourceRef("argoproj.io", "v1alpha1", "applications"),
}
SAR = ResourceRef("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False)
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def admin_client(cluster: Any) -> K8sClient:
    """A client with the harness's admin kubeconfig."""
    return K8sClient({"kubeconfig": str(cluster.kubeconfig)})


def render_hooks() -> list[dict]:
    """The deploy/hooks package as Argo CD would render it."""
    return sample_repo.render(HOOKS_DIR)


def apply(cluster: Any, *docs: dict) -> None:
    """Server-side apply objects as the harness's admin (kubectl apply --server-side)."""
    cluster.apply(yaml.safe_dump_all(list(docs)))


def ensure_namespace(cluster: Any, name: str) -> None:
    apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def rbac_docs(docs: Iterable[dict], suffix: str = "", drop: dict[str, set[str]] | None = None) -> list[dict]:
    """The ServiceAccount and RBAC objects of ``docs``; ``suffix`` renames them all (a second identity),
    ``drop`` removes verbs per resource (``{"nodes": {"patch"}}``) to make a deliberately short grant."""
    out = []
    for doc in docs:
        if doc["kind"] not in RBAC_KINDS:
            continue
        doc = json.loads(json.dumps(doc))
        doc["metadata"]["name"] += suffix
        doc["metadata"].pop("annotations", None)
        if "roleRef" in doc:
            doc["roleRef"]["name"] += suffix
        for subject in doc.get("subjects", []):
            subject["name"] += suffix
        for rule in doc.get("rules", []):
            for resource in rule.get("resources", []):
                rule["verbs"] = [v for v in rule["verbs"] if v not in (drop or {}).get(resource, set())]
        out.append(doc)
    return out


def can(client: K8sClient, sa: str, verb: str, resource: str, group: str = "",
        namespace: str | None = None, name: str | None = None, subresource: str | None = None,
        sa_namespace: str = HOOK_NAMESPACE) -> bool:
    """One SubjectAccessReview for the ServiceAccount, answered by the real authorizer."""
    attrs = {"verb": verb, "group": group, "resource": resource}
    for key, value in (("namespace", namespace), ("name", name), ("subresource", subresource)):
        if value:
            attrs[key] = value
    review = client.create(SAR, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{sa_namespace}:{sa}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated"],
            "resourceAttributes": attrs,
        },
    })
    return bool(review["status"].get("allowed"))


def service_account_dir(client: K8sClient, cluster: Any, dest: Path, sa: str = HOOK_SA,
                        namespace: str = HOOK_NAMESPACE, seconds: int = 3600) -> Path:
    """Write token, ca.crt and namespace of a real TokenRequest for ``sa`` into ``dest`` (what kubelet mounts)."""
    ref = ResourceRef("", "v1", f"serviceaccounts/{sa}/token")
    answer = client.create(ref, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                 "spec": {"expirationSeconds": seconds}}, namespace)
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    (dest / "token").write_text(answer["status"]["token"], encoding="utf-8")
    ca = getattr(cluster, "ca_cert", None) or cluster.pki.ca_cert
    ca_path = Path(str(ca)) if not str(ca).lstrip().startswith("-----BEGIN") else None
    if ca_path is not None and ca_path.is_file():
        shutil.copyfile(ca_path, dest / "ca.crt")
    else:
        (dest / "ca.crt").write_text(str(ca), encoding="utf-8")
    (dest / "namespace").write_text(namespace, encoding="utf-8")
    for f in dest.iterdir():
        os.chmod(f, 0o644)  # the image's non-root user reads them through a bind mount
    return dest


def api_port(cluster: Any) -> int:
    return urlparse(cluster.server).port or 443


def job_env(cluster: Any, sa_dir: Path, home: Path) -> dict[str, str]:
    """The environment of the hook pod: in-cluster service account, loopback API server, no kubeconfig."""
    env = ansible_env({
        "K8S_AUTH_SERVICE_ACCOUNT_DIR": str(sa_dir),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(api_port(cluster)),
        "HOME": str(home),
        # what the image sets (deploy/hooks/Containerfile)
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    })
    # No kubeconfig, no ansible.cfg (and so no inventory): only what the pod has.
    for key in list(env):
        if key in ("KUBECONFIG", "ANSIBLE_CONFIG") or (
                key.startswith("K8S_AUTH_") and key != "K8S_AUTH_SERVICE_ACCOUNT_DIR"):
            del env[key]
    home.mkdir(parents=True, exist_ok=True)
    return env


def run_hook_playbook(name: str, env: dict[str, str], vars_file: Path, timeout: float = 600,
                      args: Iterable[str] = ()) -> PlaybookResult:
    """``ansible-playbook ecoeco.gitops.<name> -e @vars_file`` as the Job's container runs it."""
    cmd = [str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"), f"ecoeco.gitops.{name}",
           "-e", f"@{vars_file}", *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(env["HOME"]), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start,
                          parse_recap(proc.stdout))


def write_vars(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.chmod(path, 0o644)
    return path
