# A stand-in vendor ML base (like nvcr.io/nvidia/pytorch): Debian 12's python3 with
# numpy and pandas installed system-wide from PyPI, a distribution at a local version no
# index has (vendorlib 1.0.0+vendor.1, written here), and a constraint file declared the
# way NVIDIA's images declare theirs (PIP_CONSTRAINT; click<8.2 in it: a package the
# image does not have, which the lock is held to as well). ca.crt (the host's CA bundle, put
# in the build context by scripts/test_images.py) lets pip work behind a TLS proxy.
ARG BASE
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY ca.crt /tmp/ca.crt
RUN PIP_CERT=/tmp/ca.crt PIP_CONFIG_FILE=/dev/null pip install --quiet --no-cache-dir \
        --break-system-packages --only-binary :all: numpy==1.26.4 pandas==2.2.2 \
 && rm /tmp/ca.crt
RUN set -e; site=/usr/local/lib/python3.11/dist-packages; \
    info=$site/vendorlib-1.0.0+vendor.1.dist-info; mkdir -p $info; \
    printf 'VERSION = "1.0.0+vendor.1"\nimport numpy\n' > $site/vendorlib.py; \
    printf 'Metadata-Version: 2.1\nName: vendorlib\nVersion: 1.0.0+vendor.1\nRequires-Dist: numpy>=1.20\n\n' > $info/METADATA; \
    printf 'pip\n' > $info/INSTALLER; \
    printf 'vendorlib.py,,\nvendorlib-1.0.0+vendor.1.dist-info/METADATA,,\nvendorlib-1.0.0+vendor.1.dist-info/RECORD,,\n' > $info/RECORD; \
    mkdir -p /etc/pip; printf 'numpy==1.26.4\npandas==2.2.2\nclick<8.2  # not installed\n' > /etc/pip/constraint.txt
ENV PIP_CONSTRAINT=/etc/pip/constraint.txt
CMD ["python3"]
