"""file_digests: each artifact hashed once per version of the file, on the control node."""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.ecoeco.gitops.plugins.lookup import file_digests


def test_hashes_once_then_reads_the_cache_and_rehashes_a_changed_file(tmp_path, monkeypatch):
    art = tmp_path / "kubelet"
    art.write_bytes(b"v1")
    cache = tmp_path / "cache" / "digests.json"
    calls = []
    real = file_digests.sha256_of
    monkeypatch.setattr(file_digests, "sha256_of", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(file_digests, "_SEEN", {})
    missing = str(tmp_path / "absent")
    out = file_digests.digests([str(art), missing], str(cache))
    assert out == [{"path": str(art), "exists": True, "size": 2, "sha256": hashlib.sha256(b"v1").hexdigest(),
                    "mode": "%04o" % (art.stat().st_mode & 0o7777)},
                   {"path": missing, "exists": False}]
    assert len(calls) == 1 and str(art) in json.loads(cache.read_text())
    monkeypatch.setattr(file_digests, "_SEEN", {})  # a new ansible-playbook process: the cache file serves
    assert file_digests.digests([str(art)], str(cache))[0]["sha256"] == out[0]["sha256"] and len(calls) == 1
    before = art.stat()
    art.write_bytes(b"v2")  # same size, mtime put back: the change time moved
    os.utime(art, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = file_digests.digests([str(art)], str(cache))
    assert again[0]["sha256"] == hashlib.sha256(b"v2").hexdigest() and len(calls) == 2


def test_without_a_cache_file_only_this_process_remembers(tmp_path, monkeypatch):
    art = tmp_path / "kubeadm"
    art.write_bytes(b"x" * 10)
    monkeypatch.setattr(file_digests, "_SEEN", {})
    assert file_digests.digests([str(art)], "")[0]["size"] == 10
    assert str(art.resolve()) in file_digests._SEEN and not list(tmp_path.glob("*.json"))
