# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Size and SHA-256 of files on the control node, hashed once per file version."""

from __future__ import annotations

DOCUMENTATION = r"""
name: file_digests
short_description: Size and SHA-256 of files on the control node, hashed once per version of each file
version_added: "0.3.0"
description:
  - Returns, for each path given, a dictionary with C(path), C(exists), C(size), C(sha256) and C(mode).
  - A file is hashed once per version; the digest is kept in memory for the run and in O(cache_file) with the
    file's identity (size, modification and change times in nanoseconds, inode, device); while that identity
    is unchanged the kept digest is returned without reading the file. Any write, replacement or touch of the
    file moves its change time, so it is hashed again.
  - For the artifacts a role copies to every node (M(ecoeco.gitops.node_binaries) compares them on the
    node), where hashing hundreds of megabytes per host and per run would dominate a converged rerun.
author:
  - ecoeco platform team (@ecoeco)
options:
  _terms:
    description: Paths of files on the control node.
    type: list
    elements: path
    required: true
  cache_file:
    description:
      - JSON file keeping digests between runs; an empty string keeps them for this run only.
      - Default C($XDG_CACHE_HOME/ecoeco-gitops/file_digests.json), C(~/.cache/...) without XDG_CACHE_HOME.
    type: str
"""

EXAMPLES = r"""
- name: Digests of the artifacts, once for every host of the play
  ansible.builtin.set_fact:
    kubeadm_artifact_digests: "{{ lookup('ecoeco.gitops.file_digests', *paths, wantlist=True) }}"
  run_once: true
  vars:
    paths: "{{ ['kubeadm', 'kubelet'] | map('regex_replace', '^', '/srv/artifacts/') | list }}"
"""

RETURN = r"""
_raw:
  description: One dictionary per path, in order.
  type: list
  elements: dict
  contains:
    path:
      description: The path as given.
      type: str
    exists:
      description: Whether it is a regular file.
      type: bool
    size:
      description: Size in bytes (absent when it does not exist).
      type: int
    sha256:
      description: SHA-256, hexadecimal (absent when it does not exist).
      type: str
    mode:
      description: Permission bits as an octal string such as C(0600) (absent when it does not exist).
      type: str
"""

import json
import os
import stat
import tempfile

from ansible.plugins.lookup import LookupBase
from ansible_collections.ecoeco.gitops.plugins.module_utils.file_identity import identity, sha256_of

# Digests of this controller process, by real path: (identity, sha256).
_SEEN: dict = {}


def _mode(st: os.stat_result) -> str:
    return "%04o" % stat.S_IMODE(st.st_mode)


def default_cache_file() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ecoeco-gitops", "file_digests.json")


def _load(cache_file: str) -> dict:
    try:
        with open(cache_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(cache_file: str, data: dict) -> None:
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".file_digests-", dir=os.path.dirname(cache_file))
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a cache only: the next run hashes again


def digests(paths: list, cache_file: str) -> list:
    """Size and SHA-256 of each path, hashing only files whose identity is not kept."""
    kept = _load(cache_file) if cache_file else {}
    dirty = False
    out = []
    for path in paths:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError:
            out.append({"path": path, "exists": False})
            continue
        if not os.path.isfile(real):
            out.append({"path": path, "exists": False})
            continue
        ident = identity(st)
        for source in (_SEEN, kept):
            entry = source.get(real)
            if isinstance(entry, (list, tuple)) and len(entry) == 2 and list(entry[0]) == ident:
                sha = entry[1]
                break
        else:
            sha = sha256_of(real)
            if identity(os.stat(real)) != ident:  # written while read: do not keep it
                out.append({"path": path, "exists": True, "size": st.st_size, "sha256": sha, "mode": _mode(st)})
                continue
        _SEEN[real] = (ident, sha)
        if kept.get(real) != [ident, sha]:
            kept[real] = [ident, sha]
            dirty = True
        out.append({"path": path, "exists": True, "size": st.st_size, "sha256": sha, "mode": _mode(st)})
    if dirty and cache_file:
        _save(cache_file, kept)
    return out


class LookupModule(LookupBase):
    """lookup('ecoeco.gitops.file_digests', *paths, cache_file=...)."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        cache_file = self.get_option("cache_file")
        if cache_file is None:
            cache_file = default_cache_file()
        return digests([str(t) for t in terms], os.path.expanduser(cache_file) if cache_file else "")
