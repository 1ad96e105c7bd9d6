#!/usr/bin/env bash
# Set up wheelhouse on a fresh Debian/Ubuntu machine and lock the example app's targets.
# Usage: bash examples/ml-app/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${WHEELHOUSE_VENV:-$repo/.venv}"

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv python3-pip
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e "$repo[uv]"

cd "$here"
"$venv/bin/wheelhouse" targets
"$venv/bin/wheelhouse" lock
"$venv/bin/wheelhouse" lock --check
echo
echo "locks written:"; ls -l "$here/locks"
