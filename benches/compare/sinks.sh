#!/usr/bin/env bash
# Sinks vs the destinations' own bulk paths on the same rows, in one run:
# PostgreSQL COPY FROM STDIN, MariaDB LOAD DATA LOCAL INFILE, SQLite one
# prepared-statement transaction. Prints rows/s of both sides and the ratio
# sink/bulk for inserts, and the sinks' rows/s for updates (median of three
# alternating rounds each).
# Usage: benches/compare/sinks.sh [sqlite|postgres|mariadb] [--batch N]
#   --batch N   changes per sink transaction (default 5000; the pipeline's
#               default max_batch_records is 1000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo run --quiet --release -p cdc-benches --bin sinks_compare -- "$@"
