#!/usr/bin/env bash
# Builds the layer (release) and runs the overhead benchmark: per-call CPU
# time with and without the layer, interleaved rounds, ratios printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
cargo build --release --workspace --quiet
cargo bench -p dynabuf-tests --bench overhead --quiet "$@"
