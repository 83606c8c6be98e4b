# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Local copies of Argo CD objects, kept current by one LIST and a WATCH per kind.

``ResourceWatch`` keeps the objects of one kind (Applications, ApplicationSets)
in one namespace.  ``WatchGroup`` waits on several of them at once: each open
WATCH stream is read by a thread of its own that hands its events, one at a
time, to the caller's thread, which alone changes the copies.  So the number of
requests is one LIST and one WATCH stream per kind, whatever the number of
objects, and a change of either kind wakes the verifier at once.

The watch resumes from the last resourceVersion it saw (BOOKMARK events
included) when the server ends the stream; a 410 Gone (expired version)
triggers a fresh LIST; a dropped connection (API server restart) is retried
with bounded exponential backoff.  Every wait is bounded by the caller's
deadline.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set

from ansible_collections.ecoeco.gitops.plugins.module_utils._argocd.applications import AppKey, key_of
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import APPLICATIONS, K8sError, ResourceRef
from ansible_collections.ecoeco.gitops.plugins.module_utils.waiter import Deadline

BACKOFF_START = 0.5
BACKOFF_MAX = 5.0
# Longest single watch request; the server may end it sooner and we resume.
MAX_WATCH_SECONDS = 300
# Statuses a retry cannot fix: credentials, RBAC, a missing CRD.
FATAL_STATUSES = (401, 403, 404)


class CountingClient:
    """Wraps a K8sClient and counts the requests made through it (thread-safe)."""

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.Lock()
        self.requests = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.requests += 1
            return attr(*args, **kwargs)

        return counted


class ResourceWatch:
    """The objects of one kind in one namespace (optionally filtered by labels)."""

    def __init__(self, client: Any, namespace: str, label_selector: Optional[str] = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 ref: ResourceRef = APPLICATIONS):
        self.client = client
        self.ref = ref
        self.namespace = namespace
        self.label_selector = label_selector
        self.clock = clock
        self.sleep = sleep
        self.index: Dict[AppKey, dict] = {}
        self.resource_version = ""
        self.relists = 0
        self.resumes = 0
        self.reconnects = 0
        self._backoff = BACKOFF_START
        self.last_error = ""
        # What changed since the last take_changed(): the keys, or "everything" after a LIST.
        self._changed: Set[AppKey] = set()
        self._relisted = True
        self._group: Optional["WatchGroup"] = None

    @property
    def kind(self) -> str:
        return self.ref.plural

    # -- LIST ----------------------------------------------------------------
    def relist(self) -> None:
        """Replace the local copy with a fresh LIST and remember its resourceVersion."""
        body = self.client.list(self.ref, self.namespace, label_selector=self.label_selector)
        self.index = {key_of(item, self.namespace): item for item in body.get("items") or []}
        self.resource_version = (body.get("metadata") or {}).get("resourceVersion", "")
        self.relists += 1
        self._relisted = True
        self._changed.clear()

    def take_changed(self) -> Optional[Set[AppKey]]:
        """The objects that changed since the last call; None when a LIST replaced everything.

        Every event folded in meanwhile counts, so changes that arrived together are judged together.
        """
        if self._relisted:
            self._relisted = False
            self._changed = set()
            return None
        changed, self._changed = self._changed, set()
        return changed

    def open_stream(self, seconds: float) -> Iterator[dict]:
        """One WATCH request from the last resourceVersion, ending after ``seconds`` (rounded up)."""
        seconds = min(MAX_WATCH_SECONDS, max(1, math.ceil(seconds)))
        return iter(self.client.watch(self.ref, self.namespace, self.resource_version,
                                      timeout_seconds=seconds, label_selector=self.label_selector))

    # -- one stream, the caller's thread ----------------------------------------
    def wait_for_change(self, seconds: float) -> bool:
        """Block until an object of this kind changes (True) or ``seconds`` pass (False)."""
        if self._group is None:
            self._group = WatchGroup([self])
        return self._group.wait_for_change(seconds)

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
            self._group = None

    # -- what a stream brings ------------------------------------------------------
    def apply(self, event: dict, deadline: Deadline) -> bool:
        """Fold one event into the copy; True when an object changed."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") != 410:
                self.pause(deadline)
            self.relist_bounded(deadline)
            return True
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return False
        key = key_of(obj, self.namespace)
        if kind == "DELETED":
            self.index.pop(key, None)
        else:
            self.index[key] = obj
        self._changed.add(key)
        self._backoff = BACKOFF_START
        return True

    def stream_failed(self, exc: BaseException, deadline: Deadline) -> bool:
        """A WATCH request or stream failed: True when a fresh LIST replaced the copy."""
        if not isinstance(exc, K8sError):
            raise exc
        if exc.status == 410:
            self.relist_bounded(deadline)
            return True
        if exc.status in FATAL_STATUSES:
            raise exc
        self.last_error = str(exc)
        self.pause(deadline)
        self.reconnects += 1
        return False

    def relist_bounded(self, deadline: Deadline) -> None:
        """LIST again, retrying connection errors until the deadline."""
        while True:
            try:
                self.relist()
                return
            except K8sError as exc:
                if exc.status in FATAL_STATUSES:
                    raise
                self.last_error = str(exc)
                if deadline.expired():
                    return          # keep the old copy; the caller's deadline has passed
                self.pause(deadline)

    def pause(self, deadline: Deadline) -> None:
        left = deadline.remaining()
        if left > 0:
            self.sleep(min(self._backoff, left))
        self._backoff = min(BACKOFF_MAX, self._backoff * 2)


class ApplicationWatch(ResourceWatch):
    """Applications of one namespace."""

    def __init__(self, client: Any, namespace: str, label_selector: Optional[str] = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        super().__init__(client, namespace, label_selector, clock=clock, sleep=sleep, ref=APPLICATIONS)


_END = object()       # the server ended the stream


class _Reader:
    """One open WATCH stream, read by its own thread, one item at a time.

    The thread takes the next item only after the caller has handled the one
    before (``release``), so the caller sees a stream in order and nothing runs
    ahead of it.
    """

    def __init__(self, watch: ResourceWatch, stream: Iterator[dict], out: "queue.Queue[Any]"):
        self.watch = watch
        self.closed = False
        self._stream = stream
        self._out = out
        self._turn = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{watch.kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._stream:
                if self.closed:
                    break
                self._turn.clear()
                self._out.put((self, item))
                self._turn.wait()
                if self.closed:
                    break
            else:
                self._out.put((self, _END))
        except BaseException as exc:  # pylint: disable=broad-except  # handed to the caller's thread
            if not self.closed:
                self._out.put((self, exc))
        finally:
            close = getattr(self._stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # pylint: disable=broad-except  # a stream that cannot close is dropped
                    pass

    def release(self) -> None:
        """The caller has handled the last item: read the next one."""
        self._turn.set()

    def close(self) -> None:
        """Stop handing items on; the thread ends with the stream (at the latest at its timeout)."""
        self.closed = True
        self._turn.set()


class WatchGroup:
    """Wait on several ResourceWatches at once; every change is applied in the caller's thread."""

    def __init__(self, watches: Iterable[ResourceWatch] = (), clock: Optional[Callable[[], float]] = None):
        """``clock``: the monotonic clock; by default the first watch's."""
        self.watches: List[ResourceWatch] = []
        self._readers: Dict[int, _Reader] = {}
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._handled: Optional[_Reader] = None
        watches = list(watches)
        self.clock: Callable[[], float] = clock or (watches[0].clock if watches else time.monotonic)
        for watch in watches:
            self.add(watch)

    def add(self, watch: ResourceWatch) -> None:
        """Wait on ``watch`` too (LIST it first)."""
        self.watches.append(watch)

    def wait_for_change(self, seconds: float) -> bool:
        """Block until an object of any kind changes (True) or ``seconds`` pass (False)."""
        deadline = Deadline(max(0.0, seconds), self.clock)
        self._release()
        while True:
            left = deadline.remaining()
            if left <= 0:
                return False
            for watch in self.watches:
                if id(watch) not in self._readers:
                    try:
                        stream = watch.open_stream(left)
                    except BaseException as exc:  # pylint: disable=broad-except  # same path as a stream error
                        if watch.stream_failed(exc, deadline):
                            return True
                        continue
                    self._readers[id(watch)] = _Reader(watch, stream, self._queue)
            if not self._readers:
                continue          # every watch failed to open and paused: try again within the deadline
            try:
                reader, item = self._queue.get(timeout=deadline.remaining())
            except queue.Empty:
                return False
            if reader.closed:
                continue
            if self._settle(reader, item, deadline):
                return True

    def _settle(self, reader: _Reader, item: Any, deadline: Deadline) -> bool:
        """Handle one item of a stream; True when an object changed."""
        watch = reader.watch
        if item is _END or isinstance(item, BaseException):
            self._readers.pop(id(watch), None)
            if item is _END:
                watch.resumes += 1          # the server ended the stream: resume from where we are
                return False
            return watch.stream_failed(item, deadline)
        if item.get("type") == "ERROR":
            self._readers.pop(id(watch), None)
            reader.close()
            return watch.apply(item, deadline)
        if watch.apply(item, deadline):
            self._handled = reader      # read on once the caller has judged this change
            return True
        reader.release()
        return False

    def _release(self) -> None:
        if self._handled is not None:
            self._handled.release()
            self._handled = None

    @property
    def last_error(self) -> str:
        return "; ".join(w.last_error for w in self.watches if w.last_error)

    def close(self) -> None:
        """Stop every stream (their threads end with the server's timeout at the latest)."""
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._handled = None
