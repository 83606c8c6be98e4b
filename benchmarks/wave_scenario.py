"""N Argo CD Applications in 4 waves under a root app, and a driver that flips them.

Two shapes: the root lists the N apps itself (``create``), or it lists 4
ApplicationSets, one per wave, that generate the N apps (``create(...,
appsets=True)``: each app has a controller ownerReference to its set's real
uid, each set lists its apps in ``status.resources``), as the seeds' cluster
ships its APIs and workers.

The driver plays the application controller: it waits until the contender is
looking at Applications (its first request on ``applications`` in the audit
log), then marks each wave Synced (to the root's revision, comparison current)
and Healthy, wave after wave, ``gap`` seconds apart.  The flip time of a wave is
when the driver sent the PATCH of its last app (monotonic clock, with the matching
wall-clock time to compare with what contenders report).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import wait_until

NAMESPACE = "argocd"
ROOT = "root"
REPO = "https://git.example.invalid/platform/gitops.git"
TARGET = "main"
REVISION = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
WAVE_LABEL = "bench.ecoeco.io/wave"
WAVES = (0, 1, 2, 3)
APPS_PATH = f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/applications"
SETS_PATH = f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/applicationsets"
MERGE = "application/merge-patch+json"


def app_names(n_apps: int) -> dict[int, list[str]]:
    """``{wave: [names]}``: ``n_apps`` split evenly over the 4 waves."""
    out: dict[int, list[str]] = {w: [] for w in WAVES}
    for i in range(n_apps):
        wave = WAVES[i * len(WAVES) // n_apps]
        out[wave].append(f"app-w{wave}-{i:04d}")
    return out


def _source(path: str) -> dict:
    return {"repoURL": REPO, "path": path, "targetRevision": TARGET}


def _destination(ns: str) -> dict:
    return {"server": "https://kubernetes.default.svc", "namespace": ns}


def _pending_status(name: str) -> dict:
    compared = {"source": _source(f"apps/{name}"), "destination": _destination(name)}
    return {"sync": {"status": "OutOfSync", "comparedTo": compared}, "health": {"status": "Missing"}}


def _ready_status(name: str) -> dict:
    return {"sync": {"status": "Synced", "revision": REVISION,
                     "comparedTo": {"source": _source(f"apps/{name}"), "destination": _destination(name)}},
            "health": {"status": "Healthy"},
            "reconciledAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def child_app(name: str, wave: int) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {WAVE_LABEL: str(wave), "app.kubernetes.io/instance": ROOT},
                     "annotations": {"argocd.argoproj.io/sync-wave": str(wave),
                                     "argocd.argoproj.io/tracking-id":
                                         f"{ROOT}:argoproj.io/Application:{NAMESPACE}/{name}"}},
        "spec": {"project": "default", "source": _source(f"apps/{name}"), "destination": _destination(name)},
        "status": _pending_status(name),
    }


def set_name(wave: int) -> str:
    return f"set-w{wave}"


def app_set(wave: int) -> dict:
    """The ApplicationSet that generates wave ``wave``'s apps (a list generator; no controller runs here)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": set_name(wave), "namespace": NAMESPACE,
                     "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
        "spec": {"goTemplate": True, "generators": [{"list": {"elements": []}}],
                 "template": {"metadata": {"name": "{{.name}}"},
                              "spec": {"project": "default", "source": _source("apps/{{.name}}"),
                                       "destination": _destination("{{.name}}")}}},
    }


def set_status(names: list[str]) -> dict:
    return {"conditions": [{"type": "ErrorOccurred", "status": "False", "reason": "ApplicationSetUpToDate",
                            "message": "Successfully generated parameters for all Applications"},
                           {"type": "ResourcesUpToDate", "status": "True", "reason": "ApplicationSetUpToDate",
                            "message": "All applications have been generated successfully"}],
            "resources": [{"group": "argoproj.io", "version": "v1alpha1", "kind": "Application",
                           "namespace": NAMESPACE, "name": n, "status": "OutOfSync"} for n in names],
            "resourcesCount": len(names)}


def root_app(names: dict[int, list[str]], appsets: bool = False) -> dict:
    if appsets:
        resources = [{"group": "argoproj.io", "version": "v1alpha1", "kind": "ApplicationSet",
                      "namespace": NAMESPACE, "name": set_name(w), "status": "Synced", "syncWave": w}
                     for w in names]
    else:
        resources = [{"group": "argoproj.io", "version": "v1alpha1", "kind": "Application",
                      "namespace": NAMESPACE, "name": n, "status": "Synced", "syncWave": w}
                     for w, ns in names.items() for n in ns]
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": ROOT, "namespace": NAMESPACE},
        "spec": {"project": "default", "source": _source("apps"), "destination": _destination(NAMESPACE)},
        "status": {"sync": {"status": "Synced", "revision": REVISION,
                            "comparedTo": {"source": _source("apps"), "destination": _destination(NAMESPACE)}},
                   "health": {"status": "Healthy"}, "resources": resources},
    }


def _pool_map(fn, items, workers: int = 8) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, items))


def delete_all(cluster: Cluster, timeout: float = 120.0) -> None:
    """Delete every Application of the scenario's namespace, without cascading.

    The scenario's apps have no finalizers; the sample's (the rerun section's real Argo CD) do,
    and nothing processes them once Argo CD is stopped: they are dropped first.
    """
    api = cluster.api
    for item in api.get(APPS_PATH)["items"]:
        if item["metadata"].get("finalizers"):
            api.request("PATCH", f"{APPS_PATH}/{item['metadata']['name']}", {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json", ok404=True)
    api.request("DELETE", APPS_PATH, ok404=True)  # deletecollection
    api.request("DELETE", SETS_PATH, ok404=True)
    wait_until("old Applications and ApplicationSets deleted",
               lambda: not api.get(APPS_PATH)["items"] and not api.get(SETS_PATH)["items"], timeout, interval=0.5)


def create(cluster: Cluster, n_apps: int, appsets: bool = False) -> dict[int, list[str]]:
    """Delete any earlier scenario, create the root and ``n_apps`` children (all pending).

    With ``appsets`` the root lists one ApplicationSet per wave and the children are its generated apps.
    """
    api = cluster.api
    delete_all(cluster)
    names = app_names(n_apps)
    items = [child_app(n, w) for w, ns in names.items() for n in ns]
    if appsets:
        uids = {}
        for wave, wave_names in names.items():
            made = api.request("POST", SETS_PATH, app_set(wave))
            uids[wave] = made["metadata"]["uid"]
            api.request("PATCH", f"{SETS_PATH}/{set_name(wave)}/status", {"status": set_status(wave_names)}, MERGE)
        for body in items:
            wave = int(body["metadata"]["labels"][WAVE_LABEL])
            meta = body["metadata"]
            meta["annotations"].pop("argocd.argoproj.io/tracking-id")
            meta["labels"].pop("app.kubernetes.io/instance")
            meta["ownerReferences"] = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                        "name": set_name(wave), "uid": uids[wave], "controller": True}]
    _pool_map(lambda body: api.request("POST", APPS_PATH, body), items, workers=6)
    api.request("POST", APPS_PATH, root_app(names, appsets))
    return names


def reset(cluster: Cluster, names: dict[int, list[str]]) -> None:
    """Every child back to OutOfSync/Missing (the next contender starts from the same state)."""
    api = cluster.api
    everything = [n for ns in names.values() for n in ns]
    _pool_map(lambda n: api.request("PATCH", f"{APPS_PATH}/{n}", {"status": _pending_status(n)}, MERGE),
              everything, workers=6)


@dataclass
class Flip:
    wave: int
    mono: float     # when the driver sent the PATCH of the wave's last app (monotonic)
    wall: float     # the same moment on the wall clock (to compare with what contenders report)
    seconds: float  # how long flipping the whole wave took


class Driver(threading.Thread):
    """Flips the waves once ``gate()`` is true (polled, bounded by ``gate_timeout``)."""

    def __init__(self, cluster: Cluster, names: dict[int, list[str]], gate, *, settle: float = 0.5,
                 gap: float = 4.0, gate_timeout: float = 120.0):
        super().__init__(name="wave-driver", daemon=True)
        self.cluster, self.names, self.gate = cluster, names, gate
        self.settle, self.gap, self.gate_timeout = settle, gap, gate_timeout
        self.flips: list[Flip] = []
        self.error: str | None = None
        self.gated_after: float | None = None
        self._stop_event = threading.Event()

    def cancel(self) -> None:
        self._stop_event.set()

    def run(self) -> None:  # noqa: D102
        try:
            t0 = time.monotonic()
            while not self.gate():
                if time.monotonic() - t0 > self.gate_timeout:
                    self.error = f"contender made no request on applications within {self.gate_timeout}s"
                    return
                if self._stop_event.wait(0.05):
                    return
            self.gated_after = round(time.monotonic() - t0, 3)
            if self._stop_event.wait(self.settle):
                return
            api = self.cluster.api
            for i, wave in enumerate(WAVES):
                if i and self._stop_event.wait(self.gap):
                    return
                begin = time.monotonic()
                sent: list[tuple[float, float]] = []

                def flip(name: str) -> None:
                    stamp = (time.monotonic(), time.time())
                    api.request("PATCH", f"{APPS_PATH}/{name}", {"status": _ready_status(name)}, MERGE)
                    sent.append(stamp)  # list.append is atomic

                _pool_map(flip, self.names[wave], workers=6)
                mono, wall = max(sent)
                self.flips.append(Flip(wave, mono, wall, round(time.monotonic() - begin, 3)))
        except Exception as exc:  # noqa: BLE001 - reported in the results
            self.error = f"{type(exc).__name__}: {exc}"
