#!/usr/bin/env bash
# Streams one pgoutput workload with pg_recvlogical (to /dev/null) and with
# cdc-postgres (into the change log, and into a discard sink) in one run, and
# prints both rates and the ratios. Usage: postgres.sh [rows] [rows_per_tx]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here/.."
cargo run -q --release -p cdc-benches --bin postgres_compare -- "${1:-200000}" "${2:-1000}"
