"""The argocd_sync_waves module: its documentation, argument spec and exit paths."""

from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.ecoeco.gitops.plugins.doc_fragments.k8s_auth import ModuleDocFragment
from ansible_collections.ecoeco.gitops.plugins.modules import argocd_sync_waves as module
from tests.support.argocd_objects import application, child_entry, root_app
from tests.unit.plugins.module_utils._argocd.fake_k8s import FakeClient, FakeClock
from tests.support.module_process import run_module


def doc_options():
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["extends_documentation_fragment"] == ["ecoeco.gitops.k8s_auth"]
    options = dict(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(doc["options"])
    return options


def test_documentation_matches_the_argument_spec():
    options = doc_options()
    assert set(options) == set(module.ARGUMENT_SPEC)
    for name, spec in module.ARGUMENT_SPEC.items():
        doc = options[name]
        assert doc.get("type", "str") == spec.get("type", "str"), name
        assert doc.get("default") == spec.get("default"), name
        assert doc.get("elements") == spec.get("elements"), name
        assert sorted(doc.get("aliases", [])) == sorted(spec.get("aliases", [])), name
        assert doc.get("required", False) == spec.get("required", False), name


def test_examples_and_return_parse_and_cover_the_result():
    assert yaml.safe_load(module.EXAMPLES)
    ret = yaml.safe_load(module.RETURN)
    assert {"waves", "report", "health_check", "ordering_violations", "elapsed", "api_requests",
            "refreshed", "watch", "msg"} <= set(ret)
    assert set(ret["waves"]["contains"]["apps"]["contains"]) == {
        "name", "namespace", "kind", "owner", "sync", "health", "operation", "revision", "ready", "seconds_to_healthy", "message"}


HERE = "tests.unit.plugins.modules.test_argocd_sync_waves"   # importable by that name in the module's process


def run_main(args, client=None):
    """The module's result, run as its own process (with ``client``, a function here, as K8s client)."""
    return run_module("argocd_sync_waves", args, client=f"{HERE}:{client.__name__}" if client else None).result


def _configmap():
    return {"metadata": {}, "data": {}}


def healthy_client():
    """A root app with one healthy wave-0 child, no health check in argocd-cm."""
    return FakeClient(FakeClock(), [root_app([child_entry("ns", 0)]), application("ns", 0)], configmap=_configmap())


def degraded_client():
    """A root app whose wave-0 child is Degraded."""
    return FakeClient(FakeClock(), [root_app([child_entry("ns", 0)]), application("ns", 0, health="Degraded")],
                      configmap=_configmap())


@pytest.mark.parametrize("args, text", [
    ({}, "one of the following is required: root_app, label_selector"),
    ({"root_ap": "root"}, "module: root_ap. Supported parameters include"),
    ({"root_app": "root", "timeout": "nan"}, "timeout must be a finite number of seconds"),
    ({"root_app": "root", "timeout": "inf"}, "timeout must be a finite number of seconds"),
    ({"root_app": "root", "wave_timeout": 0}, "wave_timeout must be a positive number of seconds"),
    ({"root_app": "root", "label_selector": "a=b"}, "parameters are mutually exclusive: root_app|label_selector"),
    ({"root_app": "root", "wave_timeout": "soon"}, "wave_timeout"),
    ({"root_app": "root", "timeout": 10, "wave_timeout": 20}, "wave_timeout (20.0) must not exceed timeout (10.0)"),
    ({"root_app": "root", "bogus": 1}, "Unsupported parameters"),
])
def test_bad_arguments_fail_with_the_option_named(args, text):
    out = run_main(args)
    assert out["failed"] is True
    assert text in out["msg"]


def test_success_path_through_main():
    out = run_main({"root_app": "root", "kubeconfig": "/nonexistent"}, healthy_client)
    assert "failed" not in out, out
    assert out["changed"] is False and out["health_check"] == "missing"
    assert out["waves"][0]["healthy"] is True and out["api_requests"] == 2
    assert "will not hold back later waves" in json.dumps(out["warnings"])   # through module.warn, once
    assert len(out["warnings"]) == 1


def test_failure_keeps_the_report():
    out = run_main({"root_app": "root", "kubeconfig": "/nonexistent"}, degraded_client)
    assert out["failed"] is True and out["msg"].startswith("wave 0, app ns: sync Synced, health Degraded")
    assert out["report"][1].split()[:4] == ["0", "ns", "Synced", "Degraded"]
