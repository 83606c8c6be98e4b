"""Unit tests of node_files_probe / node_files_differ: the probe's shell lines run for real on files here."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess

from ansible_collections.ecoeco.gitops.plugins.filter.node_files_differ import node_files_differ
from ansible_collections.ecoeco.gitops.plugins.filter.node_files_probe import node_files_probe

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def _entries(tmp_path):
    dirs = [{"path": str(tmp_path / "conf.d"), "owner": USER, "group": GROUP, "mode": "0755"}]
    files = [{"path": str(tmp_path / "conf.d" / "a.conf"), "content": "a = 1\n", "owner": USER, "group": GROUP,
              "mode": "0644"},
             {"path": str(tmp_path / "b with space.toml"), "content": "é = 'x'\n", "mode": "0600"},
             {"path": str(tmp_path / "empty"), "content": "", "owner": str(os.getuid())}]
    return dirs, files


def _converge(dirs, files):
    for d in dirs:
        os.makedirs(d["path"], exist_ok=True)
        os.chmod(d["path"], int(d["mode"], 8))
    for f in files:
        with open(f["path"], "w", encoding="utf-8") as out:
            out.write(f["content"])
        if f.get("mode"):
            os.chmod(f["path"], int(f["mode"], 8))


def _read(dirs, files):
    script = node_files_probe(dirs, files) + "\ntrue\n"
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def test_a_converged_node_differs_in_nothing(tmp_path):
    dirs, files = _entries(tmp_path)
    _converge(dirs, files)
    assert node_files_differ(_read(dirs, files), dirs, files) == []


def test_nothing_there_differs_in_everything(tmp_path):
    dirs, files = _entries(tmp_path)
    assert node_files_differ(_read(dirs, files), dirs, files) == [e["path"] for e in dirs + files]


def test_content_mode_and_owner_changes_are_found(tmp_path):
    dirs, files = _entries(tmp_path)
    _converge(dirs, files)
    with open(files[0]["path"], "a", encoding="utf-8") as out:
        out.write("# drift\n")
    os.chmod(files[1]["path"], 0o644)
    os.chmod(dirs[0]["path"], 0o700)
    assert node_files_differ(_read(dirs, files), dirs, files) == [dirs[0]["path"], files[0]["path"], files[1]["path"]]
    other = [dict(files[2], owner="someone-else")]
    assert node_files_differ(_read([], other), [], other) == [files[2]["path"]]
    other_group = [dict(files[0], content=open(files[0]["path"], encoding="utf-8").read(), group="nogroup-x")]
    assert node_files_differ(_read([], other_group), [], other_group) == [files[0]["path"]]


def test_same_content_same_size_is_still_compared_by_digest(tmp_path):
    dirs, files = _entries(tmp_path)
    _converge(dirs, files)
    with open(files[0]["path"], "w", encoding="utf-8") as out:
        out.write("a = 2\n")  # same size
    assert node_files_differ(_read(dirs, files), dirs, files) == [files[0]["path"]]


def test_a_symlink_or_a_directory_in_place_of_a_file_differs(tmp_path):
    dirs, files = _entries(tmp_path)
    _converge(dirs, files)
    target = tmp_path / "real.conf"
    target.write_text(files[0]["content"], encoding="utf-8")
    os.unlink(files[0]["path"])
    os.symlink(target, files[0]["path"])
    os.unlink(files[2]["path"])
    os.mkdir(files[2]["path"])
    assert node_files_differ(_read(dirs, files), dirs, files) == [files[0]["path"], files[2]["path"]]


def test_unparseable_or_foreign_lines_never_vouch_for_a_path(tmp_path):
    dirs, files = _entries(tmp_path)
    lines = ["node-file garbage", f"node-sha256 \\abc  {files[0]['path']}", "some other line of the read"]
    assert node_files_differ(lines, dirs, files) == [e["path"] for e in dirs + files]
    assert node_files_differ([], [], []) == []
    assert node_files_probe([], []) == ""


def test_the_modules_python_read_prints_what_the_shell_probe_prints(tmp_path):
    """node_binaries' file_states (state_lines) and node_files_probe's shell give node_files_differ the same lines."""
    from ansible_collections.ecoeco.gitops.plugins.module_utils.node_files_state import state_lines
    dirs, files = _entries(tmp_path)
    _converge(dirs, files)
    link = tmp_path / "link"
    os.symlink(files[0]["path"], link)
    paths = [e["path"] for e in dirs + files] + [str(link), str(tmp_path / "absent")]
    extra = [{"path": str(link), "content": files[0]["content"]}, {"path": str(tmp_path / "absent"), "content": ""}]
    shell = _read(dirs, files + extra)
    assert sorted(state_lines(paths)) == sorted(shell)
    assert node_files_differ(state_lines(paths), dirs, files) == []
    assert node_files_differ(state_lines(paths), [], extra) == [str(link), str(tmp_path / "absent")]
