# syntax=docker/dockerfile:1
#
# Container image for callsd: a release build on Debian 12, run on distroless (no shell,
# no package manager) as the non-root user 65532.
#
# Build (BuildKit, the default since Docker 23, for the cache mounts):
#   docker build -t callsd:0.1.0 .
# Run:
#   docker run --rm -p 50051:50051 -p 9464:9464 \
#     -e DATABASE_URL=postgres://user:pass@host:5432/calls \
#     -e CALLSD_SECRET_KEY="$(head -c 32 /dev/urandom | base64)" callsd:0.1.0
# One-off commands use the same image: docker run --rm -e DATABASE_URL=... callsd:0.1.0 migrate

# Build on bookworm so the binary's glibc matches the distroless cc-debian12 runtime.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# build.rs compiles proto/ with protox (pure Rust): no protoc needed. Migrations are embedded.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile production --locked \
    && install -D -m 0755 target/production/callsd /out/callsd

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="callsd" \
      org.opencontainers.image.description="Call-history gRPC service on PostgreSQL with a change feed" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/callsd /usr/local/bin/callsd
# Inside a container the listeners must not bind to loopback.
ENV CALLSD_LISTEN=0.0.0.0:50051 \
    CALLSD_METRICS_LISTEN=0.0.0.0:9464
USER 65532:65532
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/callsd"]
CMD ["serve"]
