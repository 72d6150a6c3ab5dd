#!/usr/bin/env bash
# Prepares the kernel tier (DESIGN.md, test tier 3; ../shared/KERNEL-TIER.md):
# installs qemu (bookworm-backports), busybox-static, kmod and cpio; downloads
# Debian bookworm-backports' stock 6.12 kernel (apt-get download, never
# installed), unpacks it, prunes its modules to what the tier needs (vgem,
# virtio_gpu and the 9p root filesystem, with their dependencies) and builds
# a tiny initramfs that mounts the host's / over 9p. Everything lands in
# $DYNABUF_VM_CACHE (default: <repo>/.vm-cache) and is reused while the
# kernel version is unchanged. Prints the cache's kernel directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache="${DYNABUF_VM_CACHE:-$root/.vm-cache}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { echo "vm-prepare: $*" >&2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx switch_root || need+=(busybox-static)
command -v depmod >/dev/null || need+=(kmod)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    . /etc/os-release
    from=()
    if [ "${VERSION_CODENAME:-}" = bookworm ]; then from=(-t bookworm-backports); fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${from[@]}" "${need[@]}" >/dev/null
fi
# busybox must be the static one: the initramfs has no libc.
if ! file -L /bin/busybox 2>/dev/null | grep -q static && ! ldd /bin/busybox 2>&1 | grep -q "not a dynamic"; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

# Resolve the versioned kernel package behind bookworm-backports'
# linux-image-amd64 (old versions leave the mirror, so never pin one here).
meta_version=$(apt-cache policy linux-image-amd64 | awk '/bpo12/ {print $1; exit}' | sed 's/^\*\*\*//')
[ -n "$meta_version" ] || meta_version=$(apt-cache policy linux-image-amd64 | awk '/Candidate:/ {print $2}')
pkg=$(apt-cache depends "linux-image-amd64=$meta_version" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { log "cannot resolve the kernel package behind linux-image-amd64=$meta_version"; exit 1; }
kdir="$cache/$pkg"
if [ -f "$kdir/ready" ]; then
    echo "$kdir"
    exit 0
fi

log "downloading $pkg"
rm -rf "$kdir" && mkdir -p "$kdir/dl"
(cd "$kdir/dl" && apt-get download -qq "$pkg" 2>&1 | grep -v "unsandboxed" >&2 || true)
dpkg -x "$kdir"/dl/*.deb "$kdir/unpacked"
rm -rf "$kdir/dl"
kver=$(ls "$kdir/unpacked/lib/modules" | head -n1)
cp "$kdir/unpacked/boot/vmlinuz-$kver" "$kdir/vmlinuz"

# Keep only the modules the tier loads, with their dependencies.
mods="$kdir/modules"
mkdir -p "$mods/lib/modules"
mv "$kdir/unpacked/lib/modules/$kver" "$mods/lib/modules/"
rm -rf "$kdir/unpacked"
depmod -b "$mods" "$kver"
wanted=(vgem virtio_gpu netfs 9pnet 9pnet_virtio 9p overlay)
show_deps() { # module... -> the .ko files to load, in order (built-ins print nothing)
    for m in "$@"; do
        modprobe -d "$mods" -S "$kver" --show-depends "$m" 2>/dev/null | awk '/^insmod/ {print $2}'
    done
}
keep=$(show_deps "${wanted[@]}" | sort -u)
find "$mods/lib/modules/$kver/kernel" -name '*.ko*' | sort > "$kdir/all.txt"
echo "$keep" | comm -23 "$kdir/all.txt" - | xargs -r rm -f
rm -f "$kdir/all.txt"
depmod -b "$mods" "$kver"

# The initramfs: static busybox and the (decompressed) 9p modules, in order.
ird="$kdir/initramfs"
mkdir -p "$ird/bin" "$ird/modules" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/newroot"
cp /bin/busybox "$ird/bin/busybox"
n=0
for f in $(show_deps 9p 9pnet_virtio | awk '!seen[$0]++'); do
    n=$((n + 1))
    out="$ird/modules/$(printf %02d $n)-$(basename "$f" | sed 's/\.ko.*$//').ko"
    case "$f" in
        *.xz) xz -dc "$f" > "$out" ;;
        *.zst) zstd -dqc "$f" > "$out" ;;
        *) cp "$f" "$out" ;;
    esac
done
cp "$root/tests/vm/initramfs-init" "$ird/init"
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$kdir/initramfs.gz"
rm -rf "$ird"
echo "$kver" > "$kdir/kver"
touch "$kdir/ready"
log "kernel $kver ready in $kdir ($(du -sh "$kdir" | cut -f1))"
echo "$kdir"
