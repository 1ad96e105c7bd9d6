# A CUDA "devel" image like nvidia/cuda:*-devel (none can be pulled here): the CUDA
# toolkit in /usr/local/cuda, nvcc on PATH, CUDA_VERSION set, libcudart known to the
# dynamic linker, and, like NVIDIA's images, no Python (Dockerfile.builder adds one).
# The toolkit comes from PyPI's nvidia-cuda-nvcc / nvidia-cuda-runtime wheels (CUDA 13:
# the cu12 nvcc wheels carry ptxas but no nvcc driver). They are installed in a throwaway
# stage, with the host's CA bundle (ca.crt, copied into the build context by
# scripts/test_images.py) so pip works behind a TLS-intercepting proxy; only the toolkit
# is copied into the image. BASE is a minbase debootstrap of Debian 12.
ARG BASE
FROM ${BASE} AS toolkit
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca.crt /tmp/ca.crt
RUN PIP_CERT=/tmp/ca.crt PIP_CONFIG_FILE=/dev/null pip install --quiet --no-cache-dir \
        --break-system-packages --only-binary :all: --target /opt/pkgs \
        nvidia-cuda-nvcc==13.0.88 "nvidia-cuda-runtime==13.0.*" "nvidia-nvvm==13.0.*" \
        "nvidia-cuda-crt==13.0.*" \
 && mv /opt/pkgs/nvidia/cu13 /opt/cuda-13.0 \
 && test -x /opt/cuda-13.0/bin/nvcc && test -f /opt/cuda-13.0/include/cuda_runtime.h \
 && test -f /opt/cuda-13.0/lib/libcudart.so.13

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
COPY --from=toolkit /opt/cuda-13.0 /usr/local/cuda-13.0
RUN ln -s cuda-13.0 /usr/local/cuda \
 && echo /usr/local/cuda/lib > /etc/ld.so.conf.d/cuda.conf && ldconfig
ENV CUDA_VERSION=13.0.88 CUDA_HOME=/usr/local/cuda \
    PATH=/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["bash"]
