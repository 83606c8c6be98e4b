"""Bad input to every module and role, against the real local API server: a clear error, and nothing written.

Each case asserts that the message names the option, role variable or object at fault.  The modules run as their
own processes (as Ansible runs them), several at a time; the roles run in one ``ansible-playbook`` with a
block per case.  The API server's audit log is the witness that none of it wrote anything: no create, update,
patch or delete (dry runs aside) by this collection's client while the cases ran.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.support.argocd_crds import install_argocd_crds
from tests.support.module_process import ModuleRun, run_module
from tools.localcluster import audit
from tools.localcluster.ansible import run_playbook

pytestmark = pytest.mark.controlplane

MODULE_UA = "ecoeco.gitops"
NS = "it-bad-inputs"
REPO = "https://git.example.test/org/gitops.git"
KUBECONFIG = "@kubeconfig@"  # replaced by the cluster's kubeconfig path
TMP = "@tmp@"                # replaced by the test's scratch directory


@dataclass
class Case:
    """One bad input: the module or role, its arguments, and what the message must name."""

    id: str
    target: str                       # module name, or role:<name>[:<tasks_from>]
    args: dict[str, Any]
    needles: tuple[str, ...]
    reaches_cluster: bool = False     # validation needs the API (kinds, dry run, objects)
    absent: tuple[str, ...] = field(default=())  # API paths that must still not exist afterwards


def cm(name: str, namespace: str = NS, **meta: Any) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict({"name": name, "namespace": namespace}, **meta),
            "data": {"k": "v"}}


def nsdoc(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


MANIFEST = "k8s_manifest"
LABELS = "k8s_node_labels"
ROOT = "argocd_root_app"
WAVES = "argocd_sync_waves"
PASSWORD = "argocd_admin_password"

MODULE_CASES = [
    # -- k8s_manifest: the whole set is checked before the first write -----------------------------------
    Case("manifest-namespace-then-unknown-kind", MANIFEST,
         {"definition": [nsdoc("bad-in-ns1"), {"apiVersion": "example.io/v1", "kind": "Gadget",
                                               "metadata": {"name": "g", "namespace": "bad-in-ns1"}}]},
         ("Gadget g", "no kind Gadget in example.io/v1", "nothing was written"), True,
         ("/api/v1/namespaces/bad-in-ns1",)),
    Case("manifest-configmap-then-invalid-name", MANIFEST,
         {"definition": [cm("bad-in-cm2"), cm("Bad_Name")]},
         ("definition[1] (ConfigMap Bad_Name)", "DNS-1123 subdomain"), False,
         (f"/api/v1/namespaces/{NS}/configmaps/bad-in-cm2",)),
    Case("manifest-dry-run-refuses-a-service", MANIFEST,
         {"definition": [nsdoc("bad-in-ns3"), cm("bad-in-cm3"),
                         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad-in-svc3", "namespace": NS},
                          "spec": {"ports": [{"port": 99999}]}}]},
         (f"Service {NS}/bad-in-svc3", "refuses it in a dry run (nothing was written)"), True,
         ("/api/v1/namespaces/bad-in-ns3", f"/api/v1/namespaces/{NS}/configmaps/bad-in-cm3")),
    Case("manifest-dry-run-refuses-a-deployment", MANIFEST,
         {"definition": [cm("bad-in-cm4"),
                         {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad-in-dep4",
                                                                                      "namespace": NS},
                          "spec": {"selector": {"matchLabels": {"a": "b"}},
                                   "template": {"metadata": {"labels": {"a": "c"}},
                                                "spec": {"containers": [{"name": "c", "image": "x"}]}}}}]},
         (f"Deployment {NS}/bad-in-dep4", "dry run"), True, (f"/api/v1/namespaces/{NS}/configmaps/bad-in-cm4",)),
    Case("manifest-namespaced-without-namespace", MANIFEST,
         {"definition": [nsdoc("bad-in-ns5"), {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "bad-in-cm5"}}]},
         ("ConfigMap bad-in-cm5 is namespaced", "namespace option"), True, ("/api/v1/namespaces/bad-in-ns5",)),
    Case("manifest-unknown-group-version", MANIFEST,
         {"definition": [cm("bad-in-cm6"), {"apiVersion": "nowhere.example/v9", "kind": "Thing",
                                            "metadata": {"name": "t", "namespace": NS}}]},
         ("no kind Thing in nowhere.example/v9",), True, (f"/api/v1/namespaces/{NS}/configmaps/bad-in-cm6",)),
    Case("manifest-missing-apiversion", MANIFEST, {"definition": [{"kind": "ConfigMap", "metadata": {"name": "x"}}]},
         ("definition[0]: missing apiVersion",)),
    Case("manifest-missing-name", MANIFEST, {"definition": [{"apiVersion": "v1", "kind": "ConfigMap"}]},
         ("definition[0] (ConfigMap): missing metadata.name",)),
    Case("manifest-not-a-mapping", MANIFEST, {"definition": [cm("bad-in-cm9"), "just text"]},
         ("definition[1]: expected a Kubernetes object",)),
    Case("manifest-yaml-text-broken", MANIFEST, {"definition": "kind: [unclosed"}, ("definition: not valid YAML",)),
    Case("manifest-src-missing", MANIFEST, {"src": "/nonexistent/manifest.yaml"},
         ("src: file /nonexistent/manifest.yaml does not exist",)),
    Case("manifest-src-etc-passwd", MANIFEST, {"src": "/etc/passwd"},
         ("src /etc/passwd, document 1: expected a Kubernetes object",)),
    Case("manifest-src-second-document", MANIFEST, {"src": f"{TMP}/two.yaml"},
         (f"{TMP}/two.yaml, document 2 (ConfigMap): missing metadata.name",)),
    Case("manifest-crd-timeout-zero", MANIFEST, {"definition": [cm("x")], "crd_timeout": 0},
         ("crd_timeout: must be a positive number of seconds",)),
    Case("manifest-wait-timeout-negative", MANIFEST, {"definition": [cm("x")], "wait_timeout": -5},
         ("wait_timeout: must be a positive number of seconds",)),
    Case("manifest-wait-timeout-nan", MANIFEST, {"definition": [cm("x")], "wait_timeout": "nan"},
         ("wait_timeout",)),
    Case("manifest-neither-definition-nor-src", MANIFEST, {}, ("one of the following is required: definition, src",)),
    Case("manifest-option-typo", MANIFEST, {"defintion": [cm("x")]}, ("Unsupported parameters", "defintion")),
    Case("manifest-definition-and-src", MANIFEST, {"definition": [cm("x")], "src": "/etc/hosts"},
         ("mutually exclusive", "definition", "src")),
    Case("manifest-bad-namespace-name", MANIFEST, {"definition": [cm("x", namespace="Bad_NS")]},
         ("(ConfigMap x): metadata.namespace 'Bad_NS'",)),
    Case("manifest-bad-label-key", MANIFEST, {"definition": [cm("x", labels={"bad key": "v"})]},
         ("(ConfigMap x): metadata.labels: key 'bad key'",)),
    Case("manifest-empty", MANIFEST, {"definition": []}, ("definition: holds no Kubernetes object",)),
    Case("manifest-empty-field-manager", MANIFEST, {"definition": [cm("x")], "field_manager": " "},
         ("field_manager: must not be empty",)),
    Case("manifest-namespace-with-dots", MANIFEST, {"definition": [nsdoc("a.b")]},
         ("(Namespace a.b): metadata.name 'a.b' is not a valid DNS-1123 label",)),
    # -- authentication options (the same client in every module) -----------------------------------------
    Case("auth-kubeconfig-not-yaml", MANIFEST, {"definition": [cm("x")], "kubeconfig": f"{TMP}/broken-kubeconfig"},
         (f"kubeconfig {TMP}/broken-kubeconfig: not valid YAML",)),
    Case("auth-kubeconfig-missing", LABELS, {"nodes": {}, "kubeconfig": "/nonexistent/kubeconfig"},
         ("kubeconfig: file /nonexistent/kubeconfig does not exist",)),
    Case("auth-kubeconfig-not-a-kubeconfig", WAVES, {"root_app": "root", "kubeconfig": f"{TMP}/plain.yaml"},
         (f"kubeconfig {TMP}/plain.yaml: not a kubeconfig",)),
    Case("auth-ca-cert-missing", ROOT, {"name": "root", "repo_url": REPO, "host": "https://127.0.0.1:1",
                                        "ca_cert": "/nonexistent/ca.pem"},
         ("ca_cert: file /nonexistent/ca.pem does not exist",)),
    Case("auth-unknown-context", PASSWORD, {"password": "Sup3r-s3cret", "context": "nope"},
         ("context: 'nope' is not a context of kubeconfig",)),
    Case("auth-kubeconfig-a-number", MANIFEST, {"definition": [cm("x")], "kubeconfig": 5},
         ("kubeconfig: expected a file path or a dictionary, got int",)),
    # -- k8s_node_labels ----------------------------------------------------------------------------------
    Case("labels-prefix-kubernetes-io", LABELS, {"nodes": {}, "managed_prefixes": ["kubernetes.io/"]},
         ("managed_prefixes: 'kubernetes.io/' covers Kubernetes' own label namespaces", "allow_kubernetes_prefixes")),
    Case("labels-prefix-node-role", LABELS, {"nodes": {}, "managed_prefixes": ["node-role.kubernetes.io/"]},
         ("managed_prefixes: 'node-role.kubernetes.io/' covers",)),
    Case("labels-prefix-k8s-io", LABELS, {"nodes": {}, "managed_prefixes": ["k8s.io/"]},
         ("managed_prefixes: 'k8s.io/' covers",)),
    Case("labels-prefix-topology", LABELS, {"nodes": {}, "managed_prefixes": ["node.ecoeco.io/", "topology.kubernetes.io/"]},
         ("managed_prefixes: 'topology.kubernetes.io/' covers",)),
    Case("labels-prefix-too-short", LABELS, {"nodes": {}, "managed_prefixes": ["kube"]},
         ("managed_prefixes: 'kube' covers", "kubernetes.io/arch")),
    Case("labels-parallelism-zero", LABELS, {"nodes": {}, "parallelism": 0},
         ("parallelism: must be a whole number from 1 to 64, got 0",)),
    Case("labels-parallelism-huge", LABELS, {"nodes": {}, "parallelism": 1000}, ("parallelism:", "got 1000")),
    Case("labels-parallelism-negative", LABELS, {"nodes": {}, "parallelism": -1}, ("parallelism:", "got -1")),
    Case("labels-bad-node-name", LABELS, {"nodes": {"Bad_Node": {}}}, ("nodes: node name", "Bad_Node")),
    Case("labels-bad-label-key", LABELS, {"nodes": {"kwok-node-1": {"labels": {"bad key": "v"}}}},
         ("nodes.kwok-node-1.labels (key bad key)",)),
    Case("labels-bad-taint-effect", LABELS,
         {"nodes": {"kwok-node-1": {"taints": [{"key": "dedicated", "effect": "Nope"}]}}},
         ("nodes.kwok-node-1.taints[0] (key dedicated): effect 'Nope'",)),
    Case("labels-unknown-field", LABELS, {"nodes": {"kwok-node-1": {"lables": {}}}},
         ("nodes.kwok-node-1: unknown field(s) lables",)),
    Case("labels-missing-nodes-choice", LABELS, {"nodes": {}, "missing_nodes": "ignore"}, ("missing_nodes", "ignore")),
    Case("labels-missing-node-fails", LABELS,
         {"nodes": {"bad-in-no-such-node": {"labels": {"node.ecoeco.io/x": "y"}}}, "missing_nodes": "fail"},
         ("bad-in-no-such-node", "not found in the cluster", "nothing was changed"), True),
    Case("labels-nodes-not-a-dict", LABELS, {"nodes": ["a", "b"]}, ("nodes",)),
    Case("labels-option-typo", LABELS, {"node": {}}, ("Unsupported parameters", "node")),
    # -- argocd_root_app ----------------------------------------------------------------------------------
    Case("root-repo-url-not-a-url", ROOT, {"name": "root", "repo_url": "not a url"},
         ("repo_url: 'not a url' is not a repository URL",)),
    Case("root-repo-url-no-host", ROOT, {"name": "root", "repo_url": "https://"}, ("repo_url: 'https://'",)),
    Case("root-path-escapes", ROOT, {"name": "root", "repo_url": REPO, "path": "../../../etc"},
         ("path: '../../../etc' leaves the repository",)),
    Case("root-path-absolute", ROOT, {"name": "root", "repo_url": REPO, "path": "/etc"},
         ("path: '/etc' leaves the repository",)),
    Case("root-wait-timeout-zero", ROOT, {"name": "root", "repo_url": REPO, "wait_timeout": 0},
         ("wait_timeout: must be a positive number of seconds",)),
    Case("root-wait-timeout-negative", ROOT, {"name": "root", "repo_url": REPO, "wait_timeout": -1},
         ("wait_timeout: must be a positive number of seconds",)),
    Case("root-bad-name", ROOT, {"name": "Bad_Name", "repo_url": REPO}, ("name: 'Bad_Name'",)),
    Case("root-bad-namespace", ROOT, {"name": "root", "namespace": "Bad NS", "repo_url": REPO},
         ("namespace: 'Bad NS'",)),
    Case("root-repo-url-missing", ROOT, {"name": "root"}, ("repo_url",)),
    Case("root-option-typo", ROOT, {"name": "root", "repo_ulr": REPO}, ("Unsupported parameters", "repo_ulr")),
    Case("password-option-typo", PASSWORD, {"pasword": "Sup3r-s3cret"}, ("Unsupported parameters", "pasword")),
    Case("root-state-choice", ROOT, {"name": "root", "repo_url": REPO, "state": "gone"}, ("state", "gone")),
    Case("root-destination-server", ROOT, {"name": "root", "repo_url": REPO, "destination_server": "kubernetes"},
         ("destination_server: 'kubernetes' is not an API server URL",)),
    Case("root-backoff-duration", ROOT, {"name": "root", "repo_url": REPO,
                                         "sync_policy": {"retry": {"backoff": {"duration": "5 minutes"}}}},
         ("sync_policy.retry.backoff.duration",)),
    Case("root-label-key", ROOT, {"name": "root", "repo_url": REPO, "labels": {"bad key": "x"}}, ("labels.bad key",)),
    Case("root-blank-revision", ROOT, {"name": "root", "repo_url": REPO, "target_revision": "  "},
         ("target_revision: must not be empty",)),
    Case("root-two-destinations", ROOT, {"name": "root", "repo_url": REPO, "destination_server": "https://k",
                                         "destination_name": "in-cluster"},
         ("mutually exclusive", "destination_server")),
    # -- argocd_sync_waves --------------------------------------------------------------------------------
    Case("waves-timeout-nan", WAVES, {"root_app": "root", "timeout": "nan"},
         ("timeout must be a finite number of seconds",)),
    Case("waves-timeout-inf", WAVES, {"root_app": "root", "timeout": "inf"},
         ("timeout must be a finite number of seconds",)),
    Case("waves-wave-timeout-zero", WAVES, {"root_app": "root", "wave_timeout": 0},
         ("wave_timeout must be a positive number of seconds",)),
    Case("waves-wave-timeout-above-timeout", WAVES, {"root_app": "root", "wave_timeout": 900, "timeout": 300},
         ("wave_timeout (900.0) must not exceed timeout (300.0)",)),
    Case("waves-slice-negative", WAVES, {"root_app": "root", "slice_seconds": -1},
         ("slice_seconds must be a positive number of seconds",)),
    Case("waves-option-typo", WAVES, {"root_ap": "root"}, ("Unsupported parameters", "root_ap")),
    Case("waves-neither-root-nor-selector", WAVES, {}, ("one of the following is required: root_app, label_selector",)),
    Case("waves-bad-selector", WAVES, {"label_selector": "a=b; rm"}, ("label_selector 'a=b; rm'",)),
    Case("waves-expected-app-path", WAVES, {"label_selector": "a=b", "expected_apps": ["a/b/c"]},
         ("expected_apps: 'a/b/c'",)),
    Case("waves-foreign-progress", WAVES, {"root_app": "root", "progress": {"x": 1}},
         ("progress must be the 'progress' value",)),
    Case("waves-junit-dir-missing", WAVES, {"root_app": "root", "junit_file": "/nonexistent/dir/junit.xml"},
         ("junit_file '/nonexistent/dir/junit.xml'",)),
    Case("waves-blank-revision", WAVES, {"root_app": "root", "target_revision": ""},
         ("target_revision must not be empty",)),
    Case("waves-expected-app-outside-selector", WAVES,
         {"label_selector": "team=platform", "namespace": NS, "expected_apps": ["bad-in-outside"],
          "wave_timeout": 30, "timeout": 30},
         ("expected_apps: bad-in-outside exists but does not match label_selector 'team=platform'", "team=other"),
         True),
    # -- argocd_admin_password ----------------------------------------------------------------------------
    Case("password-spaces", PASSWORD, {"password": "   "}, ("password: must not be only white space",)),
    Case("password-empty", PASSWORD, {"password": ""}, ("password: must not be empty",)),
    Case("password-too-long", PASSWORD, {"password": "x" * 73}, ("password: longer than 72 bytes",)),
    Case("password-bad-namespace", PASSWORD, {"password": "Sup3r-s3cret", "namespace": "Bad NS"}, ("namespace:",)),
    Case("password-secret-missing", PASSWORD, {"password": "Sup3r-s3cret", "namespace": NS},
         (f"Secret {NS}/argocd-secret does not exist",), True),
]

ROLE_CASES = [
    Case("role-node-labels-parallelism", "role:node_labels", {"node_labels_parallelism": 0},
         ("node_labels_parallelism: must be a whole number from 1 to 64, got 0",)),
    Case("role-node-labels-parallelism-type", "role:node_labels", {"node_labels_parallelism": "many"},
         ("node_labels_parallelism",)),
    Case("role-node-labels-prefix", "role:node_labels", {"node_labels_managed_prefixes": ["kubernetes.io/"]},
         ("node_labels_managed_prefixes: 'kubernetes.io/' covers", "node_labels_allow_kubernetes_prefixes=true")),
    Case("role-app-of-apps-repo-url", "role:app_of_apps", {"app_of_apps_repo_url": "not a url"},
         ("app_of_apps_repo_url: 'not a url' is not a repository URL",)),
    Case("role-app-of-apps-path", "role:app_of_apps", {"app_of_apps_repo_url": REPO, "app_of_apps_path": "../../../etc"},
         ("app_of_apps_path: '../../../etc' leaves the repository",)),
    Case("role-app-of-apps-timeout", "role:app_of_apps", {"app_of_apps_repo_url": REPO, "app_of_apps_timeout": 0},
         ("app_of_apps_timeout must be a positive number of seconds",)),
    Case("role-app-of-apps-wave-above-timeout", "role:app_of_apps",
         {"app_of_apps_repo_url": REPO, "app_of_apps_wave_timeout": 900, "app_of_apps_timeout": 300},
         ("app_of_apps_wave_timeout (900.0) must not exceed app_of_apps_timeout (300.0)",)),
    Case("role-app-of-apps-revision", "role:app_of_apps", {"app_of_apps_repo_url": REPO, "app_of_apps_revision": " "},
         ("app_of_apps_revision: must not be empty",)),
    Case("role-app-of-apps-repo-url-missing", "role:app_of_apps", {}, ("app_of_apps_repo_url",)),
    Case("role-verify-wave-timeout", "role:app_of_apps:verify", {"app_of_apps_wave_timeout": -1},
         ("app_of_apps_wave_timeout must be a positive number of seconds",)),
    Case("role-verify-wave-timeout-type", "role:app_of_apps:verify", {"app_of_apps_wave_timeout": "soon"},
         ("app_of_apps_wave_timeout",)),
    Case("role-argocd-wait-timeout", "role:argocd", {"argocd_wait_timeout": 0},
         ("argocd_wait_timeout: must be a positive number of seconds",)),
    Case("role-argocd-password-spaces", "role:argocd", {"argocd_admin_password": "   "},
         ("argocd_admin_password: must not be only white space",)),
    Case("role-argocd-health-check-choice", "role:argocd", {"argocd_application_health_check": "lenient"},
         ("argocd_application_health_check", "lenient")),
]


def _fill(value: Any, kubeconfig: str, tmp: str) -> Any:
    if isinstance(value, str):
        return value.replace(KUBECONFIG, kubeconfig).replace(TMP, tmp)
    if isinstance(value, dict):
        return {_fill(k, kubeconfig, tmp): _fill(v, kubeconfig, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, kubeconfig, tmp) for v in value]
    return value


@pytest.fixture(scope="module")
def world(cluster, tmp_path_factory):
    """Argo CD's CRDs, the test namespace, an Application outside the selector, and scratch files."""
    tmp = tmp_path_factory.mktemp("bad-inputs")
    (tmp / "two.yaml").write_text(yaml.safe_dump_all([cm("ok-doc"), {"apiVersion": "v1", "kind": "ConfigMap"}]))
    (tmp / "broken-kubeconfig").write_text("apiVersion: v1\nclusters: [unclosed\n")
    (tmp / "plain.yaml").write_text("a: 1\n")
    install_argocd_crds(cluster)
    cluster.kubectl("create", "namespace", NS, check=False)
    cluster.apply(yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "bad-in-outside", "namespace": NS, "labels": {"team": "other"}},
        "spec": {"project": "default", "source": {"repoURL": REPO, "path": "x", "targetRevision": "HEAD"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": NS}}}))
    yield tmp
    cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)


@pytest.fixture(scope="module")
def module_runs(cluster, world) -> tuple[dict[str, ModuleRun], list[dict]]:
    """Every module case, four at a time, and the collection's writes the audit log saw meanwhile."""
    kubeconfig = str(cluster.kubeconfig)
    mark = cluster.audit_mark()

    def one(case: Case) -> tuple[str, ModuleRun]:
        args = _fill(case.args, kubeconfig, str(world))
        args.setdefault("kubeconfig", kubeconfig)
        return case.id, run_module(case.target, args, timeout=120)
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(pool.map(one, MODULE_CASES))
    return runs, _writes(cluster, mark)


@pytest.fixture(scope="module")
def role_runs(cluster, world, tmp_path_factory) -> tuple[dict[str, dict], list[dict], str]:
    """Every role case in one playbook, a block per case, and the writes the audit log saw meanwhile."""
    tmp = tmp_path_factory.mktemp("bad-role-inputs")
    results = tmp / "results.json"
    tasks = []
    for case in ROLE_CASES:
        _kind, role, *entry = case.target.split(":")
        include = {"name": f"ecoeco.gitops.{role}"}
        if entry:
            include["tasks_from"] = entry[0]
        tasks.append({"name": case.id, "block": [
            {"name": f"{case.id}: run the role", "ansible.builtin.include_role": include, "vars": case.args},
            {"name": f"{case.id}: the role passed", "ansible.builtin.set_fact": {
                "bad_input_results": f"{{{{ bad_input_results | combine({{'{case.id}': {{'failed': false}}}}) }}}}"}},
        ], "rescue": [
            {"name": f"{case.id}: keep the failure", "ansible.builtin.set_fact": {
                "bad_input_results": f"{{{{ bad_input_results | combine({{'{case.id}': ansible_failed_result}}) }}}}"}},
        ]})
    tasks.append({"name": "Save the results", "ansible.builtin.copy": {
        "content": "{{ bad_input_results | to_nice_json }}", "dest": str(results), "mode": "0600"}})
    playbook = tmp / "roles.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Bad role variables", "hosts": "localhost", "gather_facts": False,
        "vars": {"bad_input_results": {}, "node_labels_hosts": [], "ecoeco_kubeconfig": str(cluster.kubeconfig),
                 "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "module_defaults": {"group/ecoeco.gitops.k8s": {"kubeconfig": str(cluster.kubeconfig)}},
        "tasks": tasks}], sort_keys=False))
    mark = cluster.audit_mark()
    run = run_playbook(playbook, "localhost,", args=["-c", "local"], timeout=600)
    assert results.exists(), str(run)
    return json.loads(results.read_text()), _writes(cluster, mark), run.stdout


def _writes(cluster, mark) -> list[dict]:
    events = cluster.audit_events(since=mark, user_agent=MODULE_UA)
    return [ev for ev in audit.writes(events) if "dryRun=All" not in (ev.get("requestURI") or "")]


def _names(writes: list[dict]) -> list[str]:
    return [f"{ev['verb']} {ev.get('requestURI')}" for ev in writes]


@pytest.mark.parametrize("case", MODULE_CASES, ids=lambda c: c.id)
def test_module_refuses_bad_input(case: Case, module_runs, cluster, world):
    runs, writes = module_runs
    run = runs[case.id]
    assert run.failed, f"{case.id} was accepted: {run.result}"
    for needle in case.needles:
        assert _fill(needle, str(cluster.kubeconfig), str(world)) in run.msg, run.msg
    assert "Traceback" not in run.msg and "Traceback" not in run.stderr, run.stderr[-2000:]
    # Nothing of any case was written (dry runs of the cluster-reaching cases aside).
    assert writes == [], _names(writes)
    for path in case.absent:
        assert cluster.api.get(path, ok404=True) is None, f"{path} was created"


@pytest.mark.parametrize("case", ROLE_CASES, ids=lambda c: c.id)
def test_role_refuses_bad_variable(case: Case, role_runs):
    results, writes, stdout = role_runs
    result = results.get(case.id)
    assert result is not None, stdout[-4000:]
    assert result.get("failed"), f"{case.id} was accepted: {result}"
    msg = str(result.get("msg", ""))
    for needle in case.needles:
        assert needle in msg, msg
    assert writes == [], _names(writes)


def test_at_least_sixty_cases():
    assert len(MODULE_CASES) + len(ROLE_CASES) >= 60
