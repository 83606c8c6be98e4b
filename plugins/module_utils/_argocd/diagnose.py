# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Explain why an app is not ready, down to the object that blocks it.

Runs only once a wave has failed or timed out (it costs requests): reads the
app's ``status.resources`` and, for a workload that is not healthy, GETs it
and LISTs its pods to say which pod waits and why ("pod pg-0 Pending - 0/14
nodes are available: ..."), including the StatefulSet that keeps a Pending
pod of an old revision, which Kubernetes never replaces by itself.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    AppKey,
    caused_by,
    child_app_keys,
    display_name,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import PODS, K8sError
from ansible_collections.ecoeco.gitops.plugins.module_utils.rollout import ROLLOUT_KINDS as WORKLOADS
from ansible_collections.ecoeco.gitops.plugins.module_utils.rollout import replica_counts

NOT_HEALTHY = ("Degraded", "Progressing", "Missing", "Unknown", "Suspended")
MAX_WORKLOADS_PER_APP = 3
MAX_PODS_PER_WORKLOAD = 3


def unhealthy_resources(app: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    """Entries of ``status.resources`` whose health is not Healthy or whose sync is not Synced."""
    out = []
    for res in (app.get("status") or {}).get("resources") or []:
        health = (res.get("health") or {}).get("status")
        if health in NOT_HEALTHY or res.get("status") not in (None, "Synced"):
            out.append(res)
    return out


def describe_resource(res: Mapping[str, Any]) -> str:
    health = res.get("health") or {}
    where = f"{res.get('namespace')}/{res.get('name')}" if res.get("namespace") else res.get("name")
    text = f"{res.get('kind')} {where}"
    bits = [b for b in (res.get("status"), health.get("status")) if b]
    if bits:
        text += " " + "/".join(bits)
    if health.get("message"):
        text += f" ({health['message']})"
    return text


def _selector(obj: Mapping[str, Any]) -> Optional[str]:
    labels = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


def _pod_problem(pod: Mapping[str, Any]) -> Optional[str]:
    """Why a pod is not ready, or None when it is."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    phase = status.get("phase", "Unknown")
    if phase == "Pending":
        sched = conditions.get("PodScheduled") or {}
        if sched.get("status") == "False":
            return f"Pending - {sched.get('message') or sched.get('reason') or 'not scheduled'}"
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            msg = f" ({waiting['message']})" if waiting.get("message") else ""
            return f"{phase} - container {cs.get('name')} {waiting['reason']}{msg}"
    if phase in ("Failed", "Unknown"):
        return f"{phase} - {status.get('message') or status.get('reason') or ''}".rstrip(" -")
    if (conditions.get("Ready") or {}).get("status") != "True":
        return f"{phase}, not ready"
    return None


def diagnose_workload(client: Any, kind: str, namespace: str, name: str) -> Tuple[str, bool]:
    """(``StatefulSet data/pg 0/1 ready, pod pg-0 Pending - 0/14 nodes ...``, whether it blocks).

    One GET of the workload and one LIST of its pods.
    """
    obj = client.get(WORKLOADS[kind], name, namespace)
    if obj is None:
        return f"{kind} {namespace}/{name} does not exist", True
    wanted, dummy, ready = replica_counts(obj, kind)
    text = f"{kind} {namespace}/{name} {ready}/{wanted} ready"
    blocked = ready < wanted
    selector = _selector(obj)
    if not selector:
        return text, blocked
    pods = client.list(PODS, namespace, label_selector=selector).get("items") or []
    status = obj.get("status") or {}
    update_rev = status.get("updateRevision")
    rolling = kind == "StatefulSet" and update_rev and status.get("currentRevision") != update_rev
    shown = 0
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        problem = _pod_problem(pod)
        if not problem or shown >= MAX_PODS_PER_WORKLOAD:
            continue
        shown += 1
        blocked = True
        pod_name = (pod.get("metadata") or {}).get("name")
        text += f", pod {pod_name} {problem}"
        pod_rev = ((pod.get("metadata") or {}).get("labels") or {}).get("controller-revision-hash")
        if rolling and pod_rev and pod_rev != update_rev and problem.startswith("Pending"):
            text += (f"; pod {pod_name} is of the old revision {pod_rev} (update revision {update_rev}): "
                     "Kubernetes will not replace a Pending pod of a StatefulSet - delete the pod "
                     f"(kubectl -n {namespace} delete pod {pod_name})")
    return text, blocked


def _suspects(app: Mapping[str, Any]) -> List[Tuple[str, str, str, bool]]:
    """Workloads worth a look: (kind, namespace, name, flagged by Argo CD)."""
    status = app.get("status") or {}
    seen: List[Tuple[str, str, str, bool]] = []
    for res in status.get("resources") or []:
        if res.get("kind") in WORKLOADS and (res.get("health") or {}).get("status") in ("Degraded", "Progressing"):
            seen.append((res["kind"], res.get("namespace") or "", res.get("name", ""), True))
    for _group, kind, ns, name in caused_by(app):
        if kind in WORKLOADS and not any(s[:3] == (kind, ns, name) for s in seen):
            seen.append((kind, ns, name, True))
    health = (status.get("health") or {}).get("status")
    if health not in (None, "Healthy") and status.get("resourceHealthSource") == "appTree":
        # Argo CD keeps resource health in its app tree and names one culprit ("Caused by"):
        # look at the app's other workloads too (only those really not ready are reported).
        known = {s[:3] for s in seen}
        for r in status.get("resources") or []:
            ref = (r.get("kind"), r.get("namespace") or "", r.get("name", ""))
            if ref[0] in WORKLOADS and ref not in known:
                seen.append((ref[0], ref[1], ref[2], False))
    return seen[:MAX_WORKLOADS_PER_APP]


def diagnose_app(client: Any, app: Optional[Mapping[str, Any]], index: Mapping[AppKey, Mapping[str, Any]],
                 home_ns: str, depth: int = 0) -> List[str]:
    """Lines that explain one app: conditions, operation, failing resources and their pods."""
    if app is None:
        return ["the Application does not exist yet (Argo CD creates it when the earlier waves are healthy)"]
    status = app.get("status") or {}
    lines: List[str] = []
    for cond in status.get("conditions") or []:
        lines.append(f"condition {cond.get('type')}: {cond.get('message', '')}".rstrip(": "))
    op = status.get("operationState") or {}
    if op.get("phase") and op.get("phase") != "Succeeded":
        lines.append(f"operation {op['phase']}: {op.get('message', '')}".rstrip(": "))
    suspects = _suspects(app)
    for res in unhealthy_resources(app):
        if res.get("kind") == "Application" or any(s[:3] == (res.get("kind"), res.get("namespace") or "",
                                                             res.get("name")) for s in suspects):
            continue
        lines.append(describe_resource(res))
    messages = {(r.get("kind"), r.get("namespace") or "", r.get("name")): (r.get("health") or {}).get("message")
                for r in status.get("resources") or []}
    for kind, ns, name, flagged in suspects:
        try:
            line, blocked = diagnose_workload(client, kind, ns, name)
        except K8sError as exc:
            line, blocked = f"{kind} {ns}/{name}: cannot read it: {exc}", True
        if messages.get((kind, ns, name)):
            line += f" (Argo CD: {messages[(kind, ns, name)]})"
        if blocked or flagged:
            lines.append(line)
    if depth < 2:
        for child_key, _wave in child_app_keys(app):
            child = index.get(child_key)
            child_lines = diagnose_app(client, child, index, home_ns, depth + 1) if child is not None else []
            if child is None or child_lines:
                name = display_name(child_key, home_ns)
                for line in child_lines or ["not created yet"]:
                    lines.append(f"child app {name}: {line}")
    return lines
