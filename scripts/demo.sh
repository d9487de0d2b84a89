#!/usr/bin/env bash
# The main job: set up, then stream live video on this machine. The sender uses the camera
# when there is one, else the built-in test pattern; the receiver opens a window where there
# is a display and prints stats where there is none. Ctrl-C stops both.
#   DEMO_SECONDS=N   stop by itself after N seconds (for scripts)
#   DEMO_PORT=N      port to stream on (default 9999)
#   extra arguments go to the sender, e.g.: scripts/demo.sh --codec raw --size 640x480
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
port=${DEMO_PORT:-9999}
receiver_args=(--port "$port")
[ -n "${DEMO_SECONDS:-}" ] && receiver_args+=(--duration "$DEMO_SECONDS")

# Each app in its own process group, so that stopping the demo stops nx's children too.
set -m
node_modules/.bin/nx run sender:serve --outputStyle=stream -- --port "$port" "$@" &
sender=$!
node_modules/.bin/nx run receiver:serve --outputStyle=stream -- "${receiver_args[@]}" &
receiver=$!
set +m
stop() { kill -TERM -- "-$sender" "-$receiver" 2>/dev/null || true; }
trap 'stop; wait' INT TERM
trap stop EXIT

wait "$receiver"; status=$?
stop
wait "$sender" || true
exit "$status"
