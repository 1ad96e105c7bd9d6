# A final image, like python:3.X-slim: the distro's python3 and nothing to build with.
# BASE is a minbase debootstrap of one Debian suite, imported by scripts/test_images.py.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
