#!/usr/bin/env bash
# Checks the aarch64 cross-build on an x86-64 machine, with user-mode qemu in place of a
# Raspberry Pi:
#
#   1. runs `cargo test -p edgenas-runtime --target aarch64-unknown-linux-gnu --release` under
#      qemu (the runner of .cargo/config.toml);
#   2. replays a transcript with `edgenas-runtime transcript --json` on the default model with
#      the aarch64 binary under qemu and with the x86-64 binary, and compares the predictions;
#   3. runs scripts/deploy-pi.sh against a mock ssh and scp that copy into a temporary folder.
#
# Usage: scripts/check-aarch64.sh [--transcript FILE] [--lines N] [--tolerance P]
#
#   --transcript FILE  plain-text transcript, one utterance a line
#                      (default: ../shared/data/commonvoice-en/harvsents.txt)
#   --lines N          replay only its first N lines (default: 50)
#   --tolerance P      largest difference allowed between the two binaries' probabilities of a
#                      predicted word, absolute (default: 1e-5; the largest difference
#                      measured, x86-64 against qemu, on 50 Harvard sentences: 8.3e-7)
#
# The comparison requires the same tokens, ranks and keystroke counts at every step, and the
# same top-k words with probabilities within the tolerance. Because float kernels differ
# between x86-64 and aarch64, two words whose probabilities differ by less than the tolerance
# may swap places. For the same reason, the last word of the top-k may differ when it ties
# within the tolerance with the word that replaced it. Cargo's "test result:" lines go to
# stdout for the totals of .ci/run. Exits non-zero when a test fails or the predictions differ.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
# The same runner as in .cargo/config.toml, which explains the -L.
qemu=(qemu-aarch64-static -L /)
transcript=../shared/data/commonvoice-en/harvsents.txt
lines=50
tolerance=1e-5

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

log() {
    echo "check-aarch64: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --transcript | --lines | --tolerance)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            case "$1" in
                --transcript) transcript=$2 ;;
                --lines) lines=$2 ;;
                --tolerance) tolerance=$2 ;;
            esac
            shift 2
            ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ -f "$transcript" ]] || die "transcript $transcript not found; pass --transcript FILE"
[[ "$lines" =~ ^[1-9][0-9]*$ ]] || die "--lines must be a positive integer, got '$lines'"

started=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
target_dir=${CARGO_TARGET_DIR:-target}

# Prerequisites and the aarch64 release binary, which the comparison runs.
scripts/build-aarch64.sh --profile release >/dev/null
arm_binary="$target_dir/$target/release/edgenas-runtime"

log "running the edgenas-runtime tests for $target under qemu"
step_started=$SECONDS
# Tests that start the edgenas-runtime binary read this runner, because the kernel cannot
# execute an aarch64 binary without binfmt_misc.
export EDGENAS_RUNTIME_RUNNER="${qemu[*]}"
# --no-fail-fast runs every test binary, so the totals count them all. The time limit stops a
# test that waits forever on a child process the kernel could not start. Tests run one at a
# time because the two live speech tests feed audio in real time to a recognizer and a model
# that run far slower under qemu. Side by side on two cores, they fell behind the audio and
# missed words.
if ! timeout 900 cargo test -p edgenas-runtime --target "$target" --release --no-fail-fast \
    -- --test-threads=1; then
    log "FAILED: the aarch64 tests"
    failures=$((failures + 1))
fi
log "aarch64 tests took $((SECONDS - step_started)) s"

log "comparing the predictions of the aarch64 and x86-64 binaries"
step_started=$SECONDS
cargo build -p edgenas-runtime --release
x86_binary="$target_dir/release/edgenas-runtime"
head -n "$lines" "$transcript" >"$work/transcript.txt"
"$x86_binary" transcript --json --top-k 5 "$work/transcript.txt" >"$work/x86_64.json"
"${qemu[@]}" "$arm_binary" transcript --json --top-k 5 "$work/transcript.txt" >"$work/aarch64.json"
if ! python3 - "$work/x86_64.json" "$work/aarch64.json" "$tolerance" <<'EOF'; then
import json
import sys

x86_path, arm_path, tolerance = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(x86_path) as f:
    x86 = json.load(f)
with open(arm_path) as f:
    arm = json.load(f)


def steps(document):
    return [step for utterance in document["utterances"] for step in utterance["steps"]]


def compare_predictions(x86_top, arm_top):
    """Returns (problems, reordered) for one step's top-k lists."""
    problems = []
    reordered = False
    if len(x86_top) != len(arm_top):
        return [f"{len(x86_top)} predictions on x86-64, {len(arm_top)} on aarch64"], False
    x86_p = {p["token"]: p["probability"] for p in x86_top}
    arm_p = {p["token"]: p["probability"] for p in arm_top}
    for position, (a, b) in enumerate(zip(x86_top, arm_top)):
        # Sorted probabilities agree position by position even where near-ties swap words.
        if abs(a["probability"] - b["probability"]) > tolerance:
            problems.append(
                f"prediction {position + 1}: {a['token']} {a['probability']:.6g} on x86-64, "
                f"{b['token']} {b['probability']:.6g} on aarch64"
            )
        if a["token"] != b["token"]:
            reordered = True
    # A word that moved keeps its probability within the tolerance.
    x86_position = {p["token"]: i for i, p in enumerate(x86_top)}
    arm_position = {p["token"]: i for i, p in enumerate(arm_top)}
    for token in x86_p.keys() & arm_p.keys():
        if x86_position[token] == arm_position[token]:
            continue
        if abs(x86_p[token] - arm_p[token]) > tolerance:
            problems.append(
                f"{token}: probability {x86_p[token]:.6g} on x86-64, {arm_p[token]:.6g} on aarch64"
            )
    # A word in only one list must tie within the tolerance with the other list's last word.
    for token in x86_p.keys() - arm_p.keys():
        if x86_p[token] - arm_top[-1]["probability"] > tolerance:
            problems.append(f"{token} ({x86_p[token]:.6g}) is missing from the aarch64 top-k")
    for token in arm_p.keys() - x86_p.keys():
        if arm_p[token] - x86_top[-1]["probability"] > tolerance:
            problems.append(f"{token} ({arm_p[token]:.6g}) is missing from the x86-64 top-k")
    return problems, reordered


x86_steps, arm_steps = steps(x86), steps(arm)
mismatches = []
reordered_steps = 0
largest_difference = 0.0
if len(x86_steps) != len(arm_steps):
    mismatches.append(f"{len(x86_steps)} steps on x86-64, {len(arm_steps)} on aarch64")
for index, (a, b) in enumerate(zip(x86_steps, arm_steps)):
    where = f"step {index + 1} ({a['token']})"
    for field in ("spoken", "token", "id", "known", "rank", "keystrokes"):
        if a[field] != b[field]:
            mismatches.append(f"{where}: {field} {a[field]!r} on x86-64, {b[field]!r} on aarch64")
    problems, reordered = compare_predictions(a["predictions"], b["predictions"])
    mismatches.extend(f"{where}: {problem}" for problem in problems)
    reordered_steps += reordered
    for p, q in zip(a["predictions"], b["predictions"]):
        if p["token"] == q["token"]:
            largest_difference = max(largest_difference, abs(p["probability"] - q["probability"]))

print(
    f"aarch64 vs x86-64: {len(x86_steps)} steps, top-{len(x86_steps[0]['predictions']) if x86_steps else 0}, "
    f"largest probability difference {largest_difference:.3g} (tolerance {tolerance:g}), "
    f"{reordered_steps} steps with near-tied words in another order, {len(mismatches)} mismatches"
)
for mismatch in mismatches[:20]:
    print(f"  {mismatch}")
if len(mismatches) > 20:
    print(f"  ... and {len(mismatches) - 20} more")
sys.exit(1 if mismatches else 0)
EOF
    log "FAILED: the predictions differ"
    failures=$((failures + 1))
fi
log "comparison took $((SECONDS - step_started)) s"

log "deploying to a mock host with scripts/deploy-pi.sh"
# The mock ssh runs the remote command in a temporary home folder, reports aarch64 from
# `uname -m` and every package as installed, and runs ./edgenas-runtime under qemu. The mock
# scp copies host:path into that home. Both record their arguments in calls.log.
mock=$work/mock
mkdir -p "$mock/bin" "$mock/remote-bin" "$mock/home"
cat >"$mock/remote-bin/uname" <<'EOF'
#!/usr/bin/env bash
[[ "${1:-}" == -m ]] && { echo aarch64; exit 0; }
exec /usr/bin/uname "$@"
EOF
cat >"$mock/remote-bin/dpkg-query" <<'EOF'
#!/usr/bin/env bash
while [[ $# -gt 0 ]]; do
    case $1 in
        -f) shift 2 ;;
        -*) shift ;;
        libasound2t64) shift ;;
        *) echo "$1 install ok installed"; shift ;;
    esac
done
EOF
cat >"$mock/bin/ssh" <<EOF
#!/usr/bin/env bash
echo "ssh \$*" >>"$mock/calls.log"
while [[ \$# -gt 0 && \$1 == -* ]]; do
    [[ \$1 == -O ]] && exit 0
    shift 2
done
shift
cd "$mock/home"
command=\${1//.\/edgenas-runtime/${qemu[*]} ./edgenas-runtime}
PATH="$mock/remote-bin:\$PATH" exec bash -c "\$command"
EOF
cat >"$mock/bin/scp" <<EOF
#!/usr/bin/env bash
echo "scp \$*" >>"$mock/calls.log"
sources=()
while [[ \$# -gt 1 ]]; do
    case \$1 in
        -o) shift 2 ;;
        -*) shift ;;
        *) sources+=("\$1"); shift ;;
    esac
done
cp -p "\${sources[@]}" "$mock/home/\${1#*:}"
EOF
chmod +x "$mock/bin/"* "$mock/remote-bin/"*
step_started=$SECONDS
deploy_ok=1
SSH="$mock/bin/ssh" SCP="$mock/bin/scp" scripts/deploy-pi.sh pi@mock --profile release \
    >"$mock/deploy.out" 2>&1 || deploy_ok=0
for file in edgenas-runtime models/ptb-small/model.int8.onnx models/ptb-small/vocab.txt \
    models/ptb-small/export-report.json profiles/raspberry-pi-4.toml; do
    [[ -f "$mock/home/edgenas/$file" ]] || { log "deploy did not copy $file"; deploy_ok=0; }
done
if [[ $deploy_ok -eq 1 ]]; then
    log "deploy to the mock host: ok ($(wc -l <"$mock/calls.log") ssh and scp calls, $((SECONDS - step_started)) s)"
else
    cat "$mock/deploy.out" >&2
    log "FAILED: deploy to the mock host"
    failures=$((failures + 1))
fi

log "took $((SECONDS - started)) s in all, $failures failed steps"
[[ $failures -eq 0 ]]
