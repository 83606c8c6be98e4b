"""Run ansible-playbook / ansible-inventory as a user would, and read the results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tools.localcluster.versions import REPO_ROOT

VENV_BIN = REPO_ROOT / ".venv" / "bin"


def ansible_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ansible-* commands: this checkout's collection, the venv first."""
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO_ROOT / ".collections")
    env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    if extra:
        env.update(extra)
    return env


@dataclass
class PlaybookResult:
    """Outcome of one ansible-playbook run."""

    rc: int
    stdout: str
    stderr: str
    seconds: float
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(h.get("changed", 0) for h in self.recap.values())

    @property
    def failed(self) -> int:
        return sum(h.get("failed", 0) + h.get("unreachable", 0) for h in self.recap.values())

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:  # shown by pytest on assertion failures
        return f"rc={self.rc} recap={self.recap}\n--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-3000:]}"


_RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                    r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.MULTILINE)


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
    return {m.group(1): dict(zip(keys, map(int, m.groups()[1:]))) for m in _RECAP.finditer(stdout)}


def run_playbook(playbook: str | Path, inventory: str | Path | None = None, *,
                 extra_vars: dict[str, Any] | None = None, check: bool = False,
                 diff: bool = False, limit: str | None = None, tags: str | None = None,
                 verbosity: int = 0, env: dict[str, str] | None = None,
                 args: Iterable[str] = (), timeout: float = 900) -> PlaybookResult:
    """Run ``ansible-playbook`` (a path or an FQCN like ecoeco.gitops.site)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    if inventory:
        cmd += ["-i", str(inventory)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    cmd += list(args)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=ansible_env(env), capture_output=True,
                          text=True, timeout=timeout, check=False)
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start,
                          parse_recap(proc.stdout))
