#!/usr/bin/env bash
# Benchmarks, each comparing configurations in one run (interleaved rounds,
# median of round medians):
#   overhead       per-call CPU time of submit, alloc+free, barrier
#                  recording, with and without the layer (here, lavapipe);
#   sync_overhead  implicit sync per submission on real dma-bufs, and its
#                  scaling with tracked buffers;
#   dynamic_overhead  dynamic attachments (changed / unchanged content) vs
#                  pinned, re-validation vs a fresh import, copy bandwidth
#                  vs memcpy (and memcpy from / to a udmabuf mapping); fails
#                  unless the layer's statistics show the expected copies;
#   image_overhead  an image's hand-over per submission vs a buffer's in the
#                  same dma-buf, a dynamic image's copy bandwidth vs memcpy
# (the last three in the kernel-tier VM where this machine has no
# /dev/udmabuf).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --workspace --quiet
cargo bench -p dynabuf-tests --bench overhead --quiet "$@"
bench_exe() {
    cargo bench -p dynabuf-tests --bench "$1" --no-run --message-format=json 2>/dev/null \
        | grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4
}
for b in sync_overhead dynamic_overhead image_overhead; do
    exe=$(bench_exe "$b")
    echo
    if [ -e /dev/udmabuf ]; then
        "$exe"
    else
        echo "== $b in the kernel-tier VM (TCG: compare within the run)"
        bash tests/vm/run.sh --timeout 900 -- "$exe"
    fi
done
