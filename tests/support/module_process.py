"""Run one of the collection's modules as Ansible runs it: its own Python process, arguments as JSON.

Faster than a playbook per case, and the same code path (argument spec, validation, client, exit JSON),
for tests that try many inputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tools.localcluster.versions import REPO_ROOT

COLLECTIONS = REPO_ROOT / ".collections"


@dataclass
class ModuleRun:
    """One module process: its exit JSON, its raw output and how long it ran."""

    result: dict
    stdout: str
    stderr: str
    seconds: float

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))


def run_module(name: str, args: dict[str, Any], *, check_mode: bool = False, timeout: float = 120) -> ModuleRun:
    """Run ``ecoeco.gitops.<name>`` with ``args``; the process is killed after ``timeout`` seconds."""
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": module_args}, handle)
        path = handle.name
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", f"ansible_collections.ecoeco.gitops.plugins.modules.{name}", path],
                              capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT, check=False)
    finally:
        os.unlink(path)
    seconds = time.monotonic() - start
    try:
        result = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        result = {"failed": True, "msg": f"no module JSON (rc={proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-1500:]}"}
    return ModuleRun(result, proc.stdout, proc.stderr, seconds)
