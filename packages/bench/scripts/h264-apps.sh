#!/bin/bash
# The apps on loopback, 1280x720 30 fps test pattern: sender CPU (node + its ffmpeg encoders) over
# 10 s after 8 s of warm-up, and the receiver's figures (fps, Mbit/s, capture-to-decoded latency),
# its summary and its last 10 seconds. Compare codecs:
#   packages/bench/scripts/h264-apps.sh --codec h264            (default 4 Mbit/s)
#   packages/bench/scripts/h264-apps.sh --codec jpeg --quality 80
# Needs the built apps (bash scripts/setup.sh). Figures on a shared machine are noisy.
cd "$(dirname "$0")/../../.."
PORT=$((20000 + RANDOM % 10000))
packages/sender/bin/camstream-sender --source test --size 1280x720 --fps 30 --port $PORT --quiet "$@" > ${TMPDIR:-/tmp}/h264-apps-sender.out 2>${TMPDIR:-/tmp}/h264-apps-sender.err &
SPID=$!
for i in $(seq 50); do grep -q LISTENING ${TMPDIR:-/tmp}/h264-apps-sender.out && break; sleep 0.2; done
packages/receiver/bin/camstream-receiver 127.0.0.1:$PORT --display off --stats-json --duration 20 > ${TMPDIR:-/tmp}/h264-apps-recv.out 2>${TMPDIR:-/tmp}/h264-apps-recv.err &
RPID=$!
sleep 8
tree() { local p=$1; echo $p; for c in $(pgrep -P $p); do tree $c; done; }
ticks() { local t=0; for p in $(tree $SPID); do v=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0); t=$((t+v)); done; echo $t; }
echo "sender tree: $(for p in $(tree $SPID); do cat /proc/$p/comm; done | tr '\n' ' ')"
T0=$(ticks); W0=$(date +%s.%N)
sleep 10
T1=$(ticks); W1=$(date +%s.%N)
wait $RPID
kill -INT $SPID; wait $SPID
echo "sender cpu (node + ffmpeg) cores: $(echo "($T1-$T0)/100/($W1-$W0)" | bc -l)"
grep summary ${TMPDIR:-/tmp}/h264-apps-recv.out | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print({k:d[k] for k in ['fps','mbps','latencyMs','frames','shown','corrupt','skipped']})"
tail -n 12 ${TMPDIR:-/tmp}/h264-apps-recv.out | head -10 | python3 -c "
import json,sys
for l in sys.stdin:
  d=json.loads(l); print(d['fps'], d['mbps'], d['latencyMs'])"
