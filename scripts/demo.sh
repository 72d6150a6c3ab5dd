#!/usr/bin/env bash
# The main job: sets up the machine, builds dynabuf, and runs a small Vulkan
# application under the layer on lavapipe: a producer device and a consumer
# device share a buffer through an exported fd, with implicit sync supplied
# by the layer. The application prints what it does; the layer prints what
# it saw and did (imports, exports, acquires, releases, waits, evictions
# and re-validations).
#
# lavapipe exports real dma-bufs only where /dev/udmabuf exists. Where it
# doesn't (a kernel without udmabuf, like this project's machines), the demo
# runs in the kernel-tier VM (tests/vm/run.sh) so it shares a real dma-buf.
# DYNABUF_DEMO_VM=0 runs it here anyway (sharing an opaque fd instead).
#
#   scripts/demo.sh [FRAMES]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --workspace --quiet
icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n1)
export VK_DRIVER_FILES="$icd"
export VK_LAYER_PATH="$PWD/target/release"
export VK_INSTANCE_LAYERS=VK_LAYER_DYNABUF_dmabuf
export NODEVICE_SELECT=1
export DYNABUF_LOG="${DYNABUF_LOG:-debug}"
export DYNABUF_STATS="${DYNABUF_STATS:-1}"
# Dynamic attachments, invalidated every other submission, to show
# eviction and transparent re-validation keeping the content right.
export DYNABUF_EVICT="${DYNABUF_EVICT:-every:2}"
# The demo records its ownership transfers, which dynamic attachments need.
export DYNABUF_ATTACH="${DYNABUF_ATTACH:-dynamic}"
if [ -e /dev/udmabuf ] || [ "${DYNABUF_DEMO_VM:-1}" = 0 ]; then
    echo "== running target/release/dynabuf-demo under VK_LAYER_DYNABUF_dmabuf here (driver: $icd)"
    exec ./target/release/dynabuf-demo "$@" 2>&1
fi
echo "== no /dev/udmabuf here: running the demo in the kernel-tier VM (stock 6.12 kernel) to share a real dma-buf"
exec bash tests/vm/run.sh --timeout 600 --env VK_DRIVER_FILES --env VK_LAYER_PATH --env VK_INSTANCE_LAYERS \
    --env NODEVICE_SELECT -- ./target/release/dynabuf-demo "$@"
