"""Turn ``examples/gitops-repo`` into a local git repository Argo CD can read.

The sample's Applications carry the placeholder repo URL
:data:`PLACEHOLDER_REPO_URL`; :func:`materialize` copies the tree, replaces the
placeholder with the real URL (``file:///...`` for the local Argo CD) and
commits it on branch ``main``, the ``targetRevision`` every Application uses.
Later commits (break a kustomization, fix it) go through :func:`commit_all`.

:func:`render_source` renders one Application source as Argo CD's repo-server
would (``kustomize build``, or ``helm template`` with ``$values`` files of a
``ref`` source), with the pinned kustomize and helm the harness builds;
:func:`generated_apps` expands a list-generator ApplicationSet's template.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tools.localcluster.versions import REPO_ROOT, VERSIONS, cache_dir

SAMPLE_DIR = REPO_ROOT / "examples" / "gitops-repo"
PLACEHOLDER_REPO_URL = "https://github.com/ecoeco/gitops-sample.git"
BRANCH = "main"
_TEXT_SUFFIXES = (".yaml", ".yml", ".md")
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "ecoeco test", "GIT_AUTHOR_EMAIL": "test@ecoeco.invalid",
    "GIT_COMMITTER_NAME": "ecoeco test", "GIT_COMMITTER_EMAIL": "test@ecoeco.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **_GIT_ENV)
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def substitute_repo_url(tree: Path, repo_url: str) -> list[Path]:
    """Replace the placeholder URL in every YAML/Markdown file under ``tree``; return the files changed."""
    changed = []
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or path.suffix not in _TEXT_SUFFIXES or ".git" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if PLACEHOLDER_REPO_URL in text:
            path.write_text(text.replace(PLACEHOLDER_REPO_URL, repo_url), encoding="utf-8")
            changed.append(path)
    return changed


def materialize(dest: Path, repo_url: str | None = None) -> str:
    """Copy the sample into ``dest`` (a new git repo), point it at ``repo_url``, commit; return the commit SHA.

    ``repo_url`` defaults to ``file://<dest>``, which is what a local Argo CD
    repo-server clones.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(SAMPLE_DIR, dest)
    substitute_repo_url(dest, repo_url or dest.resolve().as_uri())
    return init_repo(dest, "sample GitOps repository")


def init_repo(path: Path, message: str) -> str:
    """Make ``path`` a git repository on branch ``main`` and commit everything in it; return the SHA."""
    subprocess.run(["git", "init", "-q", "-b", BRANCH, str(path)], check=True, timeout=60,
                   env=dict(os.environ, **_GIT_ENV), capture_output=True)
    return commit_all(path, message)


def commit_all(repo: Path, message: str) -> str:
    """Stage every change in ``repo``, commit it (empty commits allowed), return the new SHA."""
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def kustomize_command() -> list[str] | None:
    """The pinned kustomize the harness builds (Argo CD's repo-server uses it), else one on PATH."""
    pinned = cache_dir() / "bin" / f"kustomize-{VERSIONS['kustomize']}" / "kustomize"
    if pinned.is_file():
        return [str(pinned), "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(path: Path) -> list[dict]:
    """``kustomize build path`` as a list of objects; raises with kustomize's message on failure."""
    cmd = kustomize_command()
    if cmd is None:
        raise FileNotFoundError("no kustomize: run `make build` (or put kubectl on PATH)")
    done = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kustomize build {path} failed:\n{done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def helm_command() -> list[str] | None:
    """The pinned helm the harness builds (the repo-server's), else one on PATH."""
    pinned = cache_dir() / "bin" / f"helm-{VERSIONS['helm']}" / "helm"
    if pinned.is_file():
        return [str(pinned)]
    found = shutil.which("helm")
    return [found] if found else None


def render_helm(chart: Path, values: list[Path], release: str, namespace: str) -> list[dict]:
    """``helm template`` of a chart directory with values files, as a list of objects."""
    cmd = helm_command()
    if cmd is None:
        raise FileNotFoundError("no helm: run `make build`")
    argv = [*cmd, "template", release, str(chart), "--namespace", namespace]
    for path in values:
        argv += ["--values", str(path)]
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:   # no user's helm config or cache
        env = dict(os.environ, HELM_CACHE_HOME=f"{home}/cache", HELM_CONFIG_HOME=f"{home}/config",
                   HELM_DATA_HOME=f"{home}/data")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"helm template {chart} failed:\n{done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def render_source(app: dict[str, Any], tree: Path = SAMPLE_DIR) -> list[dict]:
    """What one Application of this repo deploys: its (first path-bearing) source rendered from ``tree``.

    Kustomize for a path with a kustomization.yaml; Helm for a path with a Chart.yaml, with
    ``helm.valueFiles`` where ``$<ref>/...`` names a file of the ``ref`` source (this same repo).
    """
    spec = app["spec"]
    sources = spec.get("sources") or [spec["source"]]
    refs = {s["ref"]: tree for s in sources if s.get("ref")}
    rendered: list[dict] = []
    for src in sources:
        if not src.get("path"):
            continue
        path = tree / src["path"]
        if (path / "Chart.yaml").is_file():
            helm = src.get("helm") or {}
            files = []
            for item in helm.get("valueFiles") or []:
                match = re.fullmatch(r"\$([A-Za-z0-9_-]+)/(.+)", item)
                files.append(refs[match.group(1)] / match.group(2) if match else path / item)
            rendered += render_helm(path, files, helm.get("releaseName") or app["metadata"]["name"],
                                    spec["destination"]["namespace"])
        else:
            rendered += render(path)
    return rendered


def generated_apps(appset: dict[str, Any]) -> list[dict]:
    """The Applications a list-generator, goTemplate ApplicationSet makes (``{{.key}}`` of each element)."""
    spec = appset["spec"]
    template = yaml.safe_dump(spec["template"])
    apps = []
    for gen in spec["generators"]:
        for element in gen["list"]["elements"]:
            text = re.sub(r"\{\{\s*\.([A-Za-z0-9_]+)\s*\}\}", lambda m: str(element[m.group(1)]), template)
            apps.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **yaml.safe_load(text)})
    return apps
