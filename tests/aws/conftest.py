"""Fixtures for the EC2 inventory tests: one moto EC2 API on loopback per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.aws.ec2_world import MotoServer, World, build_world


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """``moto_server`` on a free 127.0.0.1 port, stopped by PID at the end."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ec2(moto: MotoServer) -> World:
    """The seed cluster's instances (and the ones to leave out), IAM enforced."""
    return build_world(moto)
