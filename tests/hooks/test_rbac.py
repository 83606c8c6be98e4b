"""The hook ServiceAccount's RBAC, judged by the real API server's authorizer (SubjectAccessReview).

Allowed: exactly the verbs the presync/postsync playbooks use. Denied:
secrets anywhere, pods/exec, RBAC objects, token minting, impersonation,
and anything cluster-admin-like.
"""

from __future__ import annotations

import pytest

from tests.hooks import hookenv

pytestmark = pytest.mark.hooks

ARGOCD = hookenv.HOOK_NAMESPACE
# (verb, group, resource, namespace, name, subresource)
ALLOWED = [
    ("get", "", "nodes", None, "k8s-postgresql", None),
    ("list", "", "nodes", None, None, None),
    ("patch", "", "nodes", None, "k8s-postgresql", None),
    ("get", "", "namespaces", None, "data", None),
    ("create", "", "namespaces", None, None, None),
    ("patch", "", "namespaces", None, "data", None),
    ("get", "argoproj.io", "applications", ARGOCD, "root-app", None),
    ("list", "argoproj.io", "applications", ARGOCD, None, None),
    ("watch", "argoproj.io", "applications", ARGOCD, None, None),
    ("patch", "argoproj.io", "applications", ARGOCD, "databases", None),
    ("list", "argoproj.io", "applicationsets", ARGOCD, None, None),
    ("watch", "argoproj.io", "applicationsets", ARGOCD, None, None),
    ("get", "", "configmaps", ARGOCD, "argocd-cm", None),
]
DENIED = [
    # secrets, in any namespace and cluster-wide
    *[(verb, "", "secrets", ns, None, None)
      for ns in (ARGOCD, "default", "kube-system", "data", None) for verb in ("get", "list", "watch")],
    ("create", "", "secrets", ARGOCD, None, None),
    ("get", "", "secrets", ARGOCD, "argocd-secret", None),
    # exec/attach into pods, creating pods
    *[(verb, "", "pods", ns, "x", sub)
      for ns in (ARGOCD, "default", "kube-system") for verb in ("create", "get") for sub in ("exec", "attach")],
    ("create", "", "pods", ARGOCD, None, None),
    ("delete", "", "pods", ARGOCD, "x", None),
    # RBAC objects and privilege escalation
    *[(verb, "rbac.authorization.k8s.io", res, ns, None, None)
      for verb in ("create", "update", "patch", "delete")
      for res, ns in (("clusterroles", None), ("clusterrolebindings", None), ("roles", ARGOCD), ("rolebindings", ARGOCD))],
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", None, "ecoeco-gitops-hook", None),
    ("bind", "rbac.authorization.k8s.io", "clusterroles", None, "cluster-admin", None),
    ("create", "", "serviceaccounts", ARGOCD, "argocd-application-controller", "token"),
    ("impersonate", "", "users", None, "admin", None),
    ("impersonate", "", "serviceaccounts", ARGOCD, "argocd-application-controller", None),
    # cluster-admin-like and outside the grant
    ("*", "*", "*", None, None, None),
    ("*", "", "nodes", None, None, None),
    ("delete", "", "nodes", None, "k8s-postgresql", None),
    ("update", "", "nodes", None, "k8s-postgresql", None),
    ("create", "", "nodes", None, None, None),
    ("get", "", "nodes", None, "k8s-postgresql", "proxy"),
    ("patch", "", "nodes", None, "k8s-postgresql", "status"),
    ("delete", "", "namespaces", None, "data", None),
    ("list", "", "namespaces", None, None, None),
    ("create", "argoproj.io", "applications", ARGOCD, None, None),
    ("delete", "argoproj.io", "applications", ARGOCD, "root-app", None),
    ("update", "argoproj.io", "applications", ARGOCD, "root-app", None),
    ("get", "argoproj.io", "applications", "default", "root-app", None),
    ("patch", "argoproj.io", "applications", "default", "root-app", None),
    ("get", "argoproj.io", "appprojects", ARGOCD, "default", None),
    ("create", "argoproj.io", "applicationsets", ARGOCD, None, None),
    ("patch", "argoproj.io", "applicationsets", ARGOCD, "apis", None),
    ("list", "argoproj.io", "applicationsets", "default", None, None),
    ("get", "", "configmaps", ARGOCD, "argocd-rbac-cm", None),
    ("list", "", "configmaps", ARGOCD, None, None),
    ("patch", "", "configmaps", ARGOCD, "argocd-cm", None),
    ("get", "", "configmaps", "kube-system", "argocd-cm", None),
    ("create", "apps", "deployments", "api", None, None),
    ("create", "batch", "jobs", ARGOCD, None, None),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", None, None, None),
    ("create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", None, None, None),
]


def _id(case: tuple) -> str:
    verb, group, resource, ns, name, sub = case
    res = f"{resource}/{sub}" if sub else resource
    return f"{verb} {group + '/' if group else ''}{res}{' ns=' + ns if ns else ''}{' ' + name if name else ''}"


@pytest.mark.parametrize("case", ALLOWED, ids=_id)
def test_hook_may(admin, hook_rbac, case) -> None:
    verb, group, resource, ns, name, sub = case
    assert hookenv.can(admin, hookenv.HOOK_SA, verb, resource, group, ns, name, sub), f"denied: {_id(case)}"


@pytest.mark.parametrize("case", DENIED, ids=_id)
def test_hook_may_not(admin, hook_rbac, case) -> None:
    verb, group, resource, ns, name, sub = case
    assert not hookenv.can(admin, hookenv.HOOK_SA, verb, resource, group, ns, name, sub), f"allowed: {_id(case)}"


def test_authorizer_is_not_trivially_denying(admin, hook_rbac) -> None:
    """The same review for a cluster admin is allowed, so a 'denied' above is the hook's RBAC speaking."""
    review = admin.create(hookenv.SAR, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "admin", "groups": ["system:masters"],
                 "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": ARGOCD}},
    })
    assert review["status"]["allowed"] is True
