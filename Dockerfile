# sealgate container image: build stage with the -dev packages, slim runtime stage with
# only the shared libraries, running as the unprivileged user "sealgate".
#
#   docker build -t sealgate .
#   docker run -v $PWD/policy:/etc/sealgate:ro -v sealgate-state:/var/lib/sealgate \
#       -p 3128:3128 -p 8775:8775 -p 127.0.0.1:9091:9091 sealgate
#
# The policy in /etc/sealgate must listen on 0.0.0.0 (the defaults are loopback) and keep
# keys, the admin token and revocations under /var/lib/sealgate. See docs/operations.md.

# --- build -------------------------------------------------------------------------
FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config libssl-dev libevent-dev libsodium-dev \
        libjansson-dev libhttp-parser-dev libpcre2-dev zlib1g-dev libbrotli-dev libzstd-dev \
        libhiredis-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile VERSION ./
COPY include/ include/
COPY src/ src/
COPY scripts/check-core.sh scripts/
COPY policies/ policies/
RUN make -j"$(nproc)" BUILD=build \
    && make install BUILD=build PREFIX=/usr/local DESTDIR=/out \
    && strip /out/usr/local/bin/sealgate

# --- runtime -----------------------------------------------------------------------
FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 libssl3 \
        libsodium23 libjansson4 libhttp-parser2.9 libpcre2-8-0 zlib1g libbrotli1 libzstd1 \
        libhiredis0.14 \
        ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sealgate \
    && useradd --system --uid 10001 --gid sealgate --home-dir /var/lib/sealgate \
        --shell /usr/sbin/nologin sealgate \
    && install -d -o sealgate -g sealgate -m 0700 /var/lib/sealgate \
    && install -d -o root -g sealgate -m 0750 /etc/sealgate
COPY --from=build /out/usr/local/ /usr/local/
COPY docs/operations.md /usr/local/share/doc/sealgate/operations.md

USER sealgate:sealgate
WORKDIR /var/lib/sealgate
VOLUME ["/etc/sealgate", "/var/lib/sealgate"]
# proxy, metadata responder, admin API (keep the admin port off public networks)
EXPOSE 3128 8775 9091
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9091/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["sealgate"]
CMD ["serve", "--policy", "/etc/sealgate"]
