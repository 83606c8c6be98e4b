"""Run a module's ``main()`` in a process of its own, the way Ansible runs a module.

The arguments go in as a file named on the command line (``{"ANSIBLE_MODULE_ARGS":
...}``), the result comes back as the JSON the module prints: the public contract
of ``AnsibleModule`` on every ansible-core the collection claims (2.17 on), with
nothing of ansible's private test helpers, whose names change between releases.
A process of its own also keeps the controller code other test files import out
of the module's way (from 2.19 on, a module in a process that imported controller
code sends its warnings to the controller's display instead of its result).

The K8s client can be replaced by a fake: ``client`` names a function
``"package.module:function"`` that returns it, imported in the child.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

REPO_ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS = REPO_ROOT / ".collections"


def run_module_process(module: str, args: Dict[str, Any], client: Optional[str] = None,
                       timeout: float = 120) -> Dict[str, Any]:
    """Run ``plugins/modules/<module>.py`` with ``args``; return its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        args_file = Path(tmp) / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(COLLECTIONS), str(REPO_ROOT)]))
        proc = subprocess.run([sys.executable, "-m", __name__, module, str(args_file), client or ""],
                              capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp,
                              check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{module} printed no JSON (rc={proc.returncode})\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}") from None


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
