"""Record, as the API server streams them, every change of the Argo CD Applications of a namespace.

    with AppRecorder(cluster.api, "argocd") as rec:
        ...                                   # let Argo CD work, run the verifier
        rec.wait_for("db", has_error, 120)    # wall time (time.time()) of the first match
        rec.ever_existed("apis")              # was it ever created (LIST or ADDED)?
        rec.first("db", is_ready)             # when it first matched, or None

One LIST, then a WATCH in a thread, resumed from the last resourceVersion and
re-listed after ``410 Gone``. Each event is stamped with the wall clock when it
arrived, so the times compare with the verifier's ``detected_at`` (same
machine). Independent of the collection's own watch code on purpose: tests use
it to check what the verifier says.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from tools.localcluster.kubeapi import ApiError, KubeApi

APPLICATIONS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications"
Predicate = Callable[[dict], bool]


@dataclass
class Event:
    """One observed version of one Application (``kind``: LISTED, ADDED, MODIFIED, DELETED)."""

    at: float
    kind: str
    name: str
    obj: dict


class AppRecorder:
    """LIST + WATCH of the Applications of ``namespace`` in a background thread."""

    def __init__(self, api: KubeApi, namespace: str = "argocd", watch_seconds: int = 15):
        self.api = api
        self.namespace = namespace
        self.watch_seconds = watch_seconds
        self.events: list[Event] = []
        self.latest: dict[str, dict] = {}
        self.error: Optional[BaseException] = None
        self._rv = ""
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "AppRecorder":
        self._list()
        self._thread = threading.Thread(target=self._run, name="app-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.watch_seconds + 20)

    def __enter__(self) -> "AppRecorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _record(self, kind: str, obj: dict) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        with self._cond:
            self.events.append(Event(time.time(), kind, name, obj))
            if kind == "DELETED":
                self.latest.pop(name, None)
            else:
                self.latest[name] = obj
            self._cond.notify_all()

    def _list(self) -> None:
        body = self.api.get(APPLICATIONS.format(ns=self.namespace))
        self._rv = body["metadata"]["resourceVersion"]
        for item in body.get("items") or []:
            self._record("LISTED", item)

    def _run(self) -> None:
        path = APPLICATIONS.format(ns=self.namespace)
        while not self._stop.is_set():
            try:
                for event in self.api.watch(path, self._rv, self.watch_seconds):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            self._list()
                            break
                        raise ApiError("WATCH", path, obj.get("code", 0), str(obj))
                    self._rv = (obj.get("metadata") or {}).get("resourceVersion") or self._rv
                    if event.get("type") != "BOOKMARK":
                        self._record(event["type"], obj)
                    if self._stop.is_set():
                        return
            except (ApiError, OSError, ValueError) as exc:  # API server busy or restarting: retry
                self.error = exc
                self._stop.wait(1.0)

    # ------------------------------------------------------------- queries
    def ever_existed(self, name: str) -> bool:
        with self._cond:
            return any(e.name == name and e.kind != "DELETED" for e in self.events)

    def created_at(self, name: str) -> Optional[float]:
        return self.first(name, lambda _obj: True)

    def first(self, name: str, predicate: Predicate, since: float = 0.0) -> Optional[float]:
        """Wall time of the first observed version of ``name`` (at or after ``since``) matching ``predicate``."""
        with self._cond:
            for e in self.events:
                if e.name == name and e.kind != "DELETED" and e.at >= since and predicate(e.obj):
                    return e.at
        return None

    def settled_at(self, name: str, predicate: Predicate) -> Optional[float]:
        """Arrival time of the version from which ``name`` matched ``predicate`` in every later version."""
        at = None
        with self._cond:
            for event in self.events:
                if event.name != name:
                    continue
                if event.kind != "DELETED" and predicate(event.obj):
                    at = at if at is not None else event.at
                else:
                    at = None
        return at

    def current(self, name: str) -> Optional[dict]:
        with self._cond:
            return self.latest.get(name)

    def wait_for(self, name: str, predicate: Predicate, timeout: float, since: float = 0.0) -> float:
        """Block until a version of ``name`` matches (return its arrival time); AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e.name == name and e.kind != "DELETED" and e.at >= since and predicate(e.obj):
                        return e.at
                left = deadline - time.monotonic()
                if left <= 0:
                    last = self.latest.get(name)
                    raise AssertionError(f"Application {name} did not reach the expected state within "
                                         f"{timeout:.0f}s; last status: {summary(last)}")
                self._cond.wait(min(left, 1.0))

    def timeline(self, names: Optional[list[str]] = None) -> list[str]:
        """Readable lines: time, event, name, sync/health/operation, for the output of a test."""
        with self._cond:
            events = [e for e in self.events if names is None or e.name in names]
        out, last = [], {}
        for e in events:
            line = summary(e.obj)
            if last.get(e.name) == (e.kind == "DELETED", line):
                continue
            last[e.name] = (e.kind == "DELETED", line)
            stamp = time.strftime("%H:%M:%S", time.gmtime(e.at)) + f".{int(e.at % 1 * 1000):03d}Z"
            out.append(f"{stamp} {e.kind:8} {e.name}: {line}")
        return out


# --------------------------------------------------------------- predicates
def status(obj: Optional[dict]) -> dict:
    return (obj or {}).get("status") or {}


def summary(obj: Optional[dict]) -> str:
    """``sync/health op:<phase> [conditions]`` of an Application."""
    if obj is None:
        return "absent"
    st = status(obj)
    conds = ",".join(c.get("type", "") for c in st.get("conditions") or [])
    op = (st.get("operationState") or {}).get("phase", "")
    return (f"{(st.get('sync') or {}).get('status', '-')}/{(st.get('health') or {}).get('status', '-')}"
            + (f" op:{op}" if op else "") + (f" [{conds}]" if conds else ""))


def error_text(obj: Optional[dict]) -> str:
    """The messages of the error conditions (type ending in Error), joined."""
    return "; ".join(f"{c.get('type')}: {c.get('message', '')}" for c in status(obj).get("conditions") or []
                     if str(c.get("type", "")).endswith("Error"))


def has_error(obj: Optional[dict], text: str = "") -> bool:
    errors = error_text(obj)
    return bool(errors) and text in errors


def synced_healthy(obj: Optional[dict]) -> bool:
    """Synced and Healthy, no error condition, no operation requested or running."""
    st = status(obj)
    op = (st.get("operationState") or {}).get("phase", "")
    return ((st.get("sync") or {}).get("status") == "Synced"
            and (st.get("health") or {}).get("status") == "Healthy"
            and not error_text(obj) and not (obj or {}).get("operation") and op not in ("Running", "Terminating"))


def synced_by_operation(obj: Optional[dict]) -> bool:
    """Argo CD ran a sync of the app to completion (operation Succeeded, sync status Synced)."""
    st = status(obj)
    return ((st.get("operationState") or {}).get("phase") == "Succeeded"
            and (st.get("sync") or {}).get("status") == "Synced")
