# syntax=docker/dockerfile:1

# Build: libpq and OpenSSL are compiled into the binary, so the runtime image needs neither.
# The cargo registry and the target directory are BuildKit cache mounts: after a source
# edit only this crate recompiles.
FROM rust:1.89-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin carrental \
    && cp target/release/carrental /usr/local/bin/carrental

FROM debian:bookworm-slim
# ca-certificates for TLS to PostgreSQL, SMTP and OpenSearch. Unpinned on purpose: the
# image takes Debian stable's security updates when it is rebuilt.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /app/data \
    && chown 10001:10001 /app/data
WORKDIR /app
COPY --from=builder /usr/local/bin/carrental /usr/local/bin/carrental
COPY config /app/config
ENV APP_ENV=production \
    PORT=8080 \
    DATABASE_URL=sqlite:///app/data/carrental.db
# Numeric, so that runAsNonRoot can verify it without a passwd entry.
USER 10001:10001
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["carrental", "healthcheck"]
CMD ["carrental", "serve"]
