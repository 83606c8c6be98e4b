"""Run ``ecoeco.gitops.site`` on the podman cluster with a per-task profile and a per-phase split.

Every run gets two callbacks: ``ansible.posix.profile_tasks`` (its table of
the slowest tasks ends the run's stdout, which the test prints into its log)
and the benchmarks' ``bench_times`` (a JSON line per play and task start,
from which ``phase_split`` tells how long each phase of one run took). Used
by tests/cluster/test_site_cluster.py and benchmarks/rerun.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from benchmarks.env import read_times
from benchmarks.rerun import slowest_tasks
from tests.cluster.machines import REPO_ROOT
from tools.localcluster.ansible import PlaybookResult, run_playbook

INVENTORY = REPO_ROOT / "inventories" / "podman" / "hosts.yml"
CALLBACK_DIR = REPO_ROOT / "benchmarks" / "callback_plugins"
# The phases of site.yml this cluster runs (no cni: see docs/podman-cluster.md), in site.yml's order.
HOST_PHASES = ("prerequisites", "control_plane", "workers")
API_PHASES = ("node_labels", "argocd")
GITOPS_PHASES = ("app_of_apps",)
ALL_PHASES = HOST_PHASES + API_PHASES + GITOPS_PHASES


@dataclass
class ProfiledRun:
    """One ansible-playbook run: its result, the seconds per phase and the profile_tasks table."""

    result: PlaybookResult
    phases: dict[str, float]
    profile: str

    records: list[dict[str, Any]]

    @property
    def seconds(self) -> float:
        """Wall time of the whole ansible-playbook process."""
        return self.result.seconds


def profile_table(stdout: str) -> str:
    """The profile_tasks summary: the lines after the PLAY RECAP's host lines."""
    lines = stdout.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("PLAY RECAP"))
    except StopIteration:
        return ""
    rest = lines[start + 1:]
    while rest and (":" in rest[0] and "ok=" in rest[0] or not rest[0].strip()):
        rest = rest[1:]
    return "\n".join(rest)


def phase_split(records: list[dict[str, Any]], total: float) -> dict[str, float]:
    """Seconds per phase of one run, from bench_times' play_start records.

    A phase runs from its first play's start to the next phase's first play
    (the last one to the end of the run); ``startup`` is the rest of the
    process's wall time (Python, inventory, the playbook's parsing)."""
    starts: list[tuple[float, str]] = []
    for rec in records:
        if rec.get("event") != "play_start":
            continue
        phase = next((p for p in ALL_PHASES if p in rec.get("tags", [])), "other")
        if not starts or starts[-1][1] != phase:
            starts.append((rec["t"], phase))
    end = max((r["t"] for r in records), default=0.0)
    split: dict[str, float] = {}
    for i, (t, phase) in enumerate(starts):
        nxt = starts[i + 1][0] if i + 1 < len(starts) else end
        split[phase] = split.get(phase, 0.0) + (nxt - t)
    split["startup"] = max(total - sum(split.values()), 0.0)
    return split


def _records_so_far(times: Path) -> list[dict[str, Any]]:
    """The records of a run still writing them (a half-written last line is left for the next look)."""
    try:
        return read_times(times)
    except ValueError:
        return []


def run_site(phases: tuple[str, ...], env: dict[str, str], times_dir: Path, label: str, *,
             timeout: float = 1800, check: bool = False, diff: bool = False,
             extra_vars: dict[str, Any] | None = None,
             inventories: tuple[Path, ...] = (INVENTORY,)) -> ProfiledRun:
    """``ansible-playbook ecoeco.gitops.site --tags <phases>`` with both callbacks; times in ``times_dir``."""
    return run_profiled("ecoeco.gitops.site", env, times_dir, label, tags=",".join(phases), timeout=timeout,
                        check=check, diff=diff, extra_vars=extra_vars, inventories=inventories)


def run_profiled(playbook: str, env: dict[str, str], times_dir: Path, label: str, *,
                 tags: str | None = None, timeout: float = 1800, check: bool = False, diff: bool = False,
                 extra_vars: dict[str, Any] | None = None,
                 inventories: tuple[Path, ...] = (INVENTORY,),
                 interrupt_when: Callable[[list[dict[str, Any]]], bool] | None = None) -> ProfiledRun:
    """Any playbook of the collection with both callbacks, on one or more inventory sources
    (day 2: inventories/podman plus a file of the test's for a machine added later).

    ``interrupt_when`` gets the run's bench_times records so far; the run is interrupted (SIGINT) the first
    time it returns true."""
    times = times_dir / f"{label}.times.jsonl"
    times.unlink(missing_ok=True)
    profiled = dict(env, ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
                    ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks,bench_times",
                    PROFILE_TASKS_TASK_OUTPUT_LIMIT="25", BENCH_TIMES_FILE=str(times))
    more = [arg for source in inventories[1:] for arg in ("-i", str(source))]
    result = run_playbook(playbook, inventories[0], tags=tags, env=profiled, timeout=timeout,
                          check=check, diff=diff, extra_vars=extra_vars, args=more,
                          interrupt_when=None if interrupt_when is None
                          else lambda: interrupt_when(_records_so_far(times)))
    records = read_times(times)
    return ProfiledRun(result, phase_split(records, result.seconds), profile_table(result.stdout), records)


def summary(timings: dict[str, float], first: dict[str, ProfiledRun], rerun: ProfiledRun,
            checked: ProfiledRun) -> dict[str, Any]:
    """First run per phase (each its own ansible-playbook), the no-op rerun's split, ratios, slowest tasks."""
    rows = []
    for phase in ALL_PHASES:
        again = rerun.phases.get(phase, 0.0)
        rows.append({"phase": phase, "first_s": round(timings[phase], 1), "rerun_s": round(again, 1),
                     "rerun_over_first": round(again / timings[phase], 3) if timings[phase] else None,
                     "first_slowest_tasks": slowest_tasks(first[phase].records) if phase in first else []})
    first_total = sum(timings[p] for p in ALL_PHASES)
    return {"phases": rows,
            "test_steps_s": {k: round(v, 1) for k, v in timings.items() if k not in ALL_PHASES},
            "first_total_s": round(first_total, 1), "rerun_total_s": round(rerun.seconds, 1),
            "rerun_startup_s": round(rerun.phases.get("startup", 0.0), 1),
            "rerun_over_first": round(rerun.seconds / first_total, 3),
            "rerun_changed": rerun.result.changed, "rerun_slowest_tasks": slowest_tasks(rerun.records, top=10),
            "check_diff_s": round(checked.seconds, 1), "check_diff_changed": checked.result.changed}


def serial_spans(records: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per host of a ``serial: 1`` play: from the end of the previous host's last task
    (the first host: from the first play's start) to the end of this host's last one."""
    ends: dict[str, float] = {}
    for rec in records:
        if rec.get("host") and rec.get("event") != "play_start":
            ends[rec["host"]] = max(ends.get(rec["host"], 0.0), rec["t"])
    starts = [r["t"] for r in records if r.get("event") == "play_start"]
    previous = min(starts) if starts else min(ends.values(), default=0.0)
    spans = {}
    for host, end in sorted(ends.items(), key=lambda kv: kv[1]):
        spans[host] = end - previous
        previous = end
    return spans
