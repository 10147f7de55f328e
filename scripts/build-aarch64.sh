#!/usr/bin/env bash
# Cross-builds the edgenas-runtime binary for a 64-bit Raspberry Pi (aarch64-unknown-linux-gnu)
# with cargo and the GNU cross linker, without Docker.
#
# Usage: scripts/build-aarch64.sh [--profile NAME] [--bench] [--no-setup]
#
#   --profile NAME  cargo profile (default: device, the size-tuned profile of Cargo.toml)
#   --bench         also build the latency benchmark of edgenas-benches (without running it)
#                   and copy it beside the binary as `latency-bench`
#   --no-setup      only check the prerequisites; do not install packages or the Rust target
#
# The linker, the qemu runner and the pkg-config variables for the target are set in
# .cargo/config.toml. Prerequisites come from scripts/setup-runtime-deps.sh (the cross gcc,
# the arm64 -dev packages of pocketsphinx and ALSA) and `rustup target add`. Set
# CARGO_TARGET_DIR to build elsewhere than target/. Progress goes to stderr; the last line on
# stdout is the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
profile=device
with_bench=0
setup=1

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
}

log() {
    echo "build-aarch64: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile)
            [[ $# -ge 2 ]] || die "--profile needs a profile name, for example --profile release"
            profile=$2
            shift 2
            ;;
        --bench) with_bench=1; shift ;;
        --no-setup) setup=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# Cargo puts the `dev` profile in debug/ and every other profile in a folder of its name.
case "$profile" in
    dev) profile_dir=debug ;;
    *) profile_dir=$profile ;;
esac
out_dir="${CARGO_TARGET_DIR:-target}/$target/$profile_dir"

# The cross linker and the arm64 libraries: install them, or name the fix.
if ! command -v aarch64-linux-gnu-gcc >/dev/null \
    || ! dpkg-query -W -f '${Status}' libpocketsphinx-dev:arm64 2>/dev/null | grep -q "ok installed"; then
    if [[ $setup -eq 0 ]]; then
        die "the cross linker aarch64-linux-gnu-gcc or libpocketsphinx-dev:arm64 is missing;" \
            "run scripts/setup-runtime-deps.sh (Debian or Ubuntu) or drop --no-setup"
    fi
    log "installing the cross-build packages with scripts/setup-runtime-deps.sh"
    scripts/setup-runtime-deps.sh
fi
command -v aarch64-linux-gnu-gcc >/dev/null \
    || die "aarch64-linux-gnu-gcc not found after setup; install gcc-aarch64-linux-gnu"

# The Rust standard library for the target.
if ! command -v rustup >/dev/null; then
    rustc --print target-libdir --target "$target" >/dev/null 2>&1 \
        || die "rustup not found and the Rust toolchain has no $target standard library;" \
            "install the target's rust-std for your toolchain"
elif ! rustup target list --installed | grep -qx "$target"; then
    if [[ $setup -eq 0 ]]; then
        die "the Rust target $target is not installed; run: rustup target add $target"
    fi
    log "adding the Rust target $target"
    rustup target add "$target"
fi

log "building edgenas-runtime for $target with the $profile profile"
started=$SECONDS
cargo build -p edgenas-runtime --target "$target" --profile "$profile"
log "built in $((SECONDS - started)) s"

binary="$out_dir/edgenas-runtime"
[[ -f "$binary" ]] || die "cargo finished but $binary does not exist"
machine=$(LC_ALL=C readelf -h "$binary" | sed -n 's/^ *Machine: *//p')
[[ "$machine" == AArch64 ]] || die "$binary is built for '$machine', expected AArch64"

# Reports a file's size in bytes and MiB, with whether its symbols are stripped.
describe() {
    local file=$1 bytes symbols
    bytes=$(stat -c %s "$file")
    if LC_ALL=C readelf -S "$file" | grep -q '\.symtab'; then
        symbols="with symbols"
    else
        symbols="stripped"
    fi
    log "$file: $bytes bytes ($(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1048576}') MiB, $symbols)"
}
describe "$binary"

if [[ $with_bench -eq 1 ]]; then
    # The benchmark lives in edgenas-benches; --no-default-features leaves out libtorch,
    # which has no aarch64 build here.
    if cargo metadata --no-deps --format-version 1 \
        | jq -e '.packages[] | select(.name == "edgenas-benches") | .targets[]
                 | select(.name == "latency" and (.kind | index("bench")))' >/dev/null; then
        log "building the latency benchmark"
        bench=$(cargo bench -p edgenas-benches --bench latency --no-default-features --no-run \
            --target "$target" --profile "$profile" --message-format json \
            | jq -r 'select(.reason == "compiler-artifact" and .target.name == "latency"
                            and .executable != null) | .executable' | tail -n 1)
        [[ -n "$bench" && -f "$bench" ]] || die "cargo did not report the latency benchmark's executable"
        cp "$bench" "$out_dir/latency-bench"
        describe "$out_dir/latency-bench"
    else
        log "NOTE: edgenas-benches has no 'latency' benchmark yet; skipping --bench"
    fi
fi

echo "$binary"
