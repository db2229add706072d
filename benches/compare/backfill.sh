#!/usr/bin/env bash
# A table copied between two databases of one throwaway PostgreSQL, in one
# run: pg_dump --data-only | psql against a cdc-core backfill (PostgresChunks
# through a pipeline into the PostgreSQL sink). Prints rows/s and the ratio
# (median of alternating rounds). Usage: backfill.sh [rows] [chunk] [rounds]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo run --quiet --release -p cdc-benches --bin backfill_compare -- "$@"
