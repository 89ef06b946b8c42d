# syntax=docker/dockerfile:1
# otel-bridge: LAO run sockets in, OpenTelemetry traces and Prometheus metrics out.
#
#   docker build -t otel-bridge .                       # on the official slim Python base
#   tools/image/build.sh                                # offline: a Debian base made by mmdebstrap
#
# BASE must provide python3 (>= 3.11) with the venv module, useradd/groupadd and CA
# certificates; both stages use it, so the venv's interpreter path is the same in each.
# pip may need a CA bundle (TLS-intercepting proxies): pass it as the build secret `ca`
# (`--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt`); it is mounted for the one
# pip step that downloads (the deps stage's) and never stored in a layer.
ARG BASE=docker.io/library/python:3.11-slim-bookworm

# deps: the venv with the pins of requirements.lock (`make lock`), every file checked
# against its hash, wheels only (no compiler needed or wanted); rebuilt only when the
# lock changes. The lock also pins the build backend that the build stage uses.
FROM ${BASE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python3 -m venv /opt/otel-bridge

COPY requirements.lock ./
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/otel-bridge/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r requirements.lock

# build: the bridge itself, offline (no index, no build isolation: the locked setuptools);
# then pip, setuptools and wheel leave the venv (nothing installs at run time).
FROM deps AS build
COPY pyproject.toml README.md LICENSE ./
COPY otel_bridge ./otel_bridge
RUN set -eu; \
    /opt/otel-bridge/bin/pip install --no-cache-dir --no-index --no-deps --no-build-isolation /src; \
    /opt/otel-bridge/bin/pip uninstall --yes --quiet pip setuptools wheel; \
    /opt/otel-bridge/bin/otel-bridge --version

# The runtime: the base, a user, the venv. No compiler, pip or cache.
FROM ${BASE}
# Declared before the first RUN on purpose: buildah keys its layer cache on the build
# arguments a RUN sees, not on the text of LABEL, so a new revision must miss the cache here
# or the image would keep an earlier build's labels.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=""
ARG BASE
# A fixed numeric user (Kubernetes' runAsNonRoot checks the number) owning only the state
# directory; everything else is read-only to it, so a read-only root filesystem works.
RUN set -eu; \
    groupadd --system --gid 10001 otel-bridge; \
    useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/otel-bridge --shell /usr/sbin/nologin otel-bridge; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/otel-bridge
COPY --from=build /opt/otel-bridge /opt/otel-bridge

# OTEL_BRIDGE_LISTEN_HOST: the metrics listener (/metrics, /healthz, /readyz) is reached
# on the container's own address, not on loopback. The control listener (/v1/*, /ws/*, port
# 9465) stays on loopback: to publish it set OTEL_BRIDGE_CONTROL_HOST=0.0.0.0 together with
# OTEL_BRIDGE_CONTROL_TOKEN (the bridge refuses to start with one and not the other).
# State (--traces-out, replay --state) goes under /var/lib/otel-bridge and temporary files
# under TMPDIR: mount writable volumes there when the root filesystem is read-only.
ENV PATH=/opt/otel-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/otel-bridge \
    TMPDIR=/tmp \
    OTEL_BRIDGE_LISTEN_HOST=0.0.0.0 \
    OTEL_BRIDGE_PORT=9464 \
    OTEL_BRIDGE_CONTROL_PORT=9465
WORKDIR /var/lib/otel-bridge
USER 10001:10001
# 9464: metrics and health; 9465: control API and pass-through socket (see above).
EXPOSE 9464 9465
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('OTEL_BRIDGE_PORT', '9464') + '/healthz', timeout=4)"]
ENTRYPOINT ["otel-bridge"]
CMD ["serve"]

LABEL org.opencontainers.image.title="otel-bridge" \
      org.opencontainers.image.description="LAO workflow run sockets in, OpenTelemetry traces and Prometheus metrics out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE}"
