"""The node_files module: one run makes directories and writes files, and a second run changes nothing."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from ansible_collections.ecoeco.gitops.plugins.modules import node_files as module
from tests.support.module_process import run_module


def run_main(args, capsys):  # pylint: disable=unused-argument
    """The module in a process of its own (the same on every ansible-core claimed)."""
    return run_module("node_files", args).result


def _args(tmp_path, content="a = 1\n", mode="0644", **extra):
    return {"directories": [{"path": str(tmp_path / "etc" / "app"), "mode": "0755"}],
            "files": [{"path": str(tmp_path / "etc" / "app" / "config.toml"), "content": content, "mode": mode}],
            **extra}


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(doc) == set(module.ARGUMENT_SPEC)
    for name, spec in module.ARGUMENT_SPEC.items():
        assert doc[name]["type"] == spec["type"] and doc[name].get("default") == spec.get("default"), name
        assert set(doc[name]["suboptions"]) == set(spec["options"]), name
        for sub, sub_spec in spec["options"].items():
            assert doc[name]["suboptions"][sub]["type"] == sub_spec["type"], (name, sub)
            assert doc[name]["suboptions"][sub].get("required", False) == sub_spec.get("required", False)
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)


def test_writes_then_reruns_unchanged(tmp_path, capsys):
    config = tmp_path / "etc" / "app" / "config.toml"
    out = run_main(_args(tmp_path), capsys)
    assert out["changed"] and out["changed_paths"] == [str(config.parent), str(config)]
    assert config.read_text() == "a = 1\n" and stat.S_IMODE(config.stat().st_mode) == 0o644
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o755
    again = run_main(_args(tmp_path), capsys)
    assert not again["changed"] and again["changed_paths"] == []


def test_fixes_the_mode_and_the_content(tmp_path, capsys):
    config = tmp_path / "etc" / "app" / "config.toml"
    run_main(_args(tmp_path), capsys)
    os.chmod(config, 0o600)
    out = run_main(_args(tmp_path), capsys)
    assert out["changed_paths"] == [str(config)] and stat.S_IMODE(config.stat().st_mode) == 0o644
    out = run_main(_args(tmp_path, content="a = 2\n", _ansible_diff=True), capsys)
    assert out["changed_paths"] == [str(config)] and config.read_text() == "a = 2\n"
    assert out["diff"] == [{"before_header": str(config), "after_header": str(config),
                            "before": "a = 1\n", "after": "a = 2\n"}]


def test_check_mode_reports_and_writes_nothing(tmp_path, capsys):
    out = run_main(_args(tmp_path, _ansible_check_mode=True), capsys)
    assert out["changed"] and not (tmp_path / "etc").exists()


@pytest.mark.parametrize("change, text", [
    ({"files": [{"path": "relative/file", "content": ""}]}, "files[0] (relative/file): path must be absolute"),
    ({"directories": [{"path": "/tmp/x", "mode": "u+rwx"}]}, "directories[0] (/tmp/x): mode must be an octal"),
])
def test_bad_input_fails_before_any_change(tmp_path, capsys, change, text):
    args = dict(_args(tmp_path), **change)
    out = run_main(args, capsys)
    assert out["failed"] and text in out["msg"]
    assert not (tmp_path / "etc").exists()


def _validated(tmp_path, content, check=False):
    """config.toml with a validate command that accepts only content starting with `a =`."""
    checker = tmp_path / "check.sh"
    checker.write_text("#!/bin/sh\necho \"checked $1\" >> \"$0.log\"\ngrep -q '^a =' \"$1\"\n")
    checker.chmod(0o755)
    args = _args(tmp_path, content=content)
    args["files"][0]["validate"] = f"{checker} %s"
    if check:
        args["_ansible_check_mode"] = True
    return args, tmp_path / "check.sh.log"


def test_validate_runs_only_when_the_content_differs(tmp_path, capsys):
    config = tmp_path / "etc" / "app" / "config.toml"
    args, log = _validated(tmp_path, "a = 1\n")
    assert run_main(args, capsys)["changed"] and config.read_text() == "a = 1\n"
    assert len(log.read_text().splitlines()) == 1
    again = run_main(args, capsys)  # converged: the validator is not run
    assert not again["changed"] and len(log.read_text().splitlines()) == 1


def test_validate_failure_leaves_the_file_as_it_was(tmp_path, capsys):
    config = tmp_path / "etc" / "app" / "config.toml"
    run_main(_args(tmp_path), capsys)
    args, _log = _validated(tmp_path, "b = 2\n")
    out = run_main(args, capsys)
    assert out["failed"] and "validate failed" in out["msg"] and config.read_text() == "a = 1\n"
    assert [p.name for p in config.parent.iterdir()] == ["config.toml"]  # no temporary file left


def test_validate_in_check_mode_checks_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "etc" / "app" / "config.toml"
    run_main(_args(tmp_path), capsys)
    args, log = _validated(tmp_path, "b = 2\n", check=True)
    out = run_main(args, capsys)
    assert out["failed"] and "validate failed" in out["msg"]
    args, log = _validated(tmp_path, "a = 3\n", check=True)
    out = run_main(args, capsys)
    assert out["changed"] and config.read_text() == "a = 1\n" and len(log.read_text().splitlines()) == 2
    assert [p.name for p in config.parent.iterdir()] == ["config.toml"]
