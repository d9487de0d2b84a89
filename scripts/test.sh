#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, type check, lint, then every project's tests.
set -uo pipefail
cd "$(dirname "$0")/.."

# Xvfb, xwd, xdotool and ImageMagick let the tests open real windows and look at them.
# Chromium runs the browser-viewer tests; Python 3 with numpy checks the tutorial's pickle wire,
# and with OpenCV runs the tutorial's own scripts against the apps;
# ffmpeg (with libx264 and ffprobe) runs the H.264 encoder, decoder and MP4 recorder tests;
# nats-server (and openssl, for its test certificates) runs the NATS transport's tests.
# python3-prometheus-client parses the apps' /metrics with the reference parser.
CAMSTREAM_SETUP_APT="xvfb xauth x11-utils x11-apps xdotool imagemagick chromium python3-numpy python3-opencv ffmpeg nats-server openssl python3-prometheus-client ${CAMSTREAM_TEST_APT:-}" bash scripts/setup.sh || exit 1

export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false NX_SKIP_NX_CACHE=${CI:+true}
nx=node_modules/.bin/nx

$nx run-many -t build lint --parallel=2 --outputStyle=stream || { echo "build or lint failed"; exit 1; }

rm -rf tmp/jest && mkdir -p tmp/jest
$nx run-many -t test --parallel=1 --outputStyle=stream
status=$?
node scripts/summarize-tests.js tmp/jest
exit $status
