"""Wave verification benchmark (issue 8): argocd_sync_waves vs k8s_info until/retries vs argocd app wait.

For every N, the same scenario (N apps in 4 waves under a root app) is reset
before each contender; the driver flips the waves while the contender runs.
Detection delay of a wave = when the contender noticed it minus when the
driver's PATCH of the wave's last app returned:

- argocd_sync_waves: ``waves[].detected_at`` returned by the module;
- k8s_info_until: the end of the wave's loop item, from the bench_times callback;
- argocd_app_wait: the end of the wave's ``argocd app wait`` (``$EPOCHREALTIME``).

``argocd app wait --core`` runs Argo CD's API server inside the CLI, which
port-forwards to the argocd-redis and argocd-repo-server pods.  Here those pods
are kwok pods on a kwok node, and kwok (their "kubelet") forwards the ports to a
real redis-server and repo-server running as local processes on 127.0.0.1
(tools/localcluster/argocd.py, cluster.ARGOCD_POD_PORTS); no application-controller
runs, the driver plays it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from benchmarks import env
from benchmarks.measure import run_measured
from benchmarks import wave_scenario as ws
from tools.localcluster import build
from tools.localcluster.argocd import ArgoCD, core_kubeconfig, run_core
from tools.localcluster.cluster import Cluster
from tools.localcluster.procs import wait_until

CONTENDERS = ("argocd_sync_waves", "k8s_info_until", "argocd_app_wait")
BASELINES = CONTENDERS[1:]
TIMEOUT = 900.0
CORE_NODE_PREFIX = "bench-argocd-core"
CORE_COMPONENTS = ("redis-server", "argocd-repo-server")
MODULE_MARKERS = {"argocd_sync_waves": "AnsiballZ_argocd_sync_waves", "k8s_info_until": "AnsiballZ_k8s_info"}


def argocd_binary() -> Path | None:
    try:
        path = build.components()["argocd"].path("argocd")
    except Exception:  # noqa: BLE001 - not built here
        return None
    return path if path.is_file() else None


class CoreBackends:
    """What `argocd ... --core` port-forwards to: local redis-server and repo-server, their kwok pods."""

    def __init__(self, cluster: Cluster, workdir: Path):
        self.cluster = cluster
        self.app = ArgoCD(cluster, workdir / "argocd-core", log=env.log, components=CORE_COMPONENTS)
        self.nodes: list[str] = []
        self.pods: list[str] = []

    def start(self) -> "CoreBackends":
        try:
            self.app.start()
            self.nodes = [f"{CORE_NODE_PREFIX}-0000"]   # set first: stop() deletes it whatever happens
            self.cluster.create_many_nodes(1, prefix=CORE_NODE_PREFIX, timeout=120)
            self.pods = self.app.create_pods(self.nodes[0])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Pods, node, then the processes (each by its PID)."""
        try:
            if self.pods:
                self.app.delete_pods(self.pods)
                path = f"/api/v1/namespaces/{self.app.namespace}/pods/"
                wait_until("the core backends' kwok pods deleted",
                           lambda: all(self.cluster.api.get(path + p, ok404=True) is None for p in self.pods), 60)
            if self.nodes:
                self.cluster.delete_nodes(self.nodes)
        except Exception as exc:  # noqa: BLE001 - cleanup only; the rows are already measured
            env.log(f"cleaning up the core backends' pods/node failed: {type(exc).__name__}: {exc}")
        finally:
            self.app.stop()


def argocd_precheck(cluster: Cluster, workdir: Path) -> str | None:
    """Why `argocd app list --core` cannot run here, or None when it can (retried on the CLI's start-up race)."""
    proc = run_core(cluster, workdir, "app", "list", namespace=ws.NAMESPACE)
    if proc.returncode == 0:
        return None
    return f"`argocd app list --core` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"


def _gate(cluster: Cluster, mark):
    def started() -> bool:
        return any((ev.get("objectRef") or {}).get("resource") == "applications"
                   for ev in env.contender_requests(cluster, mark))
    return started


def _command(contender: str, cluster: Cluster, workdir: Path, times: Path) -> tuple[list[str], dict]:
    if contender == "argocd_sync_waves":
        return ([str(env.PLAYBOOK), str(env.BENCH_DIR / "playbooks" / "sync_waves.yml")],
                env.bench_env(times, {"K8S_AUTH_KUBECONFIG": str(cluster.kubeconfig)}))
    if contender == "k8s_info_until":
        return ([str(env.PLAYBOOK), str(env.BENCH_DIR / "baselines" / "k8s_info_until.yml")],
                env.bench_env(times, {"K8S_AUTH_KUBECONFIG": str(cluster.kubeconfig)}))
    return (["bash", str(env.BENCH_DIR / "baselines" / "argocd_app_wait.sh")],
            dict(os.environ, ARGOCD_BIN=str(argocd_binary()), WAVE_TIMES_FILE=str(times),
                 KUBECONFIG=str(core_kubeconfig(cluster, workdir / "kubeconfig-argocd", ws.NAMESPACE))))


def _detected(contender: str, times: Path) -> dict[int, float]:
    """Wall-clock time (epoch seconds) each wave was noticed."""
    out: dict[int, float] = {}
    if contender == "argocd_app_wait":
        if times.exists():
            for line in times.read_text(encoding="utf-8").split("\n"):
                if line.strip():
                    wave, stamp = line.split()
                    out[int(wave)] = float(stamp)
        return out
    for rec in env.read_times(times):
        if contender == "argocd_sync_waves" and rec["event"] == "ok" and rec.get("waves"):
            for wave in rec["waves"]:
                if wave.get("detected_at"):
                    stamp = dt.datetime.fromisoformat(wave["detected_at"].replace("Z", "+00:00"))
                    out[int(wave["wave"])] = stamp.timestamp()
        elif contender == "k8s_info_until" and rec["event"] == "item_ok":
            out[int(rec["item"])] = rec["t"]
    return out


def run_one(cluster: Cluster, names: dict[int, list[str]], contender: str, workdir: Path,
            gap: float) -> dict:
    """Reset the scenario, run one contender against the driver, return its row."""
    ws.reset(cluster, names)
    times = workdir / f"{contender}-{sum(map(len, names.values()))}.times"
    times.unlink(missing_ok=True)
    cmd, run_env = _command(contender, cluster, workdir, times)
    load_before = env.machine_load()
    mark = cluster.audit_mark()
    driver = ws.Driver(cluster, names, _gate(cluster, mark), gap=gap)
    driver.start()
    measured = run_measured(cmd, env=run_env, cwd=env.REPO_ROOT, timeout=TIMEOUT,
                            stdout_path=workdir / f"{contender}-{sum(map(len, names.values()))}.out",
                            module_marker=MODULE_MARKERS.get(contender))
    driver.cancel()
    driver.join(timeout=60)
    env.wait_audit_settled(cluster, 1.0)
    requests = env.contender_requests(cluster, mark)
    detected = _detected(contender, times)
    delays = {f.wave: round(detected[f.wave] - f.wall, 3) for f in driver.flips if f.wave in detected}
    by_verb: dict[str, int] = {}
    for ev in requests:
        by_verb[ev["verb"]] = by_verb.get(ev["verb"], 0) + 1
    ok = measured.rc == 0 and len(delays) == len(ws.WAVES)
    row = {
        "n_apps": sum(map(len, names.values())), "contender": contender,
        "detect_p50_s": env.percentile(list(delays.values()), 50),
        "detect_p95_s": env.percentile(list(delays.values()), 95),
        "api_requests": len(requests),
        "peak_rss_mb": measured.peak_rss_mb, "cpu_s": measured.cpu_s, "wall_s": measured.wall_s,
        "ok": ok,
        "detect_per_wave_s": [delays.get(w) for w in ws.WAVES],
        "api_requests_per_wave": round(len(requests) / len(ws.WAVES), 2),
        "api_requests_by_verb": by_verb,
        "peak_rss_largest_process_mb": measured.peak_rss_single_mb,
        "module_process_peak_rss_mb": measured.module_rss_mb,
        "module_process_cpu_s": measured.module_cpu_s,
        "flip_seconds_per_wave": [f.seconds for f in driver.flips],
        "rc": measured.rc,
        "load_1m_before": load_before["load_1m"], "load_1m_after": env.machine_load()["load_1m"],
    }
    if driver.error:
        row["driver_error"] = driver.error
    if not ok:
        row["error"] = (measured.stderr.strip() or measured.stdout.strip())[-800:]
    return row


def ratios(rows: list[dict]) -> dict:
    """argocd_sync_waves / baseline per N and metric (< 1 means the module costs less)."""
    out: dict = {}
    metrics = ("detect_p50_s", "detect_p95_s", "api_requests", "peak_rss_mb", "cpu_s", "wall_s")
    for n in sorted({r["n_apps"] for r in rows}):
        ours = next((r for r in rows if r["n_apps"] == n and r["contender"] == CONTENDERS[0] and r["ok"]), None)
        for base in BASELINES:
            theirs = next((r for r in rows if r["n_apps"] == n and r["contender"] == base and r["ok"]), None)
            if not ours or not theirs:
                continue
            out.setdefault(str(n), {})[f"argocd_sync_waves/{base}"] = {
                m: (round(ours[m] / theirs[m], 3) if ours[m] is not None and theirs[m] else None) for m in metrics}
    return out


def _rows(cluster: Cluster, sizes: list[int], workdir: Path, gap: float, contenders: tuple[str, ...],
          skipped: dict[str, str], appsets: bool = False) -> list[dict]:
    rows = []
    for n in sizes:
        env.log(f"waves: creating {n} Applications" + (" under 4 ApplicationSets" if appsets else ""))
        names = ws.create(cluster, n, appsets=appsets)
        for contender in contenders:
            if contender in skipped:
                rows.append({"n_apps": n, "contender": contender, "ok": False, "detect_p50_s": None,
                             "detect_p95_s": None, "api_requests": None, "peak_rss_mb": None, "cpu_s": None,
                             "wall_s": None, "error": skipped[contender]})
                continue
            env.log(f"waves: N={n} {contender}")
            row = run_one(cluster, names, contender, workdir, gap)
            row["shape"] = "applicationsets" if appsets else "applications"
            env.log(f"  -> {row}")
            rows.append(row)
    return rows


def run(cluster: Cluster, sizes: list[int], workdir: Path, gap: float = 4.0,
        contenders: tuple[str, ...] = CONTENDERS, appset_sizes: tuple[int, ...] = ()) -> dict:
    """The Application rows for ``sizes``; then, for ``appset_sizes``, the verifier on generated apps.

    ``k8s_info`` until-loops and ``argocd app wait`` take no ApplicationSet into account (they wait on
    the apps that exist or match a label), so the ApplicationSet rows measure the module alone.
    """
    env.install_argocd_crds(cluster)
    skipped: dict[str, str] = {}
    backends: CoreBackends | None = None
    if "argocd_app_wait" in contenders:
        why = None if argocd_binary() else "argocd binary not built (python -m tools.localcluster.build argocd)"
        if why is None:
            try:
                backends = CoreBackends(cluster, workdir).start()
            except Exception as exc:  # noqa: BLE001 - reported as the reason it was skipped
                why = f"redis/repo-server behind kwok pods did not start: {type(exc).__name__}: {exc}"
            else:
                why = argocd_precheck(cluster, workdir)
        if why:
            skipped["argocd_app_wait"] = why
            env.log(f"argocd app wait --core cannot run: {why}")
    try:
        rows = _rows(cluster, sizes, workdir, gap, contenders, skipped)
        if appset_sizes:
            rows += _rows(cluster, list(appset_sizes), workdir, gap, CONTENDERS[:1], skipped, appsets=True)
    finally:
        if backends is not None:
            backends.stop()
    result = {
        "scenario": {"waves": len(ws.WAVES), "gap_s": gap, "driver": "thread in the benchmark process, "
                     "merge-PATCH of each app (6 in flight) to Synced+Healthy at the root's revision",
                     "detection": {"argocd_sync_waves": "waves[].detected_at returned by the module",
                                   "k8s_info_until": "end of the wave's loop item (bench_times callback)",
                                   "argocd_app_wait": "end of the wave's `argocd app wait` ($EPOCHREALTIME)"},
                     "api_requests": "audit log, user kubernetes-admin minus the driver's user agent, "
                                     "from contender start to end",
                     "cpu_s": "RUSAGE_CHILDREN delta (whole reaped process tree)",
                     "peak_rss_mb": "peak sum of RSS over the process tree (psutil, 50 ms polling)",
                     "argocd_app_wait_backends": "the CLI's in-process API server port-forwards to kwok pods "
                                                 "argocd-redis/argocd-repo-server; kwok forwards to a local "
                                                 "redis-server and repo-server (not counted in RSS/CPU)"},
        "apiserver": cluster.version().get("gitVersion"),
        "harness": env.harness_settings(),
        "rows": rows,
        "ratios": ratios([r for r in rows if r.get("shape") != "applicationsets"]),
        "skipped": skipped,
    }
    shutil.rmtree(workdir / "argocd-home", ignore_errors=True)
    ws.delete_all(cluster)   # the next sections start without 1,000 Applications in the API server
    return result


def keep_previous(result: dict, path: Path, sizes: list[int], appset_sizes: list[int]) -> dict:
    """Keep the rows of an earlier run for the shapes and sizes this run did not measure."""
    if not path.exists():
        return result
    import json
    old = json.loads(path.read_text(encoding="utf-8"))
    measured = {("applications", n) for n in sizes} | {("applicationsets", n) for n in appset_sizes}
    kept = [r for r in old.get("rows", []) if (r.get("shape", "applications"), r["n_apps"]) not in measured]
    if kept:
        result["rows"] = kept + result["rows"]
        result["ratios"] = ratios([r for r in result["rows"] if r.get("shape", "applications") == "applications"])
        result["kept_from_earlier_run"] = sorted({f"{r.get('shape', 'applications')} {r['n_apps']}" for r in kept})
    return result
