#!/usr/bin/env bash
# Runs every test:
#   1. sets up the machine (Vulkan loader, lavapipe, vulkaninfo, glslang,
#      the Khronos validation layer);
#   2. builds the workspace (the layer and its manifest land in
#      target/debug, where the tests find them);
#   3. runs the unit and integration tests on this host, through the real
#      Vulkan loader on lavapipe (kernel-tier tests report themselves
#      skipped here when this kernel cannot make dma-bufs);
#   4. runs them again with the Khronos validation layer below dynabuf
#      (DYNABUF_TEST_VALIDATION=below): a validation message that
#      validation alone does not produce for our clients fails the test;
#   5. checks the skips of both host runs (DYNABUF_SKIP_LOG): only the ones
#      listed in expected_skips below may happen, any other fails;
#   6. runs the kernel tier in a VM booting Debian's stock 6.12 kernel
#      (tests/vm/run.sh: qemu, udmabuf, vgem, virtio_gpu), twice in one
#      boot: plain, then with DYNABUF_TEST_VALIDATION=below; nothing may
#      skip there. DYNABUF_VM=0 leaves the VM out (say so when you report
#      results; .ci/run does not honour it).
# Steps 3-6 each run even when an earlier one failed; the summary at the
# end gives each one's result and time, and the script fails if any failed.
#
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export PATH="$HOME/.cargo/bin:$PATH"
# This script decides where validation runs and where skips are logged.
unset DYNABUF_TEST_VALIDATION DYNABUF_SKIP_LOG
cargo build --workspace --all-targets --quiet

# Skips allowed in the host runs (extended regexps on `SUITE::TEST: REASON`).
expected_skips=(
    # The kernel tier on a host: its tests need a kernel that makes dma-bufs
    # (udmabuf, vgem, virtio_gpu); step 6 runs every one of them in the VM,
    # where a skip is a failure.
    '^kernel::'
    # Only on a host whose kernel has udmabuf (this test checks what a
    # kernel without it lacks; the VM run checks the probe's findings).
    '^loader::probe_reports_what_the_host_kernel_lacks: this kernel has udmabuf'
)

failed=()
summary=()
step() { # step NAME COMMAND...: runs it, records its result and time
    local name=$1 start=$SECONDS rc=0
    shift
    echo "== $name"
    "$@" || rc=$?
    local took=$((SECONDS - start))
    if [ "$rc" = 0 ]; then
        summary+=("ok      $name ($took s)")
    else
        summary+=("FAILED  $name ($took s, exit $rc)")
        failed+=("$name")
    fi
}

skip_logs=target/test-skips
rm -rf "$skip_logs"
mkdir -p "$skip_logs"
host_tests() { # host_tests LOG [VALIDATION] -- cargo test args
    local log=$1 validation=$2
    shift 2
    : > "$log"
    DYNABUF_SKIP_LOG="$PWD/$log" DYNABUF_TEST_VALIDATION="$validation" cargo test --workspace --no-fail-fast "$@"
}
check_skips() {
    local bad=0 log name
    for log in "$skip_logs"/*.log; do
        name=$(basename "$log" .log)
        local by_suite
        by_suite=$(cut -d: -f1 "$log" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
        echo "test.sh: host tests ($name): $(wc -l < "$log") skipped${by_suite:+ ($by_suite)}"
        local unexpected
        unexpected=$(grep -v -E -f <(printf '%s\n' "${expected_skips[@]}") "$log" || true)
        if [ -n "$unexpected" ]; then
            echo "test.sh: host tests ($name): skips not in scripts/test.sh's expected_skips:"
            echo "$unexpected" | sed 's/^/  /'
            bad=1
        fi
    done
    return "$bad"
}

step "host tests" host_tests "$skip_logs/plain.log" off "$@"
step "host tests, validation below dynabuf" host_tests "$skip_logs/validation-below.log" below "$@"
step "host skips" check_skips

if [ "${DYNABUF_VM:-1}" = 0 ]; then
    echo "test.sh: DYNABUF_VM=0: the kernel tier (VM) was NOT run"
    summary+=("NOT RUN kernel tier (DYNABUF_VM=0)")
else
    kernel_tests=$(cargo test -p dynabuf-tests --test kernel --no-run --message-format=json 2>/dev/null \
        | grep '"name":"kernel"' | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
    [ -x "$kernel_tests" ] || { echo "test.sh: cannot find the kernel-tier test binary" >&2; exit 1; }
    # One boot, two runs; the guest runs this with /bin/sh (one line: the VM
    # runner quotes it with printf %q). Each run's time is the guest's.
    guest='t0=$(date +%s); echo "== kernel tier, plain"; DYNABUF_REQUIRE_KERNEL_TIER=1 "$1"; plain=$?;
        t1=$(date +%s); echo "== kernel tier, validation below dynabuf";
        DYNABUF_REQUIRE_KERNEL_TIER=1 DYNABUF_TEST_VALIDATION=below "$1"; below=$?; t2=$(date +%s);
        echo "test.sh: kernel tier, plain: exit $plain, $((t1 - t0)) s";
        echo "test.sh: kernel tier, validation below dynabuf: exit $below, $((t2 - t1)) s";
        [ "$plain" = 0 ] && [ "$below" = 0 ]'
    guest=$(echo "$guest" | tr '\n' ' ')
    echo "test.sh: kernel tier: $kernel_tests in a VM (stock 6.12 kernel, TCG), plain and with validation"
    step "kernel tier in a VM (plain, then validation below dynabuf; boot included)" \
        bash tests/vm/run.sh --timeout "${DYNABUF_VM_TIMEOUT:-2400}" -- sh -c "$guest" sh "$kernel_tests"
fi

echo "== test.sh summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "test.sh: all passed"
