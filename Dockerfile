# syntax=docker/dockerfile:1
#
# The four services from one build, as small non-root images. Build one with its target:
#   docker build --target orders-api -t orders-copilot/orders-api .
# Targets: entra-emulator, orders-api, orders-mcp, chat-app (docker-compose.yml and azure.yaml
# use them). Each image carries the identity manifest, which supplies ids when no variable
# overrides them (offline); in Azure, postprovision's variables override them.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The browser half of chat-app: wasm target and the wasm-bindgen CLI matching Cargo.lock.
RUN rustup target add wasm32-unknown-unknown \
 && cargo install wasm-bindgen-cli --version 0.2.130 --locked
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is rebuilt only when a Cargo.toml or Cargo.lock changes.
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins -p entra-emulator -p orders-api -p orders-mcp -p chat-app \
 && cargo run --release --locked -p xtask --bin xtask -- client --release \
 && mkdir -p /out/bin /out/data \
 && cp target/release/entra-emulator target/release/orders-api target/release/orders-mcp target/release/chat-app /out/bin/ \
 && cp -r target/site-release /out/site

# glibc + libgcc, no shell, no package manager; uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /app
COPY infra/app-registrations.toml /app/app-registrations.toml
COPY --from=builder --chown=65532:65532 /out/data /data
ENV IDENTITY_MANIFEST=/app/app-registrations.toml \
    LOG_FORMAT=json
USER nonroot

FROM runtime AS entra-emulator
COPY --from=builder /out/bin/entra-emulator /app/entra-emulator
ENV EMULATOR_ADDR=0.0.0.0:3003
EXPOSE 3003
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD ["/app/entra-emulator", "healthcheck"]
ENTRYPOINT ["/app/entra-emulator"]

FROM runtime AS orders-api
COPY --from=builder /out/bin/orders-api /app/orders-api
ENV ORDERS_API_ADDR=0.0.0.0:3002 \
    ORDERS_API_DATABASE=/data/orders.db
VOLUME ["/data"]
EXPOSE 3002
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD ["/app/orders-api", "healthcheck"]
ENTRYPOINT ["/app/orders-api"]

FROM runtime AS orders-mcp
COPY --from=builder /out/bin/orders-mcp /app/orders-mcp
ENV ORDERS_MCP_ADDR=0.0.0.0:3001
EXPOSE 3001
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD ["/app/orders-mcp", "healthcheck"]
ENTRYPOINT ["/app/orders-mcp"]

FROM runtime AS chat-app
COPY --from=builder /out/bin/chat-app /app/chat-app
COPY --from=builder /out/site /app/site
ENV CHAT_APP_ADDR=0.0.0.0:3000 \
    CHAT_APP_SESSION_DB=/data/chat-app.db \
    LEPTOS_SITE_ROOT=/app/site \
    LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_OUTPUT_NAME=chat_app
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD ["/app/chat-app", "healthcheck"]
ENTRYPOINT ["/app/chat-app"]
