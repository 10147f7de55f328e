#!/usr/bin/env bash
# Copies the aarch64 edgenas-runtime binary, the default model and the device profiles to a
# Raspberry Pi (64-bit Raspberry Pi OS) over ssh, then prints the commands to run there.
#
# Usage: scripts/deploy-pi.sh HOST [--dir DIR] [--profile NAME] [--dry-run]
#
#   HOST            ssh destination, for example pi@raspberrypi.local or a Host of ~/.ssh/config
#   --dir DIR       folder on the device, relative to the remote home unless absolute
#                   (default: edgenas)
#   --profile NAME  cargo profile whose aarch64 build is copied (default: device)
#   --dry-run       print the ssh and scp commands instead of running them
#
# Build first with scripts/build-aarch64.sh (add --bench to copy the latency benchmark too).
# The folder on the device gets this layout, which edgenas-runtime searches beside its
# executable for its default model and profile:
#
#   DIR/edgenas-runtime
#   DIR/latency-bench                      (only when built)
#   DIR/models/ptb-small/model.int8.onnx   (+ vocab.txt, export-report.json)
#   DIR/profiles/*.toml
#
# Before copying, it checks that HOST is aarch64 and that the shared libraries the binary
# links (libpocketsphinx3, libasound2) and the pocketsphinx-en-us model are installed there;
# missing packages are reported with the `sudo apt install` line and the copy goes on. After
# copying, it runs `edgenas-runtime --help` on HOST to check that the binary starts. All ssh
# and scp calls share one connection, so a password is asked for once. Set SSH and SCP to use
# other commands. Exit status: 0 success, 1 a failed check or copy, 2 invalid usage.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
model_dir=models/ptb-small
model_files=(model.int8.onnx vocab.txt export-report.json)
# Debian package names on Raspberry Pi OS 12 (bookworm); Debian 13 renames libasound2 to
# libasound2t64, which the check also accepts.
remote_packages=(libpocketsphinx3 libasound2 pocketsphinx-en-us)

host=""
remote_dir=edgenas
profile=device
dry_run=0

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

log() {
    echo "deploy-pi: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

usage_error() {
    usage >&2
    log "error: $*"
    exit 2
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir)
            [[ $# -ge 2 && -n "$2" ]] || usage_error "--dir needs a folder"
            remote_dir=$2
            shift 2
            ;;
        --profile)
            [[ $# -ge 2 && -n "$2" ]] || usage_error "--profile needs a profile name"
            profile=$2
            shift 2
            ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage_error "unknown option: $1" ;;
        *)
            [[ -z "$host" ]] || usage_error "only one HOST is allowed; got '$host' and '$1'"
            host=$1
            shift
            ;;
    esac
done
[[ -n "$host" ]] || usage_error "missing HOST"
# The folder name goes through the remote shell and scp unquoted, so it is limited to
# characters that neither treats specially. A leading ~/ is dropped because relative paths
# already start at the remote home.
[[ "$remote_dir" =~ ^[A-Za-z0-9._/~-]+$ ]] \
    || usage_error "invalid --dir '$remote_dir': use letters, digits and . _ / ~ - only"
remote_dir=${remote_dir#\~/}

# Cargo puts the `dev` profile in debug/ and every other profile in a folder of its name.
case "$profile" in
    dev) profile_dir=debug ;;
    *) profile_dir=$profile ;;
esac
build_dir="${CARGO_TARGET_DIR:-target}/$target/$profile_dir"
binary="$build_dir/edgenas-runtime"
bench="$build_dir/latency-bench"

# Local files first, so a missing build fails before any connection is made.
[[ -f "$binary" ]] || die "$binary not found; build it with: scripts/build-aarch64.sh --profile $profile"
machine=$(LC_ALL=C readelf -h "$binary" | sed -n 's/^ *Machine: *//p')
[[ "$machine" == AArch64 ]] || die "$binary is built for '$machine', expected AArch64"
for file in "${model_files[@]}"; do
    [[ -f "$model_dir/$file" ]] || die "$model_dir/$file not found"
done
profiles=(profiles/*.toml)
[[ -f "${profiles[0]}" ]] || die "no device profiles in profiles/"

# One ssh connection for every call: the first call opens it, the others reuse it.
control_dir=$(mktemp -d)
ssh_options=(-o ControlMaster=auto -o "ControlPath=$control_dir/%C" -o ControlPersist=60)
ssh_command=${SSH:-ssh}
scp_command=${SCP:-scp}
close_connection() {
    if [[ $dry_run -eq 0 ]]; then
        "$ssh_command" "${ssh_options[@]}" -O exit "$host" 2>/dev/null || true
    fi
    rm -rf "$control_dir"
}
trap close_connection EXIT

# Runs a shell command line on HOST; with --dry-run it only prints it, and prints $2 as the
# output it assumes.
remote() {
    if [[ $dry_run -eq 1 ]]; then
        echo "$ssh_command ${ssh_options[*]} $host '$1'" >&2
        [[ $# -lt 2 ]] || echo "$2"
        return 0
    fi
    "$ssh_command" "${ssh_options[@]}" "$host" "$1"
}

copy() {
    local destination=$1
    shift
    if [[ $dry_run -eq 1 ]]; then
        echo "$scp_command ${ssh_options[*]} -q -p $* $host:$destination" >&2
        return 0
    fi
    "$scp_command" "${ssh_options[@]}" -q -p "$@" "$host:$destination"
}

log "checking $host"
remote_machine=$(remote "uname -m" aarch64) || die "ssh $host failed"
if [[ "$remote_machine" != aarch64 ]]; then
    die "$host is '$remote_machine', but the binary is for aarch64;" \
        "install a 64-bit Raspberry Pi OS (Raspberry Pi 3, 4 or 5)"
fi

# dpkg-query prints one "name status" line per installed package name. libasound2t64 replaces
# libasound2 on Debian 13.
installed=$(remote "dpkg-query -W -f '\${Package} \${Status}\n' ${remote_packages[*]} libasound2t64 2>/dev/null || true" \
    "$(printf '%s install ok installed\n' "${remote_packages[@]}")")
missing=()
for package in "${remote_packages[@]}"; do
    pattern="^$package "
    [[ $package == libasound2 ]] && pattern='^libasound2(t64)? '
    if ! grep -Eq "${pattern}install ok installed" <<<"$installed"; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "missing on $host: ${missing[*]}; edgenas-runtime does not start without" \
        "libpocketsphinx3 and libasound2, and \`live\` needs pocketsphinx-en-us. Install them there with:"
    echo "    sudo apt install ${missing[*]}" >&2
fi

log "copying to $host:$remote_dir"
remote "mkdir -p $remote_dir/$model_dir $remote_dir/profiles"
copy "$remote_dir/" "$binary"
if [[ -f "$bench" ]]; then
    copy "$remote_dir/" "$bench"
else
    log "no latency benchmark in $build_dir; build it with scripts/build-aarch64.sh --bench"
fi
copy "$remote_dir/$model_dir/" "${model_files[@]/#/$model_dir/}"
copy "$remote_dir/profiles/" "${profiles[@]}"

# Starting the binary checks that its shared libraries resolve on HOST, and its help lists the
# subcommands this build has.
help=$(remote "cd $remote_dir && ./edgenas-runtime --help" \
    "$(printf 'Commands:\n  transcript\n  live\n  calibrate\n')") \
    || die "edgenas-runtime does not start on $host; install the packages listed above"
commands=$(sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\).*/\1/p' <<<"$help")
if [[ $dry_run -eq 1 ]]; then
    log "dry run: nothing was copied"
else
    log "deployed to $host:$remote_dir"
fi

echo
echo "On $host:"
echo "    cd $remote_dir"
if grep -qx transcript <<<"$commands"; then
    echo "    # Replay a transcript (one utterance a line), report accuracy and latency per word:"
    echo "    ./edgenas-runtime transcript --quiet transcript.txt"
fi
if grep -qx live <<<"$commands"; then
    echo "    # Predict the next word while you speak into the default microphone (Ctrl-C stops):"
    echo "    ./edgenas-runtime live --list-devices"
    echo "    ./edgenas-runtime live"
fi
if grep -qx calibrate <<<"$commands"; then
    echo "    # Calibration on this device; its options:"
    echo "    ./edgenas-runtime calibrate --help"
fi
if [[ -f "$bench" ]]; then
    echo "    # Latency per word with criterion:"
    echo "    ./latency-bench --bench"
fi
