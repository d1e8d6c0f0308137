# The `gauntlet` binary in a small runtime image, for running simulation shards on a cluster
# (deploy/k8s/). Multi-stage: the Rust toolchain stays in the builder; the runtime image is
# Debian slim (glibc for the binary, `sh` for the one-line entrypoints of the Job manifests).
#
#   docker build -t gauntlet .
#   docker run --rm gauntlet sim --seeds 0..20 --users 200 --faults chaos
#
# Every `sim` flag also reads a GAUNTLET_* variable (GAUNTLET_SEEDS, GAUNTLET_SHARD, ...).

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# --locked: the image builds exactly what Cargo.lock says, as CI does.
RUN cargo build --release --locked -p gauntlet-cli \
    && cp target/release/gauntlet /usr/local/bin/gauntlet

FROM debian:bookworm-slim
# The binary needs nothing beyond glibc; a non-root user owns the results directory.
RUN useradd --system --uid 10001 --home-dir /results --create-home gauntlet
COPY --from=builder /usr/local/bin/gauntlet /usr/local/bin/gauntlet
USER 10001
WORKDIR /results
ENTRYPOINT ["/usr/local/bin/gauntlet"]
CMD ["--help"]
