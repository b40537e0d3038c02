# tests/lib_cli.sh: assertions shared by the tests/cli_*.sh scripts (sourced, not run).
# The script sets SUITE (the name prefix), TMP (a scratch folder) and pass/fail/skip.

ok()      { pass=$((pass+1)); echo "OK     $SUITE.$1"; }
bad()     { fail=$((fail+1)); echo "NOT OK $SUITE.$1: $2"; sed 's/^/    stderr: /' "$TMP/err" | head -n 5; }
skipped() { skip=$((skip+1)); echo "SKIP   $SUITE.$1: $2"; }

# expect_fail NAME WORD cmd...: non-zero exit below 128, one "samc: error:" line with WORD.
expect_fail() {
  local name=$1 word=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  local lines; lines=$(grep -c '' "$TMP/err")
  if [ "$rc" -eq 0 ]; then bad "$name" "exited 0"
  elif [ "$rc" -ge 128 ]; then bad "$name" "crashed (exit $rc)"
  elif grep -q 'Sanitizer' "$TMP/err"; then bad "$name" "sanitizer report"
  elif [ "$lines" -ne 1 ]; then bad "$name" "$lines lines on stderr, want 1"
  elif ! grep -q '^samc: error: ' "$TMP/err"; then bad "$name" "no 'samc: error:' prefix"
  elif ! grep -qiF -- "$word" "$TMP/err"; then bad "$name" "message lacks '$word'"
  else ok "$name"; fi
}

# expect_ok NAME cmd...: exit 0, nothing from a sanitizer.
expect_ok() {
  local name=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ "$rc" -ne 0 ]; then bad "$name" "exit $rc"
  elif grep -q 'Sanitizer' "$TMP/err"; then bad "$name" "sanitizer report"
  else ok "$name"; return 0; fi
  return 1
}

# check NAME WHY test-args...: a plain assertion on what a previous call produced.
check() {
  local name=$1 why=$2; shift 2
  if "$@"; then ok "$name"; else : >"$TMP/err"; bad "$name" "$why"; fi
}

is_png() { [ "$(head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
