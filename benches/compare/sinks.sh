#!/usr/bin/env bash
# Sinks vs the destinations' own bulk paths on the same rows, in one run:
# PostgreSQL COPY FROM STDIN, MariaDB LOAD DATA LOCAL INFILE, SQLite one
# prepared-statement transaction. Prints rows/s and the ratio sink/bulk.
# Usage: benches/compare/sinks.sh [sqlite|postgres|mariadb]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo run --quiet --release -p cdc-benches --bin sinks_compare -- "$@"
