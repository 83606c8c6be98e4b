#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Directories and small files of a node, checked and written in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
module: node_files
short_description: Keep a node's directories and small configuration files in one module run
version_added: "0.2.0"
description:
  - Makes each of O(directories) and writes each of O(files) (content rendered on the control node, for
    example with C(lookup('ansible.builtin.template', ...))), with owner, group and mode, in one module run
    on the node, the work of ten M(ansible.builtin.file) and M(ansible.builtin.template) tasks do with twenty
    connections. A converged node costs one round trip and reports no change.
  - A file is rewritten (atomically) only when its content differs; owner, group and mode are corrected
    when they differ. Directories are made with their parents.
  - For files of up to a few hundred kilobytes (the content travels as a module argument).
author:
  - ecoeco platform team (@ecoeco)
attributes:
  check_mode:
    description: Reports what would change and writes nothing.
    support: full
  diff_mode:
    description: Shows the content before and after of each file that changes.
    support: full
options:
  directories:
    description: Directories to make (with parents) and keep at their owner, group and mode, in order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: Owner (name or uid); unchanged when omitted.
        type: str
      group:
        description: Group (name or gid); unchanged when omitted.
        type: str
      mode:
        description: Mode as an octal string, for example C("0755"); unchanged when omitted.
        type: str
  files:
    description: Files to keep at their content, owner, group and mode, written after O(directories).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file; its directory must exist (list it in O(directories)).
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      owner:
        description: Owner (name or uid); unchanged when omitted.
        type: str
      group:
        description: Group (name or gid); unchanged when omitted.
        type: str
      mode:
        description: Mode as an octal string, for example C("0644"); unchanged when omitted.
        type: str
      validate:
        description:
          - A command that checks the new content before it replaces the file, C(%s) standing for a
            temporary file holding it, for example C(kubeadm config validate --config %s). Run only when the
            content differs (in check mode too, on a temporary file outside the file's directory); the file is
            left as it was when the command fails.
        type: str
"""

EXAMPLES = r"""
- name: Write containerd's config and one hosts.toml per mirrored registry
  ecoeco.gitops.node_files:
    directories:
      - {path: /etc/containerd/certs.d/docker.io, owner: root, group: root, mode: "0755"}
    files:
      - path: /etc/containerd/config.toml
        content: "{{ lookup('ansible.builtin.template', 'config.toml.j2') }}"
        owner: root
        group: root
        mode: "0644"
  register: containerd_files
"""

RETURN = r"""
changed_paths:
  description: The directories and files that were (in check mode, would be) made, written or corrected.
  returned: always
  type: list
  elements: str
  sample: ["/etc/containerd/config.toml"]
"""

import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

ENTRY = {"path": {"type": "path", "required": True}, "owner": {"type": "str"}, "group": {"type": "str"},
         "mode": {"type": "str"}}
ARGUMENT_SPEC = {
    "directories": {"type": "list", "elements": "dict", "default": [], "options": dict(ENTRY)},
    "files": {"type": "list", "elements": "dict", "default": [],
              "options": dict(ENTRY, content={"type": "str", "required": True}, validate={"type": "str"})},
}


def _file_args(entry: dict) -> dict:
    """What AnsibleModule.set_fs_attributes_if_different takes, from one entry."""
    return {"path": entry["path"], "owner": entry.get("owner"), "group": entry.get("group"),
            "mode": entry.get("mode"), "secontext": [None, None, None],
            "attributes": None}


def _check_paths(module: AnsibleModule) -> None:
    """Fail before any change when a path is relative or a mode is not octal."""
    for kind in ("directories", "files"):
        for index, entry in enumerate(module.params[kind]):
            where = f"{kind}[{index}] ({entry['path']})"
            if not os.path.isabs(entry["path"]):
                module.fail_json(msg=f"{where}: path must be absolute")
            if kind == "files" and entry.get("validate") is not None and "%s" not in entry["validate"]:
                module.fail_json(msg=f"{where}: validate must contain %s (the file to check)")
            mode = entry.get("mode")
            if mode is not None and (not mode.isdigit() or any(c not in "01234567" for c in mode)):
                module.fail_json(msg=f"{where}: mode must be an octal string such as \"0644\", got {mode!r}")


def _directory(module: AnsibleModule, entry: dict, changed: list) -> None:
    path = entry["path"]
    if os.path.isdir(path):
        if module.set_fs_attributes_if_different(_file_args(entry), False):
            changed.append(path)
        return
    if os.path.lexists(path):
        module.fail_json(msg=f"{path} exists and is not a directory", changed_paths=changed)
    changed.append(path)
    if not module.check_mode:
        os.makedirs(path)
        module.set_fs_attributes_if_different(_file_args(entry), True)


def _file(module: AnsibleModule, entry: dict, changed: list, diffs: list) -> None:
    path = entry["path"]
    wanted = to_bytes(entry["content"], errors="surrogate_or_strict")
    before = None
    if os.path.lexists(path):
        if not os.path.isfile(path):
            module.fail_json(msg=f"{path} exists and is not a regular file", changed_paths=changed)
        with open(path, "rb") as handle:
            before = handle.read()
    if before == wanted:
        if module.set_fs_attributes_if_different(_file_args(entry), False):
            changed.append(path)
        return
    changed.append(path)
    if module._diff:  # pylint: disable=protected-access
        diffs.append({"before_header": path, "after_header": path,
                      "before": "" if before is None else to_text(before, errors="surrogate_or_replace"),
                      "after": entry["content"]})
    if module.check_mode:
        if entry.get("validate"):
            handle, tmp = tempfile.mkstemp(prefix="ecoeco-validate-")
            with os.fdopen(handle, "wb") as out:
                out.write(wanted)
            try:
                _validate(module, entry, tmp, changed)
            finally:
                os.unlink(tmp)
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        module.fail_json(msg=f"{path}: directory {directory} does not exist (list it in directories)",
                         changed_paths=changed)
    handle, tmp = tempfile.mkstemp(prefix=".ecoeco-", dir=directory)
    with os.fdopen(handle, "wb") as out:
        out.write(wanted)
    if entry.get("validate"):
        _validate(module, entry, tmp, changed)  # removes tmp when it fails
    module.atomic_move(tmp, path)
    module.set_fs_attributes_if_different(_file_args(entry), True)


def _validate(module: AnsibleModule, entry: dict, tmp: str, changed: list) -> None:
    """Run the file's validate command on ``tmp``; fail (leaving the file as it was) when it fails."""
    argv = [tmp if word == "%s" else word.replace("%s", tmp) for word in shlex.split(entry["validate"])]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        if os.path.exists(tmp) and not module.check_mode:
            os.unlink(tmp)
        module.fail_json(msg=f"{entry['path']}: validate failed (rc {rc}), the file was left as it was",
                         rc=rc, stdout=out, stderr=err, changed_paths=changed[:-1])


def main() -> None:
    """Make the directories, then write the files; one result for all."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    _check_paths(module)
    changed: list = []
    diffs: list = []
    for entry in module.params["directories"]:
        _directory(module, entry, changed)
    for entry in module.params["files"]:
        _file(module, entry, changed, diffs)
    result = {"changed": bool(changed), "changed_paths": changed}
    if module._diff and diffs:  # pylint: disable=protected-access
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
