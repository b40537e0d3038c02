#!/usr/bin/env bash
# tests/cuda_sim/cli_check.sh: the acceptance checker (shared/tools/golden_check.py) on the
# micro golden through the unchanged CLI on the CUDA backend (SAMC_BACKEND=cuda), which
# SAMC_CUDA_LIB points at the simulator (tests/cuda_sim/sim_test.sh sets it).
set -u
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
CHECKER=${SAMC_GOLDEN_CHECK:-$GOLDEN/../tools/golden_check.py}
TMP=$(mktemp -d /tmp/samc_sim_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
if [ ! -f "$CHECKER" ] || ! /usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null || [ ! -d "$GOLDEN/micro" ]; then
  echo "NOT OK sim_cli.micro_cuda: the checker, python3 numpy / Pillow or $GOLDEN/micro is missing"
  echo "tests/cuda_sim/cli_check.sh: 0 passed, 1 failed, 0 skipped"; exit 1
fi
SAMC_BACKEND=cuda /usr/bin/python3 "$CHECKER" --samc "$SAMC" --golden "$GOLDEN/micro" --config micro --work "$TMP/w" \
  >"$TMP/log" 2>&1
rc=$?
sed 's/^/    /' "$TMP/log" | tail -n 12
if [ "$rc" -eq 0 ] && grep -q '^VERDICT' "$TMP/log"; then
  echo "OK     sim_cli.micro_cuda: golden_check.py passes with samc --device cuda on the simulator"
  echo "tests/cuda_sim/cli_check.sh: 1 passed, 0 failed, 0 skipped"
else
  echo "NOT OK sim_cli.micro_cuda (checker exit $rc)"
  echo "tests/cuda_sim/cli_check.sh: 0 passed, 1 failed, 0 skipped"; exit 1
fi
