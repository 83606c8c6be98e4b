# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Secret values that arrive inside options (not as whole ``no_log`` options), masked in every output.

``no_log`` hides a whole option.  Two options of this collection hold a secret *inside* a value that must stay
readable otherwise: ``kubeconfig`` given as a dictionary (its ``users`` carry tokens, keys and passwords) and
``k8s_manifest``'s ``definition`` (the ``data`` and ``stringData`` of a Secret).  :class:`SecretMaskingModule`
finds those values as soon as the raw arguments are loaded - before the argument spec is checked, so even an
argument error or the invocation log cannot show them - and adds them, their base64 forms and their decoded
forms, to the values Ansible replaces with ``********`` in the result (``invocation.module_args`` included),
the messages and the logs.

Values shorter than :data:`MIN_MASKED` characters are not masked: masking them would blank out unrelated text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Iterable, List, Set

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.errors import UnsupportedError

try:
    import yaml
except ImportError:  # pragma: no cover - the kubernetes library requires PyYAML
    yaml = None

MIN_MASKED = 4
SECRET_FIELDS = ("data", "stringData")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _forms(value: str, encoded: bool) -> List[str]:
    """The value, its base64 and (for ``data``) its decoded text."""
    out = [value]
    try:
        out.append(base64.b64encode(value.encode("utf-8")).decode("ascii"))
    except UnicodeError:  # pragma: no cover - str always encodes
        pass
    if encoded:
        try:
            out.append(base64.b64decode(value, validate=True).decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            pass
    return out


def kubeconfig_secrets(kubeconfig: Any) -> Set[str]:
    """Every string under ``users`` of a kubeconfig given as a dictionary (tokens, keys, passwords)."""
    if not isinstance(kubeconfig, dict):
        return set()
    return set(_strings(kubeconfig.get("users")))


def manifest_secrets(definition: Any) -> Set[str]:
    """The values of every Secret in a ``definition`` (a list, a dict, or YAML text), in all their forms."""
    docs: List[Any] = []
    if isinstance(definition, str):
        if yaml is not None:
            try:
                docs = list(yaml.safe_load_all(definition))
            except yaml.YAMLError:
                docs = []
    elif isinstance(definition, dict):
        docs = [definition]
    elif isinstance(definition, list):
        docs = list(definition)
    found: Set[str] = set()
    while docs:
        doc = docs.pop()
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("items"), list):
            docs.extend(doc["items"])
        if doc.get("kind") != "Secret":
            continue
        for key in SECRET_FIELDS:
            values = doc.get(key)
            if isinstance(values, dict):
                for value in values.values():
                    if value is not None:
                        found.update(_forms(str(value), encoded=key == "data"))
    return found


def secret_values(params: dict) -> Set[str]:
    """All secret strings inside the raw module arguments, long enough to mask."""
    found = kubeconfig_secrets(params.get("kubeconfig")) | manifest_secrets(params.get("definition"))
    return {value for value in found if len(value) >= MIN_MASKED}


class SecretMaskingModule(AnsibleModule):
    """The collection's AnsibleModule.

    It masks secrets inside ``kubeconfig`` dicts and manifest Secrets everywhere, and when the arguments have
    an unsupported parameter (an option typo such as ``root_ap``) it reports that, instead of what the typo
    caused (``one of the following is required: root_app, label_selector``), which Ansible reports first.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._checking_arguments = True
        super().__init__(*args, **kwargs)
        self._checking_arguments = False

    def _load_params(self) -> None:
        super()._load_params()
        self.no_log_values.update(secret_values(self.params or {}))

    def fail_json(self, msg: str, **kwargs: Any) -> None:  # type: ignore[override]
        result = getattr(self, "validation_result", None)
        if getattr(self, "_checking_arguments", False) and result is not None:
            unsupported = [e for e in result.errors if isinstance(e, UnsupportedError)]
            if unsupported and not isinstance(result.errors[0], UnsupportedError):
                msg = f"Unsupported parameters for ({self._name}) module: {unsupported[0].msg}"
        super().fail_json(msg=msg, **kwargs)
