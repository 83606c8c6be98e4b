"""argocd_sync_waves against a real kube-apiserver with Argo CD's CRDs.

No Argo CD controller runs here: the test plays the application controller,
creating child Applications and patching their status wave by wave through
the API (the Application CRD has no status subresource, so the main resource
is patched).  The module watches the real API server: detection through the
watch, a restart of kube-apiserver, an expired resourceVersion (410 Gone) and
the diagnosis down to a real StatefulSet whose pod the real scheduler cannot
place all happen for real.  Apps live in their own namespace, away from any
Argo CD controller of another test.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.app_watch import ApplicationWatch, CountingClient
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.sync_waves import verify_sync_waves
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ModuleFailure
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sClient
from tools.localcluster.argocd import manifest_path
from tools.localcluster.ansible import run_playbook
from tools.localcluster.kubeapi import KubeApi
from tools.localcluster.procs import HarnessError, wait_until
from tests.support.argocd_objects import application, child_entry, workload_resource

pytestmark = pytest.mark.controlplane

PLAYBOOK = Path(__file__).parent / "playbooks" / "sync_waves.yml"
INSTALL = manifest_path()
GATING_LUA = Path(__file__).resolve().parents[2] / "roles" / "argocd" / "files" / "application-health-gating.lua"
DATA_NS = "it-waves-data"
MODULE_UA = "ecoeco.gitops"
PARAMS = {"label_selector": None, "expected_apps": [], "target_revision": None,
          "check_root_revision": True, "wave_timeout": 60.0, "timeout": 120.0, "hard_refresh_on_error": False,
          "require_health_check": False}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _established(cluster, crd: str) -> bool:
    """Polled, not `kubectl wait`: that fails at once while a new CRD has no status.conditions yet."""
    obj = cluster.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def argo_crds(cluster):
    """Argo CD's CRDs, from the shared release manifest."""
    docs = [d for d in yaml.safe_load_all(INSTALL.read_text()) if d and d.get("kind") == "CustomResourceDefinition"]
    cluster.apply(yaml.safe_dump_all(docs))
    wait_until("Argo CD's Application and ApplicationSet CRDs Established", lambda: all(
        _established(cluster, crd) for crd in ("applications.argoproj.io", "applicationsets.argoproj.io")),
        60, interval=0.2)
    cluster.kubectl("create", "namespace", DATA_NS, check=False)
    yield
    cluster.kubectl("delete", "namespace", DATA_NS, "--wait=false", check=False)


class FakeArgo:
    """Plays Argo CD's application controller for one root app: creates children, patches status."""

    def __init__(self, cluster, ns: str, root: str = "root"):
        self.cluster = cluster
        self.ns = ns
        self.root = root
        self.path = f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications"
        self.api = KubeApi("127.0.0.1", cluster.ports["apiserver"], cluster.pki.ca_cert,
                           cluster.pki.cert("admin"), cluster.pki.key("admin"))
        self.times: Dict[str, float] = {}

    def app(self, name: str, wave: int, **kw: Any) -> dict:
        kw.setdefault("op_started", now_iso())
        kw.setdefault("health_since", now_iso())
        kw.setdefault("root", self.root)
        return application(name, wave, namespace=self.ns, **kw)

    def create_root(self, children: List[dict], **kw: Any) -> None:
        root = application(self.root, None, namespace=self.ns, root=None, path="argocd/applications",
                           resources=children, op_started=now_iso(), **kw)
        self.create(root)

    def create(self, obj: dict) -> None:
        obj = json.loads(json.dumps(obj))
        for key in ("resourceVersion", "creationTimestamp", "generation"):
            obj["metadata"].pop(key, None)
        self.api.request("POST", self.path, obj)
        self.times[obj["metadata"]["name"]] = time.time()

    def set_status(self, obj: dict) -> float:
        """Replace the status of an existing app; returns the wall time just before the request."""
        sent = time.time()
        self.api.request("PATCH", f"{self.path}/{obj['metadata']['name']}",
                         [{"op": "add", "path": "/status", "value": obj["status"]}],
                         content_type="application/json-patch+json")
        self.times[obj["metadata"]["name"]] = sent
        return sent

    def close(self) -> None:
        self.api.close()


@pytest.fixture
def argo(cluster, argo_crds, request):
    """A namespace of its own (with argocd-cm carrying the argocd role's gating check) and a fake controller."""
    ns = "it-waves-" + request.node.name.replace("_", "-")[5:30].strip("-")
    cluster.kubectl("create", "namespace", ns)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": ns},
          "data": {"resource.customizations.health.argoproj.io_Application": GATING_LUA.read_text()}}
    cluster.apply(yaml.safe_dump(cm))
    fake = FakeArgo(cluster, ns)
    yield fake
    fake.close()
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def wait_for_module_watch(cluster, ns: str, mark, runner: threading.Thread, out: Any,
                          timeout: float = 60.0) -> None:
    """Block until the module has opened its WATCH on the applications (seen in the audit log)."""
    def watching() -> bool:
        if not runner.is_alive():
            raise AssertionError(f"the module ended before it watched: {out}")
        return bool(cluster.audit_events(since=mark, verb="watch", resource="applications", namespace=ns,
                                         user_agent=MODULE_UA))
    try:
        wait_until("the module's WATCH on applications", watching, timeout, interval=0.1, raise_errors=True)
    except HarnessError:
        seen = [(e["verb"], e["objectRef"].get("resource"), e.get("userAgent"), e.get("stage"))
                for e in cluster.audit_events(since=mark)][-20:]
        raise AssertionError(f"the module never started watching applications; audit since mark: {seen}") from None


class InProcess:
    """verify_sync_waves with the real client in a thread (for cases driven around it)."""

    def __init__(self, cluster, ns: str, **over: Any):
        self.params = dict(PARAMS, namespace=ns, kubeconfig=str(cluster.kubeconfig), **over)
        self.result: Optional[dict] = None
        self.failure: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = verify_sync_waves(K8sClient(self.params), self.params)
        except ModuleFailure as exc:        # the verification failed: its message and report
            self.failure, self.result = exc.msg, exc.result
        except BaseException as exc:  # reported by join()
            self.error = exc

    def __repr__(self) -> str:
        return f"InProcess(result={self.result!r}, failure={self.failure!r}, error={self.error!r})"

    def start(self) -> "InProcess":
        self.thread.start()
        return self

    def _wait(self, timeout: float) -> dict:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "verify_sync_waves did not return"
        if self.error:
            raise self.error
        assert self.result is not None
        return self.result

    def join(self, timeout: float = 150.0) -> dict:
        """The result of a verification that must pass."""
        result = self._wait(timeout)
        assert self.failure is None, self.failure
        return result

    def join_failure(self, timeout: float = 150.0) -> Tuple[str, dict]:
        """The message and report of a verification that must fail."""
        result = self._wait(timeout)
        assert self.failure is not None, f"the verification passed: {result.get('msg')}"
        return self.failure, result


def playbook(cluster, ns, tmp_path, check: bool = False, **options: Any):
    result_file = tmp_path / f"result-{time.monotonic_ns()}.json"
    extra = {"kubeconfig": str(cluster.kubeconfig), "sw_namespace": ns, "result_file": str(result_file)}
    extra.update({f"sw_{k}": v for k, v in options.items()})
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, timeout=300)
    return run, (json.loads(result_file.read_text()) if result_file.exists() else {})


def test_waves_in_order_detected_through_the_watch(cluster, argo, tmp_path):
    """Main path through ansible-playbook: Argo CD creates each wave when the previous one is healthy."""
    argo.create_root([child_entry("ns", 0, "OutOfSync", "Missing", argo.ns),
                      child_entry("db", 1, "Missing", None, argo.ns),
                      child_entry("apis", 2, "Missing", None, argo.ns)])
    argo.create(argo.app("ns", 0, sync="OutOfSync", health="Missing", operation_phase=None))
    mark = cluster.audit_mark()
    out: Dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(zip(("run", "result"), playbook(
        cluster, argo.ns, tmp_path, root_app=argo.root, wave_timeout=60, timeout=120))), daemon=True)
    runner.start()
    wait_for_module_watch(cluster, argo.ns, mark, runner, out)

    changed = {}
    time.sleep(0.5)
    changed[0] = argo.set_status(argo.app("ns", 0))
    time.sleep(1.0)
    argo.create(argo.app("db", 1, sync="OutOfSync", health="Progressing", operation_phase="Running"))
    time.sleep(0.5)
    changed[1] = argo.set_status(argo.app("db", 1))
    time.sleep(1.0)
    argo.create(argo.app("apis", 2))
    changed[2] = argo.times["apis"]
    runner.join(200)
    run, result = out["run"], out["result"]
    assert run.ok, run
    assert "WAVE  APP" in run.stdout                       # the report is printed as a table
    assert [w["wave"] for w in result["waves"]] == [0, 1, 2]
    assert all(w["healthy"] for w in result["waves"])
    delays = {w["wave"]: parse(w["detected_at"]) - changed[w["wave"]] for w in result["waves"]}
    rounded = {k: round(v, 3) for k, v in delays.items()}
    print(f"\n[sync_waves] detection delay per wave (s): {rounded}")
    assert all(-0.05 < d < 2.0 for d in delays.values()), delays     # measured: well under 1 s when idle
    detected = [parse(w["detected_at"]) for w in result["waves"]]
    assert detected == sorted(detected)
    assert result["health_check"] == "gating" and result["ordering_violations"] == []

    module_requests = cluster.audit_events(since=mark, user_agent=MODULE_UA)
    verbs = sorted(f"{e['verb']} {e['objectRef'].get('resource')}" for e in module_requests)
    print(f"[sync_waves] module requests for 3 waves: {verbs}")
    assert result["api_requests"] == len(module_requests) <= 3 * 3
    assert not [e for e in module_requests if e["verb"] == "get" and e["objectRef"].get("resource") == "applications"]


def test_degraded_fails_fast_naming_the_app_and_the_pod(cluster, argo):
    """A real StatefulSet the scheduler cannot place; the app turns Degraded while the module watches."""
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pg", "namespace": DATA_NS},
           "spec": {"replicas": 1, "serviceName": "pg", "selector": {"matchLabels": {"app": "pg"}},
                    "template": {"metadata": {"labels": {"app": "pg"}},
                                 "spec": {"nodeSelector": {"workload": "nowhere"},
                                          "containers": [{"name": "pg", "image": "postgres:16"}]}}}}
    cluster.apply(yaml.safe_dump(sts))

    def unschedulable() -> bool:
        pod = cluster.kubectl("get", "pod", "pg-0", "-n", DATA_NS, "-o", "json", check=False)
        return pod.returncode == 0 and any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                                           for c in json.loads(pod.stdout).get("status", {}).get("conditions", []))
    wait_until("pod pg-0 unschedulable", unschedulable, 60, interval=0.5)

    resources = [workload_resource("StatefulSet", DATA_NS, "pg", "Progressing", "Waiting for 1 pods to be ready")]
    argo.create_root([child_entry("db", 0, namespace=argo.ns)])
    argo.create(argo.app("db", 0, health="Progressing", resources=resources))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    time.sleep(0.3)
    sent = argo.set_status(argo.app("db", 0, health="Degraded", resources=resources))
    msg, result = verify.join_failure()
    took = time.time() - sent
    print(f"\n[sync_waves] Degraded -> failure in {took:.2f}s: {msg}")
    assert took < 3
    assert msg.startswith("wave 0, app db: sync Synced, health Degraded")
    assert f"StatefulSet {DATA_NS}/pg 0/1 ready, pod pg-0 Pending - 0/" in msg
    assert "nodes are available" in msg
    assert result["report"][1].split()[:4] == ["0", "db", "Synced", "Degraded"]

    # The fix is synced, but a StatefulSet does not replace a Pending pod of the old revision.
    cluster.kubectl("patch", "statefulset", "pg", "-n", DATA_NS, "--type", "json", "-p",
                    '[{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]')

    def new_revision() -> bool:
        st = json.loads(cluster.kubectl("get", "statefulset", "pg", "-n", DATA_NS, "-o", "json").stdout)["status"]
        return bool(st.get("updateRevision")) and st.get("updateRevision") != st.get("currentRevision")
    wait_until("a new StatefulSet revision", new_revision, 30, interval=0.5)
    msg, result = InProcess(cluster, argo.ns, root_app=argo.root).start().join_failure()
    assert "Kubernetes will not replace a Pending pod of a StatefulSet - delete the pod" in msg
    cluster.kubectl("delete", "statefulset", "pg", "-n", DATA_NS, "--wait=false")


def test_outofsync_times_out_with_the_report(cluster, argo, tmp_path):
    argo.create_root([child_entry("ns", 0, namespace=argo.ns), child_entry("db", 1, "OutOfSync", "Healthy", argo.ns)])
    argo.create(argo.app("ns", 0))
    argo.create(argo.app("db", 1, sync="OutOfSync", health="Healthy"))
    begin = time.monotonic()
    run, result = playbook(cluster, argo.ns, tmp_path, root_app=argo.root, wave_timeout=3, timeout=30, expect_failure=True)
    assert result["failed"] is True, run
    assert result["msg"].startswith("wave timeout 3s reached; wave 1, app db: sync OutOfSync, health Healthy")
    assert result["report"][1].split()[:5] == ["0", "ns", "Synced", "Healthy", "0.0"]
    assert result["report"][2].split()[:5] == ["1", "db", "OutOfSync", "Healthy", "-"]
    assert 3 <= result["elapsed"] < 6
    print(f"\n[sync_waves] timeout run: module {result['elapsed']}s, playbook {time.monotonic() - begin:.1f}s")


def test_stale_compared_to_is_not_accepted(cluster, argo):
    argo.create_root([child_entry("db", 0, namespace=argo.ns)], revision="release-2")
    argo.create(argo.app("db", 0, revision="release-2", compared_revision="main"))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    time.sleep(1.0)
    assert verify.thread.is_alive(), "a stale comparison was accepted as Synced"
    sent = argo.set_status(argo.app("db", 0, revision="release-2"))
    result = verify.join()
    assert parse(result["waves"][0]["detected_at"]) >= sent - 0.05


def test_apiserver_restart_mid_wait_is_survived(cluster, argo):
    argo.create_root([child_entry("ns", 0, namespace=argo.ns), child_entry("db", 1, namespace=argo.ns)])
    argo.create(argo.app("ns", 0))
    argo.create(argo.app("db", 1, sync="OutOfSync", health="Progressing"))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    down = cluster.restart_apiserver(down_seconds=2)
    sent = argo.set_status(argo.app("db", 1))
    result = verify.join()
    print(f"\n[sync_waves] apiserver down {down:.1f}s; watch {result['watch']}, "
          f"requests {result['api_requests']}")
    assert all(w["healthy"] for w in result["waves"])
    assert result["watch"]["reconnects"] + result["watch"]["relists"] >= 2
    assert parse(result["waves"][1]["detected_at"]) >= sent - 0.05


def test_expired_resource_version_is_resumed_by_a_fresh_list(cluster, argo):
    """Watching from a resourceVersion the API server no longer keeps answers 410 Gone: LIST again."""
    argo.create_root([])
    client = CountingClient(K8sClient({"kubeconfig": str(cluster.kubeconfig)}))
    watch = ApplicationWatch(client, argo.ns)
    watch.relist()
    watch.resource_version = "1"              # as if the module had been disconnected for a long time
    assert watch.wait_for_change(20) is True
    assert watch.relists == 2 and int(watch.resource_version) > 1
    assert (argo.ns, argo.root) in watch.index
    watch.close()


def test_nested_app_of_apps_is_healthy_when_its_last_child_is(cluster, argo):
    """The parent's own health lags (Argo CD re-reads children on its resync); the verifier does not wait for it."""
    argo.create_root([child_entry("platform", 0, namespace=argo.ns), child_entry("apis", 1, namespace=argo.ns)])
    kids = [child_entry("monitoring", 0, "OutOfSync", "Progressing", argo.ns),
            child_entry("logging", 1, "Missing", None, argo.ns)]
    argo.create(argo.app("platform", 0, health="Progressing", resources=kids))
    argo.create(argo.app("monitoring", 0, root="platform", sync="OutOfSync", health="Progressing"))
    argo.create(argo.app("apis", 1))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    time.sleep(0.3)
    argo.set_status(argo.app("monitoring", 0, root="platform"))
    time.sleep(0.5)
    argo.create(argo.app("logging", 1, root="platform"))
    last_child = argo.times["logging"]
    result = verify.join()
    platform = result["waves"][0]["apps"][0]
    own = json.loads(argo.cluster.kubectl("get", "application", "platform", "-n", argo.ns, "-o", "json").stdout)
    lag = parse(result["waves"][0]["detected_at"]) - last_child
    print(f"\n[sync_waves] nested parent reported healthy {lag:.3f}s after its last child; "
          f"Argo CD's own parent health still {own['status']['health']['status']}")
    assert platform["name"] == "platform" and platform["health"] == "Healthy" and platform["ready"]
    assert own["status"]["health"]["status"] == "Progressing"
    assert lag < 1.0


def test_broken_ordering_is_reported(cluster, argo):
    """A later wave synced while an earlier one is still progressing: Argo CD did not gate."""
    argo.create_root([child_entry("ns", 0, namespace=argo.ns), child_entry("db", 1, namespace=argo.ns)])
    argo.create(argo.app("ns", 0, sync="OutOfSync", health="Progressing"))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    time.sleep(1.0)
    argo.create(argo.app("db", 1))
    time.sleep(0.5)
    argo.set_status(argo.app("ns", 0))
    result = verify.join()
    assert len(result["ordering_violations"]) == 1
    violation = result["ordering_violations"][0]
    print(f"\n[sync_waves] {violation}")
    assert violation.startswith("ordering broken: wave 1 app db synced at ")
    assert violation.endswith("while wave 0 app ns was OutOfSync/Progressing")


def test_hard_refresh_once_then_pass(cluster, argo):
    argo.create_root([child_entry("ns", 0, namespace=argo.ns)])
    broken = argo.app("ns", 0, sync="Unknown", operation_phase=None, conditions=[{
        "type": "ComparisonError", "lastTransitionTime": now_iso(),
        "message": "Failed to load target state: rpc error: code = Unknown desc = Manifest generation error "
                   "(cached): apps/ns: app path does not exist"}])
    argo.create(broken)
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root, hard_refresh_on_error=True).start()
    wait_until(f"a hard refresh requested by the module ({verify})", lambda: (
        argo.api.get(f"{argo.path}/ns")["metadata"].get("annotations") or {}).get(
            "argocd.argoproj.io/refresh") == "hard", 30, interval=0.1)
    # what Argo CD does: refresh, drop the annotation, report the new comparison
    fixed = argo.app("ns", 0)
    argo.api.request("PATCH", f"{argo.path}/ns", [
        {"op": "remove", "path": "/metadata/annotations/argocd.argoproj.io~1refresh"},
        {"op": "add", "path": "/status", "value": fixed["status"]}], content_type="application/json-patch+json")
    result = verify.join()
    assert result["changed"] is True and result["refreshed"] == ["ns"]
    patches = cluster.audit_events(since=mark, verb="patch", resource="applications", user_agent=MODULE_UA)
    assert len(patches) == 1


def test_check_mode_reports_without_waiting(cluster, argo, tmp_path):
    argo.create_root([child_entry("ns", 0, namespace=argo.ns)])
    argo.create(argo.app("ns", 0, sync="OutOfSync", health="Progressing"))
    mark = cluster.audit_mark()
    run, result = playbook(cluster, argo.ns, tmp_path, check=True, root_app=argo.root, wave_timeout=60)
    assert run.ok and run.changed == 0, run
    assert result["msg"].startswith("check mode, current state: wave 0: waiting for ns")
    assert result["waves"][0]["healthy"] is False and result["elapsed"] < 2
    assert not cluster.audit_events(since=mark, verb="watch", resource="applications", user_agent=MODULE_UA)


def test_requests_do_not_grow_with_the_number_of_apps(cluster, argo):
    """40 apps in 4 waves: the module's requests, counted in the audit log, stay at a handful."""
    names = {w: [f"app-{w}-{i}" for i in range(10)] for w in range(4)}
    argo.create_root([child_entry(n, w, "OutOfSync", "Progressing", argo.ns) for w in names for n in names[w]])
    for w in names:
        for n in names[w]:
            argo.create(argo.app(n, w, sync="OutOfSync", health="Progressing", operation_phase=None))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    for w in names:
        time.sleep(0.3)
        for n in names[w]:
            argo.set_status(argo.app(n, w))
    result = verify.join()
    assert [w["healthy"] for w in result["waves"]] == [True] * 4
    events = cluster.audit_events(since=mark, user_agent=MODULE_UA)
    print(f"\n[sync_waves] 40 apps / 4 waves: {len(events)} requests "
          f"({sorted(e['verb'] + ' ' + e['objectRef'].get('resource', '') for e in events)}); "
          f"wave times {[w['seconds_to_healthy'] for w in result['waves']]}")
    assert result["api_requests"] == len(events) <= 4 * 3
    assert not [e for e in events if e["verb"] == "get" and e["objectRef"].get("resource") == "applications"]


def test_wave_timeout_is_kept_while_statuses_churn(cluster, argo):
    """The per-wave clock starts when the wave does, and the module stops on time although events keep coming."""
    argo.create_root([child_entry("ns", 0, namespace=argo.ns), child_entry("db", 1, namespace=argo.ns)])
    argo.create(argo.app("ns", 0, sync="OutOfSync", health="Progressing"))
    argo.create(argo.app("db", 1, sync="OutOfSync", health="Progressing"))
    mark = cluster.audit_mark()
    verify = InProcess(cluster, argo.ns, root_app=argo.root, wave_timeout=4.0, timeout=60.0).start()
    wait_for_module_watch(cluster, argo.ns, mark, verify.thread, verify)
    time.sleep(1.0)
    argo.set_status(argo.app("ns", 0))
    while verify.thread.is_alive():          # Argo CD rewrites statuses all the time (reconciledAt)
        argo.set_status(argo.app("db", 1, sync="OutOfSync", health="Progressing"))
        time.sleep(0.3)
    msg, result = verify.join_failure()
    wave0 = result["waves"][0]["seconds_to_healthy"]
    print(f"\n[sync_waves] wave 0 healthy at {wave0}s, wave 1 timed out, module elapsed {result['elapsed']}s")
    assert msg.startswith("wave timeout 4s reached; wave 1, app db: sync OutOfSync")
    assert wave0 + 4 <= result["elapsed"] < wave0 + 5.5


def test_quiet_watch_ends_at_its_deadline(cluster, argo):
    """With no events at all, the watch still returns on time (server-side timeoutSeconds), and resumes."""
    argo.create_root([])
    client = CountingClient(K8sClient({"kubeconfig": str(cluster.kubeconfig)}))
    watch = ApplicationWatch(client, argo.ns)
    watch.relist()
    took = []
    for _attempt in range(2):
        begin = time.monotonic()
        assert watch.wait_for_change(3.0) is False
        took.append(time.monotonic() - begin)
    watch.close()
    print(f"\n[sync_waves] quiet watch returned after {[round(t, 2) for t in took]}s; "
          f"{client.requests} requests, resumes {watch.resumes}, reconnects {watch.reconnects}")
    assert all(3.0 <= t < 4.5 for t in took)
    assert watch.reconnects == 0
