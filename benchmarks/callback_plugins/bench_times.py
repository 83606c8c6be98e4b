# Copyright (c) ecoeco.gitops contributors
# Apache License 2.0 (see LICENSE)
"""Timestamping callback for the benchmarks: one JSON line per task/item result.

Written to the file named by BENCH_TIMES_FILE with ``time.time()`` at the moment
the controller receives the result (what the user sees as "done").
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_times
type: aggregate
short_description: Write the end time of every task and loop item as JSON lines (benchmarks only)
description:
  - Appends C({"t", "event", "task", "host", "item"}) to the file in the environment variable BENCH_TIMES_FILE,
    and a record with event C(play_start), the play's name and tags when a play starts, one with event C(stats)
    at the end.
requirements:
  - BENCH_TIMES_FILE set
"""


class CallbackModule(CallbackBase):
    """See DOCUMENTATION."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("BENCH_TIMES_FILE")

    def _write(self, event: str, result, item=None) -> None:
        if not self._path:
            return
        rec = {"t": time.time(), "event": event, "task": result.task_name,
               "host": result._host.get_name()}  # pylint: disable=protected-access
        if item is not None:
            rec["item"] = item
        res = result._result  # pylint: disable=protected-access
        for key in ("waves", "api_requests", "attempts"):
            if key in res:
                rec[key] = res[key]
        with open(self._path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, default=str) + "\n")

    def v2_playbook_on_play_start(self, play):
        if self._path:
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"t": time.time(), "event": "play_start", "play": play.get_name(),
                                     "tags": list(play.tags or [])}) + "\n")

    def v2_playbook_on_stats(self, stats):
        if self._path:
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"t": time.time(), "event": "stats"}) + "\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._path:
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"t": time.time(), "event": "task_start", "task": task.get_name()}) + "\n")

    def v2_runner_on_ok(self, result):
        self._write("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write("failed", result)

    def v2_runner_item_on_ok(self, result):
        self._write("item_ok", result, result._result.get("item"))  # pylint: disable=protected-access

    def v2_runner_item_on_failed(self, result):
        self._write("item_failed", result, result._result.get("item"))  # pylint: disable=protected-access
