#!/usr/bin/env bash
# Runs every test:
#   1. sets up the machine (Vulkan loader, lavapipe, vulkaninfo, glslang);
#   2. builds the workspace (the layer and its manifest land in
#      target/debug, where the tests find them);
#   3. runs the unit and integration tests on this host, through the real
#      Vulkan loader on lavapipe (kernel-tier tests report themselves
#      skipped here when this kernel cannot make dma-bufs);
#   4. runs the kernel tier in a VM booting Debian's stock 6.12 kernel
#      (tests/vm/run.sh: qemu, udmabuf, vgem, virtio_gpu), where nothing may
#      skip. DYNABUF_VM=0 leaves the VM out (say so when you report results).
#
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --workspace --all-targets --quiet
cargo test --workspace "$@"

if [ "${DYNABUF_VM:-1}" = 0 ]; then
    echo "test.sh: DYNABUF_VM=0: the kernel tier (VM) was NOT run"
    exit 0
fi
kernel_tests=$(cargo test -p dynabuf-tests --test kernel --no-run --message-format=json 2>/dev/null \
    | grep '"name":"kernel"' | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
[ -x "$kernel_tests" ] || { echo "test.sh: cannot find the kernel-tier test binary" >&2; exit 1; }
echo "== kernel tier: $kernel_tests in a VM (stock 6.12 kernel, TCG)"
start=$(date +%s)
bash tests/vm/run.sh --timeout "${DYNABUF_VM_TIMEOUT:-900}" -- env DYNABUF_REQUIRE_KERNEL_TIER=1 "$kernel_tests"
echo "test.sh: kernel tier done in $(( $(date +%s) - start )) s (VM boot, and kernel download on a fresh machine, included)"
