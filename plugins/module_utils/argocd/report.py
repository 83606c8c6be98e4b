# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The per-wave result and the aligned table a playbook prints."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from ansible_collections.ecoeco.gitops.plugins.module_utils.argocd.applications import AppKey, display_name, is_set
from ansible_collections.ecoeco.gitops.plugins.module_utils.argocd.waves import iso

COLUMNS = ("WAVE", "APP", "SYNC", "HEALTH", "SECONDS", "NOTE")
NOTE_WIDTH = 80


def _in_report_order(keys: Sequence[AppKey], states: Mapping[AppKey, Any]) -> List[AppKey]:
    """Plain apps by name, then each ApplicationSet followed by the apps it generated."""
    owned: Dict[str, List[AppKey]] = {}
    top: List[AppKey] = []
    sets = {k[1] for k in keys if is_set(k)}
    for key in keys:
        owner = getattr(states.get(key), "owner", "")
        if not is_set(key) and owner in sets:
            owned.setdefault(owner, []).append(key)
        else:
            top.append(key)
    out: List[AppKey] = []
    for key in top:
        out.append(key)
        if is_set(key):
            out.extend(owned.get(key[1], []))
    return out


def wave_entries(tracker: Any) -> List[Dict[str, Any]]:
    """The ``waves`` return value: one entry per wave, lowest first."""
    out = []
    for wave in sorted(tracker.waves):
        rec = tracker.waves[wave]
        apps = []
        for key in _in_report_order(rec.members, tracker.states):
            state = tracker.states[key]
            seconds = tracker.ok_at.get(key) if state.ok else None
            apps.append({
                "name": display_name(key, tracker.namespace),
                "namespace": key[0],
                "kind": state.kind,
                "owner": state.owner or None,
                "sync": state.sync,
                "health": state.health,
                "operation": state.operation,
                "revision": state.revision,
                "ready": state.ok,
                "seconds_to_healthy": None if seconds is None else round(seconds, 3),
                "message": state.message,
            })
        healthy = rec.completed is not None
        out.append({
            "wave": wave,
            "apps": apps,
            "healthy": healthy,
            "seconds_to_healthy": round(rec.completed - tracker.start, 3) if healthy else None,
            "detected_at": iso(rec.detected_at) if healthy else None,
        })
    return out


def _row_name(app: Mapping[str, Any]) -> str:
    if app.get("kind", "Application") != "Application":
        return f"{app['name']} ({app['kind']})"
    if app.get("owner"):
        return f"  {app['name']}"
    return app["name"]


def _short(text: str) -> str:
    return text if len(text) <= NOTE_WIDTH else text[:NOTE_WIDTH - 3] + "..."


def format_table(waves: Sequence[Mapping[str, Any]]) -> List[str]:
    """``WAVE APP SYNC HEALTH SECONDS NOTE`` as aligned lines (NOTE only for apps not ready)."""
    rows = [COLUMNS]
    for wave in waves:
        for app in wave["apps"]:
            seconds = app["seconds_to_healthy"]
            rows.append((
                str(wave["wave"]), _row_name(app), app["sync"], app["health"],
                "-" if seconds is None else f"{seconds:.1f}",
                "" if app["ready"] else _short(app["message"]),
            ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [row[i].rjust(widths[i]) if i in (0, 4) else row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append(("  ".join(cells) + "  " + row[-1]).rstrip())
    return lines


def failing_apps_text(keys: Sequence[AppKey], diagnoses: Mapping[AppKey, List[str]], home_ns: str) -> str:
    """The diagnosis part of a failure message."""
    parts = []
    for key in keys:
        lines = diagnoses.get(key) or []
        if lines:
            parts.append(f"app {display_name(key, home_ns)}: " + "; ".join(lines))
    return " | ".join(parts)
