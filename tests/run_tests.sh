#!/usr/bin/env bash
# Runs every test program given on the command line (and tests/cli_*.sh, and the house
# rules of ARCHITECTURE.md: tests/check_structure.py on $BUILD's objects), adds up their
# "N passed, N failed, N skipped" lines and prints one total. Exit status non-zero if
# any test failed or any program crashed.
set -u
total_p=0; total_f=0; total_s=0; crashed=0
run_one() {
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out"
  local line; line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then echo "CRASH $* (exit $rc, no verdict line)"; crashed=$((crashed+1)); return; fi
  local p f s
  p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/'); f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p'); s=${s:-0}
  total_p=$((total_p+p)); total_f=$((total_f+f)); total_s=$((total_s+s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "CRASH $* (exit $rc)"; crashed=$((crashed+1)); fi
}
for t in "$@"; do run_one "$t"; done
for s in tests/cli_*.sh; do [ -f "$s" ] && run_one bash "$s"; done
run_one /usr/bin/python3 tests/check_structure.py "${BUILD:-build}"
[ "$crashed" -gt 0 ] && total_f=$((total_f+crashed))
echo "TOTAL: $total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
