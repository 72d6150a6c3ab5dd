#!/usr/bin/env bash
# Installs what building, testing and demonstrating dynabuf needs on a fresh
# Debian 12 or Ubuntu machine: the Vulkan loader, Mesa's lavapipe driver,
# vulkaninfo, the GLSL reference compiler and the Khronos validation layer
# (scripts/test.sh runs every test again with it below dynabuf).
# Idempotent; needs root or sudo.
#
# On Debian 12 (bookworm), Mesa comes from bookworm-backports (25.0.x):
# bookworm's own Mesa 22.3 lacks what dynabuf's dma-buf work needs.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

. /etc/os-release
packages=(libvulkan1 mesa-vulkan-drivers vulkan-tools glslang-tools vulkan-validationlayers)
mesa_from=()

if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "setup: adding bookworm-backports to apt sources"
        $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        need_update=1
    fi
    mesa_from=(-t bookworm-backports)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Debian 12's own Mesa (22.3) is too old: upgrade it when it is what's installed.
if [ ${#mesa_from[@]} -gt 0 ]; then
    v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
    case "$v" in ""|22.*) missing+=(mesa-vulkan-drivers) ;; esac
fi

if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${mesa_from[@]}" "${missing[@]}" >/dev/null
fi

# Rust >= 1.80 (Debian 12's own 1.63 is too old): rustup's when missing.
export PATH="$HOME/.cargo/bin:$PATH"
rust_ok() {
    command -v rustc >/dev/null 2>&1 || return 1
    local v
    v=$(rustc --version | awk '{print $2}')
    [ "$(printf '%s\n1.80.0\n' "$v" | sort -V | head -n1)" = 1.80.0 ]
}
if ! rust_ok; then
    echo "setup: Rust >= 1.80 not found; installing it with rustup into ~/.cargo"
    command -v curl >/dev/null 2>&1 || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates >/dev/null
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy >/dev/null
fi

icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n1 || true)
[ -n "$icd" ] || { echo "setup: lavapipe ICD manifest not found after install" >&2; exit 1; }
echo "setup: lavapipe ICD: $icd"
validation=$(ls /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json 2>/dev/null || true)
[ -n "$validation" ] || { echo "setup: Khronos validation layer manifest not found after install" >&2; exit 1; }
echo "setup: validation layer: $validation ($(dpkg-query -W -f='${Version}' vulkan-validationlayers 2>/dev/null))"
