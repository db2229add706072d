#!/usr/bin/env bash
# Side-by-side binlog read of one workload on a throwaway MariaDB:
#   1. mariadb-binlog --read-from-remote-server --raw (raw bytes to disk, no decoding)
#   2. cdc_mysql::MySqlSource decoding every row into a cdc_core::ChangeLog
#      under cdc_core::ingest::run (fsync every batch, group commit, batches
#      pipelined), via benches/src/bin/mysql_read.rs, and the same with a
#      discard sink (decode cost alone)
#   3. python-mysql-replication decoding every row (installed into a venv here;
#      the tests never need it)
# Prints seconds and the ratios (targets: ours >= 0.9x raw; >= 20x python).
# Steps 1 and 2 run RUNS times, interleaved, and the medians are compared
# (the machine is shared; one run is noise). Our time runs from before the
# connection to the last durable append; the raw copy's from process start to
# exit, and once more including an fsync of the copied files, since our change
# log is durable and the raw copy is not.
# Usage: benches/compare/mysql.sh   (ROWS=500000, RUNS=3, BATCH=1000 rows per transaction by default)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
rows="${ROWS:-500000}"
runs="${RUNS:-3}"
batch="${BATCH:-1000}"
work="$(mktemp -d /tmp/cdc-compare-mysql.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/binlog" "$work/raw"
mariadb-install-db --no-defaults --datadir="$work/data" --user=root \
  --auth-root-authentication-method=normal --skip-test-db >/dev/null
/usr/sbin/mariadbd --no-defaults --datadir="$work/data" --socket="$work/sock" \
  --pid-file="$work/pid" --port="$port" --log-bin="$work/binlog/mysql-bin" --user=root \
  --bind-address=127.0.0.1 --skip-name-resolve --server-id=1 --binlog-format=ROW \
  --binlog-row-metadata=FULL --binlog-row-image=FULL --sync-binlog=0 \
  --innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=256M >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  mariadb-admin --no-defaults --socket="$work/sock" -uroot ping >/dev/null 2>&1 && break
  sleep 0.2
done
sqlroot() { mariadb --no-defaults --socket="$work/sock" -uroot "$@"; }
pw="compare-pw"
sqlroot -e "CREATE USER 'cdc'@'%' IDENTIFIED BY '$pw'; GRANT ALL PRIVILEGES ON *.* TO 'cdc'@'%';
  CREATE DATABASE test; CREATE TABLE test.orders (id BIGINT PRIMARY KEY, qty INT UNSIGNED,
  price DECIMAL(12,2), name VARCHAR(50), updated DATETIME(6));"

echo "workload: $rows rows in transactions of $batch"
{
  for ((a = 1; a <= rows; a += batch)); do
    b=$((a + batch - 1))
    echo "INSERT INTO test.orders SELECT seq, seq % 1000, seq / 7, CONCAT('customer-', seq), NOW(6) FROM test.seq_${a}_to_${b};"
  done
} | sqlroot
sqlroot -e "FLUSH BINARY LOGS"
du -sh "$work/binlog" | awk '{print "binlog size: " $1}'
# Let InnoDB write back the bulk load's dirty pages before measuring: its
# background flushing competes for the disk with whatever runs first (the
# first runs of ours, which fsyncs, took up to 2x longer than the later ones).
sqlroot -e "SET GLOBAL innodb_max_dirty_pages_pct = 0"
for _ in $(seq 1 120); do
  dirty=$(sqlroot -N -e "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'" | awk '{print $2}')
  [ "$dirty" = 0 ] && break
  sleep 0.5
done

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
(cd "$here" && cargo build --release -q -p cdc-benches --bin mysql_read)
bin="${CARGO_TARGET_DIR:-$here/target}/release/mysql_read"
raws=() raw_syncs=() ours=() discards=()
for ((run = 1; run <= runs; run++)); do
  # 1. Raw copy by the server's own client; then the same copy made durable.
  rm -rf "$work/raw" "$work/log" && mkdir -p "$work/raw"
  t0=$(now)
  mariadb-binlog --no-defaults --read-from-remote-server --raw --host=127.0.0.1 --port="$port" \
    --user=cdc --password="$pw" --result-file="$work/raw/" --to-last-log mysql-bin.000001
  t1=$(now)
  sync "$work/raw/"*
  t2=$(now)
  raws+=("$(echo "$t1 - $t0" | bc -l)")
  raw_syncs+=("$(echo "$t2 - $t0" | bc -l)")
  # 2. Our source into the change log, and with a discard sink (decode cost alone).
  ours+=("$("$bin" 127.0.0.1 "$port" cdc "$pw" "$rows" log "$work/log")")
  discards+=("$("$bin" 127.0.0.1 "$port" cdc "$pw" "$rows" discard "$work/unused")")
  echo "run $run: raw ${raws[-1]} s, raw+fsync ${raw_syncs[-1]} s, ours ${ours[-1]} s, discard ${discards[-1]} s"
done
# What each side makes durable (the last run's files): the raw copy keeps the
# binlog's packed row images, the change log one self-describing record per row.
raw_bytes=$(du -sb "$work/raw" | cut -f1)
log_bytes=$(du -sb "$work/log" | cut -f1)
t_raw=$(median "${raws[@]}")
t_raw_sync=$(median "${raw_syncs[@]}")
t_ours=$(median "${ours[@]}")
t_discard=$(median "${discards[@]}")

# 3. python-mysql-replication, decoding rows.
python3 -m venv "$work/venv" >/dev/null
"$work/venv/bin/pip" install -q mysql-replication >/dev/null
cat >"$work/pyread.py" <<'PY'
import sys, time
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent
port, pw, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t = time.time()
stream = BinLogStreamReader(
    connection_settings={"host": "127.0.0.1", "port": port, "user": "cdc", "passwd": pw},
    server_id=4242, blocking=False, only_events=[WriteRowsEvent], is_mariadb=True,
    log_file="mysql-bin.000001", log_pos=4, resume_stream=True)
n = 0
for event in stream:
    for row in event.rows:
        n += 1
    if n >= want:
        break
stream.close()
assert n >= want, n
print("%.3f" % (time.time() - t))
PY
t_py=$("$work/venv/bin/python" "$work/pyread.py" "$port" "$pw" "$rows")

echo "medians of $runs runs (python: one run):"
printf 'mariadb-binlog --raw:                 %8.3f s (%.0f rows/s)\n' "$t_raw" "$(echo "$rows / $t_raw" | bc -l)"
printf 'mariadb-binlog --raw, then fsync:     %8.3f s (%.0f rows/s)\n' "$t_raw_sync" "$(echo "$rows / $t_raw_sync" | bc -l)"
printf 'cdc-mysql into change log:            %8.3f s (%.0f rows/s)\n' "$t_ours" "$(echo "$rows / $t_ours" | bc -l)"
printf 'cdc-mysql decode only (discard):      %8.3f s (%.0f rows/s)\n' "$t_discard" "$(echo "$rows / $t_discard" | bc -l)"
printf 'python-mysql-replication (rows):      %8.3f s (%.0f rows/s)\n' "$t_py" "$(echo "$rows / $t_py" | bc -l)"
printf 'bytes written: raw copy %.1f MB, change log %.1f MB (%.0f bytes a row)\n' \
  "$(echo "$raw_bytes / 1000000" | bc -l)" "$(echo "$log_bytes / 1000000" | bc -l)" \
  "$(echo "$log_bytes / $rows" | bc -l)"
printf 'ratio cdc-mysql vs raw copy:          %8.2fx (target >= 0.9x)\n' "$(echo "$t_raw / $t_ours" | bc -l)"
printf 'ratio cdc-mysql vs raw copy + fsync:  %8.2fx (both durable)\n' "$(echo "$t_raw_sync / $t_ours" | bc -l)"
printf 'ratio decode-only vs raw copy:        %8.2fx\n' "$(echo "$t_raw / $t_discard" | bc -l)"
printf 'ratio cdc-mysql vs python:            %8.2fx (target >= 20x)\n' "$(echo "$t_py / $t_ours" | bc -l)"
# python-mysql-replication keeps nothing either: like for like with the discard sink.
printf 'ratio decode-only vs python:          %8.2fx\n' "$(echo "$t_py / $t_discard" | bc -l)"
