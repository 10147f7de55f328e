#!/usr/bin/env bash
# Runs `edgenas pipeline` on Penn Treebank for a Raspberry Pi 4: searches a cell that meets
# the Pi 4 budgets, trains it from scratch, exports it to ONNX (float32 and int8), replays
# test sentences through the int8 model and writes report.html. Installs libtorch and
# fetches Penn Treebank first when they are missing (libtorch is about 540 MB). With the default
# quick preset it took 39 minutes on 2 cores in a fresh clone, the build included.
#
# Usage: scripts/pipeline-ptb.sh [--corpus DIR] [--out DIR] [edgenas pipeline options...]
#   --corpus DIR   Penn Treebank folder, fetched there when it contains no splits
#                  (default: data/ptb in the repository)
#   --out DIR      output folder; run the script again to resume a stopped pipeline
#                  (default: runs/pipeline-pi4 in the repository)
# Other options go to `edgenas pipeline` (see `edgenas pipeline --help`); --profile and
# --preset replace the defaults profiles/raspberry-pi-4.toml and quick.

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=$root/data/ptb
out=$root/runs/pipeline-pi4
profile=$root/profiles/raspberry-pi-4.toml
preset=quick
extra=()

value() {
    if [[ $# -lt 2 || $2 == --* ]]; then
        echo "error: $1 needs a value; see scripts/pipeline-ptb.sh --help" >&2
        exit 2
    fi
}

while [[ $# -gt 0 ]]; do
    # Split --option=value into two arguments.
    if [[ $1 == --*=* ]]; then
        set -- "${1%%=*}" "${1#*=}" "${@:2}"
    fi
    case $1 in
        --corpus) value "$@"; corpus=$2; shift 2 ;;
        --out) value "$@"; out=$2; shift 2 ;;
        --profile) value "$@"; profile=$2; shift 2 ;;
        --preset) value "$@"; preset=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) extra+=("$1"); shift ;;
    esac
done

"$root/scripts/setup-libtorch.sh"
# Fetch Penn Treebank only into a folder that contains no training split yet.
if [[ ! -f "$corpus/train.txt" && ! -f "$corpus/ptb.train.txt" ]]; then
    "$root/scripts/fetch-ptb.sh" "$corpus"
fi
# Cargo reads .cargo/config.toml (which points at libtorch) from the folder it runs in.
echo "building edgenas (a few minutes the first time)" >&2
(cd "$root" && cargo build --release --quiet -p edgenas-search)

exec "$root/target/release/edgenas" pipeline --corpus "$corpus" --profile "$profile" \
    --out "$out" --preset "$preset" "${extra[@]}"
