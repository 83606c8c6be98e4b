"""Run ansible-playbook / ansible-inventory as a user would, and read the results."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

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
                 args: Iterable[str] = (), timeout: float = 900,
                 interrupt_when: Callable[[], bool] | None = None) -> PlaybookResult:
    """Run ``ansible-playbook`` (a path or an FQCN like ecoeco.gitops.site).

    With ``interrupt_when``, the run is interrupted as a user's Ctrl-C does (SIGINT to its PID, SIGKILL
    30 s later) the first time the predicate, asked every half second, holds: an upgrade stopped half way."""
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
    if interrupt_when is None:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=ansible_env(env), capture_output=True,
                              text=True, timeout=timeout, check=False)
        return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start,
                              parse_recap(proc.stdout))
    return _run_interrupted(cmd, env, timeout, interrupt_when, start)


def _run_interrupted(cmd: list[str], env: dict[str, str] | None, timeout: float,
                     interrupt_when: Callable[[], bool], start: float) -> PlaybookResult:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # A background job of a non-interactive shell (make ... &) inherits SIGINT ignored; the child gets
        # the default back, so Python turns the signal into KeyboardInterrupt as at a terminal.
        with subprocess.Popen(cmd, cwd=REPO_ROOT, env=ansible_env(env), stdout=out, stderr=err, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
            interrupted_at = None
            while proc.poll() is None:
                now = time.monotonic()
                if now - start > timeout:
                    proc.kill()
                    proc.wait(timeout=30)
                    raise subprocess.TimeoutExpired(cmd, timeout)
                if interrupted_at is None and interrupt_when():
                    proc.send_signal(signal.SIGINT)
                    interrupted_at = now
                elif interrupted_at is not None and now - interrupted_at > 30:
                    proc.kill()
                time.sleep(0.5)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return PlaybookResult(proc.returncode, stdout, stderr, time.monotonic() - start, parse_recap(stdout))
