# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Server-side apply of a whole manifest that writes only the objects that differ.

A rerun of an unchanged manifest reads each object once (one LIST per kind and
namespace holding several of its objects, a GET for the others) and writes nothing:
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
    already_applied,
    apply_object,
    label_of,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sClient, K8sError, ResourceRef
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import (
    dns1123_label_error,
    dns1123_subdomain_error,
    label_value_error,
    qualified_name_error,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import WaitTimeout, wait_for

CRDS = ResourceRef("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
# A kind (in one namespace) with at least this many objects in the manifest is read by one LIST, not a GET each.
LIST_AT_LEAST = 2


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

def validate_documents(docs: Iterable[Any], source: str = "definition") -> List[Dict[str, Any]]:
    """Drop empty documents and check each: apiVersion, kind, metadata.name, namespace and labels.

    ``source`` names where the documents came from in messages (``definition`` or ``src <path>``).
    """
    out: List[Dict[str, Any]] = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        where = f"{source}[{index}]" if source == "definition" else f"{source}, document {index + 1}"
        if not isinstance(doc, dict):
            raise ValidationError(f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(validate_documents(doc["items"], f"{where} items" if source == "definition" else source))
            continue
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise ValidationError(f"{where}: missing {key}")
        metadata = doc.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{where} ({doc['kind']}): missing metadata.name")
        error = object_name_error(doc["kind"], name) or _metadata_error(metadata)
        if error:
            raise ValidationError(f"{where} ({doc['kind']} {name}): {error}")
        out.append(doc)
    return out


# Kinds whose names the API server holds to DNS-1123 label (namespaces) or subdomain rules; other kinds
# (RBAC roles, for instance, allow ':') only to being one path segment, and the dry run judges the rest.
_LABEL_NAMED = ("Namespace", "Service")
_SUBDOMAIN_NAMED = ("ConfigMap", "Secret", "ServiceAccount", "Deployment", "StatefulSet", "DaemonSet", "Job",
                    "CronJob", "Pod", "PersistentVolumeClaim", "Ingress", "NetworkPolicy",
                    "CustomResourceDefinition", "Application", "ApplicationSet", "AppProject")


def object_name_error(kind: str, name: str) -> str:
    """Why ``name`` cannot name an object of ``kind``, or ''."""
    if kind in _LABEL_NAMED:
        err = dns1123_label_error(name)
        return f"metadata.name {err}" if err else ""
    if kind in _SUBDOMAIN_NAMED:
        err = dns1123_subdomain_error(name)
        return f"metadata.name {err}" if err else ""
    if name in (".", "..") or "/" in name or "%" in name or len(name) > 253:
        return f"metadata.name '{name}' cannot be a name (no '/', '%', '.' or '..', at most 253 characters)"
    return ""


def _metadata_error(metadata: Dict[str, Any]) -> str:
    namespace = metadata.get("namespace")
    if namespace is not None:
        err = dns1123_label_error(namespace) if isinstance(namespace, str) else "must be a string"
        if err:
            return f"metadata.namespace {err}"
    labels = metadata.get("labels")
    if labels is not None and not isinstance(labels, dict):
        return "metadata.labels must be a mapping"
    for key, value in (labels or {}).items():
        err = qualified_name_error(key) or (label_value_error(value) if isinstance(value, str)
                                            else f"value of '{key}' must be a string")
        if err:
            return f"metadata.labels: {err}"
    return ""


def apply_order(docs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Namespaces first, then CRDs, then everything else in manifest order."""
    def rank(doc: Dict[str, Any]) -> int:
        return {"Namespace": 0, "CustomResourceDefinition": 1}.get(doc["kind"], 2)
    return sorted(docs, key=rank)  # sorted() is stable


# -- kinds to API paths ------------------------------------------------------------

def _split_api_version(api_version: str) -> Tuple[str, str]:
    group, version = api_version.rpartition("/")[::2]
    return group, version


def crd_kinds(crd: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(apiVersion, kind) of every version a CustomResourceDefinition document serves."""
    spec = crd.get("spec") or {}
    kind = (spec.get("names") or {}).get("kind", "")
    return [(f"{spec.get('group', '')}/{version.get('name', '')}", kind) for version in spec.get("versions") or []
            if isinstance(version, dict)]


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


# -- the run -----------------------------------------------------------------------

@dataclass
class Planned:
    """One document, resolved before any write: its API path, namespace, body and the object in the cluster."""

    doc: Dict[str, Any]
    ref: Optional[ResourceRef]
    namespace: Optional[str]
    body: Dict[str, Any]
    live: Optional[Dict[str, Any]] = None
    pending: bool = False  # its namespace or kind exists only once this run wrote it

    @property
    def label(self) -> str:
        return label_of(self.body, self.namespace)


class ManifestApplier:
    """Applies validated documents in order with one field manager, all checked before the first write.

    ``run`` first resolves every document (kind, namespace), reads what the cluster has, and has the API server
    dry-run every object that would be written; only when the whole set passes does it write.
    """

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
        # (kind, namespace, name) -> the object as read by this run, for objects it did not write (the rollout
        # wait's first round needs no read of its own for them).
        self.unchanged_live: Dict[Tuple[str, Optional[str], str], Dict[str, Any]] = {}

    def _namespace_of(self, doc: Dict[str, Any], ref: ResourceRef) -> Optional[str]:
        if not ref.namespaced:
            return None
        namespace = doc["metadata"].get("namespace") or self.namespace
        if not namespace:
            raise ValidationError(f"{doc['kind']} {doc['metadata']['name']} is namespaced but names no "
                                  "metadata.namespace, and the namespace option is not set")
        return namespace

    @staticmethod
    def _body(doc: Dict[str, Any], namespace: Optional[str]) -> Dict[str, Any]:
        if not namespace or doc["metadata"].get("namespace") == namespace:
            return doc
        return dict(doc, metadata=dict(doc["metadata"], namespace=namespace))

    # -- before any write ----------------------------------------------------------
    def resolve_all(self) -> List[Planned]:
        """Every document's kind and namespace (discovery reads only); every problem named at once."""
        planned: List[Planned] = []
        errors: List[str] = []
        for doc in self.docs:
            name = doc["metadata"]["name"]
            try:
                ref = self.kinds.resolve(doc["apiVersion"], doc["kind"])
                namespace = self._namespace_of(doc, ref)
            except ValidationError as exc:
                if not self.check_mode or "namespaced" in str(exc):
                    errors.append(f"{doc['kind']} {name}: {exc}" if "no kind" in str(exc) else str(exc))
                    continue
                # Check mode: the kind may come from a CRD another task of the run installs.
                self.warnings.append(f"check mode: {doc['kind']} ({doc['apiVersion']}) is not served yet, so "
                                     f"{name} is reported as created without a dry run")
                namespace = doc["metadata"].get("namespace") or self.namespace
                planned.append(Planned(doc, None, namespace, self._body(doc, namespace), pending=True))
                continue
            planned.append(Planned(doc, ref, namespace, self._body(doc, namespace)))
        if errors:
            raise ValidationError("; ".join(errors) + " (nothing was written)")
        return planned

    def read_all(self, planned: List[Planned]) -> None:
        """Read what the cluster has of every object whose namespace and kind exist; the others are pending.

        Namespaces and CustomResourceDefinitions: one GET each (a LIST of every CRD of a user's cluster may be
        megabytes). Every other object: one LIST per kind and namespace that holds LIST_AT_LEAST objects of the
        manifest, one GET per object otherwise, and one GET per object when the LIST is refused (a client allowed
        to get but not to list, for instance).
        """
        new_namespaces = set()
        new_kinds = set()
        for item in planned:
            if item.ref is None:
                continue
            if item.doc["kind"] == "Namespace":
                item.live = self.client.get(item.ref, item.doc["metadata"]["name"])
                if item.live is None:
                    new_namespaces.add(item.doc["metadata"]["name"])
            elif item.doc["kind"] == "CustomResourceDefinition":
                item.live = self.client.get(item.ref, item.doc["metadata"]["name"])
                if item.live is None:
                    new_kinds.update(crd_kinds(item.doc))
        groups: Dict[Tuple[ResourceRef, Optional[str]], List[Planned]] = {}
        for item in planned:
            if item.ref is None or item.doc["kind"] in ("Namespace", "CustomResourceDefinition"):
                continue
            item.pending = item.namespace in new_namespaces or (item.doc["apiVersion"], item.doc["kind"]) in new_kinds
            if not item.pending:
                groups.setdefault((item.ref, item.namespace), []).append(item)
        for (ref, namespace), items in groups.items():
            listed = self._list_group(ref, namespace, items) if len(items) >= LIST_AT_LEAST else None
            for item in items:
                name = item.doc["metadata"]["name"]
                item.live = listed.get(name) if listed is not None else self.client.get(ref, name, namespace)

    def _list_group(self, ref: ResourceRef, namespace: Optional[str],
                    items: List[Planned]) -> Optional[Dict[str, Dict[str, Any]]]:
        """Objects of one kind (in one namespace) by name, from one LIST; None when the LIST is refused."""
        try:
            listing = self.client.list(ref, namespace)
        except K8sError as exc:
            if exc.status in (403, 404, 405):
                return None
            raise
        # A LIST's items of built-in kinds carry no apiVersion and kind: the documents' are theirs.
        api_version, kind = items[0].doc["apiVersion"], items[0].doc["kind"]
        out: Dict[str, Dict[str, Any]] = {}
        for obj in (listing or {}).get("items") or []:
            name = (obj.get("metadata") or {}).get("name")
            if name:
                obj.setdefault("apiVersion", api_version)
                obj.setdefault("kind", kind)
                out[name] = obj
        return out

    def dry_run_all(self, planned: List[Planned]) -> None:
        """Server-side dry run of every object that would be written; the first refusal fails the run."""
        for item in planned:
            if item.ref is None or item.pending or already_applied(item.body, item.live, self.field_manager):
                continue
            try:
                self.client.apply(item.ref, item.body, self.field_manager, item.namespace, dry_run=True,
                                  force=self.force)
            except K8sError as exc:
                message = f"{item.label}: the API server refuses it in a dry run (nothing was written): {exc}"
                if exc.status in (400, 422):
                    raise ValidationError(message) from exc
                raise K8sError(message, exc.status, exc.reason, exc.body) from exc

    # -- the writes ------------------------------------------------------------------
    def apply_one(self, item: Planned) -> ObjectResult:
        """Apply one planned document unless the cluster already has it; return what happened."""
        name = item.doc["metadata"]["name"]
        if item.ref is None:
            return ObjectResult(item.doc["kind"], name, item.namespace, CREATED)
        if item.pending and self.check_mode:
            done = Applied(CREATED, None, item.body)
        else:
            try:
                done = apply_object(self.client, item.ref, item.body, item.live, self.field_manager,
                                    item.namespace, check_mode=self.check_mode, force=self.force)
            except K8sError as exc:
                if not (self.check_mode and item.live is None and exc.status == 404):
                    raise
                # Check mode: its namespace comes from another task of the run.
                self.warnings.append(f"check mode: {item.label} cannot be dry-run ({exc}); reported as created")
                done = Applied(CREATED, None, item.body)
        if not done.changed:
            if item.live is not None:
                self.unchanged_live[(item.doc["kind"], item.namespace, name)] = item.live
            return ObjectResult(item.doc["kind"], name, item.namespace, UNCHANGED)
        if self.want_diff:
            self.diffs.append(done.diff(item.label))
        return ObjectResult(item.doc["kind"], name, item.namespace, done.action, done.changed_paths)

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
        what = f"CustomResourceDefinitions {', '.join(names)} to be Established"
        try:
            # Not bounded(): a CRD of a release manifest is megabytes, and one GET of it may take long on a
            # loaded API server; each GET keeps the client's request timeout instead.
            wait_for(established, self.crd_timeout, interval=0.5, what=what, **kwargs)
        except WaitTimeout as exc:
            raise K8sError(str(exc)) from exc

    def run(self) -> Dict[str, Any]:
        """Check the whole set, then apply every document; CRDs written here are Established before their objects."""
        planned = self.resolve_all()
        self.read_all(planned)
        if not self.check_mode:  # check mode's applies are dry runs already
            self.dry_run_all(planned)
        results: List[ObjectResult] = []
        crds_written: List[str] = []
        for item in planned:
            if item.doc["kind"] != "CustomResourceDefinition" and crds_written:
                if not self.check_mode:
                    self.wait_established(crds_written)
                crds_written = []
            result = self.apply_one(item)
            results.append(result)
            if item.doc["kind"] == "CustomResourceDefinition" and result.action != "unchanged":
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
