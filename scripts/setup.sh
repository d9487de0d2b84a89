#!/usr/bin/env bash
# One-step set-up for a fresh Debian machine: system OpenCV, npm packages, the
# @u4/opencv4nodejs native addon built against the system OpenCV (cached across clones),
# and the apps bundled to JavaScript.
# Idempotent: a warm tree finishes in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------
# libopencv-dev for the addon; xvfb and xauth so tests can open real windows headless;
# chromium for the browser viewer tests. CAMSTREAM_SETUP_APT lists extra packages.
apt_pkgs=()
pkg-config --exists opencv4 2>/dev/null || apt_pkgs+=(libopencv-dev)
for extra in ${CAMSTREAM_SETUP_APT:-}; do
  dpkg -s "$extra" >/dev/null 2>&1 || apt_pkgs+=("$extra")
done
if ((${#apt_pkgs[@]})); then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    log "need root (or sudo) to install: ${apt_pkgs[*]}"; exit 1
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  log "apt-get install ${apt_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

# --- npm packages ----------------------------------------------------------------
# Scripts are skipped so that npm does not start a 6-10 minute node-gyp build of
# opencv4nodejs; the packages that need their scripts are rebuilt just below.
# The stamp holds the lock file's hash, not its time: a checkout, rebase or merge that rewrites
# package-lock.json without changing it must not cost a reinstall (nor pull node_modules away
# from tools that are running).
stamp=node_modules/.camstream-installed
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  log "npm ci"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  npm rebuild nx @parcel/watcher --loglevel=error >/dev/null
  echo "$lock_hash" >"$stamp"
fi

# --- native OpenCV addon, cached outside the clone --------------------------------
addon_dir=node_modules/@u4/opencv4nodejs
addon="$addon_dir/build/Release/opencv4nodejs.node"
addon_version=$(node -p "require('./$addon_dir/package.json').version")
opencv_version=$(pkg-config --modversion opencv4)
node_abi=$(node -p process.versions.modules)
cache_root=${CAMSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/camstream}
cached="$cache_root/opencv4nodejs-$addon_version-opencv$opencv_version-abi$node_abi-$(uname -m).node"

export OPENCV4NODEJS_DISABLE_AUTOBUILD=1 \
  OPENCV_INCLUDE_DIR=/usr/include/opencv4 \
  OPENCV_LIB_DIR=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu) \
  OPENCV_BIN_DIR=/usr/bin

addon_loads() {
  node -e "require('./$addon')" >/dev/null 2>&1
}

if [ -f "$addon" ] && addon_loads; then
  [ -f "$cached" ] || { mkdir -p "$cache_root"; cp "$addon" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"; }
elif [ -f "$cached" ]; then
  log "restoring cached opencv4nodejs addon: $cached"
  mkdir -p "$(dirname "$addon")"
  cp "$cached" "$addon"
  addon_loads || { log "cached addon does not load; rebuilding"; rm -f "$addon" "$cached"; }
fi
if [ ! -f "$addon" ]; then
  log "building opencv4nodejs against OpenCV $opencv_version (about 6 minutes on 2 cores)"
  JOBS=${JOBS:-$(nproc)} npm rebuild @u4/opencv4nodejs --loglevel=error >/tmp/camstream-opencv-build.log 2>&1 || {
    tail -40 /tmp/camstream-opencv-build.log >&2; log "opencv4nodejs build failed"; exit 1; }
  addon_loads || { log "built addon does not load"; exit 1; }
  mkdir -p "$cache_root"
  cp "$addon" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"
  log "cached the addon at $cached"
fi

# --- the apps, bundled to JavaScript ----------------------------------------------
# Their launchers run packages/<app>/dist/camstream-<app>.js. Bundling takes well under a second,
# so it runs every time and the bundle always matches the sources; `npx nx run <app>:build` does
# the same after a type check.
node scripts/bundle-apps.js || { log "bundling the apps failed"; exit 1; }
log "ready (OpenCV $opencv_version, Node ABI $node_abi; apps built in packages/*/dist)"
