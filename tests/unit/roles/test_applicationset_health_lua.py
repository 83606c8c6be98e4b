"""The argocd role's ApplicationSet health check (gating), run by a real Lua 5.1 interpreter.

Objects in the shape Argo CD v3.6.1's applicationset-controller writes them
(with progressive syncs on, status.resources follows its apps' sync and health).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.roles.test_application_health_lua import run_check

pytest.importorskip("lupa.lua51")

SCRIPT = "applicationset-health-gating.lua"
UP_TO_DATE = [
    {"type": "ErrorOccurred", "status": "False", "reason": "ApplicationSetUpToDate",
     "message": "All applications have been generated successfully"},
    {"type": "ParametersGenerated", "status": "True", "reason": "ParametersGenerated",
     "message": "Successfully generated parameters for all Applications"},
    {"type": "ResourcesUpToDate", "status": "True", "reason": "ApplicationSetUpToDate",
     "message": "All applications have been generated successfully"},
]


def appset(apps: dict[str, tuple[str, str | None]], elements: int | None = None, **status: Any) -> dict:
    """A set listing ``apps`` (name -> (sync, health)) in status.resources."""
    names = list(apps)
    resources = []
    for name, (sync, health) in apps.items():
        res: dict[str, Any] = {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application",
                               "namespace": "argocd", "name": name, "status": sync}
        if health is not None:
            res["health"] = {"status": health}
        resources.append(res)
    count = len(names) if elements is None else elements
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": "apis", "namespace": "argocd"},
        "spec": {"goTemplate": True,
                 "generators": [{"list": {"elements": [{"svc": str(i)} for i in range(count)]}}]},
        "status": {"conditions": copy.deepcopy(UP_TO_DATE), "resources": resources,
                   "resourcesCount": len(names), **status},
    }


def check(obj: dict) -> dict[str, str]:
    return run_check(SCRIPT, obj)


def test_every_app_synced_and_healthy_is_healthy():
    out = check(appset({"api-auth": ("Synced", "Healthy"), "api-scan": ("Synced", "Healthy")}))
    assert out == {"status": "Healthy", "message": "2 Applications Synced and Healthy"}


def test_no_status_yet_is_progressing():
    obj = appset({})
    del obj["status"]
    assert check(obj)["status"] == "Progressing"


@pytest.mark.parametrize(("sync", "health"), [
    ("Unknown", "Healthy"),         # cannot render: ComparisonError, as Argo CD reports it
    ("OutOfSync", "Missing"),       # created, not synced yet
    ("Synced", "Progressing"),      # a workload rolling out
    ("Synced", None),               # listed before its first health assessment
])
def test_an_app_not_synced_and_healthy_holds_the_set(sync, health):
    out = check(appset({"api-auth": ("Synced", "Healthy"), "api-scan": (sync, health)}))
    assert out["status"] == "Progressing" and out["message"].startswith("Application api-scan is "), out


def test_error_occurred_is_degraded_with_the_message():
    obj = appset({})
    obj["status"]["conditions"][0] = {"type": "ErrorOccurred", "status": "True",
                                      "reason": "ApplicationGenerationFromParamsError",
                                      "message": "failed to execute go template: map has no entry for key"}
    out = check(obj)
    assert out["status"] == "Degraded"
    assert out["message"] == ("ErrorOccurred (ApplicationGenerationFromParamsError): failed to execute go template: "
                              "map has no entry for key")


def test_resources_not_up_to_date_is_degraded():
    obj = appset({"api-auth": ("Synced", "Healthy")})
    obj["status"]["conditions"][2].update(status="False", message="some error")
    assert check(obj)["status"] == "Degraded"


def test_an_element_not_generated_yet_holds_the_set():
    out = check(appset({"api-auth": ("Synced", "Healthy")}, elements=2))
    assert out == {"status": "Progressing", "message": "1 of 2 Applications generated"}


def test_progressive_rollout_and_application_status_hold_the_set():
    obj = appset({"api-auth": ("Synced", "Healthy")}, applicationStatus=[
        {"application": "api-auth", "status": "Waiting", "message": "Application is out of date", "step": "1"}])
    assert check(obj) == {"status": "Progressing",
                          "message": "Application api-auth is Waiting: Application is out of date"}
    obj = appset({"api-auth": ("Synced", "Healthy")})
    obj["status"]["conditions"].append({"type": "RolloutProgressing", "status": "True",
                                        "reason": "ApplicationSetModified", "message": "step 1"})
    assert check(obj)["status"] == "Progressing"
