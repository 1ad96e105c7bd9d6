# The builder image wheelhouse compiles sdists in. It starts from a target's base image
# (an official python image, a CUDA devel image, a Debian one) and adds a compiler and
# headers with the image's own package manager, so no distro family is assumed. A base
# with no Python (NVIDIA's nvidia/cuda:*-devel images, plain distro images) gets the
# distro's python3 with its headers, pip and venv.
# Built by `wheelhouse build` as: docker build --build-arg BASE=<image> ...
ARG BASE=python:3.12-bookworm
FROM ${BASE}
ARG BASE
ARG APT_PACKAGES=""
ARG APK_PACKAGES=""
RUN set -eu; \
    if command -v python3 >/dev/null || command -v python >/dev/null; then \
        APT_PYTHON=""; APK_PYTHON=""; \
    else \
        APT_PYTHON="python3 python3-dev python3-pip python3-venv"; \
        APK_PYTHON="python3 python3-dev py3-pip"; \
    fi; \
    if command -v apt-get >/dev/null; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            gcc g++ make libc6-dev ca-certificates ${APT_PYTHON} ${APT_PACKAGES}; \
        rm -rf /var/lib/apt/lists/*; \
    elif command -v apk >/dev/null; then \
        apk add --no-cache build-base musl-dev ca-certificates ${APK_PYTHON} ${APK_PACKAGES}; \
    else \
        echo "Dockerfile.builder: no apt-get or apk in ${BASE}" >&2; exit 1; \
    fi
# Builds run as this unprivileged user, never as root.
RUN (useradd --uid 10001 --create-home builder 2>/dev/null \
     || adduser -D -u 10001 builder)
USER 10001
