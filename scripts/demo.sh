#!/usr/bin/env bash
# The main job: sets up the machine, builds dynabuf, and runs a small Vulkan
# application (two devices sharing a buffer through an fd) under the layer on
# lavapipe. The application prints what it does; the layer prints what it saw.
#
#   scripts/demo.sh [FRAMES]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
cargo build --release --workspace --quiet
icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n1)
echo "== running target/release/dynabuf-demo under VK_LAYER_DYNABUF_dmabuf (driver: $icd)"
VK_DRIVER_FILES="$icd" \
VK_LAYER_PATH="$PWD/target/release" \
VK_INSTANCE_LAYERS=VK_LAYER_DYNABUF_dmabuf \
NODEVICE_SELECT=1 \
DYNABUF_LOG="${DYNABUF_LOG:-debug}" \
DYNABUF_STATS="${DYNABUF_STATS:-1}" \
    ./target/release/dynabuf-demo "$@" 2>&1
