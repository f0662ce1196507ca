#!/usr/bin/env bash
# The test command: sets up (scripts/setup.sh), type-checks, runs every test with ava
# (root is needed for the network-namespace tests), and ends with one line
# `tests: N passed, N failed[, N skipped]` taken from the run. Extra arguments go to ava.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
. scripts/node.sh
export PATH="$(dirname "$(sixpn_find_node)"):$PATH"

echo "== tsc --noEmit"
if ! npx --no-install tsc --noEmit -p .; then echo "tests: 0 passed, 1 failed (type check)"; exit 1; fi

echo "== ava ($(node --version))"
tap=$(mktemp)
npx --no-install ava --tap "$@" | tee "$tap"
status=${PIPESTATUS[0]}
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
skip=$(sed -n 's/^# skip \([0-9]*\)$/\1/p' "$tap" | tail -1)
rm -f "$tap"
pass=${pass:-0}; fail=${fail:-0}; skip=${skip:-0}
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi   # ava itself failed (crash, timeout)
if [ "$pass" = 0 ] && [ "$fail" = 0 ]; then fail=1; echo "no test ran"; fi
line="tests: $pass passed, $fail failed"
[ "$skip" != 0 ] && line="$line, $skip skipped"
echo "$line"
[ "$fail" = 0 ]
