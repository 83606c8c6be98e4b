"""Every role has a README.md (Galaxy's importer refuses a role without one), generated from its spec.

A README that differs from what tests/tools/role_readme.py renders of meta/argument_specs.yml fails
here: edit the spec, then run ``python tests/tools/role_readme.py``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.tools import role_readme

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = role_readme.roles()


@pytest.mark.parametrize("role", ROLES)
def test_readme_is_generated_from_the_spec(role: str) -> None:
    path = REPO_ROOT / "roles" / role / "README.md"
    assert path.is_file(), f"roles/{role}/README.md is missing: run python tests/tools/role_readme.py"
    assert path.read_text(encoding="utf-8") == role_readme.render(role), (
        f"roles/{role}/README.md drifted from meta/argument_specs.yml: run python tests/tools/role_readme.py")


@pytest.mark.parametrize("role", ROLES)
def test_readme_names_every_option(role: str) -> None:
    text = (REPO_ROOT / "roles" / role / "README.md").read_text(encoding="utf-8")
    specs = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    for entry, spec in specs["argument_specs"].items():
        assert f"## Entry point `{entry}`" in text
        for option in spec.get("options") or {}:
            assert f"| `{option}` |" in text, f"{role}: {entry}: {option}"


def test_collection_readme_links_every_role_readme() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(roles/([a-z_]+)/README\.md\)", text))
    assert linked == set(ROLES)


def test_a_changed_spec_makes_its_readme_stale(tmp_path: Path) -> None:
    for role in ("workers", "node_labels"):
        shutil.copytree(REPO_ROOT / "roles" / role, tmp_path / "roles" / role)
    shutil.copytree(REPO_ROOT / "playbooks", tmp_path / "playbooks")  # which roles run via the API play
    assert role_readme.stale(tmp_path) == []
    spec = tmp_path / "roles" / "workers" / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("default: 6443", "default: 7443"))
    assert role_readme.stale(tmp_path) == ["workers"]
    assert "| `workers_bind_port` | int | `7443` |" in role_readme.render("workers", tmp_path)


def test_markup_becomes_markdown() -> None:
    text = role_readme.render("workers")
    assert "C(" not in text and "O(" not in text and "V(" not in text
    assert "<code>kubeadm join</code>" in text
    # A default computed by Jinja is in the text, not in the default column.
    row = next(line for line in text.splitlines() if line.startswith("| `workers_as_control_plane` |"))
    assert row.split(" | ")[2] == "" and "Default \\(computed\\)" in row
