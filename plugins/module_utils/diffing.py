# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Compare Kubernetes objects the way a user sees them.

The API server changes bookkeeping fields on every write (resourceVersion,
managedFields, generation, timestamps) and controllers own ``status``.  Those
never decide whether a module changed something, and they clutter ``--diff``.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional

# metadata fields the API server or controllers maintain.
SERVER_METADATA_FIELDS = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
    "deletionGracePeriodSeconds",
)
# top-level fields owned by controllers, not by the module's user.
SERVER_TOP_LEVEL_FIELDS = ("status",)


def comparable(obj: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A deep copy of ``obj`` without server bookkeeping; ``{}`` for None."""
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    for key in SERVER_TOP_LEVEL_FIELDS:
        out.pop(key, None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in SERVER_METADATA_FIELDS:
            meta.pop(key, None)
        for key in ("labels", "annotations", "finalizers"):
            if key in meta and not meta[key]:
                meta.pop(key)
    return out


def objects_differ(live: Optional[Dict[str, Any]], desired: Optional[Dict[str, Any]]) -> bool:
    """True when the objects differ in anything but server bookkeeping."""
    return comparable(live) != comparable(desired)


def changed_paths(before: Any, after: Any, prefix: str = "") -> list:
    """Dotted paths whose values differ between two JSON-like values (sorted)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                paths.append(sub)
            else:
                paths.extend(changed_paths(before[key], after[key], sub))
        return paths
    return [] if before == after else [prefix or "."]
