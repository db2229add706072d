#!/usr/bin/env bash
# Side by side, on the same disk and directory: dd writing 2 GiB with one
# fdatasync, and the change log appending 2 GiB of 1 KiB records with
# group-commit fsync (EveryBatch). Prints MB/s for both and the ratio.
# Env: LOG_COMPARE_MB (default 2048), LOG_COMPARE_DIR (default target/log-compare).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
mb="${LOG_COMPARE_MB:-2048}"
target="${CARGO_TARGET_DIR:-$root/target}"
dir="${LOG_COMPARE_DIR:-$target/log-compare}"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p cdc-benches --bin log_append
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

dd_line="$(dd if=/dev/zero of="$dir/dd.bin" bs=1M count="$mb" conv=fdatasync 2>&1 | tail -n 1)"
rm -f "$dir/dd.bin"
# "2147483648 bytes (2.1 GB, 2.0 GiB) copied, 3.07 s, 699 MB/s"
dd_bytes="$(echo "$dd_line" | awk '{print $1}')"
dd_secs="$(echo "$dd_line" | sed -E 's/.*copied, ([0-9.,]+) s.*/\1/' | tr , .)"
dd_mbs="$(awk -v b="$dd_bytes" -v s="$dd_secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')"

log_line="$("$target/release/log_append" "$dir/log" "$mb")"
log_mbs="$(echo "$log_line" | sed -E 's/log_append: ([0-9.]+) MB\/s.*/\1/')"

echo "dd bs=1M conv=fdatasync : $dd_mbs MB/s"
echo "change log append 1 KiB : $log_mbs MB/s  ($log_line)"
awk -v a="$log_mbs" -v b="$dd_mbs" 'BEGIN { printf "ratio log/dd            : %.2f (target >= 0.90)\n", a / b }'
