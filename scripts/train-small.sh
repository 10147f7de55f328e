#!/usr/bin/env bash
# Trains the small ENAS cell of archs/small.json on Penn Treebank and prints its test
# perplexity and its costs on a Raspberry Pi 4. Installs libtorch and fetches Penn Treebank
# first when they are missing.
#
# Usage: scripts/train-small.sh [--corpus DIR] [--out DIR] [edgenas train options...]
#   --corpus DIR   Penn Treebank folder, fetched there when it contains no splits
#                  (default: data/ptb in the repository)
#   --out DIR      checkpoint folder; a stopped run there is resumed
#                  (default: runs/small in the repository)
# Other options go to `edgenas train` (see `edgenas train --help`); --arch, --profile and
# --time-limit replace the defaults archs/small.json, profiles/raspberry-pi-4.toml and 29.

set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=$root/data/ptb
out=$root/runs/small
arch=$root/archs/small.json
profile=$root/profiles/raspberry-pi-4.toml
time_limit=29
extra=()

value() {
    if [[ $# -lt 2 || $2 == --* ]]; then
        echo "error: $1 needs a value; see scripts/train-small.sh --help" >&2
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
        --arch) value "$@"; arch=$2; shift 2 ;;
        --profile) value "$@"; profile=$2; shift 2 ;;
        --time-limit) value "$@"; time_limit=$2; shift 2 ;;
        --resume) shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) extra+=("$1"); shift ;;
    esac
done

"$root/scripts/setup-libtorch.sh"
# Fetch Penn Treebank only into a folder that contains no training split yet.
if [[ ! -f "$corpus/train.txt" && ! -f "$corpus/ptb.train.txt" ]]; then
    "$root/scripts/fetch-ptb.sh" "$corpus"
fi
# Cargo reads .cargo/config.toml (which points at libtorch) from the folder it runs in.
(cd "$root" && cargo build --release --quiet -p edgenas-search)

resume=()
[[ -f "$out/train-state.json" ]] && resume=(--resume)
exec "$root/target/release/edgenas" train --corpus "$corpus" --arch "$arch" --out "$out" \
    --profile "$profile" --time-limit "$time_limit" "${resume[@]}" "${extra[@]}"
