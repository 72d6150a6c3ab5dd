#!/usr/bin/env bash
# Installs the dynabuf layer where the Vulkan loader finds it.
#
#   scripts/install.sh [--prefix DIR] [--implicit] [--from BUILD_DIR]
#
# Builds the layer and the dynabuf command (release; or takes them from
# BUILD_DIR), copies libVkLayer_dynabuf.so to DIR/lib/dynabuf/, the command
# to DIR/bin/dynabuf (where it finds the layer by itself), and writes the
# layer's manifest, with an absolute library_path,
# to DIR/share/vulkan/explicit_layer.d/. DIR defaults to ~/.local, whose
# share/ the loader searches ($XDG_DATA_HOME). With --implicit it also
# writes the implicit manifest to DIR/share/vulkan/implicit_layer.d/: that
# layer is on only with DYNABUF_ENABLE=1 and always off with DYNABUF_DISABLE=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix="${HOME}/.local"
implicit=0
from=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --implicit) implicit=1; shift ;;
        --from) from="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "$from" ]; then
    (cd "$root" && cargo build --release -p dynabuf -p dynabuf-cli --quiet)
    from="$root/target/release"
fi
lib_src="$from/libVkLayer_dynabuf.so"
[ -f "$lib_src" ] || { echo "install: $lib_src not built" >&2; exit 1; }

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
libdir="$prefix/lib/dynabuf"
mkdir -p "$libdir" "$prefix/share/vulkan/explicit_layer.d"
install -m 0755 "$lib_src" "$libdir/libVkLayer_dynabuf.so"
if [ -f "$from/dynabuf" ]; then
    mkdir -p "$prefix/bin"
    install -m 0755 "$from/dynabuf" "$prefix/bin/dynabuf"
    echo "install: the dynabuf command at $prefix/bin/dynabuf (dynabuf run -- APP, dynabuf ls, dynabuf doctor)"
else
    echo "install: no dynabuf command in $from (cargo build -p dynabuf-cli builds it); layer only"
fi

write_manifest() { # template destination
    sed -e "s|@LIBRARY_PATH@|$libdir/libVkLayer_dynabuf.so|" "$1" > "$2"
    echo "install: wrote $2"
}
write_manifest "$root/manifest/VkLayer_dynabuf.json.in" "$prefix/share/vulkan/explicit_layer.d/VkLayer_dynabuf.json"
if [ "$implicit" = 1 ]; then
    mkdir -p "$prefix/share/vulkan/implicit_layer.d"
    write_manifest "$root/manifest/VkLayer_dynabuf_implicit.json.in" \
        "$prefix/share/vulkan/implicit_layer.d/VkLayer_dynabuf_implicit.json"
fi
echo "install: layer library at $libdir/libVkLayer_dynabuf.so"
echo "install: enable it with VK_INSTANCE_LAYERS=VK_LAYER_DYNABUF_dmabuf"
[ "$implicit" = 0 ] || echo "install: or, through the implicit manifest, with DYNABUF_ENABLE=1"
