# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Server-side apply of a whole manifest that writes only the objects that differ.

A rerun of an unchanged manifest reads each object once and writes nothing:
an object is left alone when every field of the document already has that
value in the cluster *and* every field this field manager owns is still in the
document (so a field dropped from a newer manifest is still removed).  Any
other object is applied, and counts as changed only when the API server's
result differs from what was there in anything but bookkeeping and status.

Order: Namespaces, then CustomResourceDefinitions (waited for until
Established), then the rest in manifest order.  Kinds are resolved by one
discovery request per group/version, or from a CRD of the same manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils.apply import (
    CREATED,
    UNCHANGED,
    Applied,
    apply_object,
    label_of,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sClient, K8sError, ResourceRef
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import WaitTimeout, wait_for

CRDS = ResourceRef("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


@dataclass
class ObjectResult:
    """What happened to one document of the manifest."""

    kind: str
    name: str
    namespace: Optional[str]
    action: str  # created | configured | unchanged
    changed_paths: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.changed_paths:
            out["changed_paths"] = self.changed_paths
        return out


# -- reading the manifest --------------------------------------------------------

def validate_documents(docs: Iterable[Any]) -> List[Dict[str, Any]]:
    """Drop empty documents and check each names apiVersion, kind and metadata.name."""
    out = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        where = f"definition[{index}]"
        if not isinstance(doc, dict):
            raise ValidationError(f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(validate_documents(doc["items"]))
            continue
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ValidationError(f"{where}: missing {key}")
        name = (doc.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{where} ({doc['kind']}): missing metadata.name")
        out.append(doc)
    return out


def apply_order(docs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Namespaces first, then CRDs, then everything else in manifest order."""
    def rank(doc: Dict[str, Any]) -> int:
        return {"Namespace": 0, "CustomResourceDefinition": 1}.get(doc["kind"], 2)
    return sorted(docs, key=rank)  # sorted() is stable


# -- kinds to API paths ------------------------------------------------------------

def _split_api_version(api_version: str) -> Tuple[str, str]:
    group, version = api_version.rpartition("/")[::2]
    return group, version


class KindResolver:
    """Kind -> ResourceRef, from CRDs of the manifest or one discovery GET per group/version."""

    def __init__(self, client: K8sClient, docs: List[Dict[str, Any]]):
        self.client = client
        self.cache: Dict[Tuple[str, str], Dict[str, ResourceRef]] = {}
        self.from_crds: Dict[Tuple[str, str], ResourceRef] = {}
        for doc in docs:
            if doc["kind"] != "CustomResourceDefinition":
                continue
            spec = doc.get("spec") or {}
            names = spec.get("names") or {}
            for version in spec.get("versions") or []:
                ref = ResourceRef(spec.get("group", ""), version.get("name", ""), names.get("plural", ""),
                                  spec.get("scope") == "Namespaced")
                self.from_crds[(f"{ref.group}/{ref.version}", names.get("kind", ""))] = ref

    def _discover(self, api_version: str) -> Dict[str, ResourceRef]:
        group, version = _split_api_version(api_version)
        if (group, version) not in self.cache:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            listing = self.client.get_path(path) or {}
            self.cache[(group, version)] = {
                res["kind"]: ResourceRef(group, version, res["name"], bool(res.get("namespaced")))
                for res in listing.get("resources", []) if "/" not in res.get("name", "")
            }
        return self.cache[(group, version)]

    def resolve(self, api_version: str, kind: str) -> ResourceRef:
        ref = self.from_crds.get((api_version, kind)) or self._discover(api_version).get(kind)
        if ref is None:
            raise ValidationError(f"the API server has no kind {kind} in {api_version}, and no "
                                  "CustomResourceDefinition of this manifest defines it")
        return ref


def apply_object_pending(body: Dict[str, Any]) -> Applied:
    """Check mode, an object whose namespace or kind only this run creates: reported as created, no dry run."""
    return Applied(CREATED, None, body)


# -- the run -----------------------------------------------------------------------

class ManifestApplier:
    """Applies validated documents in order with one field manager."""

    def __init__(self, client: K8sClient, docs: List[Dict[str, Any]], field_manager: str,
                 namespace: Optional[str] = None, force_conflicts: bool = True,
                 check_mode: bool = False, want_diff: bool = False, crd_timeout: float = 60,
                 sleep: Optional[Callable[[float], None]] = None):
        self.client = client
        self.docs = apply_order(docs)
        self.field_manager = field_manager
        self.namespace = namespace
        self.force = force_conflicts
        self.check_mode = check_mode
        self.want_diff = want_diff
        self.crd_timeout = crd_timeout
        self.sleep = sleep
        self.kinds = KindResolver(client, self.docs)
        self.diffs: List[Dict[str, Any]] = []
        self.warnings: List[str] = []
        self.new_namespaces: set = set()
        self.new_kinds: set = set()

    def _namespace_of(self, doc: Dict[str, Any], ref: ResourceRef) -> Optional[str]:
        if not ref.namespaced:
            return None
        namespace = doc["metadata"].get("namespace") or self.namespace
        if not namespace:
            raise ValidationError(f"{doc['kind']} {doc['metadata']['name']} is namespaced but names no "
                                  "metadata.namespace, and the namespace option is not set")
        return namespace

    def _body(self, doc: Dict[str, Any], namespace: Optional[str]) -> Dict[str, Any]:
        if not namespace or doc["metadata"].get("namespace") == namespace:
            return doc
        return dict(doc, metadata=dict(doc["metadata"], namespace=namespace))

    def _pending_in_check_mode(self, doc: Dict[str, Any], namespace: Optional[str]) -> bool:
        """Check mode: the object's namespace or kind would only exist after this run."""
        pending = namespace in self.new_namespaces or (doc["apiVersion"], doc["kind"]) in self.new_kinds
        return self.check_mode and pending

    def apply_one(self, doc: Dict[str, Any]) -> ObjectResult:
        """Apply one document unless the cluster already has it; return what happened."""
        name = doc["metadata"]["name"]
        try:
            ref = self.kinds.resolve(doc["apiVersion"], doc["kind"])
        except ValidationError:
            if not self.check_mode:
                raise
            # Check mode: the kind may come from a CRD another task of the run installs.
            self.warnings.append(f"check mode: {doc['kind']} ({doc['apiVersion']}) is not served yet, so "
                                 f"{name} is reported as created without a dry run")
            return ObjectResult(doc["kind"], name, doc["metadata"].get("namespace") or self.namespace, "created")
        namespace = self._namespace_of(doc, ref)
        body = self._body(doc, namespace)
        pending = self._pending_in_check_mode(doc, namespace)
        live = None if pending else self.client.get(ref, name, namespace)
        if pending:
            done = apply_object_pending(body)
        else:
            try:
                done = apply_object(self.client, ref, body, live, self.field_manager, namespace,
                                    check_mode=self.check_mode, force=self.force)
            except K8sError as exc:
                if not (self.check_mode and live is None and exc.status == 404):
                    raise
                # Check mode: its namespace comes from another task of the run.
                self.warnings.append(f"check mode: {label_of(body, namespace)} cannot be dry-run ({exc}); "
                                     "reported as created")
                done = apply_object_pending(body)
        if not done.changed:
            return ObjectResult(doc["kind"], name, namespace, UNCHANGED)
        if done.action == CREATED:
            self._note_created(doc)
        if self.want_diff:
            self.diffs.append(done.diff(label_of(body, namespace)))
        return ObjectResult(doc["kind"], name, namespace, done.action, done.changed_paths)

    def _note_created(self, doc: Dict[str, Any]) -> None:
        if doc["kind"] == "Namespace":
            self.new_namespaces.add(doc["metadata"]["name"])
        elif doc["kind"] == "CustomResourceDefinition":
            spec = doc.get("spec") or {}
            for version in spec.get("versions") or []:
                self.new_kinds.add((f"{spec.get('group')}/{version.get('name')}",
                                    (spec.get("names") or {}).get("kind")))

    def wait_established(self, names: List[str]) -> None:
        """Wait (bounded) until each CRD reports condition Established=True."""
        def established() -> bool:
            for name in names:
                crd = self.client.get(CRDS, name) or {}
                conditions = (crd.get("status") or {}).get("conditions") or []
                if not any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                    return False
            return True
        kwargs = {"sleep": self.sleep} if self.sleep else {}
        try:
            wait_for(established, self.crd_timeout, interval=0.5,
                     what=f"CustomResourceDefinitions {', '.join(names)} to be Established", **kwargs)
        except WaitTimeout as exc:
            raise K8sError(str(exc)) from exc

    def run(self) -> Dict[str, Any]:
        """Apply every document; CRDs written in this run are Established before their objects."""
        results: List[ObjectResult] = []
        crds_written: List[str] = []
        for doc in self.docs:
            if doc["kind"] != "CustomResourceDefinition" and crds_written:
                if not self.check_mode:
                    self.wait_established(crds_written)
                crds_written = []
            result = self.apply_one(doc)
            results.append(result)
            if doc["kind"] == "CustomResourceDefinition" and result.action != "unchanged":
                crds_written.append(result.name)
        if crds_written and not self.check_mode:
            self.wait_established(crds_written)
        changed = [r for r in results if r.action != "unchanged"]
        out: Dict[str, Any] = {
            "changed": bool(changed),
            "objects": [r.as_dict() for r in results],
            "counts": {action: sum(1 for r in results if r.action == action)
                       for action in ("created", "configured", "unchanged")},
        }
        if self.want_diff:
            out["diff"] = self.diffs
        if self.warnings:
            out["warnings"] = self.warnings
        return out
