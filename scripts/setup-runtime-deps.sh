#!/usr/bin/env bash
# Installs the Debian packages that edgenas-runtime, its live speech tests and its aarch64
# cross-build need.
#
# Usage: scripts/setup-runtime-deps.sh
#
# For the build: libpocketsphinx-dev (pocketsphinx 0.8+5prealpha with sphinxbase) and
# libasound2-dev (ALSA, which cpal uses), with pkg-config. For the live speech tests:
# pocketsphinx-en-us (the US English model), flite (speech synthesis), alsa-utils and
# libasound2-plugins. For the aarch64 cross-build: the arm64 architecture, gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, qemu-user-static to run the tests, and the `:arm64` -dev packages.
# qemu runs the tests with the loader and libc of libc6:arm64, as .cargo/config.toml explains.
#
# Works on Debian 12 and Raspberry Pi OS (Debian 12 based); set SKIP_ARM64=1 to leave out the
# cross-build packages, for example on the Raspberry Pi itself. Runs as root, or through sudo
# when it is available. Idempotent: when every package is installed it only checks them, and
# it runs `apt-get update` only when something is missing. Progress messages go to stderr.
set -euo pipefail

native_packages=(
    pkg-config
    libpocketsphinx-dev
    pocketsphinx-en-us
    libasound2-dev
    libasound2-plugins
    alsa-utils
    flite
)
cross_packages=(
    gcc-aarch64-linux-gnu
    libc6-dev-arm64-cross
    qemu-user-static
    libc6:arm64
    libasound2-dev:arm64
    libpocketsphinx-dev:arm64
)

log() {
    echo "setup-runtime-deps: $*" >&2
}

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    log "run this script as root or install sudo"
    exit 1
fi

packages=("${native_packages[@]}")
if [[ "${SKIP_ARM64:-0}" != 1 && "$(dpkg --print-architecture)" != arm64 ]]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "adding the arm64 architecture"
        "${as_root[@]}" dpkg --add-architecture arm64
    fi
    packages+=("${cross_packages[@]}")
fi

# Lists the packages of "$@" that are not installed.
missing_packages() {
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            echo "$package"
        fi
    done
}

mapfile -t missing < <(missing_packages "${packages[@]}")
if [[ ${#missing[@]} -eq 0 ]]; then
    log "all ${#packages[@]} packages are installed"
    exit 0
fi

log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "installed ${#missing[@]} packages"
