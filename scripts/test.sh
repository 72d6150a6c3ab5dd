#!/usr/bin/env bash
# Runs every test: sets up the machine (Vulkan loader, lavapipe, vulkaninfo,
# glslang), builds the workspace (the layer and its manifest land in
# target/debug, where the tests find them), then runs the unit and
# integration tests through the real Vulkan loader on lavapipe.
#
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
cargo build --workspace --all-targets --quiet
cargo test --workspace "$@"
