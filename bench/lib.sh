# bench/lib.sh — shell helpers shared by bench/node-lookups, node-ingest, repl-catchup, run-all.
# Source it from bash after `set -euo pipefail`. Everything is named sj_*; state lives in SJ_*.
#
#   SJ_ROOT        the repository (set here)
#   SJ_BIN_DIR     where the binaries are; default: build/bin, else the newest build*/bin that
#                  holds sanjiao-node and sjload
#   SJ_BENCH_DATA  cache of generated records and filled nodes, reused across runs
#                  (default /tmp/sjbench-data); --fresh in the scripts rebuilds it
#   SJ_DATASET     synthetic (default: sjload --gen, 10 credit records per enterprise, every 10th
#                  entry a trace event, ~300 B each) or sample (`sanjiao sample`, the four regions'
#                  files posted to one node; mostly trace events, ~1.4 records per enterprise)
#   SJ_TMP         this run's scratch directory, removed on exit
#   SJ_PIDS        processes started by this run, stopped on exit (never anything else)
#   SJ_DAMON_KEEP  1: leave the kernel's DAMON running (sj_init pauses it otherwise)
#   SJ_DAMON       what sj_init did with DAMON: paused, none, or why it was left on

SJ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SJ_BENCH_DATA="${SJ_BENCH_DATA:-/tmp/sjbench-data}"
SJ_DATASET="${SJ_DATASET:-synthetic}"
SJ_PIDS=()
SJ_TMP=""
SJ_DAMON_PAUSED=()
SJ_DAMON=none
SJ_NODE_CPU="${SJ_NODE_CPU:-0}" # the server side
SJ_LOAD_CPU="${SJ_LOAD_CPU:-1}" # the load generator

sj_die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

sj_find_bins() {
  if [ -z "${SJ_BIN_DIR:-}" ]; then
    for d in "$SJ_ROOT/build/bin" $(ls -td "$SJ_ROOT"/build*/bin 2>/dev/null); do
      if [ -x "$d/sanjiao-node" ] && [ -x "$d/sjload" ]; then SJ_BIN_DIR="$d"; break; fi
    done
  fi
  [ -n "${SJ_BIN_DIR:-}" ] && [ -x "$SJ_BIN_DIR/sanjiao-node" ] ||
    sj_die "sanjiao-node / sjload not found: build first or set SJ_BIN_DIR"
  SJ_LOAD="$SJ_BIN_DIR/sjload"
  for t in taskset curl python3; do
    command -v "$t" >/dev/null || sj_die "missing: $t"
  done
}

sj_cleanup() {
  local p
  for p in "${SJ_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SJ_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  SJ_PIDS=()
  for p in "${SJ_DAMON_PAUSED[@]}"; do
    echo on >"$p" 2>/dev/null || echo "$(basename "$0"): could not turn DAMON back on: echo on >$p" >&2
  done
  SJ_DAMON_PAUSED=()
  if [ -n "$SJ_TMP" ]; then rm -rf "$SJ_TMP"; fi
}

# sj_damon_pause (sj_init calls it): turns off every running kdamond of the kernel's DAMON sysfs
# interface until this run exits (sj_cleanup turns them back on), as one pins CPUs for a
# benchmark. On this VM DAMON samples physical memory every 500 ms with a pageout scheme, and its
# kdamond thread took the node's CPU for ~3.5 ms every ~512 ms: every request due meanwhile
# waited (session 7, bench/results/lookup-notes.md) — the machine's noise, not the node's.
# Sets SJ_DAMON: paused, none, or why it was left on.
sj_damon_pause() {
  local st
  SJ_DAMON=none
  for st in /sys/kernel/mm/damon/admin/kdamonds/*/state; do
    [ -e "$st" ] && [ "$(cat "$st" 2>/dev/null)" = on ] || continue
    if echo off >"$st" 2>/dev/null; then
      SJ_DAMON_PAUSED+=("$st")
      SJ_DAMON=paused
    else
      SJ_DAMON="left on (cannot write $st)"
      return 0
    fi
  done
}

sj_init() {
  sj_find_bins
  SJ_TMP="$(mktemp -d "${TMPDIR:-/tmp}/sjbench.XXXXXX")"
  trap sj_cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$SJ_BENCH_DATA"
  if [ "${SJ_DAMON_KEEP:-0}" = 1 ]; then SJ_DAMON="left on (SJ_DAMON_KEEP=1)"; else sj_damon_pause; fi
}

sj_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# sj_wait_http URL [seconds]: until URL answers over h2c.
sj_wait_http() {
  local i n=$((${2:-20} * 10))
  for i in $(seq "$n"); do
    if curl -s -o /dev/null --http2-prior-knowledge --max-time 1 "$1"; then return 0; fi
    sleep 0.1
  done
  sj_die "nothing answers at $1"
}

# sj_get URL: the body, over h2c.
sj_get() { curl -s --http2-prior-knowledge --max-time 10 "$1"; }

# sj_jq FILE|- PYEXPR: evaluates a Python expression over the JSON document j.
sj_jq() {
  python3 -c 'import json,sys
f = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1])
j = json.load(f)
v = eval(sys.argv[2])
print(("%.6g" % v) if isinstance(v, float) else v)' "$1" "$2"
}

sj_machine() {
  local cpu fam mhz virt mem
  cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  fam="$(awk -F': ' '/^cpu family/ {f = $2} /^model[[:space:]]*:/ {m = $2} END {print "family " f " model " m}' /proc/cpuinfo)"
  mhz="$(awk -F': ' '/^cpu MHz/ {printf "%.0f MHz", $2; exit}' /proc/cpuinfo)"
  virt=""
  grep -qw hypervisor /proc/cpuinfo && virt=", virtual machine"
  mem="$(awk '/^MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
  echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU} ($fam, $mhz$virt), $mem, $(uname -sr), $(awk '{print "load average " $1 " " $2 " " $3}' /proc/loadavg), DAMON: $SJ_DAMON"
}

sj_median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

# sj_ratio A B: A/B with two decimals (0 when B is 0).
sj_ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }

# sj_dataset N [SEED]: generated records in $SJ_BENCH_DATA/<SJ_DATASET>-N-SEED (made once).
# Sets SJ_DATA to that directory (records.ndjson, subjects.txt, trace.txt).
sj_dataset() {
  local n="$1" seed="${2:-1}"
  SJ_DATA="$SJ_BENCH_DATA/$SJ_DATASET-$n-$seed"
  [ -s "$SJ_DATA/records.ndjson" ] && return 0
  rm -rf "$SJ_DATA.tmp"
  case "$SJ_DATASET" in
  synthetic) "$SJ_LOAD" --gen "$n" --seed "$seed" --out "$SJ_DATA.tmp" >/dev/null ;;
  sample)
    mkdir -p "$SJ_DATA.tmp"
    "$SJ_BIN_DIR/sanjiao" sample --records "$n" --seed "$seed" --out "$SJ_DATA.tmp/regions" >/dev/null
    cat "$SJ_DATA.tmp"/regions/*.ndjson >"$SJ_DATA.tmp/records.ndjson"
    python3 - "$SJ_DATA.tmp" <<'EOF'
import json, sys
d = sys.argv[1]
subjects, codes = {}, {}
for line in open(d + "/records.ndjson", encoding="utf-8"):
    r = json.loads(line)
    if r.get("kind") == "credit" and r["subject"]["type"] != "person":
        subjects[r["subject"]["id"]] = 1
    elif r.get("kind") == "trace":
        e = r["event"]
        for k in ("epcList", "childEPCs", "inputEPCList", "outputEPCList"):
            for c in e.get(k, []):
                codes[c] = 1
        if "parentID" in e:
            codes[e["parentID"]] = 1
open(d + "/subjects.txt", "w").write("".join(s + "\n" for s in subjects))
open(d + "/trace.txt", "w").write("".join(c + "\n" for c in codes))
EOF
    ;;
  *) sj_die "SJ_DATASET must be synthetic or sample" ;;
  esac
  rm -rf "$SJ_DATA"
  mv "$SJ_DATA.tmp" "$SJ_DATA"
}

# sj_node_init DIR REGION [HMAC]: key (origin bench.local/REGION), vkey, tokens for submit,
# authority and peer use, and the regions' shared HMAC key (HMAC path, or DIR/hmac).
sj_node_init() {
  local dir="$1" region="$2" hmac="${3:-$1/hmac}" t line
  mkdir -p "$dir"
  "$SJ_BIN_DIR/sanjiao" keygen --origin "bench.local/$region" --out "$dir/key" | tail -1 >"$dir/vkey"
  : >"$dir/tokens"
  for t in submit authority; do
    "$SJ_BIN_DIR/sanjiao" token new --role "$t" >"$SJ_TMP/tok"
    head -1 "$SJ_TMP/tok" >>"$dir/tokens"
    sed -n 2p "$SJ_TMP/tok" >"$dir/$t.token"
  done
  if [ ! -f "$hmac" ]; then
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$hmac"
    echo >>"$hmac"
  fi
  [ "$hmac" = "$dir/hmac" ] || cp "$hmac" "$dir/hmac"
  chmod 600 "$dir"/*.token "$dir/tokens" "$dir/hmac"
  printf 'region = %s\ndata-dir = %s/data\nkey = %s/key\ntokens = %s/tokens\nhmac-key = %s/hmac\nlog-level = warn\n' \
    "$region" "$dir" "$dir" "$dir" "$dir" >"$dir/node.conf"
  chmod 600 "$dir/node.conf"
}

# sj_node_start DIR PORT CPU [flags...]: starts sanjiao-node with DIR/node.conf pinned to CPU
# ("all": every CPU), waits for /healthz. Sets SJ_NODE_PID.
sj_node_start() {
  local dir="$1" port="$2" cpu="$3"
  shift 3
  [ "$cpu" = all ] && cpu="0-$(($(nproc) - 1))"
  taskset -c "$cpu" "$SJ_BIN_DIR/sanjiao-node" --config "$dir/node.conf" \
    --listen "127.0.0.1:$port" "$@" >>"$dir/node.log" 2>&1 &
  SJ_NODE_PID=$!
  SJ_PIDS+=("$SJ_NODE_PID")
  echo "$SJ_NODE_PID" >"$dir/pid"
  sj_wait_http "http://127.0.0.1:$port/healthz" 30
}

# sj_node_quiesce PID [MAX_S]: waits (at most MAX_S seconds, default 90) until the process used
# under 5 % of a CPU over one second: a node just filled is still compacting, and that work would
# be charged to the first measurements. Prints how long it waited.
sj_node_quiesce() {
  local pid="$1" max="${2:-90}" t0 a b hz
  hz="$(getconf CLK_TCK)"
  t0=$(date +%s)
  while [ $(($(date +%s) - t0)) -lt "$max" ]; do
    a="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    sleep 1
    b="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    [ $((b - a)) -le $((hz / 20)) ] && break
  done
  echo "node idle after $(($(date +%s) - t0)) s (background compaction)"
}

# sj_node_stop DIR: SIGTERM to the node started from DIR, and wait for it.
sj_node_stop() {
  local pid
  pid="$(cat "$1/pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$1/pid"
}

sj_tree_size() { sj_get "$1/healthz" | sj_jq - 'j["tree_size"]'; }

# sj_fill URL DIR RECORDS_FILE N: posts the first N records (100 a request, 64 streams) and
# prints sjload's JSON.
sj_fill() {
  local url="$1" dir="$2" file="$3" n="$4"
  taskset -c "$SJ_LOAD_CPU" "$SJ_LOAD" --url "$url" -c 4 -m 16 --mix post=1 --body "$file" \
    --batch 100 --token-file "$dir/submit.token" --requests $((n / 100)) --duration 1200 \
    --grace 60 --json --quiet
}

# sj_cached_node N SEED: a node dir holding N entries of the dataset, filled once and kept in
# $SJ_BENCH_DATA/node-N-SEED (do not write to it; copy it first). Sets SJ_NODE_DIR, and
# SJ_FILL_RPS to the fill's records/s ("cached" when it was reused). Leaves no node running.
# A node filled by another sanjiao-node binary is filled again: what the node keeps per entry
# changes with the code (a node filled before an index or annotation existed measures the old
# read path). SJ_REUSE_NODES=1 keeps it anyway.
sj_cached_node() {
  local n="$1" seed="$2" dir port size bin
  dir="$SJ_BENCH_DATA/node-$SJ_DATASET-$n-$seed"
  SJ_NODE_DIR="$dir"
  SJ_FILL_RPS=cached
  bin="$(sha256sum <"$SJ_BIN_DIR/sanjiao-node" | cut -c1-16)"
  if [ -f "$dir/complete" ]; then
    if [ "$(cat "$dir/complete")" = "$bin" ] || [ "${SJ_REUSE_NODES:-0}" = 1 ]; then return 0; fi
    echo "$dir was filled by another sanjiao-node binary: filling it again (SJ_REUSE_NODES=1 keeps it)"
  fi
  rm -rf "$dir"
  sj_dataset "$n" "$seed"
  sj_node_init "$dir" 310000
  port="$(sj_free_port)"
  sj_node_start "$dir" "$port" all
  sj_fill "http://127.0.0.1:$port" "$dir" "$SJ_DATA/records.ndjson" "$n" >"$dir/fill.json" || true
  size="$(sj_tree_size "http://127.0.0.1:$port")"
  # After a bulk load an operator compacts the index (docs/OPERATIONS.md): a subject's rows are
  # otherwise spread over several table files and every lookup seeks in each.
  local i auth
  auth="Authorization: Bearer $(cat "$dir/authority.token")"
  curl -s --http2-prior-knowledge --max-time 10 -X POST -H "$auth" \
    "http://127.0.0.1:$port/v1/admin/compact" >/dev/null || true
  for i in $(seq 3600); do # at most 30 minutes
    curl -s --http2-prior-knowledge --max-time 10 -H "$auth" \
      "http://127.0.0.1:$port/v1/admin/compact" >"$dir/compact.json" || true
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if not j.get("running", True) and j.get("runs") else 1)' \
      "$dir/compact.json" 2>/dev/null && break
    sleep 0.5
  done
  echo "$n entries: index compacted: $(cat "$dir/compact.json")"
  sj_node_stop "$dir"
  [ "$size" -ge "$n" ] || sj_die "filling the node stopped at $size of $n entries (see $dir/node.log)"
  echo "$bin" >"$dir/complete"
  SJ_FILL_RPS="$(sj_jq "$dir/fill.json" 'round(j["total"]["records_per_s"])')"
}
