# Sourced by .ci/run and examples/ml-app/run.sh: make a Docker engine answer on a fresh
# Debian/Ubuntu machine. Installs Debian's docker.io (its client, /usr/bin/docker, has
# BuildKit built in; a newer client without the buildx plugin cannot do `RUN --mount`) and
# debootstrap (the test images are made from Debian packages), then starts dockerd when
# nothing answers. Sets ENGINE to the client and DOCKERD_PID to the dockerd it started.

ENGINE=/usr/bin/docker
DOCKERD_PID=""

ensure_engine() {
    local log="$1"  # where a started dockerd writes its log
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    local missing=()
    [ -x /usr/bin/docker ] && command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "engine: installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! $ENGINE info >/dev/null 2>&1; then
        echo "engine: starting dockerd (log: $log)"
        mkdir -p "$(dirname "$log")"
        $sudo dockerd >"$log" 2>&1 &
        DOCKERD_PID=$!
        for _ in $(seq 60); do
            $ENGINE info >/dev/null 2>&1 && break
            sleep 1
        done
        $ENGINE info >/dev/null || { tail -20 "$log"; return 1; }
    fi
}

stop_started_engine() {
    if [ -n "$DOCKERD_PID" ]; then
        echo "engine: stopping the dockerd this run started"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo kill "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
}
