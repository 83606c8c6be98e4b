"""The hook image: built with podman from the offline debootstrap base, run against the loopback API server.

The base comes from tests/images/build.sh (Debian's archive only). pip
reaches PyPI through ``PIP_CERT`` when this machine's egress needs its CA
bundle; the bundle is mounted for the build, never copied into the image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import NAMESPACES
from tests.support.cluster_fixtures import REPORT
from tools.localcluster.versions import REPO_ROOT
from tests.hooks import hookenv

pytestmark = [pytest.mark.hooks, pytest.mark.slow]

BASE = os.environ.get("ECOECO_HOOK_BASE", "localhost/ecoeco-machine:bookworm")
IMAGE = "localhost/ecoeco-gitops-hooks:test"
CONTAINERS_CONF = REPO_ROOT / "tests" / "images" / "containers.conf"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
ENSURE_PODMAN = REPO_ROOT / "tests" / "tools" / "ensure-podman.sh"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF_OVERRIDE=str(CONTAINERS_CONF))
    proc = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"podman {' '.join(args[:3])}... failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    return proc


def ensure_podman() -> None:
    """Install and check podman (tests/tools/ensure-podman.sh): this tier must not rely on another having done it."""
    start = time.monotonic()
    done = subprocess.run(["bash", str(ENSURE_PODMAN)], capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0:
        pytest.fail(f"{ENSURE_PODMAN.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}", pytrace=False)
    if "installed" in done.stderr:
        REPORT["hooks: podman installed"] = f"{time.monotonic() - start:.0f}s"


@pytest.fixture(scope="module")
def hook_image() -> str:
    """Build (or reuse from podman's layer cache) the hook image on the debootstrap base."""
    ensure_podman()
    if podman("image", "exists", BASE, check=False).returncode != 0:
        start = time.monotonic()
        distro = BASE.rsplit(":", 1)[-1]
        done = subprocess.run(["bash", str(REPO_ROOT / "tests" / "images" / "build.sh"), distro],
                              capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            pytest.fail(f"building the base image {BASE} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}",
                        pytrace=False)
        REPORT["hooks: base image (debootstrap)"] = f"{time.monotonic() - start:.0f}s"
    args = ["build", "-f", str(REPO_ROOT / "deploy" / "hooks" / "Containerfile"), "-t", IMAGE,
            "--build-arg", f"BASE={BASE}"]
    if HOST_CA.is_file():
        args += ["--build-arg", "PIP_CERT=/run/host-ca.crt", "-v", f"{HOST_CA}:/run/host-ca.crt:ro"]
    start = time.monotonic()
    podman(*args, str(REPO_ROOT), timeout=1500)
    REPORT["hooks: image build"] = f"{time.monotonic() - start:.0f}s (podman layer cache reused when warm)"
    return IMAGE


def run_in_image(image: str, *cmd: str, mounts: dict[Path, str] | None = None,
                 env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``podman run`` with what the Job's securityContext gives: read-only root, no capabilities,
    and a fresh world-writable HOME and /tmp (the Job's emptyDirs; podman 4.3 ignores tmpfs ``mode=``)."""
    scratch = Path(tempfile.mkdtemp(prefix="hook-run-"))
    for sub in ("home", "tmp"):
        (scratch / sub).mkdir()
        os.chmod(scratch / sub, 0o1777)
    args = ["run", "--rm", "--network", "host", "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--ulimit", "nofile=16384:16384", "--ulimit", "nproc=16384:16384",
            "-v", f"{scratch / 'home'}:/home/ansible", "-v", f"{scratch / 'tmp'}:/tmp"]
    for host, inside in (mounts or {}).items():
        args += ["-v", f"{host}:{inside}:ro"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    try:
        return podman(*args, image, *cmd, timeout=timeout, check=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_image_has_no_ca_bundle_or_secret_baked_in(hook_image) -> None:
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", hook_image).stdout
    assert "/run/host-ca.crt" not in history.replace("PIP_CERT=/run/host-ca.crt", ""), history
    env = podman("image", "inspect", "--format", "{{json .Config.Env}}", hook_image).stdout
    assert "PIP_CERT" not in env
    user = podman("image", "inspect", "--format", "{{.Config.User}}", hook_image).stdout.strip()
    assert user.split(":")[0] == "10001"


def test_image_smoke(hook_image) -> None:
    for playbook in ("presync", "postsync"):
        done = run_in_image(hook_image, "ansible-playbook", f"ecoeco.gitops.{playbook}", "--syntax-check")
        assert done.returncode == 0, done.stdout + done.stderr
    done = run_in_image(hook_image, "ansible-playbook", "--version")
    assert "core 2.19" in done.stdout, done.stdout
    done = run_in_image(hook_image, "python3", "-c",
                        "import os, kubernetes; print(os.getuid(), kubernetes.__version__)")
    assert done.returncode == 0 and done.stdout.split()[0] == "10001", done.stdout + done.stderr
    done = run_in_image(hook_image, "ansible-doc", "-t", "module", "kubernetes.core.k8s")
    assert done.returncode == 0, done.stderr


def test_image_runs_postsync_against_the_api_server(cluster, admin, root_app, hook_sa_dir, hook_image,
                                                    tmp_path) -> None:
    vars_file = hookenv.write_vars(tmp_path / "postsync.yml", {
        "postsync_root_app": root_app.name, "postsync_namespace": root_app.namespace,
        "postsync_wave_timeout": 120, "postsync_timeout": 240})
    start = time.monotonic()
    done = run_in_image(
        hook_image, "ansible-playbook", "ecoeco.gitops.postsync", "-e", "@/etc/ecoeco-gitops/postsync.yml",
        mounts={hook_sa_dir: "/var/run/secrets/kubernetes.io/serviceaccount", vars_file: "/etc/ecoeco-gitops/postsync.yml"},
        env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(hookenv.api_port(cluster))},
    )
    REPORT["hooks: postsync in the image"] = f"{time.monotonic() - start:.1f}s"
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for child in root_app.children:
        assert child in done.stdout, done.stdout[-3000:]


def test_image_runs_presync_against_the_api_server(cluster, admin, hook_sa_dir, hook_image, tmp_path) -> None:
    """kubernetes.core inside the image reads the pod's default service-account path."""
    namespace = "hooks-image-test"
    vars_file = hookenv.write_vars(tmp_path / "presync.yml", {"presync_namespaces": [{"name": namespace}]})
    try:
        done = run_in_image(
            hook_image, "ansible-playbook", "ecoeco.gitops.presync", "-e", "@/etc/ecoeco-gitops/presync.yml",
            mounts={hook_sa_dir: "/var/run/secrets/kubernetes.io/serviceaccount",
                    vars_file: "/etc/ecoeco-gitops/presync.yml"},
            env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(hookenv.api_port(cluster))},
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert "changed=1" in done.stdout and admin.get(NAMESPACES, namespace)
    finally:
        admin.delete(NAMESPACES, namespace)
