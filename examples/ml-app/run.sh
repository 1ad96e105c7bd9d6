#!/usr/bin/env bash
# The main job on the example app, on a fresh Debian/Ubuntu machine: set up wheelhouse,
# lock the app's three targets (slim, py313, alpine), then for one glibc target build the
# wheelhouse (which also writes its static index), write the final stage, build the image
# with no network and run the app's smoke check in it; last, the image report (no wheel
# file, no compiler). Usage: bash examples/ml-app/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${WHEELHOUSE_VENV:-$repo/.venv}"

source "$repo/scripts/engine.sh"
ensure_engine "$repo/.venv-dockerd.log"  # also installs python3-venv where it is missing

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e "$repo[uv]"
wh="$venv/bin/wheelhouse"

cd "$here"
"$wh" targets
"$wh" lock
"$wh" lock --check
echo; echo "locks written:"; ls -l "$here/locks"; echo

# The slim target's images are the official python:3.12 ones. Where no registry can be
# reached, the same roles are played by images made from Debian packages (Python 3.11):
# the target is pointed at them with --set, and locked again for that Python.
target=slim
sets=()
if ! { $ENGINE image inspect python:3.12-slim-bookworm >/dev/null 2>&1 \
       || $ENGINE pull -q python:3.12-slim-bookworm >/dev/null 2>&1; }; then
    echo "no registry reachable: making Debian images to play python:3.11 / 3.11-slim"
    images="$("$venv/bin/python" "$repo/scripts/test_images.py" --engine "$ENGINE")"
    role() { "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$images"; }
    sets=(--set "targets.slim.python-version=3.11"
          --set "targets.slim.builder-image=$(role py311-builder)"
          --set "targets.slim.final-image=$(role py311-slim)")
    "$wh" "${sets[@]}" lock -t "$target"
fi
wh_t() { "$wh" --engine "$ENGINE" "${sets[@]}" "$@"; }

wh_t build -t "$target"
wh_t dockerfile -t "$target" --app app.py --cmd "python app.py" --whole -o Dockerfile
final="$(wh_t targets "$target" | sed -n 's/^ *final: *//p' | head -1)"
DOCKER_BUILDKIT=1 $ENGINE build --network=none -f Dockerfile -t wheelhouse-example:latest .
$ENGINE run --rm --network none wheelhouse-example:latest python app.py smoke
wh_t image-report wheelhouse-example:latest --base "$final" --strict
