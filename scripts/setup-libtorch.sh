#!/usr/bin/env bash
# Installs libtorch for the `tch` crate into .libtorch/ at the repository root, from the
# PyPI torch wheel without its CUDA stack (CPU only). Fast and idempotent when present.
#
# tch 0.26.0 requires exactly libtorch 2.13.0. PyPI has no CPU-only torch build, so the full
# wheel is installed without dependencies. libtorch_cuda.so still needs the CUDA runtime and
# CUPTI libraries to load, so those two small wheels come with it. The build reads LIBTORCH
# from .cargo/config.toml, and the build scripts record .libtorch/torch/lib as an rpath.
set -euo pipefail

TORCH_VERSION=2.13.0
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.libtorch"
version_file="$target/torch/version.py"

installed_version() {
    sed -n "s/^__version__ = '\([^'+]*\).*/\1/p" "$version_file" 2>/dev/null || true
}

if [[ "$(installed_version)" == "$TORCH_VERSION" && -f "$target/torch/lib/libtorch_cpu.so" ]]; then
    echo "libtorch $TORCH_VERSION already in $target" >&2
    exit 0
fi

if ! command -v python3 >/dev/null; then
    echo "error: python3 not found; install it (apt-get install python3 python3-pip) and rerun" >&2
    exit 1
fi

echo "installing libtorch $TORCH_VERSION into $target (about 540 MB download)" >&2
rm -rf "$target"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$target" \
    "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85

found=$(installed_version)
if [[ "$found" != "$TORCH_VERSION" ]]; then
    echo "error: installed torch version is '$found', expected $TORCH_VERSION (tch 0.26.0 needs it)" >&2
    exit 1
fi
echo "libtorch $TORCH_VERSION installed in $target" >&2
