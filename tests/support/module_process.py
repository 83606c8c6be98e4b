"""Run one of the collection's modules as Ansible runs it: its own Python process, arguments as JSON.

The arguments go in as a file named on the command line (``{"ANSIBLE_MODULE_ARGS": ...}``) and the
result comes back as the JSON the module prints: the public contract of ``AnsibleModule`` on every
ansible-core the collection claims (2.17 on), with nothing of ansible's private test helpers, whose
names change between releases. A process of its own also keeps controller code that other test files
import out of the module's way (from 2.19 on, a module in a process that imported controller code
sends its warnings to the controller's display instead of its result). Faster than a playbook per
case, and the same code path (argument spec, validation, client, exit JSON).

Unit tests may replace the K8s client by a fake: ``client`` names a function
``"package.module:function"`` that returns it, imported in the child.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
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


def run_module(name: str, args: Dict[str, Any], *, check_mode: bool = False, timeout: float = 120,
               client: Optional[str] = None) -> ModuleRun:
    """Run ``ecoeco.gitops.<name>`` with ``args``; the process is killed after ``timeout`` seconds."""
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    with tempfile.TemporaryDirectory() as tmp:
        args_file = Path(tmp) / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(COLLECTIONS), str(REPO_ROOT)]))
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "tests.support.module_process", name, str(args_file),
                               client or ""], capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=tmp, check=False)
        seconds = time.monotonic() - start
    try:
        result = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        result = {"failed": True, "msg": f"no module JSON (rc={proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-1500:]}"}
    return ModuleRun(result, proc.stdout, proc.stderr, seconds)


def _child(module: str, args_file: str, client: str) -> None:
    mod = importlib.import_module(f"ansible_collections.ecoeco.gitops.plugins.modules.{module}")
    if client:
        factory_module, factory = client.split(":")
        make = getattr(importlib.import_module(factory_module), factory)
        mod.K8sClient = lambda params: make()
    sys.argv = [mod.__file__, args_file]
    mod.main()


if __name__ == "__main__":
    _child(*sys.argv[1:4])
