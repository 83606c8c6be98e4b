# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Which apps and ApplicationSets the verifier judges, and in which wave.

The members of a root App-of-Apps are:

- the Applications and ApplicationSets of the root's ``status.resources``
  (Missing ones too), in the wave given there: the wave Argo CD orders the
  root's sync by, taken from the root's desired manifest, not from a live
  annotation that another owner may rewrite;
- every Application an ApplicationSet member generates (controller
  ownerReference to its uid, or listed in its ``status.resources``), in the
  ApplicationSet's wave: Argo CD orders the root by the ApplicationSet alone;
- Applications whose tracking annotation or instance label names the root;
- ``expected_apps``.

With a label selector instead of a root, every Application of the watched
copy is a member, in the wave of its own annotation.  Pure: plain dicts in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    WAVE_ANNOTATION,
    AppKey,
    child_app_keys,
    child_set_keys,
    display_name,
    is_set,
    meta,
    stale_comparison,
    tracks_to,
    wave_of,
    wave_problem,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.appsets import listed_apps, owner_set, uid_of

Index = Mapping[AppKey, Mapping]


@dataclass
class Children:
    """The result of one discovery pass."""

    members: Dict[AppKey, int] = field(default_factory=dict)        # apps and ApplicationSets -> wave
    owners: Dict[AppKey, AppKey] = field(default_factory=dict)      # generated app -> its set's key
    generated: Dict[AppKey, FrozenSet[AppKey]] = field(default_factory=dict)   # set key -> its apps
    listed: Dict[AppKey, FrozenSet[AppKey]] = field(default_factory=dict)      # set key -> status.resources
    set_uids: Dict[str, AppKey] = field(default_factory=dict)       # uid -> set key (member sets)
    root_children: Dict[AppKey, int] = field(default_factory=dict)  # the root's status.resources entries
    pending: Optional[str] = None                                   # why the list may be incomplete
    notes: List[str] = field(default_factory=list)                  # two owners, template waves


def apps_by_owner(apps: Index) -> Dict[str, Set[AppKey]]:
    """ApplicationSet uid -> the Applications it owns."""
    out: Dict[str, Set[AppKey]] = {}
    for key, obj in apps.items():
        owner = owner_set(obj)
        if owner and owner[1]:
            out.setdefault(owner[1], set()).add(key)
    return out


def set_of(sets: Index, skey: AppKey) -> Optional[Mapping]:
    """The ApplicationSet object for a set key, from the watched copy."""
    return sets.get(skey[:2])


def generated_by(skey: AppKey, sets: Index, owned: Mapping[str, Set[AppKey]]) -> FrozenSet[AppKey]:
    """The apps an ApplicationSet generates: the ones it lists, and the ones that name it as owner."""
    obj = set_of(sets, skey)
    if obj is None:
        return frozenset()
    return frozenset(listed_apps(obj)) | frozenset(owned.get(uid_of(obj), ()))


def _sync_pending(root: Mapping) -> bool:
    """The root is OutOfSync with automated sync on: Argo CD is about to apply (or is applying) it."""
    status = root.get("status") or {}
    automated = ((root.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return automated is not None and ((status.get("sync") or {}).get("status")) == "OutOfSync"


class ChildDiscovery:
    """Finds the members of a root app (or of a label selector) and their waves."""

    def __init__(self, namespace: str, root_key: Optional[AppKey], expected: List[AppKey]):
        self.namespace = namespace
        self.root_key = root_key
        self.expected: Set[AppKey] = set(expected)

    def discover(self, apps: Index, sets: Index) -> Children:
        """Members and their waves; ``pending`` says why the list may be incomplete."""
        found = Children()
        if not self.root_key:
            found.members = {key: wave_of(obj) for key, obj in apps.items()}
            for key in self.expected:
                found.members.setdefault(key, 0)
            self._note_bad_waves(found, apps)
            return found
        root = apps.get(self.root_key)
        if root is None:
            found.pending = f"root app {self.root_key[1]} does not exist in namespace {self.root_key[0]}"
            return found
        found.root_children = dict(child_app_keys(root))
        found.root_children.update(child_set_keys(root))
        found.members = dict(found.root_children)
        owned = apps_by_owner(apps)
        for skey, swave in sorted(found.root_children.items()):
            if is_set(skey):
                self._add_generated(found, skey, swave, apps, sets, owned)
        for key, obj in apps.items():
            if key != self.root_key and key not in found.members and tracks_to(obj, self.root_key):
                found.members[key] = wave_of(obj)
        for key in self.expected:
            if key not in found.members:
                found.members[key] = wave_of(apps[key]) if key in apps else 0
        self._note_bad_waves(found, apps)
        stale = stale_comparison(root) if (root.get("status") or {}).get("sync") else "not compared yet"
        if stale:
            found.pending = f"root app {self.root_key[1]}: {stale}; its child list may be incomplete"
        elif _sync_pending(root):
            # e.g. a new commit changed an ApplicationSet's elements: until the root's automated sync has
            # applied it, the set (and so the verifier) still sees the old list
            found.pending = (f"root app {self.root_key[1]}: OutOfSync, its automated sync has not applied "
                             "the compared revision yet; its children may still change")
        return found

    @staticmethod
    def _note_bad_waves(found: Children, apps: Index) -> None:
        for key in sorted(k for k in found.members if k in apps):
            problem = wave_problem(apps[key])
            if problem:
                found.notes.append(problem)

    def _add_generated(self, found: Children, skey: AppKey, swave: int, apps: Index, sets: Index,
                       owned: Mapping[str, Set[AppKey]]) -> None:
        obj = set_of(sets, skey)
        if obj is not None and uid_of(obj):
            found.set_uids[uid_of(obj)] = skey
        gen = generated_by(skey, sets, owned)
        found.generated[skey] = gen
        found.listed[skey] = frozenset(listed_apps(obj))
        set_name = display_name(skey, self.namespace)
        for key in sorted(gen):
            app_name = display_name(key, self.namespace)
            if key in found.root_children:
                found.notes.append(
                    f"app {app_name} has two owners: root app {self.root_key[1] if self.root_key else '?'} lists "
                    f"it (wave {found.root_children[key]}) and ApplicationSet {set_name} generates it (wave "
                    f"{swave}); they rewrite it in turn. Judged in wave {found.root_children[key]}")
                found.owners.setdefault(key, skey)
                continue
            if key in found.owners:
                found.notes.append(f"app {app_name} is generated by two ApplicationSets, "
                                   f"{display_name(found.owners[key], self.namespace)} and {set_name}")
                continue
            found.owners[key] = skey
            found.members[key] = swave
            live = apps.get(key)
            # only an annotation the template sets can disagree (none: the app has no wave of its own)
            if live is not None and WAVE_ANNOTATION in (meta(live).get("annotations") or {}):
                own = wave_of(live)
                if own != swave:
                    found.notes.append(
                        f"app {app_name}: its sync-wave annotation says {own}, but Argo CD orders it by its "
                        f"ApplicationSet {set_name}'s wave {swave}; judged in wave {swave}")

    def membership(self, key: AppKey, apps: Index, sets: Index,
                   last: Children) -> Tuple[Optional[int], Optional[AppKey]]:
        """(wave, owner) of one app by the last pass's root and sets, to tell a change of membership."""
        obj = apps.get(key)
        if not self.root_key:
            if obj is None and key not in self.expected:
                return None, None
            return (wave_of(obj) if obj is not None else 0), None
        if key in last.root_children:
            return last.root_children[key], last.owners.get(key)
        owner = owner_set(obj) if obj is not None else None
        skey = last.set_uids.get(owner[1]) if owner and owner[1] else None
        if skey is None:
            skey = next((s for s, gen in last.generated.items() if key in gen), None)
        if skey is not None and skey in last.members:
            return last.members[skey], skey
        if obj is not None and key != self.root_key and tracks_to(obj, self.root_key):
            return wave_of(obj), None
        if key in self.expected:
            return (wave_of(obj) if obj is not None else 0), None
        return None, None

    def set_changed_shape(self, skey: AppKey, apps: Index, sets: Index, last: Children) -> bool:
        """Whether an ApplicationSet's change can change the members (its apps or its uid)."""
        if skey not in last.members:
            return False
        obj = set_of(sets, skey)
        known_uid = next((u for u, k in last.set_uids.items() if k == skey), "")
        if uid_of(obj) != known_uid:
            return True
        return frozenset(listed_apps(obj)) != last.listed.get(skey, frozenset())
