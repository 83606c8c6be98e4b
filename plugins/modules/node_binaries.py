#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Large binaries of a node compared with the wanted ones without hashing them on every run."""

from __future__ import annotations

DOCUMENTATION = r"""
module: node_binaries
short_description: Tell which of a node's binaries differ from the wanted ones, hashing only what changed
version_added: "0.3.0"
description:
  - Compares each of O(binaries) in O(directory) with the wanted size and SHA-256 (computed on the control
    node) and reports the ones that are missing or differ in content, owner, group or mode; the role copies
    those. A converged node costs one round trip and no hashing.
  - The SHA-256 of each binary is recorded in O(record) with the file's identity when the module first sees
    it (after a copy, for instance), with the file's size, modification and change times in nanoseconds, inode and device.
    While that identity is unchanged the recorded digest is trusted; when any part of it differs (the file
    was written, replaced, renamed over, touched or had its mode or owner changed; each of these moves the
    change time, which user space cannot set) the file is hashed again. Only a change that keeps the
    change time (setting the system clock back, writing the block device) goes unseen.
  - The output of the O(versions) commands is recorded the same way, so a converged node runs none of them;
    a binary whose identity changed runs its command again.
  - Writing the record is bookkeeping, not a change of the node; it is not reported as changed, and is not
    written in check mode.
author:
  - ecoeco platform team (@ecoeco)
attributes:
  check_mode:
    description: Reads, hashes what it must and runs the version commands; writes no record.
    support: full
  diff_mode:
    description: Nothing to show; the module changes no managed file.
    support: none
options:
  directory:
    description: Absolute path of the directory holding the binaries.
    type: path
    required: true
  binaries:
    description:
      - The wanted binaries, by file name in O(directory), each a dictionary with C(size) (bytes) and
        C(sha256) (hexadecimal); other keys are ignored, so the entries of the P(ecoeco.gitops.file_digests#lookup) lookup
        serve as they are.
    type: dict
    required: true
  owner:
    description: Wanted owner (name or uid); not compared when omitted.
    type: str
  group:
    description: Wanted group (name or gid); not compared when omitted.
    type: str
  mode:
    description: Wanted mode as an octal string, for example C("0755"); not compared when omitted.
    type: str
  record:
    description: The node's record of digests and version outputs (JSON), made with its directory when missing.
    type: path
    default: /var/lib/ecoeco/node_binaries.json
  versions:
    description:
      - Per binary name, the arguments that make it print its version, for example C(--version) for C(kubelet).
      - Run for a binary that matches the wanted one and has no recorded output for its current identity.
    type: dict
    default: {}
  units:
    description: systemd units whose C(systemctl is-enabled) answer is returned, read in the same round trip.
    type: list
    elements: str
    default: []
  stat_paths:
    description: Other paths whose existence is returned (RV(paths)), read in the same round trip.
    type: list
    elements: path
    default: []
  file_states:
    description:
      - Small files and directories whose type, mode, owner, group and (files) sha256 are returned as RV(file_lines),
        read in the same round trip, for the P(ecoeco.gitops.node_files_differ#filter) filter - so that a
        M(ecoeco.gitops.node_files) run for them is needed only when one differs.
    type: list
    elements: path
    default: []
    version_added: "0.2.0"
"""

EXAMPLES = r"""
- name: Read which of kubeadm, kubelet and kubectl differ (no hashing on a converged node)
  ecoeco.gitops.node_binaries:
    directory: /usr/local/bin
    binaries:
      kubelet: {size: 81234567, sha256: "4f1c..."}
    owner: root
    group: root
    mode: "0755"
    versions:
      kubelet: [--version]
    units: [kubelet.service]
  register: installed
"""

RETURN = r"""
differ:
  description: Names of the binaries that are missing or differ in content, owner, group or mode.
  returned: always
  type: list
  elements: str
  sample: [kubelet]
binaries:
  description: Per binary name, what was found.
  returned: always
  type: dict
  contains:
    state:
      description: C(missing), C(content) (size or digest differ), C(attributes) (owner, group or mode) or C(ok).
      type: str
    checked_by:
      description: C(record) (identity unchanged, digest taken from the record), C(hash) or C(size) (sizes differ).
      type: str
    version:
      description: Output of its O(versions) command (recorded or run now); absent when not asked or not C(ok).
      type: str
    version_failed:
      description: True when the version command failed (its output is in RV(binaries.version)).
      type: bool
  sample: {kubelet: {state: ok, checked_by: record, version: Kubernetes v1.37.2}}
units:
  description: Per unit of O(units), the answer of C(systemctl is-enabled) (C(enabled), C(disabled), C(not-found), ...).
  returned: always
  type: dict
  sample: {kubelet.service: enabled}
paths:
  description: Per path of O(stat_paths), whether it exists.
  returned: always
  type: dict
  sample: {/etc/kubernetes/kubelet.conf: true}
file_lines:
  description: The state of every path of O(file_states) that exists, in the lines of the
    P(ecoeco.gitops.node_files_probe#filter) commands (input of P(ecoeco.gitops.node_files_differ#filter)).
  returned: always
  type: list
  elements: str
  version_added: "0.2.0"
hashed:
  description: Names of the binaries this run hashed (their identity was not in the record).
  returned: always
  type: list
  elements: str
"""

import grp
import json
import os
import pwd
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ecoeco.gitops.plugins.module_utils.file_identity import identity, sha256_of
from ansible_collections.ecoeco.gitops.plugins.module_utils.node_files_state import state_lines

ARGUMENT_SPEC = {
    "directory": {"type": "path", "required": True},
    "binaries": {"type": "dict", "required": True},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "str"},
    "record": {"type": "path", "default": "/var/lib/ecoeco/node_binaries.json"},
    "versions": {"type": "dict", "default": {}},
    "units": {"type": "list", "elements": "str", "default": []},
    "stat_paths": {"type": "list", "elements": "path", "default": []},
    "file_states": {"type": "list", "elements": "path", "default": []},
}


def _uid(owner: str) -> int:
    return int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid


def _gid(group: str) -> int:
    return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid


def read_record(path: str) -> dict:
    """The record, or an empty one when it is missing or unreadable (everything is then hashed once)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if isinstance(data, dict) and isinstance(data.get("files"), dict) else {}


def write_record(path: str, files: dict) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".node_binaries-", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"files": files}, out, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _attributes_differ(st: os.stat_result, uid, gid, mode) -> bool:
    return any((uid is not None and st.st_uid != uid, gid is not None and st.st_gid != gid,
                mode is not None and stat.S_IMODE(st.st_mode) != mode))


def compare(module: AnsibleModule, record: dict) -> tuple[dict, list, bool]:
    """Each binary's state; updates ``record`` in place; returns (binaries, hashed, record_changed)."""
    params = module.params
    want_uid = _uid(params["owner"]) if params["owner"] else None
    want_gid = _gid(params["group"]) if params["group"] else None
    want_mode = int(params["mode"], 8) if params["mode"] else None
    found, hashed, touched = {}, [], False
    for name, wanted in params["binaries"].items():
        path = os.path.join(params["directory"], name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            found[name] = {"state": "missing", "checked_by": "stat"}
            continue
        if not stat.S_ISREG(st.st_mode):
            module.fail_json(msg=f"{path} exists and is not a regular file")
        entry = record.get(path)
        if st.st_size != wanted["size"]:
            found[name] = {"state": "content", "checked_by": "size"}
            continue
        if isinstance(entry, dict) and entry.get("identity") == identity(st) and entry.get("sha256"):
            digest, checked_by = entry["sha256"], "record"
        else:
            digest, checked_by = sha256_of(path), "hash"
            hashed.append(name)
            # Hashing took time: take the identity after it, and keep the digest only if nothing moved.
            after = os.stat(path)
            if identity(after) == identity(st):
                record[path] = {"identity": identity(st), "sha256": digest}
                touched = True
        if digest != wanted["sha256"]:
            found[name] = {"state": "content", "checked_by": checked_by}
        elif _attributes_differ(st, want_uid, want_gid, want_mode):
            found[name] = {"state": "attributes", "checked_by": checked_by}
        else:
            found[name] = {"state": "ok", "checked_by": checked_by}
    return found, hashed, touched


def read_versions(module: AnsibleModule, record: dict, found: dict) -> bool:
    """Version outputs of the matching binaries: recorded, or run and recorded; True when the record changed."""
    touched = False
    for name, args in module.params["versions"].items():
        if found.get(name, {}).get("state") != "ok":
            continue
        path = os.path.join(module.params["directory"], name)
        entry = record.get(path)
        argv = [path] + [str(a) for a in (args if isinstance(args, list) else [args])]
        if isinstance(entry, dict) and entry.get("version_argv") == argv and "version" in entry:
            found[name]["version"] = entry["version"]
            continue
        rc, out, err = module.run_command(argv)
        text = " ".join((out + err).split())
        found[name]["version"] = text
        if rc:
            found[name]["version_failed"] = True
        elif isinstance(entry, dict):  # recorded only with a digest of the same identity
            entry.update(version_argv=argv, version=text)
            touched = True
    return touched


def read_units(module: AnsibleModule) -> dict:
    units = {}
    for unit in module.params["units"]:
        _rc, out, err = module.run_command(["systemctl", "is-enabled", unit])
        units[unit] = " ".join((out or err).split()) or "unknown"
    return units


def main() -> None:
    """Compare, record what was hashed, read versions and units; one result."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if not os.path.isabs(params["directory"]):
        module.fail_json(msg="directory must be an absolute path")
    mode = params["mode"]
    if mode is not None and (not mode.isdigit() or any(c not in "01234567" for c in mode)):
        module.fail_json(msg=f"mode must be an octal string such as \"0755\", got {mode!r}")
    for name, wanted in params["binaries"].items():
        try:
            wanted["size"] = int(wanted["size"])
            wanted["sha256"] = str(wanted["sha256"]).lower()
        except (KeyError, TypeError, ValueError):
            module.fail_json(msg=f"binaries[{name}] needs an integer size and a sha256, got {wanted!r}")
        if "/" in name:
            module.fail_json(msg=f"binaries: {name!r} must be a file name in directory, not a path")
    record = read_record(params["record"])
    found, hashed, touched = compare(module, record)
    touched = read_versions(module, record, found) or touched
    if touched and not module.check_mode:
        try:
            write_record(params["record"], record)
        except OSError as exc:
            module.warn(f"could not write {params['record']}: {exc}; the binaries will be hashed again next run")
    module.exit_json(changed=False, differ=[n for n, f in found.items() if f["state"] != "ok"],
                     binaries=found, units=read_units(module), hashed=hashed,
                     paths={p: os.path.lexists(p) for p in params["stat_paths"]},
                     file_lines=state_lines(params["file_states"]))


if __name__ == "__main__":
    main()
