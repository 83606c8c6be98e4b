# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Cordon, drain and uncordon a node through the Eviction API, on one deadline.

A drain cordons the node (``spec.unschedulable``), then evicts every pod on it
that is not a mirror pod or (by default) owned by a DaemonSet, and waits until
those pods are gone, all before one :class:`~waiter.Deadline`.  An eviction the
API server refuses (HTTP 429: a PodDisruptionBudget allows no disruption now)
is retried each round until the deadline.  When the deadline passes the drain
fails (:class:`~errors.ModuleFailure`) naming every pod still on the node and
why -- the PodDisruptionBudget's message, or "terminating" -- and the node stays
cordoned: nothing after the drain (deleting the Node, upgrading the kubelet)
runs on a node whose pods are still there.

Pods that cannot be evicted safely are refused before any eviction, as
``kubectl drain`` does: pods without a controller (unless ``force``) and pods
with emptyDir volumes (unless ``delete_emptydir_data``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import NODES, PODS, K8sClient, K8sError
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
STATES = ("drained", "cordoned", "uncordoned")
PodKey = Tuple[str, str, str]  # namespace, name, uid


def validate(params: Dict[str, Any]) -> None:
    """Check the options before any request."""
    if not params.get("name"):
        raise ValidationError("name: the node name must not be empty")
    if params["state"] not in STATES:
        raise ValidationError(f"state: must be one of {', '.join(STATES)}")
    if params["timeout"] <= 0:
        raise ValidationError("timeout: must be a positive number of seconds")
    if params.get("grace_period") is not None and params["grace_period"] < 0:
        raise ValidationError("grace_period: must be 0 or more seconds")
    if params["poll_interval"] <= 0:
        raise ValidationError("poll_interval: must be a positive number of seconds")


def _key(pod: Dict[str, Any]) -> PodKey:
    meta = pod["metadata"]
    return meta.get("namespace", ""), meta["name"], meta.get("uid", "")


def _label(key: PodKey) -> str:
    return f"{key[0]}/{key[1]}"


def _owner_kinds(pod: Dict[str, Any]) -> List[str]:
    return [o.get("kind", "") for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")]


def classify(pods: List[Dict[str, Any]], ignore_daemonsets: bool, delete_emptydir_data: bool,
             force: bool) -> Tuple[List[Dict[str, Any]], List[str], Dict[str, str]]:
    """Split a node's pods into (to evict, skipped labels, refused label -> why)."""
    evict, skipped, refused = [], [], {}
    for pod in pods:
        meta = pod["metadata"]
        label = _label(_key(pod))
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            skipped.append(label)  # a static pod: only its manifest on the machine removes it
            continue
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        owners = _owner_kinds(pod)
        if "DaemonSet" in owners:
            if ignore_daemonsets:
                skipped.append(label)
            else:
                refused[label] = "managed by a DaemonSet (set ignore_daemonsets=true to leave it)"
            continue
        if not owners and not force and not terminal:
            refused[label] = "not managed by a controller, nothing would recreate it (set force=true to evict it)"
            continue
        if not delete_emptydir_data and not terminal and any(
                "emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or []):
            refused[label] = "has emptyDir data that the eviction deletes (set delete_emptydir_data=true)"
            continue
        evict.append(pod)
    return evict, skipped, refused


def _refusal(exc: K8sError) -> str:
    """Why the API server refused an eviction, with the PodDisruptionBudget's own words when it gives them."""
    body = exc.body if isinstance(exc.body, dict) else {}
    causes = [c.get("message", "") for c in (body.get("details") or {}).get("causes") or [] if c.get("message")]
    message = body.get("message") or str(exc)
    return f"eviction refused ({exc.status}): {message}" + (f" [{'; '.join(causes)}]" if causes else "")


class Drainer:
    """One node's cordon/drain/uncordon; ``clock`` and ``sleep`` are injectable for unit tests."""

    def __init__(self, client: K8sClient, params: Dict[str, Any], check_mode: bool,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.node = params["name"]
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.result: Dict[str, Any] = {"changed": False, "node": self.node, "cordoned": False,
                                       "evicted": [], "skipped": [], "blocking": []}

    # -- node --------------------------------------------------------------
    def set_unschedulable(self, value: bool) -> None:
        node = self.client.get(NODES, self.node)
        if node is None:
            raise ModuleFailure(f"node {self.node} does not exist", self.result)
        if bool((node.get("spec") or {}).get("unschedulable")) != value:
            self.client.merge_patch(NODES, self.node, {"spec": {"unschedulable": value or None}},
                                    dry_run=self.check_mode)
            self.result["changed"] = True
        self.result["cordoned"] = value

    def _pods(self) -> List[Dict[str, Any]]:
        return self.client.list(PODS, field_selector=f"spec.nodeName={self.node}").get("items", [])

    # -- eviction ----------------------------------------------------------
    def _evict(self, pod: Dict[str, Any]) -> Optional[str]:
        """Ask for one eviction; None when accepted (or the pod is gone), else why not."""
        namespace, name = _key(pod)[:2]
        body: Dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        if self.params.get("grace_period") is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": self.params["grace_period"]}
        try:
            self.client.post_path(PODS.path(namespace, name) + "/eviction", body)
        except K8sError as exc:
            if exc.status == 404:
                return None
            if exc.status in (429, 500, 503):  # a budget refuses now (500: several budgets match the pod)
                return _refusal(exc)
            raise
        return None

    def drain(self) -> Dict[str, Any]:
        deadline = Deadline(self.params["timeout"], self.clock)
        self.set_unschedulable(True)
        evict, skipped, refused = classify(self._pods(), self.params["ignore_daemonsets"],
                                           self.params["delete_emptydir_data"], self.params["force"])
        self.result["skipped"] = skipped
        if refused:
            self.result["blocking"] = [{"pod": k, "reason": v} for k, v in refused.items()]
            listed = "; ".join(f"{k} {v}" for k, v in refused.items())
            raise ModuleFailure(f"cannot drain node {self.node} (it stays cordoned): {listed}", self.result)
        if self.check_mode:
            self.result["evicted"] = [_label(_key(p)) for p in evict]
            self.result["changed"] = self.result["changed"] or bool(evict)
            return self.result
        wanted = {_key(p): p for p in evict}
        asked: Dict[PodKey, bool] = {}
        why: Dict[PodKey, str] = {}
        while True:
            present = {_key(p) for p in self._pods()}
            for key in [k for k in wanted if k not in present]:
                del wanted[key]
                why.pop(key, None)
                self.result["evicted"].append(_label(key))
                self.result["changed"] = True
            if not wanted:
                break
            for key, pod in wanted.items():
                if asked.get(key):
                    why[key] = "evicted, still terminating"
                    continue
                reason = self._evict(pod)
                if reason is None:
                    asked[key] = True
                    why[key] = "evicted, still terminating"
                else:
                    why[key] = reason
            if deadline.expired():
                self.result["blocking"] = [{"pod": _label(k), "reason": why.get(k, "")} for k in wanted]
                listed = "; ".join(f"{_label(k)} ({why.get(k, 'not yet evicted')})" for k in wanted)
                raise ModuleFailure(
                    f"drain of node {self.node} did not finish within {self.params['timeout']}s; the node stays "
                    f"cordoned; pods still on it: {listed}", self.result)
            self.sleep(min(self.params["poll_interval"], max(0.05, deadline.remaining())))
        self.result["seconds"] = round(deadline.elapsed(), 2)
        return self.result


def run(client: K8sClient, params: Dict[str, Any], check_mode: bool) -> Dict[str, Any]:
    """Bring the node to ``params['state']`` and return the module result."""
    drainer = Drainer(client, params, check_mode)
    if params["state"] == "drained":
        return drainer.drain()
    drainer.set_unschedulable(params["state"] == "cordoned")
    return drainer.result
