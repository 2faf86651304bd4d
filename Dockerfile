# syntax=docker/dockerfile:1
#
# The upwatch image: one binary, every role.
#
#   docker build -t upwatch .
#   docker run --rm -p 8080:8080 -v upwatch-data:/var/lib/upwatch upwatch          # embedded mode
#   docker run --rm --env-file upwatch.env upwatch worker --listen 0.0.0.0:8080    # one role of a fleet
#
# The default command is `serve` (every role in one process; SQLite in /var/lib/upwatch when
# DATABASE_URL is not set). Pass a role (`migrate`, `scheduler`, `worker`, `logger`,
# `cache-updater`, `alerter`, `api`) as the command to run one role of the distributed mode;
# deploy/docker-compose.yml runs the whole fleet.

# --- Build stage ---------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# librdkafka is compiled from source by rdkafka-sys (cmake), linked against the system's
# OpenSSL, zlib and curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake pkg-config libssl-dev libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole workspace: `--locked` needs every member's manifest and Cargo.lock, and the
# binary embeds the SQL migrations. .dockerignore keeps target/, .git/ and local data out.
COPY . .

# The registry and target directories are cache mounts, so a rebuild after a source change
# only recompiles what changed. A cache mount is not part of the image, hence the copy of the
# binary to /out in the same step.
RUN --mount=type=cache,id=upwatch-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=upwatch-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=upwatch-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p upwatch \
 && install -D -m 0755 target/release/upwatch /out/upwatch

# --- Runtime stage -------------------------------------------------------------------------
FROM debian:bookworm-slim

# Shared libraries the binary links (OpenSSL and zlib for librdkafka, curl) and the CA bundle.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libcurl4 zlib1g \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged user. Its home is the working directory, where the embedded mode
# keeps upwatch.db: mount a volume there to keep the data (the distributed roles write no file).
RUN groupadd --system --gid 10001 upwatch \
 && useradd --system --uid 10001 --gid upwatch --home-dir /var/lib/upwatch --create-home \
      --shell /usr/sbin/nologin upwatch

COPY --from=builder /out/upwatch /usr/local/bin/upwatch

USER upwatch:upwatch
WORKDIR /var/lib/upwatch

# Inside a container the API (serve, api) and the health endpoints of the other roles must
# listen on every interface to be reachable; each container has its own port space.
ENV UPWATCH_LISTEN=0.0.0.0:8080
EXPOSE 8080

# Healthy once /readyz answers 200 (storage reachable). `upwatch check` is the binary's own
# one-shot HTTP check, so the image needs no curl. `serve` and `api` listen by default; the
# other roles need `--listen 0.0.0.0:8080` for it (`migrate` exits before it matters).
HEALTHCHECK --interval=15s --timeout=12s --start-period=20s --retries=3 \
  CMD ["upwatch", "check", "http://127.0.0.1:8080/readyz"]

# SIGTERM starts the drain: in-flight checks finish, results are stored, due alerts are
# delivered, then the process exits 0. Give it more than UPWATCH_DRAIN_TIMEOUT_SECONDS
# (docker stop --time 30, compose stop_grace_period: 30s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["upwatch"]
CMD ["serve"]
