# -*- coding: utf-8 -*-
# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""A local copy of the Applications in a namespace, kept current by one LIST and a WATCH.

The watch resumes from the last resourceVersion it saw (BOOKMARK events
included) when the server ends the stream; a 410 Gone (expired version)
triggers a fresh LIST; a dropped connection (API server restart) is retried
with bounded exponential backoff. Every wait is bounded by the caller's
deadline, and the number of requests does not depend on the number of apps.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Iterator, Optional, Set

from ansible_collections.ecoeco.gitops.plugins.module_utils.argocd.applications import AppKey, key_of
from ansible_collections.ecoeco.gitops.plugins.module_utils.k8s_client import APPLICATIONS, K8sError

BACKOFF_START = 0.5
BACKOFF_MAX = 5.0
# Longest single watch request; the server may end it sooner and we resume.
MAX_WATCH_SECONDS = 300
# Statuses a retry cannot fix: credentials, RBAC, a missing CRD.
FATAL_STATUSES = (401, 403, 404)


class CountingClient:
    """Wraps a K8sClient and counts the requests made through it."""

    def __init__(self, client: Any):
        self._client = client
        self.requests = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return attr(*args, **kwargs)

        return counted


class ApplicationWatch:
    """Applications of one namespace (optionally filtered by labels), updated from a watch."""

    def __init__(self, client: Any, namespace: str, label_selector: Optional[str] = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.namespace = namespace
        self.label_selector = label_selector
        self.clock = clock
        self.sleep = sleep
        self.index: Dict[AppKey, dict] = {}
        self.resource_version = ""
        self.relists = 0
        self.resumes = 0
        self.reconnects = 0
        self._stream: Optional[Iterator[dict]] = None
        self._stream_ends = 0.0
        self._backoff = BACKOFF_START
        self.last_error = ""
        # What changed since the last take_changed(): the keys, or "everything" after a LIST.
        self._changed: Set[AppKey] = set()
        self._relisted = True

    # -- LIST ----------------------------------------------------------------
    def relist(self) -> None:
        """Replace the local copy with a fresh LIST and remember its resourceVersion."""
        self.close()
        body = self.client.list(APPLICATIONS, self.namespace, label_selector=self.label_selector)
        self.index = {key_of(item, self.namespace): item for item in body.get("items") or []}
        self.resource_version = (body.get("metadata") or {}).get("resourceVersion", "")
        self.relists += 1
        self._relisted = True
        self._changed.clear()

    def take_changed(self) -> Optional[Set[AppKey]]:
        """The Applications that changed since the last call; None when a LIST replaced everything.

        Every event folded in meanwhile counts, so changes that arrived together are judged together.
        """
        if self._relisted:
            self._relisted = False
            self._changed = set()
            return None
        changed, self._changed = self._changed, set()
        return changed

    def close(self) -> None:
        if self._stream is not None:
            close = getattr(self._stream, "close", None)
            if close:
                close()
            self._stream = None

    # -- WATCH ---------------------------------------------------------------
    def wait_for_change(self, seconds: float) -> bool:
        """Block until an Application changes (True) or ``seconds`` pass (False)."""
        deadline = self.clock() + max(0.0, seconds)
        while True:
            left = deadline - self.clock()
            if left <= 0:
                return False
            if self._stream is not None and self._stream_ends > deadline + 1:
                self.close()        # the deadline moved closer than the open stream's end: reopen shorter
            try:
                if self._stream is None:
                    seconds = min(MAX_WATCH_SECONDS, max(1, math.ceil(left)))
                    self._stream = iter(self.client.watch(
                        APPLICATIONS, self.namespace, self.resource_version,
                        timeout_seconds=seconds, label_selector=self.label_selector))
                    self._stream_ends = self.clock() + seconds
                event = next(self._stream)
            except StopIteration:     # the server ended the stream: resume from where we are
                self._stream = None
                self.resumes += 1
                continue
            except K8sError as exc:
                self._stream = None
                if exc.status == 410:
                    self._relist_bounded(deadline)
                    return True
                if exc.status in FATAL_STATUSES:
                    raise
                self.last_error = str(exc)
                self._pause(deadline)
                self.reconnects += 1
                continue
            if self._apply(event, deadline):
                self._backoff = BACKOFF_START
                return True

    def _apply(self, event: dict, deadline: float) -> bool:
        """Fold one event into the copy; True when an Application changed."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            self.close()
            if obj.get("code") != 410:
                self._pause(deadline)
            self._relist_bounded(deadline)
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
        return True

    def _relist_bounded(self, deadline: float) -> None:
        """LIST again, retrying connection errors until the deadline."""
        while True:
            try:
                self.relist()
                return
            except K8sError as exc:
                if exc.status in FATAL_STATUSES:
                    raise
                self.last_error = str(exc)
                if self.clock() >= deadline:
                    return          # keep the old copy; the caller's deadline has passed
                self._pause(deadline)

    def _pause(self, deadline: float) -> None:
        left = deadline - self.clock()
        if left > 0:
            self.sleep(min(self._backoff, left))
        self._backoff = min(BACKOFF_MAX, self._backoff * 2)
