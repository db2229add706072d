#!/usr/bin/env bash
# Runs every side-by-side comparison with the reference tools and prints ratios.
# Usage: benches/compare.sh [log|postgres|mysql|sinks|backfill|verify]...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
areas=("$@")
[ ${#areas[@]} -eq 0 ] && areas=(log postgres mysql sinks backfill verify)
for area in "${areas[@]}"; do
  script="$here/compare/$area.sh"
  if [ -x "$script" ]; then
    echo "== $area"
    "$script"
  else
    echo "== $area: no comparison yet ($script missing)"
  fi
done
