"""Build the real control-plane components from Go modules, once per version.

Binaries land in ``$ECOECO_CACHE/bin/<component>-<version>/`` (default cache
``~/.cache/ecoeco-gitops``).  A component whose directory already holds every
expected binary is never rebuilt.  One run at a time builds a component (a
file lock in the cache dir; another run waits for it, then finds it built).
A failed build raises :class:`BuildError` naming the component and the tail
of the Go output.

Command line::

    python -m tools.localcluster.build [component ...]   # default: all
    python -m tools.localcluster.build kubernetes_previous  # v1.36.3 for day 2
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from tools.localcluster.versions import VERSIONS, cache_dir

K8S_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubeadm",
    "kubelet",
    "kube-proxy",
)
LOCK_TIMEOUT = 60 * 60.0  # longest wait for another run's build of one component


class BuildError(RuntimeError):
    """A component could not be built; the message says which and why."""


@dataclass
class Component:
    """One buildable component: its version, the binaries it yields, its recipe."""

    name: str
    version: str
    binaries: tuple[str, ...]
    recipe: Callable[["Component", Path, Path], None]
    env: dict[str, str] = field(default_factory=dict)
    # What the cache directories are named after (default: ``name``).  Two
    # components of one family (``kubernetes`` and ``kubernetes_previous``) share
    # the ``<family>-<version>`` layout but not their build lock, so the
    # previous release can build while another run builds the current one.
    family: str = ""
    # Built by ``ensure(name)`` only, not by a plain ``build`` (``make build``).
    on_demand: bool = False

    @property
    def bin_dir(self) -> Path:
        return cache_dir() / "bin" / f"{self.family or self.name}-{self.version}"

    @property
    def work_dir(self) -> Path:
        return cache_dir() / "src" / f"{self.family or self.name}-{self.version}"

    def built(self) -> bool:
        return all((self.bin_dir / b).is_file() for b in self.binaries)

    def path(self, binary: str | None = None) -> Path:
        return self.bin_dir / (binary or self.binaries[0])


def _go(args: list[str], cwd: Path, component: str, env: dict[str, str] | None = None) -> str:
    full_env = dict(os.environ)
    full_env.setdefault("CGO_ENABLED", "0")
    full_env["GOFLAGS"] = "-buildvcs=false -mod=mod"
    if env:
        full_env.update(env)
    proc = subprocess.run(
        ["go", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise BuildError(f"building {component}: `go {' '.join(args[:3])}` failed:\n{tail}")
    return proc.stdout


def _module_gomod(module: str, version: str, cwd: Path, component: str,
                  env: dict[str, str] | None = None) -> str:
    """Return the text of a module's go.mod, fetched through the module proxy."""
    out = _go(["mod", "download", "-json", f"{module}@{version}"], cwd, component, env)
    info = json.loads(out)
    return Path(info["GoMod"]).read_text(encoding="utf-8")


def _fresh_workdir(comp: Component) -> Path:
    if comp.work_dir.exists():
        shutil.rmtree(comp.work_dir)
    comp.work_dir.mkdir(parents=True)
    return comp.work_dir


def _build_kubernetes(comp: Component, work: Path, out: Path) -> None:
    ver = comp.version
    staging_ver = "v0." + ver.split(".", 1)[1]
    (work / "go.mod").write_text("module ecoeco.local/k8sbuild\n\ngo 1.26\n", encoding="utf-8")
    gomod = _module_gomod("k8s.io/kubernetes", ver, work, comp.name)
    staging = re.findall(r"^\s*(k8s\.io/\S+)\s*=>\s*\./staging/", gomod, re.MULTILINE)
    godebug = re.findall(r"^godebug .*$", gomod, re.MULTILINE)
    go_line = re.search(r"^go (\S+)", gomod, re.MULTILINE)
    lines = ["module ecoeco.local/k8sbuild", "", f"go {go_line.group(1) if go_line else '1.26'}", ""]
    lines += godebug
    lines += ["", f"require k8s.io/kubernetes {ver}", ""]
    lines += [f"replace {m} => {m} {staging_ver}" for m in staging]
    (work / "go.mod").write_text("\n".join(lines) + "\n", encoding="utf-8")
    imports = "\n".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"' for c in K8S_COMMANDS)
    (work / "tools.go").write_text(
        f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n", encoding="utf-8"
    )
    _go(["mod", "tidy"], work, comp.name, {"GOFLAGS": "-buildvcs=false -tags=tools"})
    major, minor = ver.lstrip("v").split(".")[:2]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={ver}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={stamp}",
        ]
    out.mkdir(parents=True, exist_ok=True)
    _go(
        [
            "build", "-trimpath", "-tags", "selinux,notest,grpcnotrace",
            "-ldflags", "-s -w " + " ".join(flags), "-o", str(out) + "/",
            *[f"k8s.io/kubernetes/cmd/{c}" for c in K8S_COMMANDS],
        ],
        work, comp.name,
    )


def _build_etcd(comp: Component, work: Path, out: Path) -> None:
    ver = comp.version
    mods = ["server/v3", "api/v3", "client/pkg/v3", "client/v3", "pkg/v3"]
    req = "\n".join(f"\tgo.etcd.io/etcd/{m} {ver}" for m in mods)
    (work / "go.mod").write_text(
        f"module ecoeco.local/etcdbuild\n\ngo 1.24\n\nrequire (\n{req}\n)\n", encoding="utf-8"
    )
    (work / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n',
        encoding="utf-8",
    )
    _go(["mod", "tidy"], work, comp.name, {"GOFLAGS": "-buildvcs=false -tags=tools"})
    out.mkdir(parents=True, exist_ok=True)
    _go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"),
         "go.etcd.io/etcd/server/v3"], work, comp.name)


def _go_install(module_cmd: str) -> Callable[[Component, Path, Path], None]:
    def recipe(comp: Component, work: Path, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        _go(["install", "-trimpath", "-ldflags", "-s -w", f"{module_cmd}@{comp.version}"],
            work, comp.name, {"GOBIN": str(out), "GOFLAGS": "-buildvcs=false"})
    return recipe


def _build_argocd(comp: Component, work: Path, out: Path) -> None:
    ver = comp.version
    env = {"GOTOOLCHAIN": VERSIONS["argocd_go_toolchain"]}
    (work / "go.mod").write_text("module ecoeco.local/argocdbuild\n\ngo 1.27.0\n", encoding="utf-8")
    gomod = _module_gomod("github.com/argoproj/argo-cd/v3", ver, work, comp.name, env)
    replaces = []
    block = re.search(r"^replace \((.*?)^\)", gomod, re.MULTILINE | re.DOTALL)
    if block:
        replaces += [ln.strip() for ln in block.group(1).splitlines() if "=>" in ln]
    replaces += [ln[len("replace "):].strip() for ln in gomod.splitlines()
                 if ln.startswith("replace ") and "=>" in ln]
    replaces = [r for r in replaces if "./" not in r.split("=>", 1)[1] and not r.startswith("//")]
    lines = [
        "module ecoeco.local/argocdbuild", "", "go 1.27.0", "",
        "require (",
        f"\tgithub.com/argoproj/argo-cd/v3 {ver}",
        f"\tgithub.com/argoproj/argo-cd/gitops-engine/v3 {ver}",
        ")", "",
    ] + [f"replace {r}" for r in replaces]
    (work / "go.mod").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (work / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "github.com/argoproj/argo-cd/v3/cmd"\n',
        encoding="utf-8",
    )
    _go(["mod", "tidy"], work, comp.name, {**env, "GOFLAGS": "-buildvcs=false -tags=tools"})
    out.mkdir(parents=True, exist_ok=True)
    _go(["build", "-trimpath", "-ldflags",
         f"-s -w -X github.com/argoproj/argo-cd/v3/common.version={ver.lstrip('v')}",
         "-o", str(out / "argocd"), "github.com/argoproj/argo-cd/v3/cmd"],
        work, comp.name, env)


def _build_cni(comp: Component, work: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for plugin in ("main/bridge", "main/loopback", "ipam/host-local", "meta/portmap"):
        _go(["install", "-trimpath", "-ldflags", "-s -w",
             f"github.com/containernetworking/plugins/plugins/{plugin}@{comp.version}"],
            work, comp.name, {"GOBIN": str(out), "GOFLAGS": "-buildvcs=false"})


def components() -> dict[str, Component]:
    """Every component the harness can build, at the pinned versions."""
    v = VERSIONS
    return {
        c.name: c
        for c in (
            Component("kubernetes", v["kubernetes"], K8S_COMMANDS, _build_kubernetes),
            # The release the day-2 test installs first and upgrades from.
            Component("kubernetes_previous", v["kubernetes_previous"], K8S_COMMANDS,
                      _build_kubernetes, family="kubernetes", on_demand=True),
            Component("etcd", v["etcd"], ("etcd",), _build_etcd),
            Component("kwok", v["kwok"], ("kwok",), _go_install("sigs.k8s.io/kwok/cmd/kwok")),
            Component("kustomize", v["kustomize"], ("kustomize",),
                      _go_install("sigs.k8s.io/kustomize/kustomize/v5")),
            Component("helm", v["helm"], ("helm",), _go_install("helm.sh/helm/v3/cmd/helm")),
            Component("argocd", v["argocd"], ("argocd",), _build_argocd),
            Component("cni-plugins", v["cni_plugins"],
                      ("bridge", "loopback", "host-local", "portmap"), _build_cni),
        )
    }


@contextmanager
def component_lock(name: str, log: Callable[[str], None] = print,
                   timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the build lock of component ``name`` (``flock`` on ``<cache>/locks/<name>.lock``).

    Two runs (two checkouts, a test tier and ``make build``) never build into
    the same cache directories: the second waits, bounded by ``timeout``.
    """
    path = cache_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log(f"[build] {name}: another run is building it ({path} is locked), waiting...")
                    waiting = True
                if time.monotonic() > deadline:
                    raise BuildError(f"building {name}: {path} still locked after {timeout:.0f}s") from None
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure(name: str, log: Callable[[str], None] = print) -> Component:
    """Build component ``name`` unless its binaries are cached; return it."""
    comp = components()[name]
    if comp.built():
        return comp
    with component_lock(name, log):
        if not comp.built():  # else another run built it while this one waited
            _build(comp, log)
    return comp


def _build(comp: Component, log: Callable[[str], None]) -> None:
    """Build ``comp`` into a ``.partial`` directory and move it into place (under its lock)."""
    name = comp.name
    log(f"[build] {name} {comp.version}: building from Go modules (cold build; minutes)...")
    start = time.monotonic()
    work = _fresh_workdir(comp)
    tmp_out = comp.bin_dir.with_name(comp.bin_dir.name + ".partial")
    shutil.rmtree(tmp_out, ignore_errors=True)
    comp.recipe(comp, work, tmp_out)
    shutil.rmtree(comp.bin_dir, ignore_errors=True)
    tmp_out.rename(comp.bin_dir)
    shutil.rmtree(work, ignore_errors=True)
    if not comp.built():
        raise BuildError(f"building {name}: expected binaries {comp.binaries} in {comp.bin_dir}")
    log(f"[build] {name} {comp.version}: done in {time.monotonic() - start:.0f}s -> {comp.bin_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*",
                        help="components (default: all but the on-demand ones, "
                             "e.g. kubernetes_previous)")
    args = parser.parse_args(argv)
    names = args.names or [n for n, c in components().items() if not c.on_demand]
    failed = []
    for name in names:
        try:
            ensure(name, log=lambda m: print(m, flush=True))
        except BuildError as exc:
            print(f"[build] FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
