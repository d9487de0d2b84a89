#!/usr/bin/env bash
# The main job: set up, then stream live video on this machine. The sender uses the camera
# when there is one, else the built-in test pattern; the receiver opens a window where there
# is a display and prints stats where there is none. Ctrl-C stops both: the demo ends with the
# apps' own closing lines (the receiver's summary) and exits 0, or with the status of an app
# that failed.
#   DEMO_SECONDS=N   stop by itself after N seconds (for scripts)
#   DEMO_PORT=N      port to stream on (default 9999)
#   extra arguments go to the sender, e.g.: scripts/demo.sh --codec raw --size 640x480
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh # also builds the apps

port=${DEMO_PORT:-9999}
receiver_args=(--port "$port")
[ -n "${DEMO_SECONDS:-}" ] && receiver_args+=(--duration "$DEMO_SECONDS")

# The apps' own launchers, not `nx run`: nx would stand between them and Ctrl-C, report the
# stopped tasks as failed and print its summary last. Each app gets its own process group, so
# that Ctrl-C (SIGINT to this script's group) reaches only this script, which then stops the
# apps in order: the receiver first, so that its summary covers the whole stream.
set -m
packages/sender/bin/camstream-sender --port "$port" "$@" &
sender=$!
set +m
receiver=""
set +e # from here on, every exit status is handled explicitly

interrupted=""
trap 'interrupted=INT' INT
trap 'interrupted=TERM' TERM
# Last resort, whatever way this script ends: nothing it started keeps running.
trap 'kill -KILL -- "-$sender" ${receiver:+"-$receiver"} 2>/dev/null' EXIT

# Asks app $1 to stop with signal $2 and returns its exit status. The signal goes to the app's
# process only (it stops its own children, such as the recorder, in order). `wait` returns early
# when a trapped signal arrives, such as a second Ctrl-C: that one is passed on too.
stop_app() {
  local pid=$1 signal=$2 code
  kill -"$signal" "$pid" 2>/dev/null
  while :; do
    interrupted=""
    wait "$pid"
    code=$?
    [ -z "$interrupted" ] && return "$code"
    kill -"$interrupted" "$pid" 2>/dev/null
  done
}

# Start the receiver once the sender listens, so that it connects at its first try instead of
# printing "no sender" and backing off. /proc/net/tcp{,6} list listening sockets (state 0A) by
# port in hex.
listening=":$(printf '%04X' "$port") [0-9A-F]+:0000 0A "
until grep -qE "$listening" /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
  if [ -n "$interrupted" ] || ! kill -0 "$sender" 2>/dev/null; then
    # The sender failed (its error is on the screen) or Ctrl-C came first.
    stop_app "$sender" "${interrupted:-TERM}"
    exit
  fi
  sleep 0.05
done
set -m
packages/receiver/bin/camstream-receiver "${receiver_args[@]}" &
receiver=$!
set +m

# Run until an app ends (the receiver after DEMO_SECONDS or when its window is closed, the
# sender at the end of a file or on an error) or Ctrl-C comes.
first=""
while [ -z "${first:-}" ] && [ -z "$interrupted" ]; do
  wait -n -p first "$sender" "$receiver" # first: the app that ended; unset if a signal came
  code=$?
done
first=${first:-}
signal=${interrupted:-TERM}
if [ "$first" = "$sender" ]; then
  status=$code
  stop_app "$receiver" "$signal"
else
  if [ "$first" = "$receiver" ]; then status=$code; else stop_app "$receiver" "$signal"; status=$?; fi
  stop_app "$sender" "$signal"
fi
exit "$status"
