"""The pinned versions (from ``versions.yml`` at the repo root) and the cache path."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS: dict[str, str] = yaml.safe_load((REPO_ROOT / "versions.yml").read_text(encoding="utf-8"))


def cache_dir() -> Path:
    """Where built binaries and images are kept, outside the repo, keyed by version."""
    return Path(os.environ.get("ECOECO_CACHE", Path.home() / ".cache" / "ecoeco-gitops"))
