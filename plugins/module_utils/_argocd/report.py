# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""The per-wave result and the aligned table a playbook prints."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET  # nosec B405 - builds XML, never parses untrusted input
from typing import Any, Dict, List, Mapping, Sequence

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import AppKey, display_name, is_set
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.waves import iso

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


def _label(app: Mapping[str, Any], generated: str) -> str:
    """An app's name in a report: ``NAME (ApplicationSet)`` for a set, ``generated`` for a generated app."""
    if app.get("kind", "Application") != "Application":
        return f"{app['name']} ({app['kind']})"
    if app.get("owner"):
        return generated.format(owner=app["owner"], name=app["name"])
    return app["name"]


def _row_name(app: Mapping[str, Any]) -> str:
    return _label(app, "  {name}")


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


def junit_xml(waves: Sequence[Mapping[str, Any]], diagnoses: Mapping[str, str], *, name: str = "argocd sync waves",
              elapsed: float = 0.0, notes: Sequence[str] = ()) -> str:
    """The wave report as JUnit XML: a testsuite per wave, a testcase per app (sets and generated apps too).

    A testcase's time is its seconds to healthy; an app that is not ready is a failure whose message is its
    diagnosis line (or, without one, why it is not ready). ``notes`` (warnings, ordering) go to system-out.
    """
    root = ET.Element("testsuites", name=name, time=f"{elapsed:.3f}")
    total = failed = 0
    for wave in waves:
        apps = wave["apps"]
        bad = [a for a in apps if not a["ready"]]
        suite = ET.SubElement(root, "testsuite", name=f"wave {wave['wave']}", tests=str(len(apps)),
                              failures=str(len(bad)), errors="0", skipped="0",
                              time=f"{wave['seconds_to_healthy'] or 0.0:.3f}")
        for app in apps:
            case = ET.SubElement(suite, "testcase", classname=f"wave {wave['wave']}", name=_case_name(app),
                                 time=f"{app['seconds_to_healthy'] or 0.0:.3f}")
            if not app["ready"]:
                why = diagnoses.get(app["name"]) or app["message"] or "not ready"
                failure = ET.SubElement(case, "failure", message=why, type=f"{app['sync']}/{app['health']}")
                failure.text = why
        total += len(apps)
        failed += len(bad)
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    if notes:
        ET.SubElement(root, "system-out").text = "\n".join(notes)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case_name(app: Mapping[str, Any]) -> str:
    return _label(app, "{owner}/{name}")


def write_file(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a report)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
