# The gateway's container image.
#
#   docker build -t routeros-traffic-gateway:0.1.0 .
#   docker run --rm -p 8080:8080 routeros-traffic-gateway:0.1.0 demo --host 0.0.0.0
#
# Any Debian-like base with python3 (3.11 or later) and its venv module works: the runtime stage
# makes its own virtual environment, so /usr/local/bin/python (python:*-slim) and
# /usr/bin/python3 (Debian's own) are both fine. Air-gapped builds: put every wheel in
# ./wheelhouse (see `make image`) and build with --network=none --build-arg PIP_NO_INDEX=1
# --build-arg PIP_FIND_LINKS=/src/wheelhouse.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# -- build: wheels of the gateway and of everything it needs ------------------------------------
FROM ${BASE_IMAGE} AS build
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
# constraints.txt pins every runtime dependency to one version (`make constraints` updates it),
# so a build of a given commit gets the same code whatever the package index holds that day.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_CONSTRAINT=/src/constraints.txt
WORKDIR /src
# .dockerignore lets in only what the package is built from (and ./wheelhouse).
COPY . .
# The runtime's virtual environment is made here too, without pip, from those wheels only, and
# copied whole: COPY --from is keyed by content, so a changed wheel always reaches the image.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --wheel-dir /wheels . \
    && python3 -m venv --without-pip /opt/gateway \
    && /opt/build/bin/pip --python /opt/gateway/bin/python install \
       --no-index --find-links /wheels routeros-traffic-gateway

# -- runtime: that virtual environment, a fixed non-root user, nothing else ---------------------
FROM ${BASE_IMAGE}
ARG UID=10001
ARG GID=10001
LABEL org.opencontainers.image.title="routeros-traffic-gateway" \
      org.opencontainers.image.description="Realtime gateway between MikroTik routers and browser dashboards" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Same base, same interpreter path: the environment's python links stay valid. Its modules were
# compiled by pip, so a read-only root filesystem costs nothing at start-up.
COPY --from=build /opt/gateway /opt/gateway
RUN groupadd --system --gid "${GID}" gateway \
    && useradd --system --uid "${UID}" --gid gateway --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
    && mkdir -p /etc/gateway
# GATEWAY_LISTEN_FILE: `serve` and `demo` write there, after binding, where they listen, and
# the HEALTHCHECK probes that (whatever --config, --host or --port they were given).
ENV PATH=/opt/gateway/bin:$PATH \
    GATEWAY_CONFIG=/etc/gateway/gateway.toml \
    GATEWAY_LISTEN_FILE=/tmp/gateway.listen
USER ${UID}:${GID}
WORKDIR /tmp
EXPOSE 8080
STOPSIGNAL SIGTERM
# `gateway healthcheck` without importing the whole command line (50 ms instead of 300 ms): a GET
# of /healthz where GATEWAY_LISTEN_FILE says the gateway listens (a wildcard address on the
# loopback of its family), else at the configuration's host and port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-m", "gateway.healthcheck"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
