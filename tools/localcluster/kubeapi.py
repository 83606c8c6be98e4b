"""A minimal HTTPS client for the harness's own API calls (readiness, nodes, version).

Tests of the collection use the collection's code or kubectl; this client only
serves the harness (no discovery, JSON in and out, one kept-alive connection
per thread).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode


class ApiError(RuntimeError):
    """A non-2xx answer from the API server."""

    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class KubeApi:
    """JSON requests to one API server with a client certificate, or a bearer token."""

    def __init__(self, host: str, port: int, ca: Path, cert: Path | None = None,
                 key: Path | None = None, token: str | None = None, timeout: float = 30.0):
        self.host, self.port, self.timeout, self.token = host, port, timeout, token
        self._ctx = ssl.create_default_context(cafile=str(ca))
        if cert and key:
            self._ctx.load_cert_chain(str(cert), str(key))
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx,
                                               timeout=self.timeout)
            self._local.conn = conn
        return conn

    def raw(self, method: str, path: str, body: Any = None,
            content_type: str = "application/json") -> tuple[int, str]:
        """Send one request; return (status, text). Reconnects once on a dropped connection."""
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        headers = {"Accept": "application/json", "User-Agent": "ecoeco-harness"}
        if data is not None:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read().decode("utf-8", "replace")
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json", ok404: bool = False) -> Any:
        """Send one request; return the decoded JSON (None on 404 when ``ok404``)."""
        status, text = self.raw(method, path, body, content_type)
        if status == 404 and ok404:
            return None
        if not 200 <= status < 300:
            raise ApiError(method, path, status, text)
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text

    def get(self, path: str, ok404: bool = False) -> Any:
        return self.request("GET", path, ok404=ok404)

    def watch(self, path: str, resource_version: str = "", timeout_seconds: int = 60) -> Iterator[dict]:
        """Yield the events (``{"type", "object"}``) of one WATCH of ``path`` until the server ends it.

        Uses a connection of its own (the kept-alive one stays free for other
        requests). A non-200 answer raises :class:`ApiError`; an expired
        ``resource_version`` arrives as an ``ERROR`` event with code 410.
        """
        query = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(max(1, int(timeout_seconds)))}
        if resource_version:
            query["resourceVersion"] = resource_version
        headers = {"Accept": "application/json", "User-Agent": "ecoeco-harness"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx, timeout=timeout_seconds + 15)
        try:
            conn.request("GET", f"{path}{'&' if '?' in path else '?'}{urlencode(query)}", headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError("WATCH", path, resp.status, resp.read().decode("utf-8", "replace"))
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
