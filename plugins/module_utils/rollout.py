# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Has a workload rolled out? Deployments, StatefulSets and DaemonSets, judged from their status.

A workload has rolled out when its controller has seen the current spec
(``status.observedGeneration`` >= ``metadata.generation``) and every replica
(every scheduled pod, for a DaemonSet) is updated and ready. ``wait_rolled_out``
polls the named workloads with one GET each per round, on a monotonic
deadline, and on timeout names every workload that has not rolled out and how
far it got.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sClient, K8sError, ResourceRef
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import WaitTimeout, wait_for

ROLLOUT_KINDS = {
    kind: ResourceRef("apps", "v1", plural, namespaced=True)
    for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets"), ("DaemonSet", "daemonsets"))
}
Workload = Tuple[str, str, str]  # kind, namespace, name


def replica_counts(obj: Mapping[str, Any], kind: Optional[str] = None) -> Tuple[int, int, int]:
    """(wanted, updated, ready) replicas of a workload object (``kind`` when the object does not say)."""
    status = obj.get("status") or {}
    if (kind or obj.get("kind")) == "DaemonSet":
        return (int(status.get("desiredNumberScheduled") or 0), int(status.get("updatedNumberScheduled") or 0),
                int(status.get("numberReady") or 0))
    spec = obj.get("spec") or {}
    wanted = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    return wanted, int(status.get("updatedReplicas") or 0), int(status.get("readyReplicas") or 0)


def not_rolled_out(obj: Optional[Dict[str, Any]], workload: Workload) -> Optional[str]:
    """Why ``obj`` has not rolled out (``None`` when it has); ``obj`` None means it does not exist."""
    kind, namespace, name = workload
    label = f"{kind} {namespace}/{name}"
    if obj is None:
        return f"{label} not found"
    generation = (obj.get("metadata") or {}).get("generation") or 1
    observed = (obj.get("status") or {}).get("observedGeneration") or 0
    wanted, updated, ready = replica_counts(obj, kind)
    if observed < generation:
        return f"{label} spec (generation {generation}) not yet seen by its controller (observed {observed})"
    if updated < wanted or ready < wanted:
        return f"{label} {ready}/{wanted} ready, {updated}/{wanted} updated"
    return None


def workloads_of(objects: List[Dict[str, Any]]) -> List[Workload]:
    """The Deployments, StatefulSets and DaemonSets among a manifest run's result objects."""
    return [(o["kind"], o["namespace"], o["name"]) for o in objects
            if o.get("kind") in ROLLOUT_KINDS and o.get("namespace")]


def wait_rolled_out(client: K8sClient, workloads: List[Workload], timeout: float, interval: float = 2.0,
                    sleep: Optional[Callable[[float], None]] = None,
                    known: Optional[Mapping[Workload, Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Wait (bounded) until every workload has rolled out; raise K8sError naming those that have not.

    ``known``: objects the caller has just read (and not written since); the first round judges those
    workloads from them instead of a GET each."""
    pending: Dict[Workload, str] = {}
    first = dict(known or {})

    def all_rolled_out() -> bool:
        for workload in list(pending or workloads):
            kind, namespace, name = workload
            obj = first.pop(workload, None)
            if obj is None:
                obj = client.get(ROLLOUT_KINDS[kind], name, namespace)
            reason = not_rolled_out(obj, workload)
            if reason:
                pending[workload] = reason
            else:
                pending.pop(workload, None)
        first.clear()  # later rounds read again
        return not pending

    kwargs = {"sleep": sleep} if sleep else {}
    if not workloads:
        return {"workloads": 0, "seconds": 0.0}
    start = time.monotonic()
    try:
        wait_for(all_rolled_out, timeout, interval=interval, what="workloads to roll out", **kwargs)
    except WaitTimeout as exc:
        raise K8sError(f"{exc}; not rolled out: {'; '.join(pending.values())}") from exc
    return {"workloads": len(workloads), "seconds": round(time.monotonic() - start, 2)}
