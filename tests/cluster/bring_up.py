"""Machines reached over SSH and the registry on their network's gateway: what every cluster test starts from.

Used by the module-scoped ``machines`` fixtures of test_site_cluster.py and
test_day2.py: the images are built by the caller (each its own release set);
this makes the machines, their SSH access and the registry, and removes them
at the end (even on a failure) unless ECOECO_CLUSTER_KEEP=1.
"""
from __future__ import annotations

import os
import shutil
import time
from typing import Callable

import pytest

from tests.cluster import registry
from tests.cluster.machines import Machines
from tests.cluster.ssh import SshAccess

PUSHED = "images pushed to the registry"


def machines_with_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                           made: Machines, images: list[str], local_repo: str,
                           before_cleanup: Callable[[], None] | None = None) -> tuple[Machines, float]:
    """Create ``made``'s machines, log in to each with a key made here, serve ``images`` on the gateway.

    Returns the machines (``ssh``, ``registry`` and ``kubeconfig`` set) and the seconds the push took.
    ``before_cleanup`` runs first at the end (a test's report of its times)."""
    served: list[registry.Registry] = []
    access = SshAccess(tmp_path_factory.mktemp("ssh"))

    def finalize() -> None:
        if before_cleanup is not None:
            before_cleanup()
        ssh_errors = access.close()  # the ControlPersist masters, by their sockets
        for running in served:
            running.stop()
            shutil.rmtree(running.workdir / "storage", ignore_errors=True)  # the log stays
        if os.environ.get("ECOECO_CLUSTER_KEEP") == "1":
            print(f"\nkept: {made.made_containers} {made.made_volumes} {made.made_network}; "
                  f"ssh -i {access.key} -o UserKnownHostsFile={access.known_hosts} debian@{made.address('cp1')}")
            return
        errors = made.destroy()
        assert not errors + ssh_errors, errors + ssh_errors

    request.addfinalizer(finalize)
    # control_plane fetches admin.conf here; the API-side phases reach the API with it.
    made.kubeconfig = tmp_path_factory.mktemp("cluster") / "admin.conf"
    access.make_key()
    made.create()
    access.authorize(made)
    access.check(made)
    made.ssh = access
    # The network's bridge (its gateway address on this machine) exists once the machines run.
    start = time.monotonic()
    served.append(registry.Registry(f"{registry.gateway(made.network)}:{registry.PORT}",
                                    tmp_path_factory.mktemp("registry")))
    served[0].start()
    served[0].push(images, local_repo)
    made.registry = served[0]
    return made, time.monotonic() - start
