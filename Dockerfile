# Build and run the akm binary. The build command is the one CI runs
# (cargo build --locked --release).
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update -qq && apt-get install -y -qq cmake pkg-config libssl-dev >/dev/null
COPY . .
RUN cargo build --locked --release --bin akm

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq ca-certificates curl libssl3 >/dev/null && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/akm /usr/local/bin/akm
ENV AKM_DATA_DIR=/var/lib/akm
VOLUME /var/lib/akm
ENTRYPOINT ["akm"]
CMD ["serve", "--role", "all"]
