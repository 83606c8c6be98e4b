# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Whether a node already has the directories and files an ``ecoeco.gitops.node_files`` run would keep.

A role's one read on the node (a shell task) prints, with :func:`probe_command`, each path's type, mode, owner
and group (``stat``) and each file's sha256; :func:`paths_that_differ` compares that with the entries the role
would pass to ``node_files``, so that a converged node costs no ``node_files`` round trip. The comparison is
``node_files``' own (content, then owner, group and mode when given); anything the read cannot vouch for - a
path it did not print, a symbolic link, a line it cannot parse - counts as differing, and ``node_files`` runs
and decides.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shlex
import stat as stat_mod
from typing import Any, Dict, Iterable, List, Mapping, Tuple

STAT_PREFIX = "node-file "
SHA_PREFIX = "node-sha256 "


def _quoted(paths: Iterable[str]) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def probe_command(directories: List[Mapping[str, Any]], files: List[Mapping[str, Any]]) -> str:
    """Shell lines that print what :func:`paths_that_differ` reads; they never fail the shell."""
    paths = [e["path"] for e in list(directories) + list(files)]
    lines = []
    if paths:
        lines.append(f"stat -c '{STAT_PREFIX}%F|%a|%U|%G|%u|%g|%n' -- {_quoted(paths)} 2>/dev/null || :")
    if files:
        lines.append(f"sha256sum -- {_quoted(e['path'] for e in files)} 2>/dev/null | sed 's/^/{SHA_PREFIX}/' || :")
    return "\n".join(lines)


def _kind(mode: int, size: int) -> str:
    """``stat -c %F``'s words for the types that matter here."""
    if stat_mod.S_ISLNK(mode):
        return "symbolic link"
    if stat_mod.S_ISDIR(mode):
        return "directory"
    if stat_mod.S_ISREG(mode):
        return "regular empty file" if size == 0 else "regular file"
    return "other"


def _name(lookup: Any, number: int) -> str:
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def state_lines(paths: Iterable[str]) -> List[str]:
    """The lines :func:`probe_command`'s shell prints, read in Python (for a module that reads the node anyway)."""
    lines: List[str] = []
    sums: List[str] = []
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        kind = _kind(st.st_mode, st.st_size)
        lines.append(f"{STAT_PREFIX}{kind}|{stat_mod.S_IMODE(st.st_mode):o}|{_name(pwd.getpwuid, st.st_uid)}|"
                     f"{_name(grp.getgrgid, st.st_gid)}|{st.st_uid}|{st.st_gid}|{path}")
        if kind.startswith("regular") or (kind == "symbolic link" and os.path.isfile(path)):  # as sha256sum
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
            except OSError:
                continue
            sums.append(f"{SHA_PREFIX}{digest.hexdigest()}  {path}")
    return lines + sums


def _parse(lines: Iterable[str]) -> Tuple[Dict[str, List[str]], Dict[str, str]]:
    stats: Dict[str, List[str]] = {}
    sums: Dict[str, str] = {}
    for line in lines:
        if line.startswith(STAT_PREFIX):
            fields = line[len(STAT_PREFIX):].split("|", 6)
            if len(fields) == 7:
                stats[fields[6]] = fields[:6]
        elif line.startswith(SHA_PREFIX):
            digest, sep, path = line[len(SHA_PREFIX):].partition("  ")
            if sep and not digest.startswith("\\"):  # sha256sum escapes odd names with a leading backslash
                sums[path] = digest
    return stats, sums


def _attributes_differ(entry: Mapping[str, Any], stat: List[str]) -> bool:
    _kind, mode, user, group, uid, gid = stat
    if entry.get("owner") not in (None, "") and str(entry["owner"]) not in (user, uid):
        return True
    if entry.get("group") not in (None, "") and str(entry["group"]) not in (group, gid):
        return True
    if entry.get("mode") not in (None, ""):
        try:
            return int(str(entry["mode"]), 8) != int(mode, 8)
        except ValueError:
            return True
    return False


def paths_that_differ(lines: Iterable[str], directories: List[Mapping[str, Any]],
                      files: List[Mapping[str, Any]]) -> List[str]:
    """The paths of ``directories`` and ``files`` that the read does not show as wanted (in that order)."""
    stats, sums = _parse(lines)
    out: List[str] = []
    for entry in directories:
        stat = stats.get(entry["path"])
        if stat is None or stat[0] != "directory" or _attributes_differ(entry, stat):
            out.append(entry["path"])
    for entry in files:
        stat = stats.get(entry["path"])
        wanted = hashlib.sha256(str(entry["content"]).encode("utf-8", "surrogateescape")).hexdigest()
        regular = stat is not None and stat[0] in ("regular file", "regular empty file")
        if not regular or sums.get(entry["path"]) != wanted or _attributes_differ(entry, stat):
            out.append(entry["path"])
    return out
