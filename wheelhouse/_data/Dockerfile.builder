# The builder image wheelhouse compiles sdists in. It starts from a target's base image
# (an official python image, a CUDA devel image, a Debian one) and adds a compiler and
# headers with the image's own package manager, so no distro family is assumed.
# Built by `wheelhouse build` (later) as: docker build --build-arg BASE=<image> ...
ARG BASE=python:3.12-bookworm
FROM ${BASE}
ARG APT_PACKAGES=""
ARG APK_PACKAGES=""
RUN set -eu; \
    if command -v apt-get >/dev/null; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            gcc g++ make libc6-dev ca-certificates ${APT_PACKAGES}; \
        rm -rf /var/lib/apt/lists/*; \
    elif command -v apk >/dev/null; then \
        apk add --no-cache build-base ca-certificates ${APK_PACKAGES}; \
    else \
        echo "Dockerfile.builder: no apt-get or apk in ${BASE}" >&2; exit 1; \
    fi
# Builds run as this unprivileged user, never as root.
RUN (useradd --uid 10001 --create-home builder 2>/dev/null \
     || adduser -D -u 10001 builder)
USER 10001
