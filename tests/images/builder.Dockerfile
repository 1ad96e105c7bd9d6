# A "full" builder image, like python:3.X: the distro's python3 with headers and a C compiler.
# BASE is a minbase debootstrap of one Debian suite, imported by scripts/test_images.py.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-pip python3-dev gcc libc6-dev ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
