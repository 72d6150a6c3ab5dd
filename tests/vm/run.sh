#!/usr/bin/env bash
# Runs a command inside a VM booting Debian bookworm-backports' stock 6.12
# kernel under qemu (TCG: this machine's /dev/kvm runs only PVM guests),
# with the host's / shared read-only over 9p (so the command sees this
# checkout and its build outputs at the same paths, even under /tmp),
# writable overlays (tmpfs upper) on /tmp and /var/tmp, tmpfs on /run, and
# vgem + virtio_gpu loaded. Prints the command's output and
# exits with its status. A guest that does not finish within the timeout is
# killed, the console's tail printed, and the run fails.
#
#   tests/vm/run.sh [--timeout SECONDS] [--env NAME]... [--share DIR] -- COMMAND [ARGS...]
#
# --share DIR (an existing directory, absolute) is shared writable over a
# second 9p device and mounted at the same path in the guest, so what the
# command writes there is on this machine when it ends.
# The command runs in the current directory with PATH, HOME=/tmp and every
# variable named by --env (and every DYNABUF_* variable) copied in.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
timeout_s=600
pass_env=()
share=
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) timeout_s="$2"; shift 2 ;;
        --env) pass_env+=("$2"); shift 2 ;;
        --share) share=$(cd "$2" && pwd); shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--timeout S] [--env NAME]... -- COMMAND..." >&2; exit 2; }

kdir=$(bash "$here/prepare.sh")
kver=$(cat "$kdir/kver")
work=$(mktemp -d "${DYNABUF_VM_CACHE:-$here/../../.vm-cache}/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
console="$work/console.log"
output="$work/output.log"
: > "$console"
: > "$output"

# The guest script: written here, read by the guest over 9p.
{
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc; mount -t sysfs sysfs /sys'
    echo 'mount -t tmpfs tmpfs /run; mkdir -p /dev/pts /dev/shm'
    echo 'mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm'
    echo 'exec >/dev/ttyS1 2>&1'
    echo 'stty -F /dev/ttyS1 raw -echo 2>/dev/null'
    echo "modprobe -d '$kdir/modules' -S '$kver' overlay 2>/dev/null"
    # Writable /tmp and /var/tmp that still show the host's files (the
    # checkout may live under /tmp); a private tmpfs if overlayfs fails.
    echo 'export TMPDIR=/tmp'
    echo 'for d in /tmp /var/tmp; do'
    echo '  mkdir -p /run/ovl$d/upper /run/ovl$d/work'
    echo '  mount -t overlay overlay -o lowerdir=$d,upperdir=/run/ovl$d/upper,workdir=/run/ovl$d/work $d ||'
    echo '    { echo "vm: no overlay on $d; TMPDIR=/run/tmp"; mkdir -p /run/tmp; export TMPDIR=/run/tmp; }'
    echo 'done'
    echo "modprobe -d '$kdir/modules' -S '$kver' vgem || echo 'vm: modprobe vgem failed'"
    echo "modprobe -d '$kdir/modules' -S '$kver' virtio_gpu || echo 'vm: modprobe virtio_gpu failed'"
    if [ -n "$share" ]; then
        printf 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share %q || echo "vm: cannot mount the share %q"\n' "$share" "$share"
    fi
    echo "export PATH='$PATH' HOME=/run/home XDG_CACHE_HOME=/run/home/.cache DYNABUF_IN_VM=1"
    echo 'mkdir -p /run/home' 
    for name in "${pass_env[@]}" $(compgen -e | grep '^DYNABUF_' || true); do
        [ -n "${!name+x}" ] && printf 'export %s=%q\n' "$name" "${!name}"
    done
    printf 'cd %q\n' "$PWD"
    printf '%q ' "$@"; echo
    echo 'echo "dynabuf-vm-exit: $?"'
    echo 'sync; echo o > /proc/sysrq-trigger; sleep 5'
} > "$work/guest.sh"

share_args=()
if [ -n "$share" ]; then
    share_args=(-fsdev "local,id=share,path=$share,security_model=none" -device virtio-9p-pci,fsdev=share,mount_tag=share)
fi
start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp "${DYNABUF_VM_CPUS:-2}" -m "${DYNABUF_VM_MEM:-4G}" \
    -nodefaults -no-reboot -display none \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initramfs.gz" \
    -append "console=ttyS0 panic=-1 udmabuf.size_limit_mb=256 dynabuf.init=$work/guest.sh" \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot "${share_args[@]}" \
    -serial "file:$console" -serial "file:$output" \
    -device virtio-gpu-pci &
qemu=$!
tail -n +1 -f --pid="$qemu" "$output" | tr -d '\r' | grep -v '^dynabuf-vm-exit: ' &
tailer=$!
if ! timeout_rc=$(timeout --kill-after=5 "$timeout_s" tail --pid="$qemu" -f /dev/null; echo $?) || [ "$timeout_rc" != 0 ]; then
    kill -9 "$qemu" 2>/dev/null || true
    wait "$tailer" 2>/dev/null || true
    echo "vm: the guest did not finish within ${timeout_s}s; console tail:" >&2
    tail -n 40 "$console" | tr -d '\r' >&2
    exit 124
fi
wait "$qemu" || true
wait "$tailer" 2>/dev/null || true
elapsed=$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo "?")
rc=$(tr -d '\r' < "$output" | sed -n 's/^dynabuf-vm-exit: \([0-9]*\)$/\1/p' | tail -n1)
if [ -z "$rc" ]; then
    echo "vm: the guest stopped without reporting an exit status; console tail:" >&2
    tail -n 40 "$console" | tr -d '\r' >&2
    exit 125
fi
echo "vm: guest exited $rc after ${elapsed}s (boot included)" >&2
exit "$rc"
