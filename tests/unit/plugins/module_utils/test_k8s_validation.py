"""Kubernetes syntax checks used by the modules."""

from __future__ import annotations

import pytest

from ansible_collections.ecoeco.gitops.plugins.module_utils import k8s_validation as v


@pytest.mark.parametrize("value, ok", [("argocd", True), ("a-1", True), ("A", False), ("-a", False),
                                       ("a.b", False), ("x" * 63, True), ("x" * 64, False), ("", False)])
def test_dns1123_label(value, ok):
    assert (v.dns1123_label_error(value) == "") is ok


@pytest.mark.parametrize("value, ok", [("k8s-worker-1", True), ("a.b.c", True), ("a..b", False), ("A", False)])
def test_dns1123_subdomain(value, ok):
    assert (v.dns1123_subdomain_error(value) == "") is ok


@pytest.mark.parametrize("key, ok", [("workload", True), ("node.ecoeco.io/role", True),
                                     ("node-role.kubernetes.io/control-plane", True), ("a_b.C-1", True),
                                     ("/x", False), ("a/b/c", False), ("Bad_Prefix/x", False), ("x/", False),
                                     ("-x", False), ("x" * 64, False), ("", False)])
def test_qualified_name(key, ok):
    assert (v.qualified_name_error(key) == "") is ok


@pytest.mark.parametrize("value, ok", [("", True), ("database", True), ("a.b_c-D", True), ("a b", False),
                                       ("x-", False), ("x" * 64, False)])
def test_label_value(value, ok):
    assert (v.label_value_error(value) == "") is ok


@pytest.mark.parametrize("value, ok", [("5s", True), ("1m30s", True), ("1.5h", True), ("5", False),
                                       ("5 s", False), ("", False)])
def test_go_duration(value, ok):
    assert (v.go_duration_error(value) == "") is ok


def test_label_string():
    assert v.label_string(True) == "true" and v.label_string(3) == "3" and v.label_string(None) == ""
