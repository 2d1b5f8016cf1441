# An OTLP/HTTP trace receiver that keeps what it is sent and lists it at GET /spans
# (scripts/test-deploy checks traces with it where no Jaeger image can be pulled).
ARG DEBIAN=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
# hadolint ignore=DL3013
RUN if [ -f /run/build-ca.crt ]; then set -- --cert /run/build-ca.crt; fi \
 && pip3 install --no-cache-dir --break-system-packages "$@" opentelemetry-proto==1.39.1
COPY otlp_receiver.py /usr/local/bin/otlp_receiver.py
USER 65534:65534
EXPOSE 4318
CMD ["python3", "/usr/local/bin/otlp_receiver.py"]
