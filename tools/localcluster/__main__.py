"""Command line for the local real cluster.

    python -m tools.localcluster up [--argocd] [--nodes N | --inventory PATH] [--pre-label]
    python -m tools.localcluster status
    python -m tools.localcluster down
    python -m tools.localcluster demo

``up`` starts the processes detached, writes ``<dir>/kubeconfig`` and
``<dir>/state.json`` (PIDs, ports) and returns; ``down`` stops exactly the
PIDs recorded there (default dir ``.cluster``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from tools.localcluster import binaries
from tools.localcluster.build import BuildError
from tools.localcluster.cluster import Cluster, dump_state
from tools.localcluster.procs import HarnessError, ManagedProcess
from tools.localcluster.versions import REPO_ROOT

DEFAULT_DIR = REPO_ROOT / ".cluster"


def say(msg: str) -> None:
    print(msg, flush=True)


def stop_hint(workdir: Path) -> str:
    """How to stop the cluster recorded in ``workdir``."""
    if workdir == DEFAULT_DIR:
        return "make cluster-down"
    return f"python -m tools.localcluster --dir {workdir} down"


def shown(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it (what a user types)."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _state_path(workdir: Path) -> Path:
    return workdir / "state.json"


def _load(workdir: Path) -> dict | None:
    path = _state_path(workdir)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _alive(state: dict) -> dict[str, bool]:
    procs = list(state.get("processes", [])) + list(state.get("argocd", {}).get("processes", []))
    return {p["name"]: ManagedProcess.from_state(p).alive() for p in procs}


def cmd_status(args: argparse.Namespace) -> int:
    state = _load(args.dir)
    if not state:
        say(f"no cluster recorded in {args.dir}")
        return 1
    alive = _alive(state)
    for proc in state["processes"] + state.get("argocd", {}).get("processes", []):
        say(f"{proc['name']:<34} pid {proc['pid']:<8} {'running' if alive[proc['name']] else 'STOPPED'}")
    if all(alive.values()):
        cluster = Cluster.attach(state, log=say)
        say(f"kube-apiserver {cluster.version()['gitVersion']} at {state['server']}")
        nodes = cluster.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
        say(f"nodes: {len(nodes)} ({sum(' Ready ' in n for n in nodes)} Ready)")
        rss = cluster.rss_report()
        if state.get("argocd"):
            procs = [ManagedProcess.from_state(p) for p in state["argocd"]["processes"]]
            rss += f"; argocd {sum(p.rss() for p in procs) / 2**20:.0f} MiB"
        say(rss)
    say(f"kubeconfig: {state['kubeconfig']}")
    return 0 if all(alive.values()) else 1


def _stop_recorded(state: dict) -> None:
    if state.get("argocd"):
        for data in reversed(state["argocd"]["processes"]):
            proc = ManagedProcess.from_state(data)
            proc.stop()
            say(f"[down] {proc.name} (pid {proc.pid}) stopped")
    cluster = Cluster.attach(state, log=say)
    for name in reversed(list(cluster.procs)):
        cluster.procs[name].stop()
        say(f"[down] {name} (pid {cluster.procs[name].pid}) stopped")


def cmd_down(args: argparse.Namespace) -> int:
    state = _load(args.dir)
    if not state:
        say(f"no cluster recorded in {args.dir}; nothing to stop")
        return 0
    _stop_recorded(state)
    left = [n for n, alive in _alive(state).items() if alive]
    if left:
        say(f"[down] still running: {left}")
        return 1
    _state_path(args.dir).unlink()
    say("[down] every recorded process is gone")
    return 0


def _up(args: argparse.Namespace) -> tuple[Cluster, object | None]:
    state = _load(args.dir)
    if state and all(_alive(state).values()):
        raise HarnessError(f"a cluster is already running from {args.dir} "
                           f"(kubeconfig {state['kubeconfig']}); `make cluster-down` first")
    if state:
        say("[up] stopping leftovers of a previous cluster")
        _stop_recorded(state)
    if args.dir.exists():
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True)
    names = ["kubernetes", "etcd", "kwok"] + (["argocd", "kustomize", "helm"] if args.argocd else [])
    spent = binaries.require(names, log=say)
    cold = {n: s for n, s in spent.items() if s}
    if cold:
        say(f"[up] cold build: {', '.join(f'{n} {s:.0f}s' for n, s in cold.items())}")
    cluster = Cluster(args.dir, log=say)
    cluster.start()
    say(f"[up] kube-apiserver {cluster.version()['gitVersion']}")
    app = None
    try:
        if args.nodes is not None:
            if args.nodes:
                cluster.create_many_nodes(args.nodes)
        else:
            cluster.create_nodes(args.inventory, pre_label=args.pre_label)
        if args.argocd:
            from tools.localcluster.argocd import ArgoCD
            app = ArgoCD(cluster, args.dir / "argocd", log=say, source=args.repo_source)
            app.start()
    except BaseException:
        if app is not None:
            app.stop()
        cluster.stop()
        raise
    extra = {"argocd": app.state()} if app is not None else {}
    dump_state(cluster, _state_path(args.dir), extra)
    say(f"[up] {cluster.rss_report()}" + (f"; argocd {app.rss_report()}" if app else ""))
    return cluster, app


def cmd_up(args: argparse.Namespace) -> int:
    try:
        _up(args)
    except (HarnessError, BuildError) as exc:
        say(f"[up] FAILED: {exc}")
        return 1
    kc = shown(args.dir / "kubeconfig")
    say(f"kubeconfig: {kc}")
    say(f"inspect: kubectl --kubeconfig {kc} get nodes" + (" / get applications -A" if args.argocd else ""))
    say(f"stop:    {stop_hint(args.dir)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tools.localcluster.demo import run_demo

    args.argocd = True
    args.pre_label = False  # the node_labels stage of site.yml labels the nodes
    try:
        cluster, app = _up(args)
    except (HarnessError, BuildError) as exc:
        say(f"[demo] FAILED to start: {exc}")
        return 1
    return run_demo(cluster, app, args, say, stop_hint(args.dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.localcluster", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state/work directory (.cluster)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("up", "demo"):
        p = sub.add_parser(name)
        p.add_argument("--argocd", action="store_true", help="also start Argo CD")
        p.add_argument("--nodes", type=int, default=None,
                       help="create N generic kwok nodes instead of the inventory's hosts")
        p.add_argument("--inventory", default=None, help="inventory whose k8s_cluster hosts become nodes")
        p.add_argument("--pre-label", action="store_true",
                       help="apply the inventory's node_labels/node_taints at creation")
        p.add_argument("--repo-source", type=Path, default=None,
                       help="directory the local git repo is made from (default examples/gitops-repo)")
    sub.add_parser("down")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    args.dir = args.dir.resolve()
    start = time.monotonic()
    rc = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "demo": cmd_demo}[args.cmd](args)
    if args.cmd in ("up", "demo"):
        say(f"[{args.cmd}] took {time.monotonic() - start:.1f}s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
