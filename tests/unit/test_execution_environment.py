"""deploy/hooks/execution-environment.yml: ansible-builder accepts it and builds the same content as the Containerfile.

``ansible-builder create`` validates the definition and writes the build
context offline; building the image needs the base image's registry, which
this machine cannot reach (the Containerfile is what tests/hooks builds).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tools.localcluster.versions import REPO_ROOT

EE = REPO_ROOT / "deploy" / "hooks" / "execution-environment.yml"
BUILDER = Path(sys.executable).parent / "ansible-builder"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_ansible_builder_creates_the_context(tmp_path: Path) -> None:
    if not BUILDER.exists():
        pytest.fail(f"{BUILDER} is missing: run `make setup` (ansible-builder is in requirements/dev.txt)")
    work = tmp_path / "ee"
    work.mkdir()
    shutil.copy(EE, work / EE.name)
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    (work / f"ecoeco-gitops-{galaxy['version']}.tar.gz").write_bytes(b"")  # stands for `ansible-galaxy collection build`
    # The file name is chosen, not left to ansible-builder's guess from the host (it picks docker's
    # Dockerfile where only docker is installed): tests/hooks builds with podman, from a Containerfile.
    done = subprocess.run([str(BUILDER), "create", "-f", EE.name, "-c", "context",
                           "--output-filename", "Containerfile"], cwd=work,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "USER directive" not in done.stdout + done.stderr, done.stdout
    ctx = work / "context"
    containerfile = (ctx / "Containerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy collection install --no-deps --offline" in containerfile
    assert (ctx / "_build" / "collections" / f"ecoeco-gitops-{galaxy['version']}.tar.gz").exists()
    galaxy_reqs = yaml.safe_load((ctx / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert {c["name"] for c in galaxy_reqs["collections"]} == {"kubernetes.core"}


def test_execution_environment_pins_match_the_containerfile_image() -> None:
    """Same ansible-core, Kubernetes client and kubernetes.core as requirements/hooks.txt + the lock."""
    ee = yaml.safe_load(EE.read_text(encoding="utf-8"))
    hooks = _pins(REPO_ROOT / "requirements" / "hooks.txt")
    lock = _pins(REPO_ROOT / "requirements" / "lock.txt")
    assert ee["version"] == 3
    assert ee["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={hooks['ansible-core']}"
    assert f"kubernetes=={hooks['kubernetes']}" in ee["dependencies"]["python"]
    assert hooks["ansible-core"] == lock["ansible-core"] and hooks["kubernetes"] == lock["kubernetes"]
    bundled = REPO_ROOT / ".venv" / "lib"
    manifests = list(bundled.glob("python3*/site-packages/ansible_collections/kubernetes/core/MANIFEST.json"))
    try:
        bundle = metadata.version("ansible")
    except metadata.PackageNotFoundError:  # tests/ansible-versions.sh: collections of another ansible release
        bundle = None
    if manifests and bundle == lock["ansible"]:  # what `ansible==<pin>` bundles, i.e. what the Containerfile image has
        version = json.loads(manifests[0].read_text(encoding="utf-8"))["collection_info"]["version"]
        (core,) = [c for c in ee["dependencies"]["galaxy"]["collections"] if c["name"] == "kubernetes.core"]
        assert core["version"] == version
    assert str(ee["options"]["user"]) == "10001"
