#!/usr/bin/env bash
# Create the Python virtual environment for the PyTorch reference model, the
# cell fixture generator and the PyTorch throughput server.
#
# Usage: scripts/setup-python-ref.sh
#
# The environment lives at .venv-torch/ in the repository root and contains
# torch==2.13.0 (the full wheel from the package index, used on the CPU only),
# numpy and safetensors. The script is idempotent: when the environment already
# has the expected packages it only checks them and exits.
# Set PYTHON to choose the interpreter that creates the environment
# (default: python3). Progress messages go to stderr.
set -euo pipefail

TORCH_VERSION="2.13.0"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="$repo_root/.venv-torch"
venv_python="$venv_dir/bin/python"
base_python="${PYTHON:-python3}"

log() {
    echo "setup-python-ref: $*" >&2
}

# Print the torch version and exit 0 when the environment has torch, numpy and
# safetensors importable and torch is at TORCH_VERSION.
check_environment() {
    "$venv_python" - "$TORCH_VERSION" <<'EOF'
import sys

import numpy
import safetensors
import torch

expected = sys.argv[1]
if not torch.__version__.startswith(expected):
    print(f"torch {torch.__version__} is installed but {expected} is expected",
          file=sys.stderr)
    sys.exit(1)
print(f"torch {torch.__version__}, numpy {numpy.__version__}, "
      f"safetensors {safetensors.__version__}", file=sys.stderr)
EOF
}

# Fast path: importing torch takes a few seconds, so the check runs once and
# its report is printed only when it passes.
if [[ -x "$venv_python" ]] && report="$(check_environment 2>&1)"; then
    echo "$report" >&2
    log "environment at $venv_dir is ready"
    exit 0
fi

if [[ ! -x "$venv_python" ]]; then
    log "creating virtual environment at $venv_dir with $base_python"
    "$base_python" -m venv "$venv_dir"
fi

log "installing torch==$TORCH_VERSION, numpy and safetensors (about 4.7 GB with the CUDA dependency wheels)"
"$venv_python" -m pip install --disable-pip-version-check --quiet \
    "torch==$TORCH_VERSION" numpy safetensors >&2

if ! check_environment; then
    log "error: the environment at $venv_dir failed the version check; delete it and rerun this script"
    exit 1
fi
log "environment at $venv_dir is ready"
