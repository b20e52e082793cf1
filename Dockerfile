# followup-bot: a release build on the official Rust image, run on Debian slim as a non-root user.
#
#   docker build -t followup-bot .
#   docker run --env-file .env -p 8080:8080 followup-bot
#
# Everything the build reads: Cargo.toml, Cargo.lock, src/, blocks/ (include_str! in
# src/blocks.rs), migrations/ (sqlx::migrate! in src/store/mod.rs), slack-manifest.yml
# (include_str! in src/cli.rs) and benches/ (Cargo.toml names the two benchmarks, and cargo
# refuses a manifest whose bench files are missing). There is no build.rs.

# --- build ---------------------------------------------------------------------------------
# The toolchain Cargo.toml asks for (rust-version = "1.95", edition 2024), on Debian bookworm
# like the runtime image below, so the binary links against the same glibc.
FROM rust:1.95-bookworm AS builder
WORKDIR /app

# Dependencies first, in their own layer: the real manifest and lock file with stub sources,
# so a change to src/ does not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/ack_latency.rs \
    && echo 'fn main() {}' > benches/suggest_latency.rs \
    && cargo build --release --locked \
    && rm -rf src benches

COPY src ./src
COPY blocks ./blocks
COPY migrations ./migrations
COPY benches ./benches
COPY slack-manifest.yml ./
# COPY keeps the files' own modification times, which can be older than the stub build:
# touch the crate roots so cargo rebuilds the crate instead of keeping the stub.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: Slack, Fathom, Google, the CRMs and Anthropic are reached over TLS with the
# system's roots. curl: only for HEALTHCHECK (the binary has no health-check subcommand, and
# `doctor` calls Slack, so it is no liveness probe).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric id, so a volume or a Kubernetes securityContext can name it.
RUN groupadd --system --gid 10001 followup \
    && useradd --uid 10001 --gid followup --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin followup

# The default DATABASE_URL (sqlite://data/bot.db?mode=rwc) and the generated key file
# (data/encryption.key, when ENCRYPTION_KEY is unset) are relative to the working directory:
# /app/data. Mount a volume there to keep a SQLite database across restarts.
WORKDIR /app
RUN mkdir -p /app/data && chown followup:followup /app/data

COPY --from=builder /app/target/release/followup-bot /usr/local/bin/followup-bot

USER 10001:10001

ENV HTTP_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json

# The HTTP sidecar (HTTP_ADDR): /health, /ready, /metrics, OAuth callbacks, Fathom webhooks.
# Slack itself is reached outbound (Socket Mode); it needs no open port.
EXPOSE 8080

# /health: the process is up. (/ready also needs a Socket Mode connection and the database.)
# The port is HTTP_ADDR's: change both together.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1

# A CMD and no ENTRYPOINT: Fly's release_command and `docker run IMAGE followup-bot migrate`
# replace the whole command. `run` connects to Slack and serves; it applies the migrations
# first.
CMD ["followup-bot", "run"]
