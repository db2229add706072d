#!/usr/bin/env bash
# A table and its copy in another database of one throwaway PostgreSQL,
# compared in one run: pg_dump of both sides and a line compare, against a cdc-core
# verification (PostgresTable on both sides, a pipeline streaming into the
# copy). Prints rows/s and the ratio (median of alternating rounds).
# Usage: verify.sh [rows] [chunk] [rounds]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo run --quiet --release -p cdc-benches --bin verify_compare -- "$@"
