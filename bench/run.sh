#!/usr/bin/env bash
# The benchmark in one command: builds the release binary and the benchmark, then runs
# it. Arguments go to the benchmark (`--short` for CI, `--sizes`, `--jobs`, `--runs`,
# `--help`). See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q --bin tenantgate --example bench
exec target/release/examples/bench "$@"
