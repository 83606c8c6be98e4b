# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Declarative node labels and taints for many nodes in one pass.

One LIST of the cluster's nodes, a plan per node computed locally, then one
JSON PATCH per node that differs, sent by a bounded thread pool.  Every op is
guarded by a ``test`` of the value it was planned from (the label, the
annotation, the whole taint list), so a concurrent change of those fields
fails the patch and the node is re-read, while status heartbeats, which
change the resourceVersion all the time, do not.  A no-op run costs exactly
one request.

Managed set: a label or taint is managed when its key starts with one of the
managed prefixes, or when its key is recorded in the node annotations
``node.ecoeco.io/managed-labels`` / ``node.ecoeco.io/managed-taints`` that
this module writes.  Managed keys that are no longer declared are removed;
everything else on the node is never touched.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import NODES, K8sError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import (
    dns1123_subdomain_error,
    label_string,
    label_value_error,
    qualified_name_error,
)

MANAGED_LABELS_ANNOTATION = "node.ecoeco.io/managed-labels"
MANAGED_TAINTS_ANNOTATION = "node.ecoeco.io/managed-taints"
DEFAULT_MANAGED_PREFIXES = ("node.ecoeco.io/",)
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
CONFLICT_RETRIES = 3

TaintId = Tuple[str, str, str]  # (key, value, effect)


@dataclass
class DesiredNode:
    """What the inventory declares for one node (validated)."""

    labels: Dict[str, str] = field(default_factory=dict)
    taints: List[Dict[str, str]] = field(default_factory=list)


@dataclass
class NodePlan:
    """The change one node needs; ``patch`` is None when it needs none."""

    name: str
    patch: Optional[List[Dict[str, Any]]]  # JSON patch ops
    change: Dict[str, Any]
    before: Dict[str, Any]
    after: Dict[str, Any]


# -- validation -----------------------------------------------------------------
def _taint_errors(node: str, index: int, taint: Any) -> List[str]:
    where = f"nodes.{node}.taints[{index}]"
    if not isinstance(taint, dict):
        return [f"{where}: must be a dict with key, effect and optional value"]
    errors = []
    unknown = sorted(set(taint) - {"key", "value", "effect"})
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: key, value, effect)")
    key = taint.get("key")
    err = qualified_name_error(key) if isinstance(key, str) else "key is required"
    if err:
        errors.append(f"{where}: {err}")
    label = key if isinstance(key, str) else "?"
    value = label_string(taint.get("value"))
    err = label_value_error(value)
    if err:
        errors.append(f"{where} (key {label}): {err}")
    if taint.get("effect") not in TAINT_EFFECTS:
        errors.append(f"{where} (key {label}): effect '{taint.get('effect')}' must be one of "
                      f"{', '.join(TAINT_EFFECTS)}")
    return errors


# Keys Kubernetes itself (kubelet, kubeadm, the node controllers) sets on nodes: a managed prefix that
# matches one of them would remove it.
KUBERNETES_NODE_KEYS = (
    "kubernetes.io/arch", "kubernetes.io/hostname", "kubernetes.io/os", "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os", "node-role.kubernetes.io/control-plane", "node.kubernetes.io/instance-type",
    "node.kubernetes.io/exclude-from-external-load-balancers", "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable", "node.kubernetes.io/unschedulable", "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region", "node.cloudprovider.kubernetes.io/uninitialized",
    "failure-domain.beta.kubernetes.io/zone", "k8s.io/cloud-provider-aws",
)
KUBERNETES_DOMAINS = ("kubernetes.io", "k8s.io")
DEFAULT_PARALLELISM = 8
MAX_PARALLELISM = 64


@dataclass
class Checked:
    """The validated input: desired nodes, managed prefixes, parallelism."""

    desired: Dict[str, DesiredNode]
    prefixes: List[str]
    parallelism: int


def prefix_errors(prefixes: Any, allow_kubernetes: bool = False) -> List[str]:
    """Why ``managed_prefixes`` cannot be used: empty entries, or prefixes covering Kubernetes' own keys."""
    errors: List[str] = []
    if not isinstance(prefixes, (list, tuple)):
        return ["managed_prefixes: must be a list of key prefixes such as node.ecoeco.io/"]
    for prefix in prefixes:
        if not prefix or not isinstance(prefix, str):
            errors.append("managed_prefixes: entries must be non-empty strings such as node.ecoeco.io/")
            continue
        if allow_kubernetes:
            continue
        domain = prefix.split("/", 1)[0] if "/" in prefix else ""
        covered = [key for key in KUBERNETES_NODE_KEYS if key.startswith(prefix)]
        if covered or any(domain == d or domain.endswith("." + d) for d in KUBERNETES_DOMAINS):
            example = f" (it matches {', '.join(covered[:3])})" if covered else ""
            errors.append(f"managed_prefixes: '{prefix}' covers Kubernetes' own label namespaces kubernetes.io/, "
                          f"k8s.io/ or a subdomain{example}; a run would remove the labels and taints the kubelet "
                          "and Kubernetes set. Use a prefix of your own domain, or set "
                          "allow_kubernetes_prefixes=true if you mean it")
    return errors


def validate_nodes(nodes: Dict[str, Any], managed_prefixes: Sequence[str],
                   errors: Optional[List[str]] = None) -> Dict[str, DesiredNode]:
    """Check every declared node, label and taint; raise one ValidationError naming them all (and ``errors``)."""
    errors = prefix_errors(managed_prefixes, allow_kubernetes=True) if errors is None else list(errors)
    if not isinstance(nodes, dict):
        errors.append("nodes: must be a dict of node name to {labels, taints}")
        nodes = {}
    desired: Dict[str, DesiredNode] = {}
    for name, spec in (nodes or {}).items():
        err = dns1123_subdomain_error(str(name))
        if err:
            errors.append(f"nodes: node name {err}")
            continue
        spec = spec or {}
        if not isinstance(spec, dict):
            errors.append(f"nodes.{name}: must be a dict with labels and taints")
            continue
        unknown = sorted(set(spec) - {"labels", "taints"})
        if unknown:
            errors.append(f"nodes.{name}: unknown field(s) {', '.join(unknown)} (allowed: labels, taints)")
        labels = spec.get("labels") or {}
        taints = spec.get("taints") or []
        if not isinstance(labels, dict):
            errors.append(f"nodes.{name}.labels: must be a dict of label key to value")
            labels = {}
        if not isinstance(taints, list):
            errors.append(f"nodes.{name}.taints: must be a list of {{key, value, effect}}")
            taints = []
        node = DesiredNode()
        for key, value in labels.items():
            text = label_string(value)
            err = qualified_name_error(key) or label_value_error(text)
            if err:
                errors.append(f"nodes.{name}.labels (key {key}): {err}")
            node.labels[str(key)] = text
        seen: Set[Tuple[str, str]] = set()
        for index, taint in enumerate(taints):
            taint_errors = _taint_errors(str(name), index, taint)
            errors.extend(taint_errors)
            if taint_errors:
                continue
            ident = (taint["key"], taint["effect"])
            if ident in seen:
                errors.append(f"nodes.{name}.taints[{index}] (key {taint['key']}): duplicate key and "
                              f"effect {taint['effect']}")
            seen.add(ident)
            entry = {"key": taint["key"], "effect": taint["effect"]}
            if label_string(taint.get("value")):
                entry["value"] = label_string(taint.get("value"))
            node.taints.append(entry)
        desired[str(name)] = node
    if errors:
        raise ValidationError("invalid k8s_node_labels arguments (nothing was changed): " + "; ".join(errors))
    return desired


# -- managed set ----------------------------------------------------------------------
def recorded_keys(annotations: Dict[str, str], annotation: str) -> Set[str]:
    """Keys this module recorded in a node annotation."""
    return {k.strip() for k in (annotations.get(annotation) or "").split(",") if k.strip()}


def has_prefix(key: str, prefixes: Iterable[str]) -> bool:
    return any(key.startswith(p) for p in prefixes)


def taint_id(taint: Dict[str, Any]) -> TaintId:
    return (taint.get("key", ""), taint.get("value") or "", taint.get("effect", ""))


def carries_managed(node: Dict[str, Any], prefixes: Sequence[str]) -> bool:
    """Whether an (undeclared) node carries anything this module manages."""
    meta = node.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if recorded_keys(annotations, MANAGED_LABELS_ANNOTATION) or recorded_keys(annotations, MANAGED_TAINTS_ANNOTATION):
        return True
    if any(has_prefix(k, prefixes) for k in meta.get("labels") or {}):
        return True
    return any(has_prefix(t.get("key", ""), prefixes) for t in (node.get("spec") or {}).get("taints") or [])


# -- planning ----------------------------------------------------------------------------
def _recorded_annotation(keys: Iterable[str], prefixes: Sequence[str]) -> Set[str]:
    return {k for k in keys if not has_prefix(k, prefixes)}


def plan_node(node: Dict[str, Any], want: DesiredNode, prefixes: Sequence[str]) -> NodePlan:
    """Compare one live node with what is declared; build the JSON patch it needs."""
    meta = node.get("metadata") or {}
    name = meta.get("name", "")
    live_labels: Dict[str, str] = dict(meta.get("labels") or {})
    annotations: Dict[str, str] = dict(meta.get("annotations") or {})
    live_taints: List[Dict[str, Any]] = list((node.get("spec") or {}).get("taints") or [])
    rec_labels = recorded_keys(annotations, MANAGED_LABELS_ANNOTATION)
    rec_taints = recorded_keys(annotations, MANAGED_TAINTS_ANNOTATION)

    # labels
    added = {k: v for k, v in want.labels.items() if k not in live_labels}
    changed = {k: {"before": live_labels[k], "after": v} for k, v in want.labels.items()
               if k in live_labels and live_labels[k] != v}
    removed = sorted(k for k in live_labels
                     if k not in want.labels and (has_prefix(k, prefixes) or k in rec_labels))
    label_patch: Dict[str, Optional[str]] = dict(added)
    label_patch.update({k: c["after"] for k, c in changed.items()})
    label_patch.update({k: None for k in removed})

    # taints (a key is managed with all its effects)
    def managed_taint(t: Dict[str, Any]) -> bool:
        return has_prefix(t.get("key", ""), prefixes) or t.get("key") in rec_taints \
            or t.get("key") in {w["key"] for w in want.taints}
    live_managed = [t for t in live_taints if managed_taint(t)]
    live_ids = {taint_id(t) for t in live_managed}
    want_ids = {taint_id(t) for t in want.taints}
    taints_added = [t for t in want.taints if taint_id(t) not in live_ids]
    taints_removed = [dict(t) for t in live_managed if taint_id(t) not in want_ids]
    new_taints = None
    if taints_added or taints_removed or len(live_managed) != len(live_ids):
        new_taints = [t for t in live_taints if not managed_taint(t)] + [dict(t) for t in want.taints]

    # ownership records
    annotation_patch: Dict[str, Optional[str]] = {}
    for annotation, keys, recorded in (
        (MANAGED_LABELS_ANNOTATION, want.labels.keys(), rec_labels),
        (MANAGED_TAINTS_ANNOTATION, (t["key"] for t in want.taints), rec_taints),
    ):
        new = _recorded_annotation(keys, prefixes)
        if new != recorded:
            annotation_patch[annotation] = ",".join(sorted(new)) if new else None
        elif annotation in annotations and not new:
            annotation_patch[annotation] = None

    change: Dict[str, Any] = {}
    if added or changed or removed:
        change["labels"] = {"added": added, "removed": removed, "changed": changed}
    if new_taints is not None:
        change["taints"] = {"added": taints_added, "removed": taints_removed}
    if annotation_patch:
        change["ownership"] = dict(annotation_patch)

    before = {"labels": live_labels, "taints": live_taints}
    patch: Optional[List[Dict[str, Any]]] = None
    after = before
    if change:
        patch = _map_ops("/metadata/labels", meta.get("labels"), label_patch)
        patch += _map_ops("/metadata/annotations", meta.get("annotations"), annotation_patch)
        if new_taints is not None:
            patch += _taint_ops(node.get("spec") or {}, new_taints)
        new_labels = {k: v for k, v in live_labels.items() if k not in removed}
        new_labels.update({k: v for k, v in label_patch.items() if v is not None})
        after = {"labels": new_labels, "taints": live_taints if new_taints is None else new_taints}
    return NodePlan(name=name, patch=patch, change=change, before=before, after=after)


# -- JSON patch ------------------------------------------------------------------------
def json_pointer(key: str) -> str:
    """Escape a map key for a JSON pointer (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _map_ops(path: str, live: Optional[Dict[str, str]], changes: Dict[str, Optional[str]]) -> List[Dict[str, Any]]:
    """Per-key ops on a string map, each guarded by a ``test`` of the value it was planned from.

    Only the keys this run changes are guarded, so concurrent writes elsewhere on the
    node (status heartbeats, other labels) do not conflict; a concurrent write to one
    of these keys fails the patch and the node is re-read and re-planned.
    """
    if not changes:
        return []
    if live is None:
        added = {k: v for k, v in changes.items() if v is not None}
        return [{"op": "test", "path": path, "value": None}, {"op": "add", "path": path, "value": added}] \
            if added else []
    ops: List[Dict[str, Any]] = []
    for key, value in sorted(changes.items()):
        at = f"{path}/{json_pointer(key)}"
        ops.append({"op": "test", "path": at, "value": live.get(key)})
        if value is None:
            if key in live:
                ops.append({"op": "remove", "path": at})
            else:
                ops.pop()
        else:
            ops.append({"op": "replace" if key in live else "add", "path": at, "value": value})
    return ops


def _taint_ops(spec: Dict[str, Any], new_taints: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Replace ``spec.taints`` only if it still is the list the plan was computed from."""
    live = spec.get("taints")
    ops: List[Dict[str, Any]] = [{"op": "test", "path": "/spec/taints", "value": live}]
    if new_taints:
        ops.append({"op": "replace" if live is not None else "add", "path": "/spec/taints", "value": new_taints})
    elif live is not None:
        ops.append({"op": "remove", "path": "/spec/taints"})
    else:
        ops = []
    return ops


@dataclass
class Plan:
    """Plans for every node of one run plus what could not be matched."""

    nodes: List[NodePlan]
    missing: List[str]
    undeclared_managed: List[str]


def plan_all(live_nodes: List[Dict[str, Any]], desired: Dict[str, DesiredNode],
             declared_nodes: Iterable[str], prefixes: Sequence[str], prune_undeclared: bool) -> Plan:
    """Plan every declared node found in ``live_nodes``; classify missing and undeclared ones."""
    declared = set(declared_nodes) | set(desired)
    by_name = {n.get("metadata", {}).get("name"): n for n in live_nodes}
    missing = sorted(n for n in desired if n not in by_name)
    undeclared = sorted(n for n, obj in by_name.items() if n not in declared and carries_managed(obj, prefixes))
    plans = [plan_node(by_name[n], want, prefixes) for n, want in sorted(desired.items()) if n in by_name]
    if prune_undeclared:
        plans += [plan_node(by_name[n], DesiredNode(), prefixes) for n in undeclared]
    return Plan(nodes=plans, missing=missing, undeclared_managed=undeclared)


# -- applying -----------------------------------------------------------------------------
class RequestCounter:
    """Thread-safe count of API requests made by one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n


def patch_node(client: Any, plan: NodePlan, want: DesiredNode, prefixes: Sequence[str],
               counter: RequestCounter) -> NodePlan:
    """Send one node's patch; when a guarded value changed meanwhile, re-read the node and re-plan."""
    for attempt in range(CONFLICT_RETRIES):
        if plan.patch is None:
            return plan
        try:
            counter.add()
            client.json_patch(NODES, plan.name, plan.patch)
            return plan
        except K8sError as exc:
            # 409/422: a ``test`` op failed (or the object changed): someone else wrote our keys.
            if exc.status not in (409, 422) or attempt == CONFLICT_RETRIES - 1:
                raise
        counter.add()
        node = client.get(NODES, plan.name)
        if node is None:
            raise K8sError(f"node {plan.name} disappeared while it was being patched", 404)
        plan = plan_node(node, want, prefixes)
    return plan


def apply_plans(client: Any, plans: List[NodePlan], desired: Dict[str, DesiredNode],
                prefixes: Sequence[str], parallelism: int,
                counter: RequestCounter) -> Tuple[List[NodePlan], Dict[str, str]]:
    """Patch every node that needs it, ``parallelism`` at a time; return plans applied and errors."""
    todo = [p for p in plans if p.patch is not None]
    done: List[NodePlan] = []
    errors: Dict[str, str] = {}
    if not todo:
        return done, errors
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(todo)))) as pool:
        futures = {p.name: pool.submit(patch_node, client, p, desired.get(p.name, DesiredNode()),
                                       prefixes, counter) for p in todo}
        for name, future in futures.items():
            try:
                done.append(future.result())
            except K8sError as exc:
                errors[name] = str(exc)
    return done, errors


# -- entry point ----------------------------------------------------------------------------
def validate(params: Dict[str, Any]) -> Checked:
    """Every input of the module, checked at once before any request; one ValidationError names them all.

    Values are not rewritten (no stripping, no case change): what is declared is what is compared, so a rerun
    of the same input plans the same (empty) change.
    """
    prefixes = params.get("managed_prefixes")
    if prefixes is None:
        prefixes = list(DEFAULT_MANAGED_PREFIXES)
    errors = prefix_errors(prefixes, bool(params.get("allow_kubernetes_prefixes")))
    parallelism = params.get("parallelism")
    if parallelism is None:
        parallelism = DEFAULT_PARALLELISM
    if isinstance(parallelism, bool) or not isinstance(parallelism, int) \
            or not 1 <= parallelism <= MAX_PARALLELISM:
        errors.append(f"parallelism: must be a whole number from 1 to {MAX_PARALLELISM}, got {parallelism!r}")
    desired = validate_nodes(params.get("nodes") or {}, prefixes, errors)
    return Checked(desired, list(prefixes), parallelism)


def run(client: Any, params: Dict[str, Any], check_mode: bool, want_diff: bool,
        checked: Optional[Checked] = None) -> Dict[str, Any]:
    """Converge every declared node's labels and taints; return the module result.

    ``checked``: what :func:`validate` returned, when the caller validated already.
    """
    if checked is None:
        checked = validate(params)
    desired, prefixes, parallelism = checked.desired, checked.prefixes, checked.parallelism
    declared = params.get("declared_nodes")
    if declared is None:
        declared = list(desired)
    counter = RequestCounter()
    counter.add()
    live = client.list(NODES).get("items") or []
    plan = plan_all(live, desired, declared, prefixes, bool(params.get("prune_undeclared_nodes")))
    result: Dict[str, Any] = {
        "changed": False, "changed_nodes": {}, "missing_nodes": plan.missing,
        "undeclared_managed_nodes": plan.undeclared_managed,
    }
    warnings: List[str] = []
    if plan.missing:
        text = (f"{len(plan.missing)} declared node(s) not found in the cluster: "
                f"{', '.join(plan.missing)}")
        if params.get("missing_nodes", "warn") == "fail":
            result["api_requests"] = counter.count
            raise ModuleFailure(text + " (missing_nodes=fail; nothing was changed)", result)
        warnings.append(text)
    if plan.undeclared_managed and not params.get("prune_undeclared_nodes"):
        warnings.append(f"{len(plan.undeclared_managed)} node(s) not in declared_nodes carry managed labels "
                        f"or taints and were left alone (prune_undeclared_nodes=false): "
                        f"{', '.join(plan.undeclared_managed)}")
    errors: Dict[str, str] = {}
    if check_mode:
        applied = [p for p in plan.nodes if p.patch is not None]
    else:
        applied, errors = apply_plans(client, plan.nodes, desired, prefixes, parallelism, counter)
    applied = [p for p in applied if p.change]
    result["changed"] = bool(applied)
    result["changed_nodes"] = {p.name: p.change for p in sorted(applied, key=lambda p: p.name)}
    result["api_requests"] = counter.count
    if want_diff:
        result["diff"] = [{"before_header": f"node/{p.name}", "after_header": f"node/{p.name}",
                           "before": p.before, "after": p.after} for p in applied]
    if warnings:
        result["warnings"] = warnings
    if errors:
        raise ModuleFailure("patching failed for node(s): " + "; ".join(
            f"{name}: {msg}" for name, msg in sorted(errors.items())), result)
    return result
