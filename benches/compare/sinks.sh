#!/usr/bin/env bash
# Sinks vs the destinations' own bulk paths on the same rows, in one run:
# PostgreSQL COPY FROM STDIN (text and binary format; the sink writes binary),
# MariaDB LOAD DATA LOCAL INFILE, SQLite one prepared-statement transaction.
# Prints rows/s of both sides and the ratio sink/bulk for inserts, and the
# sinks' rows/s for updates (median of five alternating rounds each).
# Usage: benches/compare/sinks.sh [sqlite|postgres|mariadb] [--batch N]
#                                 [--sqlite-synchronous full|normal]
#   --batch N   changes per sink transaction (default 5000; the pipeline's
#               default max_batch_records is 1000)
#   --sqlite-synchronous   the SQLite sink's `synchronous` setting, used by
#               both sides (default full, the sink's default: every batch
#               commit waits for an fsync, which is most of a batch's time
#               on a slow disk; normal trades power-loss durability for it)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo run --quiet --release -p cdc-benches --bin sinks_compare -- "$@"
