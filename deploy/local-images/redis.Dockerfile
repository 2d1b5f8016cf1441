# Redis from Debian's package, for machines that reach no container registry
# (scripts/test-deploy). Takes the same `command:` as the official image.
ARG DEBIAN=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
# The package made this user (its uid is not fixed).
# hadolint ignore=DL3066
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
