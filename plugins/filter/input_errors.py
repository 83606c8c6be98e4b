# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""``input_errors``: a module's own input validation, run by a role on its variables, naming the variables."""

from __future__ import annotations

DOCUMENTATION = r"""
name: input_errors
short_description: Check role variables with a module's own validation, naming the role variables
version_added: "0.2.0"
description:
  - Runs the input validation of one of this collection's modules (the same code the module runs before its first
    request) on options given as a dictionary, and returns the errors with each option name replaced by the role
    variable that set it, so a role fails naming C(argocd_wait_timeout), not C(wait_timeout).
  - Roles call it in one C(ansible.builtin.fail) task at their top for what C(meta/argument_specs.yml) cannot express
    (positive finite timeouts, ranges, URLs, paths, prefixes); the task is skipped when the list is empty.
options:
  _input:
    description: The module options to check, option name to value.
    type: dict
    required: true
  module:
    description: The module whose validation runs.
    type: str
    required: true
    choices: [argocd_admin_password, argocd_root_app, argocd_sync_waves, k8s_manifest, k8s_node_labels]
  variables:
    description: Option name to role variable name, for the messages.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Refuse role variables the argument spec cannot check
  ansible.builtin.fail:
    msg: "{{ _errors | join('; ') }}"
  when: _errors | length > 0
  vars:
    _errors: >-
      {{ {'wait_timeout': argocd_wait_timeout}
         | ecoeco.gitops.input_errors('k8s_manifest', {'wait_timeout': 'argocd_wait_timeout'}) }}
"""

RETURN = r"""
_value:
  description: The error messages, empty when every option is valid.
  type: list
  elements: str
"""

import re
from typing import Any, Callable, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.ecoeco.gitops.plugins.module_utils import node_labels
from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd import admin_password, root_app, sync_waves
from ansible_collections.ecoeco.gitops.plugins.module_utils.errors import ValidationError
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_validation import seconds_error


def _manifest(params: Dict[str, Any]) -> None:
    errors = [f"{key}: {seconds_error(params[key])}" for key in ("crd_timeout", "wait_timeout")
              if key in params and seconds_error(params[key])]
    if errors:
        raise ValidationError("; ".join(errors))


def _node_labels(params: Dict[str, Any]) -> None:
    node_labels.validate(dict({"nodes": {}}, **params))


def _sync_waves(params: Dict[str, Any]) -> None:
    defaults = {"namespace": "argocd", "label_selector": None, "expected_apps": [], "target_revision": None,
                "wave_timeout": 600.0, "timeout": 1800.0, "slice_seconds": None, "progress": None,
                "junit_file": None, "report_file": None}
    merged = dict(defaults, **{k: (None if v == "" else v) for k, v in params.items()})
    for key in ("wave_timeout", "timeout", "slice_seconds"):
        if isinstance(merged[key], int) and not isinstance(merged[key], bool):
            merged[key] = float(merged[key])
    if merged["slice_seconds"] == 0:
        merged["slice_seconds"] = None  # the role's progress interval 0 means one call
    sync_waves.validate(merged)


def _root_app(params: Dict[str, Any]) -> None:
    root_app.validate(dict({"state": "present", "namespace": "argocd", "project": "default",
                            "target_revision": "HEAD"}, **params))


def _admin_password(params: Dict[str, Any]) -> None:
    if params.get("password"):  # the roles skip the task for an empty password
        admin_password.validate(params)


CHECKS: Dict[str, Callable[[Dict[str, Any]], None]] = {
    "argocd_admin_password": _admin_password,
    "argocd_root_app": _root_app,
    "argocd_sync_waves": _sync_waves,
    "k8s_manifest": _manifest,
    "k8s_node_labels": _node_labels,
}


def rename_options(message: str, variables: Mapping[str, str]) -> str:
    """Replace option names where a message names them (a word before ':', ' (', '.', ' must', ' is')."""
    if not variables:
        return message
    names = "|".join(re.escape(name) for name in sorted(variables, key=len, reverse=True))
    pattern = re.compile(rf"(^|[ ;:])({names})(?=:| \(|\.| must| is)")
    message = pattern.sub(lambda m: m.group(1) + variables[m.group(2)], message)
    return re.sub(rf"\b({names})=", lambda m: variables[m.group(1)] + "=", message)


NUMERIC = ("wave_timeout", "timeout", "slice_seconds", "crd_timeout", "wait_timeout")


def _number(key: str, value: Any) -> Any:
    """A templated number arrives as text on older ansible-core: read it as the module's float would."""
    if key in NUMERIC and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if key == "parallelism" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def input_errors(params: Mapping[str, Any], module: str,
                 variables: Optional[Mapping[str, str]] = None) -> List[str]:
    """The module's validation errors for ``params``, option names replaced by ``variables``."""
    if module not in CHECKS:
        raise AnsibleFilterError(f"input_errors: unknown module {module!r} (one of {', '.join(sorted(CHECKS))})")
    if not isinstance(params, Mapping):
        raise AnsibleFilterError("input_errors: the input must be a dictionary of module options")
    try:
        CHECKS[module]({key: _number(key, value) for key, value in params.items()})
    except ValidationError as exc:
        return [rename_options(part, variables or {}) for part in str(exc).split("; ")]
    return []


class FilterModule:
    """ecoeco.gitops filters."""

    def filters(self) -> Dict[str, Any]:
        return {"input_errors": input_errors}
