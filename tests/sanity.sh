#!/usr/bin/env bash
# ansible-test sanity (collection placed under ansible_collections/ecoeco/gitops)
# and ansible-lint --profile production. Works offline: ansible-test's pip
# bootstrap script is replaced by tests/tools/get_pip_standin.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/bin"
cache=~/.ansible/test/cache
command -v shellcheck >/dev/null || { apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null; } || echo "shellcheck could not be installed"
mkdir -p "$cache"
pip_ver=$("$venv/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g
class P: version="3.11"
print(g(P())["pip"])')
cp "$root/tests/tools/get_pip_standin.py" "$cache/get_pip_${pip_ver//./_}.py"

# ansible-test wants a real ansible_collections/<ns>/<name> path: copy the tracked
# files there (a symlink would make it walk .venv and .collections).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ecoeco/gitops"
mkdir -p "$dest"
(cd "$root" || exit 1; git ls-files -co --exclude-standard -z | xargs -0 -I{} cp -P --parents {} "$dest"/)
echo "=== ansible-test sanity"
(cd "$dest" && PATH="$venv:$PATH" "$venv/ansible-test" sanity --python 3.11 --local --requirements \
   --color no) || { echo "ansible-test sanity failed"; exit 1; }
echo "=== ansible-lint (production profile)"
cd "$root" && PATH="$venv:$PATH" "$venv/ansible-lint" --offline --profile production -q
echo "sanity: ansible-test and ansible-lint clean"
