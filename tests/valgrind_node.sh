#!/usr/bin/env bash
# tests/valgrind_node.sh — a node's start-serve-stop cycle under valgrind memcheck: no invalid
# access, no uninitialised use, no definite leak. Run by ctest in the normal (non-ASan) build.
set -euo pipefail
BIN=${SJ_BIN:?}
T=$(mktemp -d "${SJ_TMPDIR:-/tmp}/valgrind.XXXXXX")
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
command -v valgrind >/dev/null || { echo "valgrind is not installed (tools/deps installs it)"; exit 1; }
"$BIN/sanjiao" keygen --origin valgrind.test/310000 --out "$T/key" >/dev/null
TOK=sjt_valgrind_submit
echo "submit $(printf %s $TOK | sha256sum | cut -d' ' -f1) vg" >"$T/tokens"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
U=http://127.0.0.1:$PORT
valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --track-origins=yes --log-file="$T/vg.log" \
  "$BIN/sanjiao-node" --region 310000 --listen 127.0.0.1:$PORT --data-dir "$T/data" --key "$T/key" \
  --tokens "$T/tokens" --log-level warn --min-free-mb 0 2>"$T/node.log" &
PID=$!
for i in $(seq 1 300); do curl -s --http2-prior-knowledge -o /dev/null --max-time 1 "$U/healthz" && break; sleep 0.1; done
R='{"kind":"credit","type":"penalty","subject":{"type":"enterprise","id":"91310115MA1K00007Q","name":"vg"},"disclosure":"public"}'
for i in 1 2 3; do
  curl -sf --http2-prior-knowledge -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
    --data-binary "$R" "$U/v1/records" >/dev/null
done
curl -sf --http2-prior-knowledge "$U/v1/subjects/91310115MA1K00007Q" >/dev/null
curl -sf --http2-prior-knowledge "$U/v1/subjects/91310115MA1K00007Q" >/dev/null   # from the cache
curl -sf --http2-prior-knowledge "$U/v1/logs/310000/checkpoint" >/dev/null
curl -sf --http2-prior-knowledge "$U/v1/logs/310000/proof/inclusion?index=1&size=3" >/dev/null
curl -sf --http2-prior-knowledge "$U/v1/logs/310000/entries?start=0&limit=3" >/dev/null
curl -s --http2-prior-knowledge "$U/v1/records/310000/9" >/dev/null
curl -s --http2-prior-knowledge -X POST -H 'Content-Type: application/json' --data-binary '{' "$U/v1/records" >/dev/null
curl -sf --http2-prior-knowledge "$U/metrics" >/dev/null
kill -TERM $PID
rc=0; wait $PID || rc=$?
grep -E "ERROR SUMMARY|definitely lost" "$T/vg.log" || true
if [ $rc -ne 0 ]; then echo "valgrind reported errors (exit $rc):"; cat "$T/vg.log"; exit 1; fi
echo "valgrind: clean start-serve-stop"
