#!/usr/bin/env bash
# Runs every spec file on its own: one jest process per file, with its package's jest config,
# so a file that only passes after the files before it (shared state, warmed caches, a sender
# left running) fails here. Prints one PASS/FAIL line per file and a total; a failing file's
# output is kept in tmp/run-each-spec/.
#
#   bash scripts/run-each-spec.sh                      # every spec file of every package
#   bash scripts/run-each-spec.sh packages/testkit     # only the spec files under these paths
#
# A file that has not finished after SPEC_TIMEOUT seconds (default 900) is stopped and fails:
# jest waits forever for a server or socket a failed test left open.
# Slow on 2 cores (the e2e files start real processes): run it before handing work over.
set -uo pipefail
cd "$(dirname "$0")/.."

jest=node_modules/.bin/jest
[ -x "$jest" ] || { echo "no $jest: run scripts/setup.sh first" >&2; exit 2; }
logs=tmp/run-each-spec
rm -rf "$logs" && mkdir -p "$logs"

roots=("$@")
[ ${#roots[@]} -gt 0 ] || roots=(packages)
mapfile -t specs < <(find "${roots[@]}" -name node_modules -prune -o -name '*.spec.ts' -print | sort)
[ ${#specs[@]} -gt 0 ] || { echo "no spec files under: ${roots[*]}" >&2; exit 2; }

passed=0
failed=()
started=$SECONDS
for spec in "${specs[@]}"; do
  # The package is the first two path components: packages/<name>.
  package=$(echo "$spec" | cut -d/ -f1-2)
  config="$package/jest.config.js"
  if [ ! -f "$config" ]; then
    echo "FAIL  $spec (no $config)"
    failed+=("$spec")
    continue
  fi
  log="$logs/$(echo "$spec" | tr '/' '_').log"
  file_started=$SECONDS
  timeout -k 10 "${SPEC_TIMEOUT:-900}" "$jest" -c "$config" --runTestsByPath "$spec" --ci --colors=false >"$log" 2>&1
  status=$?
  [ $status -eq 124 ] && echo "run-each-spec: stopped after ${SPEC_TIMEOUT:-900} s" >>"$log"
  if [ $status -eq 0 ]; then
    # The summary line jest prints, e.g. "Tests:       12 passed, 12 total".
    echo "PASS  $spec ($((SECONDS - file_started)) s; $(grep -m1 '^Tests:' "$log" | sed 's/^Tests: *//'))"
    passed=$((passed + 1))
    rm -f "$log"
  else
    outcome=$(grep -m1 '^Tests:' "$log" | sed 's/^Tests: *//')
    [ $status -eq 124 ] && outcome="timed out${outcome:+, $outcome}"
    echo "FAIL  $spec ($((SECONDS - file_started)) s; $outcome; output in $log)"
    failed+=("$spec")
  fi
done

echo "run-each-spec: ${#specs[@]} files, $passed passed, ${#failed[@]} failed, $((SECONDS - started)) s"
for spec in "${failed[@]}"; do echo "  failed: $spec"; done
[ ${#failed[@]} -eq 0 ]
