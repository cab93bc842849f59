#!/usr/bin/env bash
# Run the README's first two commands in a fresh clone of this repository, as a newcomer (or CI)
# would. Usage: scripts/fresh-clone-check.sh [CLONE_DIR]
#
# The clone reuses this checkout's target/ as CARGO_TARGET_DIR when AWSNET_REUSE_TARGET=1, which
# saves the long burn build but no longer proves a cold build works.
set -euo pipefail

src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
if [ $# -ge 1 ]; then
    dest=$1
    if [ -e "$dest" ]; then
        echo "$dest exists: give a path that does not exist yet" >&2
        exit 2
    fi
else
    dest=$(mktemp -u /tmp/awsnet-fresh.XXXXXX)
fi
git clone --quiet "$src" "$dest"
cd "$dest"
if [ "${AWSNET_REUSE_TARGET:-0}" = 1 ]; then
    export CARGO_TARGET_DIR="$src/target"
fi

# The commands are read from the README's "Quick start" block so the two cannot drift apart.
mapfile -t commands < <(awk '/^```sh quickstart/{on=1; next} /^```/{on=0} on && NF && !/^#/' README.md)
if [ "${#commands[@]}" -ne 2 ]; then
    echo "expected two commands in the README's quickstart block, found ${#commands[@]}" >&2
    exit 1
fi
for cmd in "${commands[@]}"; do
    echo "+ $cmd"
    start=$(date +%s)
    bash -c "$cmd"
    echo "  ($(( $(date +%s) - start )) s)"
done
echo "fresh clone at $dest: README commands passed"
