# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""``argocd_sync_waves``: verify an App-of-Apps wave by wave, from a LIST and a WATCH per kind.

Requests: one GET of argocd-cm (and of argocd-cmd-params-cm when the tree has
ApplicationSets and argocd-cm a gating check for them), one LIST of Applications and a WATCH per
stream (resumed when the server ends it); once an ApplicationSet is a member,
one LIST of ApplicationSets and their WATCH too; a merge PATCH per hard
refresh; GETs/LISTs for the diagnosis only after a failure.  Never a GET per
app while waiting.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.app_watch import (
    ApplicationWatch,
    CountingClient,
    ResourceWatch,
    WatchGroup,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import (
    REFRESH_ANNOTATION,
    AppKey,
    display_name,
    is_set,
    parse_time,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.diagnose import diagnose_app
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.health_check import (
    GATING,
    SENTENCES,
    SET_GATING,
    SET_SENTENCES,
    applicationset_gating,
    read_health_check,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.report import (
    failing_apps_text,
    format_table,
    junit_xml,
    wave_entries,
    write_file,
)
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.waves import Outcome, WaveTracker, _utcnow
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure, ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import APPLICATIONS, APPLICATIONSETS, bounded
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import seconds_error

MAX_DIAGNOSED_APPS = 5
_LABEL_SELECTOR_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=!,() ")


def validate(params: Dict[str, Any]) -> None:
    """Checks the argument spec cannot express; messages name the option."""
    if params.get("slice_seconds") is not None and seconds_error(params["slice_seconds"]):
        raise ValidationError(f"slice_seconds {seconds_error(params['slice_seconds'])}")
    progress = params.get("progress")
    if progress is not None and not (isinstance(progress, dict) and parse_time(progress.get("started_at"))):
        raise ValidationError("progress must be the 'progress' value an earlier run of this module returned")
    if not params.get("root_app") and not params.get("label_selector"):
        raise ValidationError("one of root_app or label_selector is required")
    if not (params.get("namespace") or "").strip():
        raise ValidationError("namespace must not be empty")
    for opt in ("wave_timeout", "timeout"):
        if seconds_error(params.get(opt)):
            raise ValidationError(f"{opt} {seconds_error(params.get(opt))}")
    if params["wave_timeout"] > params["timeout"]:
        raise ValidationError(f"wave_timeout ({params['wave_timeout']}) must not exceed timeout "
                              f"({params['timeout']})")
    selector = params.get("label_selector")
    if selector is not None and (not selector.strip() or set(selector) - _LABEL_SELECTOR_CHARS):
        raise ValidationError(f"label_selector {selector!r} is not a Kubernetes label selector")
    if params.get("target_revision") is not None and not params["target_revision"].strip():
        raise ValidationError("target_revision must not be empty when given")
    for opt in ("junit_file", "report_file"):
        path = params.get(opt)
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path)) if path.strip() else ""
        if not path.strip() or os.path.isdir(path) or not os.path.isdir(folder):
            raise ValidationError(f"{opt} {path!r}: must be a file path in an existing directory")
    for name in params.get("expected_apps") or []:
        if not name or name.count("/") > 1:
            raise ValidationError(f"expected_apps: {name!r} is not an app name or namespace/name")


def verify_sync_waves(client: Any, params: Dict[str, Any], check_mode: bool = False,
                      clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                      wall_clock: Callable[[], datetime] = _utcnow, validated: bool = False) -> Dict[str, Any]:
    """Run the verification and return the module result; raise ModuleFailure (with the report) on failure.

    Every input is validated before the first request; every request then ends within the timeout (or the
    slice) plus a few seconds, even when the API server stops answering.  ``validated``: the caller ran
    :func:`validate` already.
    """
    if not validated:
        validate(params)
    limit = min(params["timeout"], params.get("slice_seconds") or params["timeout"])
    what = f"the sync waves of {params.get('root_app') or params.get('label_selector')}"
    with bounded(client, limit, what):
        return _verify(client, params, check_mode, clock, sleep, wall_clock)


def _verify(client: Any, params: Dict[str, Any], check_mode: bool, clock: Callable[[], float],
            sleep: Callable[[float], None], wall_clock: Callable[[], datetime]) -> Dict[str, Any]:
    counting = CountingClient(client)
    ns = params["namespace"]
    warnings: List[str] = []

    health_check, warning, argocd_cm = read_health_check(counting, ns)
    if warning:
        if params.get("require_health_check") and health_check != GATING:
            raise ModuleFailure(f"require_health_check: {warning}", {
                "changed": False, "health_check": health_check, "api_requests": counting.requests})
        warnings.append(warning)

    apps = ApplicationWatch(counting, ns, params.get("label_selector"), clock=clock, sleep=sleep)
    sets = ResourceWatch(counting, ns, None, clock=clock, sleep=sleep, ref=APPLICATIONSETS)
    group = WatchGroup([apps])
    tracker = WaveTracker(
        ns, params.get("root_app"), expected_apps=tuple(params.get("expected_apps") or ()),
        target_revision=params.get("target_revision"), wave_timeout=params["wave_timeout"],
        timeout=params["timeout"], hard_refresh_on_error=bool(params.get("hard_refresh_on_error")) and not check_mode,
        check_root_revision=params.get("check_root_revision", True), clock=clock, wall_clock=wall_clock)
    if params.get("progress"):
        tracker.resume(params["progress"])
    apps.relist()
    _check_expected_in_selector(counting, params, apps.index)
    outcome = _judge(tracker, apps, sets, group)
    refreshed: List[str] = []
    this_slice = Deadline(params.get("slice_seconds"), clock)

    if not check_mode:
        while outcome.phase == "waiting":
            for key in outcome.refresh:
                _hard_refresh(counting, key, tracker)
                refreshed.append(display_name(key, ns))
            left = tracker.remaining()
            if left <= 0:
                outcome = tracker.timed_out()
                break
            if this_slice.expired():
                break                       # a slice ends waiting: the next run goes on from `progress`
            if group.wait_for_change(min(left, this_slice.remaining())) or outcome.refresh:
                # Only what changed is judged again (after a re-LIST: everything).
                outcome = _judge(tracker, apps, sets, group)
    group.close()

    result: Dict[str, Any] = {
        "changed": bool(refreshed),
        "refreshed": refreshed,
        "health_check": health_check,
        "ordering_violations": list(tracker.violations),
        "watch": {"relists": apps.relists + sets.relists, "resumes": apps.resumes + sets.resumes,
                  "reconnects": apps.reconnects + sets.reconnects},
    }
    warnings.extend(tracker.notes)
    if tracker.violations:
        warnings.extend(tracker.violations)
    sentences = [SENTENCES[health_check]]
    set_check = None
    if tracker.wants_sets:
        # Only a tree with ApplicationSets needs to know whether Argo CD gates on their apps.
        set_check, set_warning = applicationset_gating(counting, ns, argocd_cm)
        sentences.append(SET_SENTENCES[set_check])
        if set_warning:
            warnings.append(set_warning)
    result["applicationset_health_check"] = set_check
    diagnoses: Dict[str, str] = {}
    failure = ""
    if outcome.phase == "failed" and not check_mode:
        failure, diagnoses = _failure_message(counting, outcome, apps, group, tracker, health_check, set_check)
    elif check_mode and outcome.phase != "done":
        result["msg"] = f"check mode, current state: {outcome.message}"
    elif outcome.phase == "waiting":
        result["msg"] = f"still waiting after {tracker.elapsed():.0f}s: {outcome.message}"
    else:
        result["msg"] = outcome.message
    result["done"] = outcome.phase != "waiting" or check_mode
    result["progress"] = tracker.progress()
    waves = wave_entries(tracker)
    result.update({
        "waves": waves,
        "report": format_table(waves) + sentences,
        "elapsed": round(tracker.elapsed(), 3),
        "api_requests": counting.requests,
        "warnings": warnings,
    })
    if params.get("junit_file"):
        write_file(params["junit_file"], junit_xml(
            waves, diagnoses, name=f"argocd sync waves of {params.get('root_app') or params.get('label_selector')}",
            elapsed=tracker.elapsed(), notes=warnings))
    if params.get("report_file"):
        write_file(params["report_file"], json.dumps(dict(result, failed=bool(failure), msg=failure or result.get(
            "msg", "")), indent=2, sort_keys=True, default=str) + "\n")
    if failure:
        raise ModuleFailure(failure, result)
    return result


def _check_expected_in_selector(client: Any, params: Dict[str, Any], index: Dict[AppKey, Any]) -> None:
    """An ``expected_apps`` entry the selector's LIST lacks: one GET tells "outside the selector" from "not yet"."""
    selector = params.get("label_selector")
    if not selector:
        return
    ns = params["namespace"]
    outside = []
    for name in params.get("expected_apps") or []:
        key = tuple(name.split("/", 1)) if "/" in name else (ns, name)
        if key in index or key[0] != ns:
            continue
        obj = client.get(APPLICATIONS, key[1], key[0])
        if obj is not None:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"
            outside.append(f"{display_name(key, ns)} exists but does not match label_selector {selector!r} "
                           f"(its labels: {shown})")
    if outside:
        raise ModuleFailure("expected_apps: " + "; ".join(outside) + "; it would never pass: add the labels "
                            "to the app or drop it from expected_apps",
                            {"changed": False, "api_requests": getattr(client, "requests", None)})


def _judge(tracker: WaveTracker, apps: ResourceWatch, sets: ResourceWatch, group: WatchGroup) -> Outcome:
    """Judge what changed; start watching ApplicationSets the first time one is a member."""
    outcome = tracker.update(apps.index, apps.take_changed(), sets.index, sets.take_changed())
    if tracker.wants_sets and sets not in group.watches:
        sets.relist()
        group.add(sets)
        outcome = tracker.update(apps.index, None, sets.index, None)
        sets.take_changed()
    return outcome


def _hard_refresh(client: Any, key: AppKey, tracker: WaveTracker) -> None:
    patched = client.merge_patch(APPLICATIONS, key[1],
                                 {"metadata": {"annotations": {REFRESH_ANNOTATION: "hard"}}}, key[0])
    tracker.refresh_sent(key, ((patched or {}).get("metadata") or {}).get("resourceVersion", ""))


def _failure_message(client: Any, outcome: Outcome, apps: ResourceWatch, group: WatchGroup,
                     tracker: WaveTracker, health_check: str,
                     set_check: Optional[str] = None) -> Tuple[str, Dict[str, str]]:
    """The outcome, with the object-level diagnosis of the failing apps (costs a few requests).

    Also returns each failing member's own line (its verdict and diagnosis) by report name.
    """
    msg = outcome.message
    diagnoses = {}
    for key in [k for k in outcome.failing_apps if not is_set(k)][:MAX_DIAGNOSED_APPS]:
        diagnoses[key] = diagnose_app(client, apps.index.get(key), apps.index, tracker.namespace)
    detail = failing_apps_text(outcome.failing_apps, diagnoses, tracker.namespace)
    if detail:
        msg += f" || diagnosis: {detail}"
    if group.last_error:
        msg += f" || last API error: {group.last_error}"
    if tracker.violations:
        msg += " || " + "; ".join(tracker.violations)
    if health_check != GATING:
        msg += f" || health check in argocd-cm: {health_check} (Argo CD does not gate waves fully)"
    if set_check not in (None, SET_GATING):
        msg += f" || ApplicationSet check: {set_check} (Argo CD does not hold later waves behind generated apps)"
    lines: Dict[str, str] = {}
    for key in outcome.failing_apps:
        state = tracker.states.get(key)
        line = state.message if state is not None else ""
        if diagnoses.get(key):
            line += " - diagnosis: " + "; ".join(diagnoses[key])
        lines[display_name(key, tracker.namespace)] = line
    return msg, lines
