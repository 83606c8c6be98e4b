# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""``node_files_probe``: shell lines that read what a node_files run would compare."""

from __future__ import annotations

DOCUMENTATION = r"""
name: node_files_probe
short_description: Shell lines that print the state of the paths a node_files run keeps
version_added: "0.2.0"
description:
  - Returns shell lines (C(stat) of every path, C(sha256sum) of every file, each line prefixed) for a role's one
    read on the node, so that P(ecoeco.gitops.node_files_differ#filter) can tell from that read whether
    M(ecoeco.gitops.node_files) has anything to do - a converged node then costs no round trip for its files.
  - The lines never fail the shell; a path that does not exist prints nothing (and so counts as differing).
options:
  _input:
    description: The O(ecoeco.gitops.node_files#module:directories) entries (C(path) is read).
    type: list
    elements: dict
    required: true
  files:
    description: The O(ecoeco.gitops.node_files#module:files) entries (C(path) is read).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Read the node, the files of the role included
  ansible.builtin.shell:
    cmd: |
      {{ my_directories | ecoeco.gitops.node_files_probe(my_files) }}
      true
  register: my_state
  changed_when: false
  check_mode: false
"""

RETURN = r"""
_value:
  description: Shell lines, one command a line.
  type: str
"""

from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.ecoeco.gitops.plugins.module_utils.node_files_state import probe_command


def node_files_probe(directories: List[Mapping[str, Any]],
                     files: Optional[List[Mapping[str, Any]]] = None) -> str:
    """Shell lines printing the type, mode, owner and group of every path and the sha256 of every file."""
    return probe_command(directories or [], files or [])


class FilterModule:
    """ecoeco.gitops filters."""

    def filters(self) -> Dict[str, Any]:
        return {"node_files_probe": node_files_probe}
