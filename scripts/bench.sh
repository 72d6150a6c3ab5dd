#!/usr/bin/env bash
# Benchmarks, each comparing configurations in one run (interleaved rounds,
# median of round medians):
#   overhead       per-call CPU time of submit, alloc+free, barrier
#                  recording, with and without the layer (here, lavapipe);
#   sync_overhead  implicit sync per submission on real dma-bufs, and its
#                  scaling with tracked buffers (in the kernel-tier VM where
#                  this machine has no /dev/udmabuf).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
cargo build --release --workspace --quiet
cargo bench -p dynabuf-tests --bench overhead --quiet "$@"
sync_bench=$(cargo bench -p dynabuf-tests --bench sync_overhead --no-run --message-format=json 2>/dev/null \
    | grep '"name":"sync_overhead"' | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
echo
if [ -e /dev/udmabuf ]; then
    "$sync_bench"
else
    echo "== sync_overhead in the kernel-tier VM (TCG: compare within the run)"
    bash tests/vm/run.sh --timeout 900 -- "$sync_bench"
fi
