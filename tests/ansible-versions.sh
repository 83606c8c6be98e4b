#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run through step/timed/trap look unreachable to it
# The ansible-core range meta/runtime.yml claims, tested at both ends. For each
# requirements/ansible-<version>.txt (2.17, the lowest claimed; 2.21, the newest):
#   1. ansible-test sanity (tests/sanity/ignore-<version>.txt),
#   2. the unit tier,
#   3. one integration file that runs the modules through ansible-playbook
#      against the real local kube-apiserver ($ANSIBLE_VERSIONS_INTEGRATION,
#      default tests/integration/test_root_app.py),
# in a venv of that file's freeze, with kubernetes.core and amazon.aws at the
# versions its `# collections:` line pins (unpacked from that `ansible` wheel
# into the venv's site-packages, where ansible-core finds collections; the
# versions are checked against galaxy.yml's ranges).
#
#   tests/ansible-versions.sh [VERSION ...]     (default: every requirements/ansible-*.txt)
#
# `# python: host` runs on this machine's python3; `# python: container` (the
# versions that need a newer Python than the host's) runs in a podman container
# of tests/ansible-versions/Containerfile on the Debian trixie machine image
# (tests/images/build.sh), with host networking so that the control plane the
# test starts listens on this machine's loopback only. Venvs, the `ansible`
# wheels and the control-plane binaries are cached in ~/.cache/ecoeco-gitops
# ($ECOECO_CACHE); a venv is rebuilt when its requirements file changes.
# Prints the seconds of every step and of every version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${ECOECO_CACHE:-$HOME/.cache/ecoeco-gitops}
vcache="$cache/ansible-versions"
integration=${ANSIBLE_VERSIONS_INTEGRATION:-tests/integration/test_root_app.py}
image=localhost/ecoeco-ansible-versions:trixie
export CONTAINERS_CONF="$root/tests/images/containers.conf"

header() {  # header FILE KEY: the value of a `# KEY: ...` line
  sed -n "s/^# $2: *//p" "$1" | head -1
}

# --- inside the machine that runs one version (this host or the container) ---
install_venv() {  # install_venv VERSION DEST: sets $venv (the tests') and $svenv (ansible-test's)
  local version=$1 dest=$2 req pyver stamp site spec wheel pkg c name want got
  req="$dest/requirements/ansible-$version.txt"
  pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  venv="$vcache/$version-py$pyver/venv"
  svenv="$vcache/$version-py$pyver/sanity"
  stamp="$(sha256sum <"$req" | cut -c1-12)"
  # ansible-test sanity --requirements installs each test's own pins (older PyYAML,
  # Jinja2, ...) into the Python it runs on: it gets a venv of its own, with
  # ansible-core alone, so that the tests' venv stays the freeze.
  if [ ! -e "$svenv/.installed-$stamp" ]; then
    echo "installing $(grep '^ansible-core==' "$req") into $svenv" >&2
    rm -rf "$svenv" && mkdir -p "$(dirname "$svenv")" && python3 -m venv "$svenv"
    "$svenv/bin/python" -m pip install -q --upgrade 'pip>=25' >&2
    "$svenv/bin/python" -m pip install -q -c "$req" "$(grep '^ansible-core==' "$req")" >&2
    touch "$svenv/.installed-$stamp"
  fi
  if [ ! -e "$venv/.installed-$stamp" ]; then
    echo "installing $req into $venv" >&2
    rm -rf "$venv" && mkdir -p "$(dirname "$venv")" && python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade 'pip>=25' >&2
    "$venv/bin/python" -m pip install -q -r "$req" >&2
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    read -r -a spec <<<"$(header "$req" collections)"
    pkg=${spec[0]}
    wheel="$vcache/wheels/ansible-${pkg#ansible==}-py3-none-any.whl"
    if [ ! -f "$wheel" ]; then
      mkdir -p "$vcache/wheels"
      "$venv/bin/python" -m pip download -q --no-deps -d "$vcache/wheels" "$pkg" >&2
    fi
    # Unpack only the collections named (the rest of the bundle is not what is tested).
    "$venv/bin/python" - "$wheel" "$site" "${spec[@]:1}" <<'EOF'
import sys, zipfile
wheel, site, *pins = sys.argv[1:]
prefixes = tuple("ansible_collections/%s/" % pin.split("==")[0].replace(".", "/") for pin in pins)
with zipfile.ZipFile(wheel) as whl:
    whl.extractall(site, [m for m in whl.namelist() if m.startswith(prefixes)])
EOF
    for c in "${spec[@]:1}"; do
      name=${c%%==*} want=${c#*==}
      got=$("$venv/bin/python" - "$site" "$name" "$dest/galaxy.yml" <<'EOF'
import json, sys
from pathlib import Path
import yaml
from packaging.specifiers import SpecifierSet
site, name, galaxy = sys.argv[1:]
ns, coll = name.split(".")
version = json.loads(Path(site, "ansible_collections", ns, coll, "MANIFEST.json").read_text())["collection_info"]["version"]
allowed = yaml.safe_load(Path(galaxy).read_text())["dependencies"][name]
if version not in SpecifierSet(allowed):
    sys.exit(f"{name} {version} is outside galaxy.yml's range {allowed}")
print(version)
EOF
)
      [ "$got" = "$want" ] || { echo "$name: $pkg carries $got, the lock says $want" >&2; exit 1; }
    done
    touch "$venv/.installed-$stamp"
  fi
}

declare -a order=()
declare -A took=()
step() {  # step NAME CMD...: run and time one step; a failure ends the version
  local name=$1 start rc; shift
  echo "=== $name: $*"
  start=$(date +%s)
  "$@" && rc=0 || rc=$?
  took[$name]=$(( $(date +%s) - start )); order+=("$name")
  if [ "$rc" -eq 5 ]; then echo "=== $name collected no tests"; rc=1; fi
  if [ "$rc" -ne 0 ]; then echo "=== $name failed (rc=$rc)"; times_of; exit "$rc"; fi
}
times_of() {
  for n in "${order[@]}"; do printf '  %-40s %5ss\n' "$n" "${took[$n]}"; done
}

sanity() {  # sanity PYVER: ansible-test sanity of the copy in the working directory, from $svenv
  local pyver=$1 pip_ver
  pip_ver=$("$svenv/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g
class P: version="'"$pyver"'"
print(g(P())["pip"])')
  # Offline: the pip bootstrap ansible-test would download is tests/tools/get_pip_standin.py.
  mkdir -p ~/.ansible/test/cache
  cp tests/tools/get_pip_standin.py ~/.ansible/test/cache/"get_pip_${pip_ver//./_}.py"
  PATH="$svenv/bin:$PATH" "$svenv/bin/ansible-test" sanity --python "$pyver" --local --requirements --color no
}

inside() {  # inside VERSION DEST [STEP ...]: the steps (default: all three), in the collection copy DEST
  local version=$1 dest=$2 pyver steps
  steps=" ${*:3} "
  [ "$steps" != "  " ] || steps=" sanity unit integration "
  pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  step "$version: venv" install_venv "$version" "$dest"
  cd "$dest"
  echo "ansible-core $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)') on Python $pyver," \
       "$(PATH="$venv/bin:$PATH" ansible-galaxy collection list 2>/dev/null | awk '/^(kubernetes.core|amazon.aws) / {print $1, $2}' | paste -sd, -)"
  if [[ $steps == *" sanity "* ]]; then
    # ansible-test walks every file of the copy: it runs before .venv and .collections are there.
    step "$version: ansible-test sanity" sanity "$pyver"
  fi
  ln -sfn "$venv" .venv
  if [[ $steps == *" unit "* ]]; then
    step "$version: unit" .venv/bin/python -m pytest tests/unit -q -p no:cacheprovider
  fi
  if [[ $steps == *" integration "* ]]; then
    step "$version: integration $(basename "$integration" .py)" \
      .venv/bin/python -m pytest -m controlplane "$integration" -q -p no:cacheprovider
  fi
  echo "=== ansible-core $version: seconds per step"
  times_of
}

if [ "${1:-}" = "--inside" ]; then
  shift
  inside "$@"
  exit 0
fi

# --- on this machine: one collection copy per version, then host or container ---
if [ $# -eq 0 ]; then
  mapfile -t found < <(find "$root/requirements" -name 'ansible-[0-9]*.txt' -printf '%f\n' \
                        | sed 's/^ansible-//; s/\.txt$//' | sort -V)
  set -- "${found[@]}"
fi
for v in "$@"; do
  [ -f "$root/requirements/ansible-$v.txt" ] || { echo "no requirements/ansible-$v.txt" >&2; exit 2; }
done
manifests=$(cd "${ECOECO_MANIFESTS_DIR:-$root/../shared/manifests}" && pwd -P)
export ECOECO_MANIFESTS_DIR=$manifests ECOECO_CACHE=$cache

work=$(mktemp -d "${TMPDIR:-/var/tmp}/ecoeco-versions.XXXXXX")
containers=()
cleanup() {
  for c in "${containers[@]}"; do podman rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The control plane's binaries: Go builds from the module proxy, cached by version
# (a file lock makes concurrent callers wait for one build). Built here before a
# container runs the integration file: the container has no Go toolchain.
require_binaries() {
  "$root/.venv/bin/python" -c "import sys; sys.path[:0] = ['$root']
from tools.localcluster import binaries
from tests.support.cluster_fixtures import CONTROL_PLANE
binaries.require(list(CONTROL_PLANE), log=print)"
}

one_version() {  # one_version VERSION: its three steps, on this machine or in the container
  local v=$1 dest
  # ansible-test wants the collection at ansible_collections/<ns>/<name>: copy the tracked files.
  dest="$work/$v/ansible_collections/ecoeco/gitops"
  mkdir -p "$dest"
  (cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp -P --parents {} "$dest"/)
  case $(header "$root/requirements/ansible-$v.txt" python | cut -d' ' -f1) in
    host) bash "$dest/tests/ansible-versions.sh" --inside "$v" "$dest" ;;
    container)
      # HOME in the cache keeps ansible-test's sanity venvs and pip's cache between runs.
      mkdir -p "$vcache/home-$v"
      # Host networking: the kube-apiserver, etcd and kwok the test starts listen
      # on 127.0.0.1 of this machine, as in every other tier. This machine's CA
      # bundle goes in read-only for pip (never into the image); ansible-test runs
      # pip with an environment of its own, so a pip.conf names it too.
      local ca=()
      if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        printf '[global]\ncert = /run/host-ca.crt\n' >"$work/$v/pip.conf"
        ca=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro -v "$work/$v/pip.conf:/etc/pip.conf:ro"
            -e PIP_CERT=/run/host-ca.crt -e SSL_CERT_FILE=/run/host-ca.crt -e REQUESTS_CA_BUNDLE=/run/host-ca.crt)
      fi
      if [ ! -e "$work/image-built" ]; then
        bash "$root/tests/images/build.sh" trixie
        podman build -q --build-arg BASE=localhost/ecoeco-machine:trixie -t "$image" "$here/ansible-versions" >/dev/null
        touch "$work/image-built"
      fi
      local run=(podman run --rm --network host --name "ecoeco-versions-$v-$$" "${ca[@]}"
        -v "$work/$v:$work/$v" -v "$cache:$cache" -v "$manifests:$manifests:ro"
        -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e ECOECO_CACHE="$cache" -e ECOECO_MANIFESTS_DIR="$manifests"
        -e HOME="$vcache/home-$v" -w "$dest" "$image" bash "$dest/tests/ansible-versions.sh" --inside "$v" "$dest")
      "${run[@]}" sanity unit && require_binaries && "${run[@]}" integration ;;
    *) echo "requirements/ansible-$v.txt: '# python:' must be host or container" >&2; return 2 ;;
  esac
}

timed() {  # timed VERSION: one_version, its output prefixed, its seconds and rc in $work
  local v=$1 start rc
  start=$(date +%s)
  one_version "$v" 2>&1 | sed -u "s/^/[$v] /" && rc=0 || rc=$?
  echo "$(( $(date +%s) - start )) $rc" >"$work/$v.result"
}

# The versions run side by side (ANSIBLE_VERSIONS_SERIAL=1: one after the other):
# each has its own venv, copy and control plane on free loopback ports.
for v in "$@"; do
  if [ "$(header "$root/requirements/ansible-$v.txt" python | cut -d' ' -f1)" = container ]; then
    containers+=("ecoeco-versions-$v-$$")
  fi
  if [ "${ANSIBLE_VERSIONS_SERIAL:-0}" = 1 ]; then timed "$v"; else timed "$v" & fi
done
wait
failed=0
echo "=== ansible-core versions, seconds each:"
for v in "$@"; do
  secs="-" rc=1
  [ -f "$work/$v.result" ] && read -r secs rc <"$work/$v.result"
  if [ "$rc" = 0 ]; then verdict=passed; else verdict="FAILED (rc=$rc)"; failed=1; fi
  printf '  %-8s %5ss  %s\n' "$v" "$secs" "$verdict"
done
exit "$failed"
