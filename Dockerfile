# tenantgate as a container image: a release build on Debian, then the binary on
# debian-slim with CA certificates, as a non-root user. A shell stays in the image so CI
# systems that run scripts inside it (GitLab) can use it.
#
#   docker build -t tenantgate .
#   docker run --rm -v "$PWD:/work" -w /work -e TARGET_URL -e DATABASE_URL \
#     tenantgate run suites/app.yaml --reports reports
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tenantgate \
 && strip target/release/tenantgate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home tenantgate
COPY --from=build /src/target/release/tenantgate /usr/local/bin/tenantgate
USER 10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/tenantgate"]
CMD ["--help"]
