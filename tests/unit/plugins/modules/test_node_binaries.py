"""node_binaries: a converged node is neither hashed nor asked for versions; any real change is seen.

The fast path trusts a digest recorded with the file's identity (size, mtime and ctime in ns, inode,
device). These tests replace a binary in the ways a drift happens - another version of a different
size, one of the same size written in place, one of the same size with its mtime set back to the
recorded one, a rename over it, a chmod - and check that each is hashed again and reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

import yaml

from ansible_collections.ecoeco.gitops.plugins.modules import node_binaries as module
from tests.support.module_process import run_module

V1 = b"#!/bin/sh\necho 'Kubernetes v1.37.2'\n"
V2 = b"#!/bin/sh\necho 'Kubernetes v1.37.3'\n"  # same size as V1, another version


def _want(content: bytes) -> dict:
    return {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def _install(directory, content: bytes, name="kubelet") -> None:
    path = directory / name
    path.write_bytes(content)
    path.chmod(0o755)


def _run(tmp_path, want=V1, **extra):
    args = {"directory": str(tmp_path / "bin"), "binaries": {"kubelet": dict(_want(want), path="ignored")},
            "mode": "0755", "record": str(tmp_path / "state" / "node_binaries.json"),
            "versions": {"kubelet": []}, **extra}
    out = run_module("node_binaries", args).result
    assert not out.get("failed"), out
    return out


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(doc) == set(module.ARGUMENT_SPEC)
    for name, spec in module.ARGUMENT_SPEC.items():
        assert doc[name]["type"] == spec["type"] and doc[name].get("default") == spec.get("default"), name
        assert doc[name].get("required", False) == spec.get("required", False), name
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)


def test_missing_then_hashed_once_then_read_from_the_record(tmp_path):
    (tmp_path / "bin").mkdir()
    out = _run(tmp_path)
    assert out["differ"] == ["kubelet"] and out["binaries"]["kubelet"]["state"] == "missing"
    assert not out["changed"]
    _install(tmp_path / "bin", V1)
    first = _run(tmp_path)
    assert first["differ"] == [] and first["hashed"] == ["kubelet"]
    assert first["binaries"]["kubelet"] == {"state": "ok", "checked_by": "hash", "version": "Kubernetes v1.37.2"}
    record = json.loads((tmp_path / "state" / "node_binaries.json").read_text())["files"]
    assert record[str(tmp_path / "bin" / "kubelet")]["version"] == "Kubernetes v1.37.2"
    again = _run(tmp_path)
    assert again["hashed"] == [] and again["binaries"]["kubelet"]["checked_by"] == "record"
    assert again["binaries"]["kubelet"]["version"] == "Kubernetes v1.37.2" and not again["changed"]


def test_another_version_of_another_size_is_seen_by_its_size(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    _run(tmp_path)
    _install(tmp_path / "bin", V1 + b"# longer\n")
    out = _run(tmp_path)
    assert out["differ"] == ["kubelet"] and out["binaries"]["kubelet"] == {"state": "content", "checked_by": "size"}


def test_same_size_written_in_place_is_hashed_again(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    _run(tmp_path)
    _install(tmp_path / "bin", V2)  # same inode, same size
    out = _run(tmp_path)
    assert out["differ"] == ["kubelet"] and out["hashed"] == ["kubelet"]
    assert out["binaries"]["kubelet"]["state"] == "content"


def test_same_size_with_the_recorded_mtime_put_back_is_hashed_again(tmp_path):
    """What defeats a size+mtime check: the change time still moves, so the record is not trusted."""
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    _run(tmp_path)
    path = tmp_path / "bin" / "kubelet"
    before = path.stat()
    path.write_bytes(V2)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size
    out = _run(tmp_path)
    assert out["differ"] == ["kubelet"] and out["hashed"] == ["kubelet"]


def test_renamed_over_and_back_to_the_wanted_version(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    _run(tmp_path)
    _install(tmp_path, V2, name="new")
    os.replace(tmp_path / "new", tmp_path / "bin" / "kubelet")
    assert _run(tmp_path)["differ"] == ["kubelet"]
    # The wanted one is now V2: hashed (identity unknown), recorded, its version read again.
    out = _run(tmp_path, want=V2)
    assert out["differ"] == [] and out["binaries"]["kubelet"]["version"] == "Kubernetes v1.37.3"
    assert _run(tmp_path, want=V2)["binaries"]["kubelet"]["checked_by"] == "record"


def test_mode_is_compared_and_a_chmod_back_rehashes(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    _run(tmp_path)
    (tmp_path / "bin" / "kubelet").chmod(0o700)
    out = _run(tmp_path)
    assert out["differ"] == ["kubelet"] and out["binaries"]["kubelet"]["state"] == "attributes"
    (tmp_path / "bin" / "kubelet").chmod(0o755)
    out = _run(tmp_path)
    assert out["differ"] == [] and out["hashed"] == ["kubelet"]
    assert stat.S_IMODE((tmp_path / "bin" / "kubelet").stat().st_mode) == 0o755


def test_a_failing_version_command_is_reported_and_not_recorded(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", b"#!/bin/sh\necho broken >&2; exit 3\n")
    content = (tmp_path / "bin" / "kubelet").read_bytes()
    out = _run(tmp_path, want=content)
    assert out["binaries"]["kubelet"]["version_failed"] and out["binaries"]["kubelet"]["version"] == "broken"
    record = json.loads((tmp_path / "state" / "node_binaries.json").read_text())["files"]
    assert "version" not in record[str(tmp_path / "bin" / "kubelet")]


def test_check_mode_writes_no_record(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    out = _run(tmp_path, _ansible_check_mode=True)
    assert out["differ"] == [] and not (tmp_path / "state").exists()


def test_units_and_paths_are_read_in_the_same_run(tmp_path):
    (tmp_path / "bin").mkdir()
    _install(tmp_path / "bin", V1)
    (tmp_path / "kubelet.conf").write_text("x")
    out = _run(tmp_path, stat_paths=[str(tmp_path / "kubelet.conf"), str(tmp_path / "absent")])
    assert out["paths"] == {str(tmp_path / "kubelet.conf"): True, str(tmp_path / "absent"): False}
    assert out["units"] == {}
