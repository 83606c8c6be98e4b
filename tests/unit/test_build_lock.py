"""tools/localcluster/build.py: concurrent runs build one component once, into one directory.

The recipe is a fake that writes its binary and counts its calls (no Go);
what is real is the lock (``flock`` on a file in the cache dir, as two
processes would take it) and ``ensure``'s check, under the lock, that another
run did not build the component meanwhile.
"""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest

from tools.localcluster import build


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """A component ``fake`` whose recipe takes 0.5 s; the cache is under tmp_path."""
    monkeypatch.setenv("ECOECO_CACHE", str(tmp_path / "cache"))
    calls: list[float] = []

    def recipe(comp: build.Component, work: Path, out: Path) -> None:  # noqa: ARG001
        calls.append(time.monotonic())
        time.sleep(0.5)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fake").write_text("#!/bin/sh\n", encoding="utf-8")

    comp = build.Component("fake", "v1.0.0", ("fake",), recipe)
    monkeypatch.setattr(build, "components", lambda: {"fake": comp})
    return {"comp": comp, "calls": calls}


def test_two_concurrent_ensures_build_once(fake: dict) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            build.ensure("fake", log=lambda _msg: None)
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run), threading.Thread(target=run)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert len(fake["calls"]) == 1
    assert fake["comp"].built()
    assert not fake["comp"].bin_dir.with_name(fake["comp"].bin_dir.name + ".partial").exists()


def test_ensure_waits_for_a_lock_another_process_holds(fake: dict) -> None:
    """A holder of the lock file (as another process's build would be) delays the build until it lets go."""
    lock = build.cache_dir() / "locks" / "fake.lock"
    lock.parent.mkdir(parents=True)
    messages: list[str] = []
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=build.ensure, args=("fake",), kwargs={"log": messages.append})
        worker.start()
        time.sleep(1.0)
        assert not fake["calls"], "built while another run held the lock"
        released = time.monotonic()
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=30)
    assert fake["calls"] and fake["calls"][0] >= released
    assert any("another run is building it" in m for m in messages), messages


def test_a_lock_held_too_long_fails_naming_the_component(fake: dict) -> None:
    lock = build.cache_dir() / "locks" / "fake.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(build.BuildError, match="building fake: .*still locked"):
            with build.component_lock("fake", log=lambda _msg: None, timeout=0.5):
                pass
    assert not fake["calls"]


def test_previous_kubernetes_builds_under_its_own_lock_into_the_version_dir(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """kubernetes_previous (versions.yml) is cached as kubernetes-<version>, like the current
    release, but a run holding the ``kubernetes`` lock does not stop it from building."""
    monkeypatch.setenv("ECOECO_CACHE", str(tmp_path / "cache"))
    real = build.components()
    prev, cur = real["kubernetes_previous"], real["kubernetes"]
    assert prev.version == build.VERSIONS["kubernetes_previous"] != cur.version
    assert prev.bin_dir.name == f"kubernetes-{prev.version}"
    assert prev.work_dir.name == f"kubernetes-{prev.version}"
    assert prev.binaries == cur.binaries and prev.recipe is cur.recipe
    built: list[str] = []

    def recipe(comp: build.Component, work: Path, out: Path) -> None:  # noqa: ARG001
        built.append(comp.version)
        out.mkdir(parents=True, exist_ok=True)
        for name in comp.binaries:
            (out / name).write_text("#!/bin/sh\n", encoding="utf-8")

    fast = build.Component(prev.name, prev.version, prev.binaries, recipe, family=prev.family,
                           on_demand=prev.on_demand)
    monkeypatch.setattr(build, "components", lambda: {**real, prev.name: fast})
    lock = build.cache_dir() / "locks" / "kubernetes.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("w") as held:  # another run building the current release
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=build.ensure, args=("kubernetes_previous",),
                                  kwargs={"log": lambda _msg: None})
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "kubernetes_previous waited for the kubernetes lock"
    assert built == [prev.version]
    assert (tmp_path / "cache" / "bin" / f"kubernetes-{prev.version}" / "kubeadm").is_file()


def test_a_plain_build_leaves_the_on_demand_components_out(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(build, "ensure", lambda name, log=print: asked.append(name))
    assert build.main([]) == 0
    assert "kubernetes_previous" not in asked and "kubernetes" in asked
    asked.clear()
    assert build.main(["kubernetes_previous"]) == 0
    assert asked == ["kubernetes_previous"]
