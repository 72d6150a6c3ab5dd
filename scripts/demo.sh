#!/usr/bin/env bash
# The main job: sets up the machine, builds dynabuf, and runs a small Vulkan
# application under the layer on lavapipe: a producer device renders frames
# into an image it exports as a dma-buf (with a DRM format modifier), a
# consumer device imports it and samples every frame, and the application
# never waits for the producer before submitting the consumer's work: the
# layer's implicit sync is all that keeps the consumer from sampling a frame
# still being drawn. It runs the frames twice, with the layer syncing and
# with DYNABUF_SYNC=off, and writes what the consumer saw as contact sheets
# into target/demo/ (with-sync.png, without-sync.png, and demo.png with both
# side by side). The application prints what it does; the layer prints what
# it saw and did (imports, exports, acquires, releases, waits).
#
# lavapipe exports real dma-bufs only where /dev/udmabuf exists. Where it
# doesn't (a kernel without udmabuf, like this project's machines), the demo
# runs in the kernel-tier VM (tests/vm/run.sh), which writes the pictures
# into this machine's target/demo/ through a shared directory.
# DYNABUF_DEMO_VM=0 runs it here anyway (sharing an opaque fd instead, which
# the layer cannot sync: the application then waits for the producer).
#
#   scripts/demo.sh [FRAMES] [dynabuf-demo options]
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
out="$PWD/target/demo"
mkdir -p "$out"
rm -f "$out"/*.png
if [ -e /dev/udmabuf ] || [ "${DYNABUF_DEMO_VM:-1}" = 0 ]; then
    echo "== running target/release/dynabuf-demo under VK_LAYER_DYNABUF_dmabuf here (driver: $icd)"
    ./target/release/dynabuf-demo "$@" --out "$out" 2>&1
else
    echo "== no /dev/udmabuf here: running the demo in the kernel-tier VM (stock 6.12 kernel) to share a real dma-buf"
    bash tests/vm/run.sh --timeout 600 --env VK_DRIVER_FILES --env VK_LAYER_PATH --env VK_INSTANCE_LAYERS \
        --env NODEVICE_SELECT --share "$out" -- ./target/release/dynabuf-demo "$@" --out "$out"
fi
echo "== what the consumer saw (green: exactly the producer's frame, red: not):"
for f in with-sync without-sync demo; do
    [ -s "$out/$f.png" ] || { echo "demo.sh: $out/$f.png is missing" >&2; exit 1; }
    echo "   $out/$f.png"
done
