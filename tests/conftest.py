"""Shared test setup: the collection is importable as ansible_collections.ecoeco.gitops."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO_ROOT / ".collections"
_link = COLLECTIONS / "ansible_collections" / "ecoeco" / "gitops"
if not _link.exists():
    _link.parent.mkdir(parents=True, exist_ok=True)
    _link.symlink_to(Path("../../.."))
for p in (str(COLLECTIONS), str(REPO_ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

pytest_plugins = ["tests.support.cluster_fixtures"]
