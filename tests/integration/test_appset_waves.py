"""ApplicationSets in the waves, against a real kube-apiserver with Argo CD's CRDs.

As in test_sync_waves, no Argo CD controller runs: the test plays the
application controller and the applicationset-controller, creating
ApplicationSets, their generated Applications (controller ownerReference to
the set's real uid) and statuses through the API.  The module watches the
real API server, both kinds at once.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest

from tests.integration import test_sync_waves
from tests.integration.test_sync_waves import MODULE_UA, InProcess, wait_for_module_watch
from tests.support.argocd_objects import appset, child_entry, set_entry

pytestmark = pytest.mark.controlplane
# The fake Argo CD of test_sync_waves: Argo CD's CRDs, a namespace per test with argocd-cm.
argo_crds = test_sync_waves.argo_crds
argo = test_sync_waves.argo


class FakeSets:
    """Plays the applicationset-controller in the ``argo`` fixture's namespace."""

    def __init__(self, argo):
        self.argo = argo
        self.path = f"/apis/argoproj.io/v1alpha1/namespaces/{argo.ns}/applicationsets"
        self.uids: Dict[str, str] = {}

    def create(self, name: str, apps: List[str], **kw: Any) -> str:
        obj = appset(name, apps, namespace=self.argo.ns, **kw)
        status = obj.pop("status", None)
        for key in ("uid", "resourceVersion"):
            obj["metadata"].pop(key, None)
        made = self.argo.api.request("POST", self.path, obj)
        self.uids[name] = made["metadata"]["uid"]
        if status is not None:
            self.set_status(name, apps, **kw)
        return self.uids[name]

    def set_status(self, name: str, apps: List[str], **kw: Any) -> None:
        status = appset(name, apps, namespace=self.argo.ns, **kw)["status"]
        self.argo.api.request("PATCH", f"{self.path}/{name}/status",
                              [{"op": "add", "path": "/status", "value": status}],
                              content_type="application/json-patch+json")

    def delete(self, name: str) -> None:
        self.argo.api.request("DELETE", f"{self.path}/{name}")

    def app(self, name: str, set_name: str, wave: int, **kw: Any) -> dict:
        """A generated Application owned by the real ApplicationSet ``set_name``."""
        obj = self.argo.app(name, wave, root=None, **kw)
        obj["metadata"]["ownerReferences"] = [{
            "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "name": set_name,
            "uid": self.uids[set_name], "controller": True, "blockOwnerDeletion": True}]
        return obj


@pytest.fixture
def sets(argo):
    return FakeSets(argo)


def _start(cluster, argo, **over):
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root, **over).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    return mark, verify


def test_generated_apps_not_created_yet_are_waited_for(cluster, argo, sets):
    argo.create_root([child_entry("infra", 0, namespace=argo.ns), set_entry("apis", 1, namespace=argo.ns)])
    argo.create(argo.app("infra", 0))
    sets.create("apis", ["apis-a", "apis-b"])
    argo.create(sets.app("apis-a", "apis", 1))
    mark, verify = _start(cluster, argo)
    time.sleep(1.5)
    created = time.time()
    argo.create(sets.app("apis-b", "apis", 1))
    result = verify.join()
    wave1 = result["waves"][1]
    rows = [(a["name"], a["kind"], a["owner"], a["ready"]) for a in wave1["apps"]]
    assert rows == [("apis", "ApplicationSet", None, True), ("apis-a", "Application", "apis", True),
                    ("apis-b", "Application", "apis", True)]
    print("\n[appset] " + "\n[appset] ".join(result["report"]))
    assert wave1["apps"][2]["seconds_to_healthy"] >= 1.0
    assert time.time() - created < 5
    kinds = sorted((e["verb"], e["objectRef"].get("resource")) for e in
                   cluster.audit_events(since=mark, user_agent=MODULE_UA))
    assert ("list", "applicationsets") in kinds and ("watch", "applicationsets") in kinds


def test_a_set_error_fails_naming_the_set_and_the_condition(cluster, argo, sets):
    argo.create_root([set_entry("apis", 0, namespace=argo.ns)])
    sets.create("apis", [], status=False)
    mark, verify = _start(cluster, argo)
    time.sleep(1.0)
    sets.set_status("apis", [], conditions=[
        {"type": "ErrorOccurred", "status": "True", "reason": "ApplicationGenerationFromParamsError",
         "message": 'failed to execute go template {{.nope}}: map has no entry for key "nope"',
         "lastTransitionTime": "2026-12-05T12:00:00Z"}])
    msg, result = verify.join_failure()
    assert msg.startswith("wave 0, applicationset apis: Error, health Degraded - ErrorOccurred "
                          "(ApplicationGenerationFromParamsError): failed to execute go template")
    assert result["elapsed"] < 10


def test_a_set_deleted_mid_run_is_reported_not_crashed_on(cluster, argo, sets):
    argo.create_root([set_entry("apis", 0, namespace=argo.ns)])
    sets.create("apis", ["apis-a", "apis-b"])
    argo.create(sets.app("apis-a", "apis", 0))
    mark, verify = _start(cluster, argo, wave_timeout=4.0, timeout=60.0)
    time.sleep(1.0)
    sets.delete("apis")
    msg, result = verify.join_failure()
    print(f"\n[appset] deleted mid-run: {msg}")
    assert msg.startswith("wave timeout 4s reached; wave 0, applicationset apis: Missing, "
                          "health Missing - deleted during the run")


def test_1000_generated_apps_under_4_sets_cost_a_list_and_watch_per_kind(cluster, argo, sets):
    """The request count does not grow with the number of generated apps."""
    per_set = 250
    names = {f"set-{i}": [f"set-{i}-app-{j:03d}" for j in range(per_set)] for i in range(4)}
    argo.create_root([set_entry(s, i, namespace=argo.ns) for i, s in enumerate(names)])
    for i, (set_name, apps) in enumerate(names.items()):
        sets.create(set_name, apps)
        for app in apps:
            argo.create(sets.app(app, set_name, i, sync="OutOfSync", health="Progressing", operation_phase=None))
    mark, verify = _start(cluster, argo, wave_timeout=240.0, timeout=600.0)
    started = time.monotonic()
    for i, (set_name, apps) in enumerate(names.items()):
        for app in apps:
            argo.set_status(sets.app(app, set_name, i))
    result = verify.join(timeout=600)
    events = cluster.audit_events(since=mark, user_agent=MODULE_UA)
    verbs = sorted(f"{e['verb']} {e['objectRef'].get('resource', '')}" for e in events)
    print(f"\n[appset] 1000 generated apps under 4 ApplicationSets: {len(events)} requests ({verbs}); "
          f"wave times {[w['seconds_to_healthy'] for w in result['waves']]}; "
          f"statuses written in {time.monotonic() - started:.1f}s; module elapsed {result['elapsed']}s")
    assert [len(w["apps"]) for w in result["waves"]] == [per_set + 1] * 4
    assert result["api_requests"] == len(events) <= 12
    assert not [e for e in events if e["verb"] == "get" and "application" in e["objectRef"].get("resource", "")]
