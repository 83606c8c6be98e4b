"""Module documentation matches each argument spec (what validate-modules checks, fast)."""

from __future__ import annotations

import importlib

import pytest
import yaml

from ansible_collections.ecoeco.gitops.plugins.doc_fragments.k8s_auth import ModuleDocFragment

MODULES = ["argocd_root_app", "k8s_node_labels", "argocd_admin_password"]


def _doc_options(module):
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert "ecoeco.gitops.k8s_auth" in doc["extends_documentation_fragment"]
    options = dict(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(doc["options"])
    return options


def _compare(doc_opts, spec, where):
    assert set(doc_opts) == set(spec), where
    for name, opt in spec.items():
        doc = doc_opts[name]
        assert doc.get("type", "str") == opt.get("type", "str"), f"{where}.{name} type"
        assert doc.get("required", False) == opt.get("required", False), f"{where}.{name} required"
        assert doc.get("default") == opt.get("default"), f"{where}.{name} default"
        assert doc.get("choices") == opt.get("choices"), f"{where}.{name} choices"
        assert doc.get("elements") == opt.get("elements"), f"{where}.{name} elements"
        assert sorted(doc.get("aliases", [])) == sorted(opt.get("aliases", [])), f"{where}.{name} aliases"
        if "options" in opt:
            _compare(doc["suboptions"], opt["options"], f"{where}.{name}")


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_argument_spec(name):
    module = importlib.import_module(f"ansible_collections.ecoeco.gitops.plugins.modules.{name}")
    _compare(_doc_options(module), module.ARGUMENT_SPEC, name)
    assert yaml.safe_load(module.EXAMPLES)
    assert yaml.safe_load(module.RETURN)


def test_password_is_no_log():
    from ansible_collections.ecoeco.gitops.plugins.modules import argocd_admin_password
    assert argocd_admin_password.ARGUMENT_SPEC["password"]["no_log"] is True
