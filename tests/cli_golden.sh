#!/usr/bin/env bash
# tests/cli_golden.sh: the acceptance check from outside. Runs the shared checker
# (shared/tools/golden_check.py) against the built samc for the micro and tiny goldens
# with the default backend, and for micro also with the plain-C reference (the checker
# cannot pass flags, so the backend goes through samc's SAMC_BACKEND variable). The
# reference backend on tiny (seven full encodes of minutes each) is left to
# tests/test_golden.c, which checks it end to end in one encode; SAMC_GOLDEN_CLI_REF_TINY=1
# runs it here too.
#
# Fails (and says why) when the golden data, the checker, python3, numpy or Pillow are
# missing: the acceptance check cannot vanish (.ci/deps installs python3-numpy and
# python3-pil; the checker is the only Python the tests need).
# SAMC_GOLDEN_CONFIGS="micro" limits the configs (tiny on the reference backend takes
# minutes), as it does for tests/test_golden.c. Prints "N passed, N failed, N skipped" last.
set -u
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
CHECKER=${SAMC_GOLDEN_CHECK:-$GOLDEN/../tools/golden_check.py}
SELECTED=${SAMC_GOLDEN_CONFIGS:-micro tiny}
PY=/usr/bin/python3
pass=0; fail=0; skip=0

why_skip=""
if [ ! -f "$CHECKER" ]; then why_skip="checker $CHECKER not found"
elif [ ! -x "$PY" ]; then why_skip="$PY not found"
elif ! "$PY" -c 'import numpy, PIL' 2>/dev/null; then why_skip="python3 numpy or Pillow missing (apt-get install python3-numpy python3-pil)"
fi

TMP=$(mktemp -d /tmp/samc_cli_golden.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# A private copy: the tiny runs take minutes, and a rebuild meanwhile must not swap or
# remove the binary under test.
if [ -x "$SAMC" ]; then cp "$SAMC" "$TMP/samc" && SAMC=$TMP/samc; fi

for config in micro tiny; do
  backends="auto ref"
  [ "$config" = tiny ] && [ "${SAMC_GOLDEN_CLI_REF_TINY:-0}" != 1 ] && backends="auto"
  for backend in $backends; do
    name="cli_golden.${config}_${backend}"
    case " ${SELECTED//,/ } " in *" $config "*) ;; *)
      echo "SKIP   $name: $config not in SAMC_GOLDEN_CONFIGS"; skip=$((skip+1)); continue ;;
    esac
    if [ -n "$why_skip" ]; then echo "NOT OK $name: $why_skip"; fail=$((fail+1)); continue; fi
    if [ ! -d "$GOLDEN/$config" ]; then
      echo "NOT OK $name: golden data missing: no folder $GOLDEN/$config"; fail=$((fail+1)); continue
    fi
    start=$(date +%s)
    SAMC_BACKEND=$backend "$PY" "$CHECKER" --samc "$SAMC" --golden "$GOLDEN/$config" \
      --config "$config" --work "$TMP/gc_${config}_$backend" >"$TMP/log" 2>&1
    rc=$?
    sed 's/^/    /' "$TMP/log"
    if [ "$rc" -eq 0 ] && grep -q '^VERDICT' "$TMP/log"; then
      echo "OK     $name ($(( $(date +%s) - start )) s)"; pass=$((pass+1))
    else
      echo "NOT OK $name (checker exit $rc)"; fail=$((fail+1))
    fi
    rm -rf "$TMP/gc_${config}_$backend"
  done
done

echo "tests/cli_golden.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
