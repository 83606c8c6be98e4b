"""``make bench``: start the harness's real control plane, run the benchmarks, write results/*.json.

    python -m benchmarks [--only waves,nodes,rerun,cluster] [--sizes 40,200] [--node-sizes 14,200]

``cluster`` (not in the default set: about 10-15 min, podman machines) is
site.yml's first and no-op run on make test-cluster's SSH machines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import env, report

SECTIONS = ("waves", "nodes", "rerun", "cluster")
DEFAULT_SECTIONS = ("waves", "nodes", "rerun")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _bound(text: str) -> float | dict[int, float]:
    """``600`` for every size, or ``14=600,200=600,1000=300`` per node count."""
    if "=" not in text:
        return float(text)
    return {int(k): float(v) for k, v in (item.split("=", 1) for item in text.split(",") if item.strip())}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(DEFAULT_SECTIONS), help="sections to run: waves,nodes,rerun,cluster")
    p.add_argument("--sizes", type=_ints, default=[40, 200, 1000], help="Application counts (waves)")
    p.add_argument("--appset-sizes", type=_ints, default=[1000, 5000],
                   help="generated Application counts under 4 ApplicationSets (waves; empty: none)")
    p.add_argument("--node-sizes", type=_ints, default=[14, 200, 1000], help="kwok node counts (nodes)")
    p.add_argument("--gap", type=float, default=10.0, help="seconds between two waves' flips")
    p.add_argument("--baseline-timeout", type=_bound, default=1500.0,
                   help="bound of one per-host baseline run (nodes), seconds; or per size: 14=600,1000=300")
    p.add_argument("--rerun-stages", default="node_labels,calico,argocd,gitops_stages",
                   help="rerun section: stages to measure; the other rows of rerun.json are kept")
    p.add_argument("--workdir", type=Path, default=None, help="cluster and logs (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        print(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ecoeco-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    begin = time.monotonic()
    env.log(f"machine: {env.machine_load()}")
    if "cluster" in only:  # its own machines, before the harness's cluster starts
        from benchmarks import rerun
        load = env.machine_load()
        res = rerun.run_cluster(workdir)
        res["machine"] = {"start": load, "end": env.machine_load()}
        path = env.write_json("rerun_cluster.json", res)
        print(f"\nsite.yml on the SSH podman cluster ({path}):\n{report.cluster_table(res)}\n", flush=True)
        only.remove("cluster")
        if not only:
            if not args.keep and args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
            return 0
    cluster = env.start_cluster(workdir / "cluster")
    out = workdir / "runs"
    out.mkdir(exist_ok=True)
    try:
        # rerun first: it needs the example's 14 nodes on an otherwise empty cluster
        if "rerun" in only:
            from benchmarks import rerun
            load = env.machine_load()
            stages = tuple(x for x in args.rerun_stages.split(",") if x)
            previous = json.loads((env.RESULTS / "rerun.json").read_text(encoding="utf-8")) \
                if (env.RESULTS / "rerun.json").exists() else None
            res = rerun.run(cluster, out, stages=stages, previous=previous)
            res["machine"] = {"start": load, "end": env.machine_load()}
            path = env.write_json("rerun.json", res)
            print(f"\nRerun cost ({path}):\n{report.rerun_table(res)}\n", flush=True)
        if "waves" in only:
            from benchmarks import wave_verify
            load = env.machine_load()
            res = wave_verify.run(cluster, args.sizes, out, gap=args.gap, appset_sizes=tuple(args.appset_sizes))
            res = wave_verify.keep_previous(res, env.RESULTS / "wave_verify.json", args.sizes, args.appset_sizes)
            res["machine"] = {"start": load, "end": env.machine_load()}
            path = env.write_json("wave_verify.json", res)
            print(f"\nWave verification ({path}):\n{report.waves_table(res)}\n\n{report.ratios_table(res)}\n",
                  flush=True)
        if "nodes" in only:
            from benchmarks import node_labels_bench
            load = env.machine_load()
            res = node_labels_bench.run(
                cluster, args.node_sizes, out, timeout=args.baseline_timeout,
                partial=lambda rows: env.write_json("node_labels.json", {"partial": True, "rows": rows}))
            res["machine"] = {"start": load, "end": env.machine_load()}
            path = env.write_json("node_labels.json", res)
            print(f"\nNode labels at scale ({path}):\n{report.nodes_table(res)}\n", flush=True)
    finally:
        env.log(f"stopping the cluster ({cluster.rss_report()})")
        cluster.stop()
    env.log(f"done in {time.monotonic() - begin:.0f}s; logs in {workdir}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
