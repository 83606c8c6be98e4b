"""The per-wave report: entries and the aligned table."""

from __future__ import annotations

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.report import format_table, wave_entries
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.waves import WaveTracker
from tests.support.argocd_objects import application, child_entry, root_app
from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClock


def waves():
    return [
        {"wave": -1, "healthy": True, "seconds_to_healthy": 0.0, "detected_at": "x", "apps": [
            {"name": "infrastructure", "sync": "Synced", "health": "Healthy", "seconds_to_healthy": 0.0,
             "ready": True, "message": ""}]},
        {"wave": 10, "healthy": False, "seconds_to_healthy": None, "detected_at": None, "apps": [
            {"name": "db", "sync": "OutOfSync", "health": "Progressing", "seconds_to_healthy": None,
             "ready": False, "message": "sync OutOfSync; health Progressing: Waiting for 1 pods to be ready " * 3},
            {"name": "cache", "sync": "Synced", "health": "Healthy", "seconds_to_healthy": 12.345,
             "ready": True, "message": ""}]},
    ]


def test_table_is_aligned():
    lines = format_table(waves())
    assert lines[0] == "WAVE  APP             SYNC       HEALTH       SECONDS  NOTE"
    assert lines[1] == "  -1  infrastructure  Synced     Healthy          0.0"
    assert lines[2].startswith("  10  db              OutOfSync  Progressing        -  sync OutOfSync; health")
    assert lines[2].endswith("...") and len(lines[2].split("  -  ", 1)[1]) == 80
    assert lines[3] == "  10  cache           Synced     Healthy         12.3"
    cols = [line.index("SYNC") for line in lines[:1]] + [line.index("Synced") for line in (lines[1], lines[3])]
    assert len(set(cols)) == 1


def test_empty_report_has_a_header():
    assert format_table([]) == ["WAVE  APP  SYNC  HEALTH  SECONDS  NOTE"]


def test_entries_from_a_tracker():
    clock = FakeClock()
    t = WaveTracker("argocd", "root", clock=clock)
    t.update({("argocd", "root"): root_app([child_entry("ns", 0), child_entry("db", 1)]),
              ("argocd", "ns"): application("ns", 0),
              ("argocd", "db"): application("db", 1, sync="OutOfSync", health="Progressing")})
    entries = wave_entries(t)
    assert [e["wave"] for e in entries] == [0, 1]
    assert entries[0]["healthy"] is True and entries[0]["seconds_to_healthy"] == 0.0
    assert entries[0]["detected_at"].endswith("Z")
    db = entries[1]["apps"][0]
    assert db["name"] == "db" and db["ready"] is False and db["seconds_to_healthy"] is None
    assert db["operation"] == "Succeeded" and db["revision"]
    assert set(db) == {"name", "namespace", "kind", "owner", "sync", "health", "operation", "revision", "ready",
                       "seconds_to_healthy", "message"}
