# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""``node_files_differ``: the paths a node_files run would change, judged from a read on the node."""

from __future__ import annotations

DOCUMENTATION = r"""
name: node_files_differ
short_description: Paths whose state on the node differs from what node_files would keep, from one read
version_added: "0.2.0"
description:
  - Compares the lines printed by the commands of P(ecoeco.gitops.node_files_probe#filter) with the entries a role
    passes to M(ecoeco.gitops.node_files) and returns the paths that differ - the content (sha256 of the
    rendered text), the type, and the owner, group and mode when the entry gives them, as the module compares.
  - A path the read does not vouch for - absent, a symbolic link, a line that cannot be parsed - is returned
    too, so the module runs and decides; an empty list means the module would change nothing.
options:
  _input:
    description: The read's output lines (C(stdout_lines)).
    type: list
    elements: str
    required: true
  directories:
    description: The O(ecoeco.gitops.node_files#module:directories) entries.
    type: list
    elements: dict
    default: []
  files:
    description: The O(ecoeco.gitops.node_files#module:files) entries.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Write the files only when the read found one that differs
  ecoeco.gitops.node_files:
    directories: "{{ my_directories }}"
    files: "{{ my_files }}"
  when: my_state.stdout_lines | ecoeco.gitops.node_files_differ(my_directories, my_files) | length > 0
"""

RETURN = r"""
_value:
  description: The paths that differ (directories first, then files, in the order given).
  type: list
  elements: str
"""

from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.ecoeco.gitops.plugins.module_utils.node_files_state import paths_that_differ


def node_files_differ(lines: List[str], directories: Optional[List[Mapping[str, Any]]] = None,
                      files: Optional[List[Mapping[str, Any]]] = None) -> List[str]:
    """The paths of ``directories`` and ``files`` whose state in ``lines`` is not the wanted one."""
    return paths_that_differ([str(line) for line in lines or []], directories or [], files or [])


class FilterModule:
    """ecoeco.gitops filters."""

    def filters(self) -> Dict[str, Any]:
        return {"node_files_differ": node_files_differ}
