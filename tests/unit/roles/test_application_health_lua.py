"""The argocd role's Application health checks, run by a real Lua 5.1 interpreter.

Argo CD runs resource health customizations in gopher-lua (Lua 5.1) with the
resource in the global ``obj`` and expects a table with ``status`` and
``message`` back. lupa's Lua 5.1 runtime gives the same contract here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

lua51 = pytest.importorskip("lupa.lua51")

REPO_ROOT = Path(__file__).resolve().parents[3]
FILES = REPO_ROOT / "roles" / "argocd" / "files"
APPS: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "applications.yml").read_text(encoding="utf-8"))
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(runtime: Any, value: Any) -> Any:
    """Python data -> Lua tables the way Argo CD hands JSON to Lua (arrays 1-based)."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def run_check(script: str, app: dict[str, Any]) -> dict[str, str]:
    """Run a health script against one Application; return {status, message}."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    # Argo CD opens no os/io libraries for health scripts: make sure ours need none.
    runtime.execute("os = nil; io = nil; require = nil; dofile = nil; loadfile = nil")
    runtime.globals().obj = to_lua(runtime, app)
    source = (FILES / script).read_text(encoding="utf-8")
    result = runtime.execute(source)
    assert result is not None, f"{script} returned nothing"
    out = {k: result[k] for k in ("status", "message")}
    assert out["status"] in HEALTH_STATUSES, out
    assert isinstance(out["message"], str), out
    return out


def gating(name: str) -> dict[str, str]:
    return run_check("application-health-gating.lua", APPS[name])


def documented(name: str) -> dict[str, str]:
    return run_check("application-health-documented.lua", APPS[name])


@pytest.mark.parametrize(("fixture", "status", "in_message"), [
    ("synced_healthy", "Healthy", ""),
    ("synced_progressing", "Progressing", "Waiting for 1 pods"),
    ("synced_degraded", "Degraded", "progress deadline"),
    ("outofsync_healthy", "Progressing", "Sync status is OutOfSync"),
    ("unknown_comparison_error", "Degraded", "ComparisonError: Failed to load target state"),
    ("invalid_spec_error", "Degraded", "InvalidSpecError: Application referencing project nowhere"),
    ("missing_status", "Progressing", "report a status"),
    ("sync_without_status", "Progressing", "Sync status is Unknown"),
    ("running_operation", "Progressing", "waiting for healthy state of apps/StatefulSet/postgres"),
    ("running_operation_status_only", "Progressing", "Operation in progress"),
    ("failed_operation", "Degraded", "Last operation Failed: one or more objects failed to apply"),
    ("failed_operation_condition", "Degraded", "OperationFailed: sync to 9a8b7c6 failed"),
    ("error_operation", "Degraded", "Last operation Error"),
    ("warning_condition_only", "Healthy", ""),
])
def test_gating_check(fixture: str, status: str, in_message: str) -> None:
    result = gating(fixture)
    assert result["status"] == status, result
    assert in_message in result["message"], result


def test_gating_comparison_error_wins_over_reported_health() -> None:
    """The case seen on v3.6.1: sync Unknown + health Healthy must not pass a wave."""
    app = APPS["unknown_comparison_error"]
    assert app["status"]["health"]["status"] == "Healthy"
    assert gating("unknown_comparison_error")["status"] == "Degraded"
    assert documented("unknown_comparison_error")["status"] == "Healthy"


def test_gating_error_condition_beats_running_operation() -> None:
    app = dict(APPS["running_operation"])
    app["status"] = dict(app["status"], conditions=APPS["unknown_comparison_error"]["status"]["conditions"])
    assert run_check("application-health-gating.lua", app)["status"] == "Degraded"


def test_gating_requested_operation_without_state_is_progressing() -> None:
    app = dict(APPS["synced_healthy"], operation={"sync": {"revision": "HEAD"}})
    assert run_check("application-health-gating.lua", app)["status"] == "Progressing"


def test_gating_synced_without_health_is_progressing() -> None:
    app = {"status": {"sync": {"status": "Synced"}}}
    assert run_check("application-health-gating.lua", app)["status"] == "Progressing"


@pytest.mark.parametrize(("fixture", "status"), [
    ("synced_healthy", "Healthy"),
    ("synced_progressing", "Progressing"),
    ("outofsync_healthy", "Healthy"),
    ("unknown_comparison_error", "Healthy"),
    ("invalid_spec_error", "Healthy"),
    ("missing_status", "Progressing"),
    ("running_operation", "Healthy"),
    ("failed_operation", "Missing"),
])
def test_documented_check_only_copies_health(fixture: str, status: str) -> None:
    """Argo CD's documented check: what it misses is why the role defaults to gating."""
    assert documented(fixture)["status"] == status


@pytest.mark.parametrize("script", ["application-health-gating.lua", "application-health-documented.lua"])
def test_scripts_are_lua51_and_use_no_libraries(script: str) -> None:
    source = (FILES / script).read_text(encoding="utf-8")
    for forbidden in ("os.", "io.", "require", "goto ", "//"):
        code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
        assert forbidden not in code, f"{script} uses {forbidden!r}"
