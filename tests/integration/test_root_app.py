"""argocd_root_app against a real kube-apiserver with Argo CD's CRDs (run through ansible-playbook).

No Argo CD controller runs here (that is the e2e tier), so a cascading
delete stops where Argo CD takes over: the Application keeps its finalizer
and a deletionTimestamp.  The apps live in their own namespace, which an Argo
CD controller of another test (watching ``argocd``) does not reconcile.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tools.localcluster.ansible import run_playbook
from tests.support.argocd_crds import install_argocd_crds
from tools.localcluster.argocd import manifest_path

pytestmark = pytest.mark.controlplane

PLAYBOOK = Path(__file__).parent / "playbooks" / "root_app.yml"
INSTALL = manifest_path()
NS = "it-rootapp"
REPO = "https://git.example.invalid/gitops.git"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
MODULE_UA = "ecoeco.gitops"


@pytest.fixture(scope="module")
def crds(cluster):
    """Argo CD's CRDs (read from the shared release manifest) and a namespace for the apps."""
    if not INSTALL.exists():
        pytest.fail(f"Argo CD release manifest missing: {INSTALL}")
    install_argocd_crds(cluster, INSTALL)
    cluster.kubectl("create", "namespace", NS, check=False)
    yield
    apps = cluster.kubectl("get", "applications", "-n", NS, "-o", "name", check=False).stdout.split()
    for app in apps:
        cluster.kubectl("patch", "-n", NS, app, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}',
                        check=False)
        cluster.kubectl("delete", "-n", NS, app, "--wait=false", check=False)


def root(cluster, tmp_path, name, *, check=False, diff=False, **options):
    """Run the module once; return (PlaybookResult, module result, audit events for applications)."""
    result_file = tmp_path / f"result-{time.monotonic_ns()}.json"
    extra = {"kubeconfig": str(cluster.kubeconfig), "ra_name": name, "ra_namespace": NS,
             "result_file": str(result_file)}
    extra.update({f"ra_{k}": v for k, v in options.items()})
    mark = cluster.audit_mark()
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, timeout=300)
    module = json.loads(result_file.read_text()) if result_file.exists() else {}
    events = cluster.audit_events(since=mark, user_agent=MODULE_UA, resource="applications")
    return run, module, events


def get_app(cluster, name):
    proc = cluster.kubectl("get", "application", name, "-n", NS, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def writes(events):
    return [e for e in events if e["verb"] in ("create", "patch", "update", "delete")]


def persisted(events):
    """Writes the API server carried out: not dry runs, and not refused (a 404 for a missing namespace)."""
    return [e for e in writes(events) if "dryRun=All" not in e["requestURI"]
            and (e.get("responseStatus") or {}).get("code", 200) < 300]


def test_create_update_and_rerun(cluster, crds, tmp_path):
    opts = {"repo_url": REPO, "path": "clusters/dev", "destination_namespace": "argocd",
            "sync_policy": {"automated": {"prune": True, "self_heal": True},
                            "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "max_duration": "3m"}},
                            "sync_options": ["CreateNamespace=true"]}}
    run, result, _events = root(cluster, tmp_path, "it-root", **opts)
    assert run.ok and run.changed == 1, str(run)
    app = get_app(cluster, "it-root")
    assert app["spec"]["source"] == {"repoURL": REPO, "targetRevision": "HEAD", "path": "clusters/dev"}
    assert app["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "argocd"}
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert app["spec"]["syncPolicy"]["retry"]["backoff"]["maxDuration"] == "3m"
    assert app["metadata"]["finalizers"] == [FINALIZER]
    assert result["application"]["metadata"]["uid"] == app["metadata"]["uid"]
    assert "managedFields" not in result["application"]["metadata"]

    run, _result, events = root(cluster, tmp_path, "it-root", **opts)
    assert run.ok and run.changed == 0, str(run)
    assert [e["verb"] for e in events] == ["get"], "a rerun is one GET and no write (not even a dry run)"

    run, _result, _events = root(cluster, tmp_path, "it-root", target_revision="v2", **opts)
    assert run.ok and run.changed == 1, str(run)
    assert get_app(cluster, "it-root")["spec"]["source"]["targetRevision"] == "v2"
    run, _result, _events = root(cluster, tmp_path, "it-root", target_revision="v2", **opts)
    assert run.ok and run.changed == 0, str(run)


def test_check_mode_persists_nothing(cluster, crds, tmp_path):
    run, result, events = root(cluster, tmp_path, "it-check", check=True, repo_url=REPO, path="apps")
    assert run.ok and run.changed == 1, str(run)
    assert get_app(cluster, "it-check") is None
    assert result["application"]["spec"]["source"]["path"] == "apps"  # the server's dry-run answer
    assert writes(events) and all("dryRun=All" in e["requestURI"] for e in writes(events))

    root(cluster, tmp_path, "it-check", repo_url=REPO, path="apps")
    run, _result, events = root(cluster, tmp_path, "it-check", check=True, repo_url=REPO, path="apps",
                                target_revision="v9")
    assert run.ok and run.changed == 1, str(run)
    assert get_app(cluster, "it-check")["spec"]["source"]["targetRevision"] == "HEAD"
    assert all("dryRun=All" in e["requestURI"] for e in writes(events))


def test_diff_shows_revision_change(cluster, crds, tmp_path):
    root(cluster, tmp_path, "it-diff", repo_url=REPO, path="apps")
    run, result, _events = root(cluster, tmp_path, "it-diff", check=True, diff=True, repo_url=REPO, path="apps",
                                target_revision="release-2")
    assert run.ok and run.changed == 1, str(run)
    assert re.search(r'^-\s+"?targetRevision"?: "?HEAD"?,?$', run.stdout, re.M), str(run)
    assert re.search(r'^\+\s+"?targetRevision"?: "?release-2"?,?$', run.stdout, re.M), str(run)
    assert "managedFields" not in run.stdout and "resourceVersion" not in run.stdout


def test_absent_with_cascade_hands_children_to_argocd(cluster, crds, tmp_path):
    root(cluster, tmp_path, "it-cascade", repo_url=REPO, path="apps", finalizer=False)
    assert "finalizers" not in get_app(cluster, "it-cascade")["metadata"]
    run, _result, _events = root(cluster, tmp_path, "it-cascade", state="absent", cascade=True)
    assert run.ok and run.changed == 1, str(run)
    app = get_app(cluster, "it-cascade")
    # Argo CD's controller deletes the children, then drops its finalizer; until then it stays.
    assert app["metadata"]["finalizers"] == [FINALIZER] and app["metadata"].get("deletionTimestamp")
    run, _result, _events = root(cluster, tmp_path, "it-cascade", state="absent", cascade=True)
    assert run.ok and run.changed == 0, str(run)
    cluster.kubectl("patch", "-n", NS, "application/it-cascade", "--type", "merge",
                    "-p", '{"metadata":{"finalizers":null}}')


def test_absent_without_cascade_keeps_children(cluster, crds, tmp_path):
    root(cluster, tmp_path, "it-nocascade", repo_url=REPO, path="apps")
    child = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
             "metadata": {"name": "it-child", "namespace": NS, "finalizers": [FINALIZER]},
             "spec": {"project": "default", "source": {"repoURL": REPO, "path": "child"},
                      "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}}
    cluster.apply(json.dumps(child))
    run, result, _events = root(cluster, tmp_path, "it-nocascade", state="absent", cascade=False, wait=True,
                                wait_timeout=30)
    assert run.ok and run.changed == 1, str(run)
    assert get_app(cluster, "it-nocascade") is None and result["application"] == {}
    assert get_app(cluster, "it-child") is not None
    run, _result, _events = root(cluster, tmp_path, "it-nocascade", state="absent", cascade=False)
    assert run.ok and run.changed == 0, str(run)


@pytest.mark.parametrize("options, needle", [
    ({}, "repo_url"),
    ({"repo_url": REPO, "ra_namespace_override": "Bad_Namespace"}, "namespace: 'Bad_Namespace'"),
    ({"repo_url": REPO, "sync_policy": {"retry": {"limit": "lots"}}}, "limit"),
    ({"repo_url": REPO, "sync_policy": {"automated": {"prune": "sometimes"}}}, "prune"),
    ({"repo_url": REPO, "sync_policy": {"retry": {"backoff": {"duration": "5 seconds"}}}},
     "sync_policy.retry.backoff.duration"),
    ({"repo_url": REPO, "sync_policy": {"automatic": {}}}, "automatic"),
    ({"repo_url": REPO, "ra_namespace_override": "no-such-ns"}, "does namespace no-such-ns exist"),
])
def test_bad_input_fails_clearly_and_creates_nothing(cluster, crds, tmp_path, options, needle):
    options = dict(options)
    namespace = options.pop("ra_namespace_override", None)
    if namespace:
        options["namespace"] = namespace
    run, result, events = root(cluster, tmp_path, "it-bad", expect_failure=True, **options)
    assert result.get("failed") is True, str(run)
    assert needle in result["msg"], result["msg"]
    assert persisted(events) == []
    assert get_app(cluster, "it-bad") is None


def test_wait_for_first_sync_is_bounded(cluster, crds, tmp_path):
    started = time.monotonic()
    run, result, _events = root(cluster, tmp_path, "it-wait", expect_failure=True, repo_url=REPO, path="apps",
                                wait=True, wait_timeout=4)
    assert result.get("failed") is True, str(run)
    assert "timed out after 4s waiting for the first sync" in result["msg"]
    assert time.monotonic() - started < 60
