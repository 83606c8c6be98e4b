"""The sample GitOps repo for the in-container cluster's waves (tests/cluster).

examples/gitops-repo is made a git repository (tools/localcluster/sample_repo: the
placeholder repo URL becomes ``file:///var/lib/ecoeco/gitops.git``), with the
cluster's own overlay (tests/cluster/gitops: prod, with placement for two
workers and test-only credentials) and the Applications pointed at it. A bare
clone is copied to that path on every node, owned by Argo CD's uid 999, and
mounted into the argocd-repo-server pod by hostPath: no git server, no network.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.cluster.machines import Machines, podman
from tools.localcluster import sample_repo

REPO_PATH = "/var/lib/ecoeco/gitops.git"
REPO_URL = f"file://{REPO_PATH}"
OVERLAY_DIR = Path(__file__).resolve().parent / "gitops"
ARGOCD_UID = "999"


def materialize(workdir: Path) -> Path:
    """The sample with the cluster overlay, committed; returns a bare clone's path."""
    tree = workdir / "gitops"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(sample_repo.SAMPLE_DIR, tree)
    shutil.copytree(OVERLAY_DIR / "k8s", tree / "k8s", dirs_exist_ok=True)
    for app in sorted((tree / "argocd" / "applications").rglob("*.yaml")):
        text = app.read_text(encoding="utf-8")
        if "/overlays/prod" in text:
            app.write_text(text.replace("/overlays/prod", "/overlays/cluster"), encoding="utf-8")
    sample_repo.substitute_repo_url(tree, REPO_URL)
    sample_repo.init_repo(tree, "sample GitOps repository, in-container cluster overlay")
    bare = workdir / "gitops.git"
    if bare.exists():
        shutil.rmtree(bare)
    subprocess.run(["git", "clone", "-q", "--bare", str(tree), str(bare)], check=True, timeout=60,
                   capture_output=True)
    return bare


def publish(machines: Machines, bare: Path, hosts: tuple[str, ...] | None = None) -> None:
    """Copy the bare repo to REPO_PATH on every node, or on ``hosts`` (owned by uid 999, Argo CD's user).

    The repo-server's hostPath mount holds the directory it found at its start: replacing the directory
    on a node where it runs leaves it a deleted one ("repository not found"), so a machine added later
    gets the repo with ``hosts`` and the others are left alone."""
    archive = bare.parent / "gitops.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bare, arcname="gitops.git")
    parent = str(Path(REPO_PATH).parent)
    for host in hosts or machines.hosts:
        machines.exec(host, "rm", "-rf", REPO_PATH)
        machines.exec(host, "mkdir", "-p", parent)
        podman("cp", str(archive), f"{machines.container(host)}:{parent}/gitops.tar")
        machines.exec(host, "tar", "-C", parent, "-xf", f"{parent}/gitops.tar")
        machines.exec(host, "rm", f"{parent}/gitops.tar")
        machines.exec(host, "chown", "-R", f"{ARGOCD_UID}:{ARGOCD_UID}", REPO_PATH)


def mount_in_repo_server(machines: Machines, timeout: float = 300) -> None:
    """hostPath volume of REPO_PATH in argocd-repo-server (read-only), then wait for its rollout.

    A strategic merge patch by kubectl's own field manager: the argocd role's
    server-side apply of install.yaml does not own these fields, so its reruns
    leave them alone and write nothing.
    """
    patch = {"spec": {"template": {"spec": {
        "volumes": [{"name": "ecoeco-gitops", "hostPath": {"path": REPO_PATH, "type": "Directory"}}],
        "containers": [{"name": "argocd-repo-server",
                        "volumeMounts": [{"name": "ecoeco-gitops", "mountPath": REPO_PATH, "readOnly": True}]}],
    }}}}
    kubectl = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "argocd")
    machines.exec(machines.hosts[0], *kubectl, "patch", "deployment", "argocd-repo-server",
                  "--type=strategic", "-p", json.dumps(patch))
    machines.exec(machines.hosts[0], *kubectl, "rollout", "status", "deployment/argocd-repo-server",
                  f"--timeout={int(timeout)}s", timeout=timeout + 30)
