"""Run one contender as a child process tree and measure it.

Wall time on the monotonic clock; CPU seconds from ``RUSAGE_CHILDREN`` (the
whole reaped tree: ansible-playbook, its workers and module processes);
peak RSS by polling the tree with psutil every 50 ms (sum over the live
processes of the tree, and the largest single process).
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_S = 0.05


@dataclass
class Measured:
    """What one contender run cost."""

    rc: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_rss_single_mb: float
    started_wall: float
    ended_wall: float
    module_rss_mb: float | None = None
    module_cpu_s: float | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    extra: dict = field(default_factory=dict)


def _tree_rss(root: psutil.Process, module_marker: str | None,
              modules: dict[int, list[float]]) -> tuple[int, int]:
    """Sum and max RSS of the tree; updates ``modules[pid] = [peak rss, cpu s]`` for module processes."""
    total = biggest = 0
    try:
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0, 0
    for proc in procs:
        try:
            rss = proc.memory_info().rss
            if module_marker and (proc.pid in modules or module_marker in " ".join(proc.cmdline())):
                cpu = proc.cpu_times()
                seen = modules.setdefault(proc.pid, [0.0, 0.0])
                seen[0] = max(seen[0], rss)
                seen[1] = cpu.user + cpu.system + cpu.children_user + cpu.children_system
        except psutil.Error:
            continue
        total += rss
        biggest = max(biggest, rss)
    return total, biggest


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: str | Path, timeout: float,
                 stdout_path: Path | None = None, module_marker: str | None = None) -> Measured:
    """Run ``cmd`` (bounded by ``timeout``), measuring its process tree.

    ``module_marker``: a command-line substring (e.g. ``AnsiballZ_argocd_sync_waves``)
    naming the module process, whose own peak RSS and CPU (last poll) are reported too.

    Call it from the main thread with no other child process finishing meanwhile,
    so the ``RUSAGE_CHILDREN`` delta is the tree's CPU time.
    """
    cpu0 = _children_cpu()
    started_wall, t0 = time.time(), time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,  # noqa: S603
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0, 0]
    modules: dict[int, list[float]] = {}
    stop = threading.Event()

    def poll() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total, biggest = _tree_rss(root, module_marker, modules)
            peak[0], peak[1] = max(peak[0], total), max(peak[1], biggest)
            stop.wait(POLL_S)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, 9)  # our own child's session, by its PID
        out, err = proc.communicate(timeout=30)
    wall = time.monotonic() - t0
    ended_wall = time.time()
    stop.set()
    poller.join(timeout=5)
    if stdout_path:
        stdout_path.write_text(out + "\n--- stderr ---\n" + err, encoding="utf-8")
    return Measured(rc=proc.returncode, wall_s=round(wall, 3), cpu_s=round(_children_cpu() - cpu0, 3),
                    peak_rss_mb=round(peak[0] / 2**20, 1), peak_rss_single_mb=round(peak[1] / 2**20, 1),
                    module_rss_mb=round(max(v[0] for v in modules.values()) / 2**20, 1) if modules else None,
                    module_cpu_s=round(sum(v[1] for v in modules.values()), 3) if modules else None,
                    started_wall=started_wall, ended_wall=ended_wall, stdout=out, stderr=err,
                    timed_out=timed_out)
