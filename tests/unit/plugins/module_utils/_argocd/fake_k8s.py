"""A scripted stand-in for K8sClient and a fake monotonic clock (unit tests only)."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import K8sError


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: List[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Advance:
    """A step in a scripted watch stream: time passes before the next event."""

    def __init__(self, seconds: float):
        self.seconds = seconds


class WaitFor:
    """A step in a scripted stream: hold the stream (real time, at most 5 s) until ``predicate(client)``."""

    def __init__(self, predicate):
        self.predicate = predicate


class FakeClient:
    """LIST answers from ``apps``; each WATCH replays the next scripted stream.

    A stream is a list of events, ``Advance`` steps and exceptions (raised where
    they stand); a stream that runs out ends like a server-side timeout. With no
    streams left, a WATCH waits out its timeout and ends.
    """

    def __init__(self, clock: FakeClock, apps: Optional[List[dict]] = None, list_rv: str = "100",
                 configmap: Optional[dict] = None, objects: Optional[Dict[tuple, dict]] = None,
                 pods: Optional[List[dict]] = None):
        self.clock = clock
        self.apps = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in apps or []}
        self.list_rv = list_rv
        self.configmap = configmap
        self.objects = objects or {}
        self.pods = pods or []
        self.streams: List[Any] = []
        self.calls: List[tuple] = []
        self.list_errors: List[Exception] = []
        # ApplicationSets: their LIST, and scripted WATCH streams. With none left a set WATCH stays
        # open without advancing the fake clock (as a quiet real one does), so it never races the
        # Application stream; ``idle_blocks`` does the same for Application streams.
        self.sets: Dict[tuple, dict] = {}
        self.set_streams: List[Any] = []
        self.idle_blocks = False
        self.stop = threading.Event()

    # -- verbs the module uses -------------------------------------------------
    def get(self, ref, name, namespace=None):
        self.calls.append(("get", ref.plural, namespace, name))
        if ref.plural == "configmaps" and name == "argocd-cm":
            if isinstance(self.configmap, Exception):
                raise self.configmap
            return copy.deepcopy(self.configmap)
        return copy.deepcopy(self.objects.get((ref.plural, namespace, name)))

    def list(self, ref, namespace=None, label_selector=None, field_selector=None):
        self.calls.append(("list", ref.plural, namespace, label_selector))
        if ref.plural == "pods":
            wanted = dict(kv.split("=", 1) for kv in (label_selector or "").split(",") if kv)
            return {"items": [copy.deepcopy(p) for p in self.pods
                              if wanted.items() <= (p["metadata"].get("labels") or {}).items()]}
        if ref.plural == "applicationsets":
            return {"metadata": {"resourceVersion": self.list_rv},
                    "items": [copy.deepcopy(a) for a in self.sets.values()]}
        if self.list_errors:
            raise self.list_errors.pop(0)
        return {"metadata": {"resourceVersion": self.list_rv},
                "items": [copy.deepcopy(a) for a in self.apps.values()]}

    def watch(self, ref, namespace, resource_version, timeout_seconds, label_selector=None) -> Iterator[dict]:
        self.calls.append(("watch", ref.plural, namespace, resource_version, timeout_seconds))
        if ref.plural == "applicationsets" or self.idle_blocks:
            streams = self.set_streams if ref.plural == "applicationsets" else self.streams
            if not streams:
                return self._quiet()
            return self._replay(streams.pop(0))
        if not self.streams:
            def idle():
                self.clock.advance(timeout_seconds)
                return
                yield  # pragma: no cover
            return idle()
        script = self.streams.pop(0)
        if isinstance(script, Exception):
            raise script
        return self._replay(script)

    def _quiet(self):
        self.stop.wait(2.0)     # real time: the driver closes the stream when it is done
        return
        yield  # pragma: no cover

    def _replay(self, script):
        for step in script:
            if isinstance(step, WaitFor):
                end = time.monotonic() + 5
                while not step.predicate(self) and time.monotonic() < end:
                    time.sleep(0.01)
            elif isinstance(step, Advance):
                self.clock.advance(step.seconds)
            elif isinstance(step, Exception):
                raise step
            else:
                obj = step.get("object") or {}
                if step.get("type") in ("ADDED", "MODIFIED") and obj.get("kind") == "Application":
                    m = obj["metadata"]
                    self.apps[(m["namespace"], m["name"])] = obj
                if step.get("type") in ("ADDED", "MODIFIED") and obj.get("kind") == "ApplicationSet":
                    m = obj["metadata"]
                    self.sets[(m["namespace"], m["name"])] = obj
                yield copy.deepcopy(step)

    def merge_patch(self, ref, name, patch, namespace=None, dry_run=False):
        self.calls.append(("patch", ref.plural, namespace, name, patch))
        obj = self.apps[(namespace, name)]
        obj["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1000)
        return copy.deepcopy(obj)

    # -- assertions helpers ----------------------------------------------------
    def count(self, verb: str) -> int:
        return sum(1 for c in self.calls if c[0] == verb)


def dropped(message: str = "connection refused") -> K8sError:
    return K8sError(f"watch applications: stream ended: {message}", 0)
