# Prometheus from Debian's package, for machines that reach no container registry
# (scripts/test-deploy). Its entrypoint takes the official image's arguments.
ARG DEBIAN=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
# The package made this user (its uid is not fixed).
# hadolint ignore=DL3066
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
