#!/usr/bin/env bash
# Trains the small ENAS cell of archs/small.json on Penn Treebank and prints its test
# perplexity and its costs on a Raspberry Pi 4. Installs libtorch and fetches Penn Treebank
# first when they are missing.
#
# Usage: scripts/train-small.sh [--corpus DIR] [--out DIR] [edgenas train options...]
#   --corpus DIR   Penn Treebank folder; fetched there when missing (default: data/ptb)
#   --out DIR      checkpoint folder (default: runs/small); an existing run there is resumed
# Other options go to `edgenas train` (see `edgenas train --help`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
corpus=data/ptb
out=runs/small
extra=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --corpus) corpus=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) extra+=("$1"); shift ;;
    esac
done

cd "$root"
scripts/setup-libtorch.sh
if ! ls "$corpus"/ptb.train.txt "$corpus"/train.txt >/dev/null 2>&1; then
    scripts/fetch-ptb.sh "$corpus"
fi
cargo build --release --quiet -p edgenas-search

resume=()
[[ -f "$out/train-state.json" ]] && resume=(--resume)
exec target/release/edgenas train --corpus "$corpus" --arch archs/small.json --out "$out" \
    --profile profiles/raspberry-pi-4.toml --time-limit 29 "${resume[@]}" "${extra[@]}"
