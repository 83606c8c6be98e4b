"""Workload objects for tests on the local real cluster (kwok nodes run their pods)."""

from __future__ import annotations

from typing import Any, Dict


def pinned_deployment(name: str, namespace: str, node: str, replicas: int) -> Dict[str, Any]:
    """A Deployment whose pods all land on ``node`` (nodeSelector on its hostname)."""
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "nodeSelector": {"kubernetes.io/hostname": node},
                         "containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}}}
