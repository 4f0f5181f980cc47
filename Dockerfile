# syntax=docker/dockerfile:1

# Build: libpq and OpenSSL are compiled into the binary, so the runtime image needs neither.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin carrental

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin carrental \
    && mkdir -p /app/data \
    && chown carrental:carrental /app/data
WORKDIR /app
COPY --from=builder /src/target/release/carrental /usr/local/bin/carrental
COPY config /app/config
ENV APP_ENV=production \
    PORT=8080 \
    DATABASE_URL=sqlite:///app/data/carrental.db
USER carrental
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/health" || exit 1
CMD ["carrental", "serve"]
