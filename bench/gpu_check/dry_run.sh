#!/usr/bin/env bash
# bench/gpu_check/dry_run.sh [OUT]: `make gpu-check DRY_RUN=1`. What a GPU session would
# do, here, without a GPU:
#
#   1. a clean copy of what a device call sends (tracked + untracked-not-ignored files)
#      in a fresh folder with no ../shared beside it;
#   2. `make gpu-package` there (golden cases from this checkout's ../shared/golden);
#   3. `make gpu-check` there, inside hidden.sh (Debian's stb / cJSON / libmicrohttpd /
#      GDAL / libyaml -dev packages hidden), as a dry run: every stage that needs no GPU runs,
#      GPU results are "not run"; report.md / report.json / logs.tar.gz go to OUT
#      (default build/gpu-check of this checkout);
#   4. the fallback of a device the package does not fit: gpu_check.py rebuilds from the
#      package (GPU_CHECK_REBUILD=1) with the runtime libraries hidden too, and runs the op
#      test from that build.
#
# Prints the time of each part and the total, which must stay under 8 minutes (a warning
# otherwise: the 2-core machines here are shared). Exits non-zero when any part fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/build/gpu-check}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
GOLDEN=${GOLDEN:-$ROOT/../shared/golden}
[ -d "$GOLDEN" ] || { echo "dry_run.sh: no golden data at $GOLDEN" >&2; exit 1; }
GOLDEN=$(cd "$GOLDEN" && pwd)

t0=$(date +%s)
lap() { echo "dry_run.sh: $1 in $(( $(date +%s) - $2 )) s"; }
TMP=$(mktemp -d /tmp/samc-gpu-dry.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
COPY=$TMP/repo

t=$(date +%s)
mkdir -p "$COPY"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$COPY")
[ -e "$COPY/../shared" ] && { echo "dry_run.sh: $COPY/../shared exists: the copy could read it" >&2; exit 1; }
lap "clean copy ($(cd "$COPY" && find . -type f | wc -l) files, $(du -sh "$COPY" | cut -f1)) at $COPY" "$t"

t=$(date +%s)
unset MAKEFLAGS MFLAGS MAKELEVEL DRY_RUN
export GPU_CHECK_COMMIT GPU_CHECK_DIRTY=false
GPU_CHECK_COMMIT=$(git -C "$ROOT" rev-parse HEAD 2> /dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2> /dev/null)" ] || GPU_CHECK_DIRTY=true
GOLDEN=$GOLDEN make -s -C "$COPY" gpu-package GPU_PKG=gpu-check-pkg
lap "make gpu-package" "$t"

t=$(date +%s)
mkdir -p "$OUT"
rc=0
# The -dev packages hidden; their runtime libraries stay for Debian's python3-torch (the
# build in gpu-package hid those too, and the build stage checks with ldd that the
# programs take stb and cJSON from the package).
HIDE_RUNTIME=0 GPU_CHECK_DRY_RUN=1 GPU_CHECK_WORK=$TMP/work bash "$COPY/bench/gpu_check/hidden.sh" \
    make -s -C "$COPY" gpu-check DRY_RUN= GPU_PKG=gpu-check-pkg GPU_CHECK_OUT="$OUT" || rc=$?
lap "make gpu-check (dry run, hidden)" "$t"

# The device's other path: its compute capability not in the package (or other sources)
# means a rebuild there from the package. Here with the runtime libraries hidden too, and
# the op test run from that build (no PyTorch in this step).
t=$(date +%s)
GPU_CHECK_REBUILD=1 GPU_CHECK_DRY_RUN=1 GPU_CHECK_WORK=$TMP/work-rebuild bash "$COPY/bench/gpu_check/hidden.sh" \
    python3 "$COPY/bench/gpu_check/gpu_check.py" --pkg "$COPY/gpu-check-pkg" --out "$TMP/out-rebuild" \
    --only cuda_ops > "$TMP/rebuild.log" 2>&1 || rc=$?
grep -E '^ +(build|cuda_ops) ' "$TMP/rebuild.log" || { tail -n 20 "$TMP/rebuild.log"; rc=1; }
grep -qE '^ +build +ok .*rebuilt' "$TMP/rebuild.log" || { echo "dry_run.sh: the rebuild from the package failed"; rc=1; }
lap "the device's fallback: rebuild from the package (everything hidden) + op test" "$t"

total=$(( $(date +%s) - t0 ))
echo "dry_run.sh: total $total s ($(( total / 60 )) min $(( total % 60 )) s); report in $OUT"
[ $total -le 480 ] || echo "dry_run.sh: WARNING: over the 8 minutes the dry run should take"
exit $rc
