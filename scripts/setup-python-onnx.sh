#!/usr/bin/env bash
# Creates the Python virtual environment that the export tests use as independent ONNX tools:
# the onnx checker and onnxruntime.
#
# Usage: scripts/setup-python-onnx.sh
#
# The environment lives at .venv-onnx/ in the repository root and contains pinned onnx,
# onnxruntime and numpy. The script is idempotent: when the environment already has these
# versions it only checks them and exits. Set PYTHON to choose the interpreter that creates
# the environment (default: python3). Progress messages go to stderr.
set -euo pipefail

ONNX_VERSION="1.23.2"
ONNXRUNTIME_VERSION="1.32.0"
NUMPY_VERSION="2.4.6"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="$repo_root/.venv-onnx"
venv_python="$venv_dir/bin/python"
base_python="${PYTHON:-python3}"

log() {
    echo "setup-python-onnx: $*" >&2
}

# Exits 0 when the environment imports onnx, onnxruntime and numpy at the pinned versions.
check_environment() {
    "$venv_python" - "$ONNX_VERSION" "$ONNXRUNTIME_VERSION" "$NUMPY_VERSION" <<'PY'
import sys

import numpy
import onnx
import onnxruntime

expected = dict(zip(["onnx", "onnxruntime", "numpy"], sys.argv[1:]))
found = {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__}
wrong = [f"{name} {found[name]} (expected {expected[name]})" for name in expected if found[name] != expected[name]]
if wrong:
    print("wrong versions: " + ", ".join(wrong), file=sys.stderr)
    sys.exit(1)
print(", ".join(f"{name} {version}" for name, version in found.items()), file=sys.stderr)
PY
}

if [[ -x "$venv_python" ]] && report="$(check_environment 2>&1)"; then
    echo "$report" >&2
    log "environment at $venv_dir is ready"
    exit 0
fi

if ! command -v "$base_python" >/dev/null; then
    log "error: $base_python not found; install Python 3 with venv (apt-get install python3 python3-venv) and rerun"
    exit 1
fi
if [[ ! -x "$venv_python" ]]; then
    log "creating virtual environment at $venv_dir with $base_python"
    "$base_python" -m venv "$venv_dir"
fi

log "installing onnx==$ONNX_VERSION, onnxruntime==$ONNXRUNTIME_VERSION and numpy==$NUMPY_VERSION"
"$venv_python" -m pip install --disable-pip-version-check --quiet \
    "onnx==$ONNX_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" "numpy==$NUMPY_VERSION" >&2

if ! check_environment; then
    log "error: the environment at $venv_dir failed the version check; delete it and rerun this script"
    exit 1
fi
log "environment at $venv_dir is ready"
