#!/usr/bin/env bash
# The cold release build and the binary it makes, as `cargo run --release -- demo` meets them on a
# fresh clone: an empty target folder, the registry already downloaded (downloads are the network's
# time, not the build's). Prints wall time, CPU time (user + system, which other load on the machine
# changes far less than the wall time) and the binary's size.
#
#   benches/cold-build.sh            # builds into a fresh temporary target folder, then deletes it
#
# Figures of record: BENCHMARKS.md, "Cold build and binary".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --locked >/dev/null
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
timing=$(mktemp)
/usr/bin/time -f '%e %U %S %M' -o "$timing" \
    env CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet
read -r wall user sys rss <"$timing"
rm -f "$timing"
size=$(stat -c %s "$target/release/auditsync")
crates=$(cargo tree --locked -p auditsync -e normal,build --prefix none 2>/dev/null \
    | sed 's/ (\*)$//' | sort -u | wc -l)
printf 'cold release build: %s s wall, %s s CPU (user %s + system %s), peak rustc RSS %s MB\n' \
    "$wall" "$(python3 -c "print(round($user + $sys, 1))")" "$user" "$sys" "$((rss / 1024))"
printf 'binary: target/release/auditsync, %s bytes (%s MB)\n' "$size" \
    "$(python3 -c "print(round($size / 1e6, 1))")"
printf 'crates compiled for the binary (normal and build dependencies, its own included): %s\n' "$crates"
