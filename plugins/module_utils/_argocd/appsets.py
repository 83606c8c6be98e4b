# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Reading Argo CD ApplicationSet objects: what they generate, and a verdict on each.

Pure functions over plain dicts, like ``applications``.  An ApplicationSet
passes when the applicationset-controller has reconciled it without error
(no ``ErrorOccurred=True``, no ``ResourcesUpToDate=False``), no progressive
rollout is under way, and every Application it lists in ``status.resources``
(and as many as ``status.resourcesCount`` says) exists.  Its Applications are
judged one by one like any other child, in the ApplicationSet's wave.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, List, Mapping, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    ERROR,
    OK,
    SET_KIND,
    WAIT,
    AppKey,
    AppState,
    meta,
    parse_time,
)

GENERATED = "Generated"


def owner_set(app: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """``(name, uid)`` of the ApplicationSet that owns an Application, or None."""
    refs = meta(app).get("ownerReferences") or []
    owners = [r for r in refs if _is_set_ref(r)]
    owners.sort(key=lambda r: not r.get("controller"))      # the controller reference first
    if not owners:
        return None
    return str(owners[0].get("name", "")), str(owners[0].get("uid", ""))


def _is_set_ref(ref: Mapping[str, Any]) -> bool:
    return ref.get("kind") == SET_KIND and str(ref.get("apiVersion", "argoproj.io/")).startswith("argoproj.io/")


def uid_of(obj: Optional[Mapping[str, Any]]) -> str:
    return str(meta(obj).get("uid", "")) if obj else ""


def listed_apps(appset: Optional[Mapping[str, Any]]) -> List[AppKey]:
    """The Applications an ApplicationSet lists in ``status.resources`` (created or not)."""
    if not appset:
        return []
    ns = meta(appset).get("namespace", "")
    out = []
    for res in (appset.get("status") or {}).get("resources") or []:
        if res.get("kind", "Application") == "Application" and res.get("name"):
            out.append((res.get("namespace") or ns, res["name"]))
    return out


def declared_elements(appset: Mapping[str, Any]) -> Optional[int]:
    """How many apps a set's generators declare, when that can be read from its spec alone, else None.

    Only a set whose every generator is a plain list generator (static ``elements``, no ``elementsYaml``,
    no selector) says it: one app per element. The count tells a set that has not yet acted on a new
    commit (an element added) from one that is done; ApplicationSets carry no observedGeneration.
    """
    generators = (appset.get("spec") or {}).get("generators") or []
    total = 0
    for gen in generators:
        lst = gen.get("list") if isinstance(gen, dict) and set(gen) == {"list"} else None
        if not isinstance(lst, dict) or lst.get("elementsYaml") or gen.get("selector") or lst.get("selector"):
            return None
        total += len(lst.get("elements") or [])
    return total if generators else None


def spec_written_at(appset: Optional[Mapping[str, Any]]) -> Optional[datetime]:
    """Since when a list-generator set has declared the apps it declares now, else None.

    The last write of anything but its status (``metadata.managedFields`` entries without
    ``subresource: status``; the creation time when there are none). Only for sets whose
    :func:`declared_elements` can be read: their elements change only with their spec, so every
    app they generate and that was created later was expected, and missing, from that moment.
    Other generators (git, cluster, ...) produce new elements without a spec change: None.
    """
    if not appset or declared_elements(appset) is None:
        return None
    md = meta(appset)
    times = [parse_time(mf.get("time")) for mf in md.get("managedFields") or []
             if isinstance(mf, Mapping) and mf.get("subresource") != "status"]
    found = [t for t in times if t is not None]
    return max(found) if found else parse_time(md.get("creationTimestamp"))


def _conditions(appset: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in (appset.get("status") or {}).get("conditions") or []}


def _text(cond: Mapping[str, Any]) -> str:
    reason = f" ({cond['reason']})" if cond.get("reason") else ""
    return f"{cond.get('type')}{reason}: {cond.get('message', '')}".rstrip(": ")


def rollout_step(appset: Mapping[str, Any]) -> str:
    """The progressive-sync step under way ("step 2: 1 app(s) Progressing"), or ""."""
    status = (appset.get("status") or {}).get("applicationStatus") or []
    busy = [s for s in status if s.get("status") in ("Waiting", "Pending", "Progressing")]
    if not busy:
        return ""
    step = min(str(s.get("step", "")) for s in busy)
    return f"step {step}: " + ", ".join(f"{s.get('application')} {s.get('status')}" for s in busy[:5])


def evaluate_set(appset: Optional[Mapping[str, Any]], key: AppKey, wave: int,
                 exists: Callable[[AppKey], bool], seen_before: bool = False) -> AppState:
    """Judge one ApplicationSet; ``exists`` says whether a listed Application exists yet."""
    state = AppState(key=key, wave=wave, kind=SET_KIND)
    if appset is None:
        state.exists = False
        state.sync = state.health = "Missing"
        state.reasons.append("deleted during the run" if seen_before else "not created yet")
        return state
    status = appset.get("status") or {}
    conds = _conditions(appset)
    errors: List[str] = []
    waits: List[str] = []
    if not status or not conds:
        waits.append("no status yet (the applicationset-controller has not reconciled it)")
    failed = conds.get("ErrorOccurred")
    if failed is not None and str(failed.get("status")) == "True":
        errors.append(_text(failed))
    stale = conds.get("ResourcesUpToDate")
    if stale is not None and str(stale.get("status")) == "False" and (
            failed is None or str(failed.get("status")) != "True" or stale.get("message") != failed.get("message")):
        errors.append(_text(stale))
    rolling = conds.get("RolloutProgressing")
    if rolling is not None and str(rolling.get("status")) == "True":
        step = rollout_step(appset)
        waits.append("progressive sync: " + (step or rolling.get("message", "")))
    listed = listed_apps(appset)
    missing = [k for k in listed if not exists(k)]
    count = status.get("resourcesCount")
    declared = declared_elements(appset)
    total = max(len(listed), count if isinstance(count, int) else 0)
    if declared is not None and declared > total and not errors:
        waits.append(f"its list generator declares {declared} elements, {total} apps generated so far "
                     "(the applicationset-controller has not acted on the set's current spec yet)")
    if missing:
        names = ", ".join(k[1] for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
        waits.append(f"{total - len(missing)} of {total} generated apps exist, waiting for {names}")
    elif total > len(listed):
        waits.append(f"status lists {len(listed)} of {total} generated apps")
    state.sync = "Error" if errors else (GENERATED if conds.get("ResourcesUpToDate", {}).get("status") == "True"
                                         else "Unknown")
    state.conditions = errors[:]
    if errors:
        state.verdict, state.health, state.reasons = ERROR, "Degraded", errors + waits
    elif waits:
        state.verdict, state.health, state.reasons = WAIT, "Progressing", waits
    else:
        state.verdict, state.health = OK, "Healthy"
    return state
