#!/usr/bin/env bash
# tests/cli_mosaic_cluster.sh: `samc mosaic` past one process, from outside, with the micro
# synthetic model on a georeferenced GeoTIFF made from the golden truck image:
#   - --shard K/N then `samc mosaic merge` give the single run's labels.tif and polygons;
#     a shard run again is byte-identical, and a complete one exits 0 at once;
#   - --workers 2 gives the single run's labels.tif;
#   - faults: a shard killed (SIGKILL) mid-run leaves nothing under a final name and its
#     rerun completes with the same bytes; a damaged shard and a missing one are refused
#     by the merge, which writes nothing; a full disk is reported (a small tmpfs, or a
#     file-size limit where mounting is not allowed);
#   - remote rasters: the same GeoTIFF as a tiled COG with overviews served by a local
#     HTTP server on 127.0.0.1 with range requests (tests/http_range_server.py), read
#     through /vsicurl/, gives the local run's labels.tif; an unreachable URL and the
#     server failing mid-run give a clear error and a non-zero exit; the shard run again
#     afterwards gives the same output; credentials in a URL are never printed.
# Prints "N passed, N failed, N skipped".
set -u
unset SAMC_DEBUG SAMC_BACKEND
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
HERE="$(cd "$(dirname "$0")" && pwd)"
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
PY=/usr/bin/python3
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_cluster.XXXXXX)
SERVER_PID=; MNT=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
SUITE=cli_mosaic_cluster
. "$HERE/lib_cli.sh"
finish() { echo "cli_mosaic_cluster.sh: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit $?; }

if "$SAMC" mosaic "$TMP/x" "$TMP/y" --model "$TMP/z" 2>&1 | grep -q 'built without GDAL'; then
  skipped all "samc built without GDAL"; finish
fi
IMG=$GOLDEN/images/truck_320x240.png
if ! command -v gdal_translate >/dev/null || [ ! -f "$IMG" ]; then
  skipped all "needs gdal_translate (Debian gdal-bin) and $IMG"; finish
fi
MODEL=$TMP/micro.safetensors
"$SAMC" synth --config micro -o "$MODEL" >/dev/null 2>&1 || { bad synth "samc synth --config micro failed"; finish; }
TIF=$TMP/in.tif
gdal_translate -q -outsize 512 384 -a_srs EPSG:32633 -a_ullr 500000 4600384 500512 4600000 "$IMG" "$TIF" ||
  { bad make_tif "gdal_translate failed"; finish; }
FAST=(--model "$MODEL" --tile-size 128 --padding 16 --points-per-side 4 --max-passes 2 --iou-start 0.1
      --iou-end 0.1 --stability-start 0.1 --stability-end 0.1 --min-area 10 -q --geopackage)

# ---- the single run, the reference -------------------------------------------------------
REF=$TMP/single
expect_ok single "$SAMC" mosaic "$TIF" "$REF" "${FAST[@]}" || finish

same_outputs() {   # same_outputs DIR: labels.tif and the Shapefile are the single run's
  cmp -s "$REF/labels.tif" "$1/labels.tif" && cmp -s "$REF/segments.shp" "$1/segments.shp" &&
    cmp -s "$REF/segments.dbf" "$1/segments.dbf"
}

# ---- shards and the merge ----------------------------------------------------------------
S=$TMP/sharded
for k in 0 1 2; do expect_ok "shard_$k" "$SAMC" mosaic "$TIF" "$S" "${FAST[@]}" --shard "$k/3"; done
expect_ok merge "$SAMC" mosaic merge "$S" -q &&
  check merge_equals_single "merged labels.tif or polygons differ from the single run" same_outputs "$S"
check shard_files "a shard lacks a file or its timings" bash -c "for f in manifest.json labels.tif top.u32 \
    bottom.u32 unions.u32; do [ -s '$S/shards/1/'\$f ] || exit 1; done; [ -s '$S/shards/1.timing.json' ]"
expect_ok shard_again "$SAMC" mosaic "$TIF" "$S" "${FAST[@]}" --shard 1/3 &&
  check shard_again_skipped "a complete shard was not reported as such" grep -q 'already complete' "$TMP/out"
expect_fail shard_other_options "tile.size" "$SAMC" mosaic "$TIF" "$S" "${FAST[@]}" --shard 1/3 --tile-size 100
expect_fail bad_shard_spec "--shard" "$SAMC" mosaic "$TIF" "$TMP/o" "${FAST[@]}" --shard 3/3
expect_fail merge_no_outdir "OUTDIR" "$SAMC" mosaic merge
expect_fail merge_nothing "no shards" "$SAMC" mosaic merge "$TMP/empty"

# a missing shard, then a damaged one: refused, nothing written
D=$TMP/faulty
cp -r "$S/shards" "$TMP/shards_copy"
mkdir -p "$D" && cp -r "$S/shards" "$D/" && rm -rf "$D/shards/2"
expect_fail merge_missing "shard 2 of 3 is missing" "$SAMC" mosaic merge "$D"
cp -r "$S/shards/2" "$D/shards/"
printf '\x55' | dd of="$D/shards/1/labels.tif" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_fail merge_damaged "damaged" "$SAMC" mosaic merge "$D"
check merge_wrote_nothing "a refused merge wrote files" bash -c "[ -z \"\$(ls -A '$D' | grep -v '^shards$')\" ]"
check shards_unchanged "the merges changed a shard" diff -r "$S/shards" "$TMP/shards_copy"

# ---- workers -----------------------------------------------------------------------------
expect_ok workers "$SAMC" mosaic "$TIF" "$TMP/workers" "${FAST[@]}" --workers 2 &&
  check workers_equal_single "2 workers wrote other labels or polygons than 1" same_outputs "$TMP/workers"
expect_fail workers_with_gpus "--workers" "$SAMC" mosaic "$TIF" "$TMP/o" "${FAST[@]}" --workers 2 --device cuda:0,cuda:1
expect_fail bad_device_list "--device" "$SAMC" mosaic "$TIF" "$TMP/o" "${FAST[@]}" --device cuda:0,gpu:1

# ---- SIGKILL mid-shard: nothing under a final name; the rerun completes, same bytes ---------
K=$TMP/killed
"$SAMC" mosaic "$TIF" "$K" "${FAST[@]}" --shard 1/3 --progress json >"$TMP/kill_out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 1 300); do grep -q '"tiles_done": 1' "$TMP/kill_out" 2>/dev/null && break; sleep 0.05; done
kill -KILL "$PID"; wait "$PID" 2>/dev/null
check killed_leaves_no_final "a killed shard left shards/1 or its timings" \
  bash -c "[ ! -e '$K/shards/1' ] && [ ! -e '$K/shards/1.timing.json' ] && ls -a '$K/shards' | grep -q '^\.1\.partial'"
expect_ok killed_rerun "$SAMC" mosaic "$TIF" "$K" "${FAST[@]}" --shard 1/3 &&
  check killed_rerun_same "the rerun after SIGKILL differs from a clean shard" diff -r "$K/shards/1" "$S/shards/1"

# ---- a full disk ---------------------------------------------------------------------------
MNT=$TMP/small
mkdir -p "$MNT"
if mount -t tmpfs -o size=1100k tmpfs "$MNT" 2>/dev/null; then
  # no room for the 768 KB of raw labels of the whole raster and a margin: refused at once
  dd if=/dev/zero of="$MNT/filler" bs=1k count=300 2>/dev/null
  expect_fail disk_full_early "free" "$SAMC" mosaic "$TIF" "$MNT/o1" "${FAST[@]}"
  rm -f "$MNT/filler"
  # room to start; then the disk fills up (another job's file) while the tiles are written
  "$SAMC" mosaic "$TIF" "$MNT/o2" "${FAST[@]}" --shard 0/1 --progress json >"$TMP/full_out" 2>"$TMP/err" &
  PID=$!
  for _ in $(seq 1 300); do grep -q '"tiles_done": 1' "$TMP/full_out" 2>/dev/null && break; sleep 0.05; done
  dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
  wait "$PID"; RC=$?
  if [ "$RC" -eq 1 ] && grep -q '^samc: error: .*No space left on device' "$TMP/err"; then ok disk_full_shard
  else bad disk_full_shard "exit $RC (want 1 with 'No space left on device')"; fi
  check disk_full_nothing "a shard that ran out of disk left files" bash -c "[ ! -e '$MNT/o2/shards/0' ] &&
    [ -z \"\$(ls -A '$MNT/o2/shards' 2>/dev/null)\" ]"
  umount "$MNT"
else
  # no mount here: a file-size limit makes writes fail the same way (EFBIG for ENOSPC)
  expect_fail disk_full_fsize "File too large" bash -c "trap '' XFSZ; ulimit -f 100; exec '$SAMC' mosaic '$TIF' \
    '$TMP/o3' ${FAST[*]} --shard 0/3"
  skipped disk_full_tmpfs "mount -t tmpfs is not allowed here (needs root)"
fi
MNT=

# ---- a remote raster (/vsicurl/ through a local HTTP server with range requests) -------------
if [ ! -x "$PY" ] || ! command -v gdaladdo >/dev/null; then
  skipped remote "needs $PY and gdaladdo"; finish
fi
WEB=$TMP/web
mkdir -p "$WEB"
gdal_translate -q -co TILED=YES -co BLOCKXSIZE=128 -co BLOCKYSIZE=128 -co COMPRESS=DEFLATE "$TIF" "$WEB/in.tif" &&
  gdaladdo -q -r average "$WEB/in.tif" 2 4 || { bad remote_tif "gdal_translate / gdaladdo failed"; finish; }
"$PY" "$HERE/http_range_server.py" "$WEB" "$TMP/port" --seconds 600 &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
PORT=$(cat "$TMP/port" 2>/dev/null)
URL="/vsicurl/http://127.0.0.1:$PORT/in.tif"
# the served file, locally: the reference of the remote runs
expect_ok remote_local "$SAMC" mosaic "$WEB/in.tif" "$TMP/local" "${FAST[@]}"
export GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR
expect_ok remote_run "$SAMC" mosaic "$URL" "$TMP/remote" "${FAST[@]}" &&
  check remote_equals_local "labels.tif over HTTP differs from the local file's" \
    cmp -s "$TMP/local/labels.tif" "$TMP/remote/labels.tif"
expect_ok remote_secret "$SAMC" mosaic "/vsicurl/http://user:s3cr3t@127.0.0.1:$PORT/in.tif?X-Sig=T0KEN" \
  "$TMP/secret" "${FAST[@]}" --no-shapefile --progress json
check remote_secret_hidden "a credential of the URL was printed or stored" \
  bash -c "! grep -q -e s3cr3t -e T0KEN '$TMP/out' '$TMP/err' '$TMP/secret/stats.json'"
expect_fail remote_unreachable "not reachable" "$SAMC" mosaic "/vsicurl/http://127.0.0.1:9/in.tif?k=s3cr3t" \
  "$TMP/o4" "${FAST[@]}"
check remote_unreachable_hidden "the URL's query was printed" bash -c "! grep -q s3cr3t '$TMP/err'"
# the server fails while shard 1 runs (small GDAL caches, so that later tiles go to it)
export CPL_VSIL_CURL_CHUNK_SIZE=16384 CPL_VSIL_CURL_CACHE_SIZE=32768 GDAL_CACHEMAX=1
R=$TMP/remote_shards
"$SAMC" mosaic "$URL" "$R" "${FAST[@]}" --shard 1/2 --progress json >"$TMP/net_out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 1 300); do grep -q '"tiles_done": 1' "$TMP/net_out" 2>/dev/null && break; sleep 0.05; done
touch "$WEB/.fail"
wait "$PID"; RC=$?
rm -f "$WEB/.fail"
if [ "$RC" -eq 1 ] && grep -q '^samc: error: .*failed' "$TMP/err" && [ ! -e "$R/shards/1" ]; then ok remote_failure
else bad remote_failure "exit $RC (want 1 with an error line), or shards/1 written"; fi
expect_ok remote_retry "$SAMC" mosaic "$URL" "$R" "${FAST[@]}" --shard 1/2
expect_ok remote_clean "$SAMC" mosaic "$URL" "$TMP/remote_clean" "${FAST[@]}" --shard 1/2 &&
  check remote_retry_same "the shard retried after a network failure differs from a clean one" \
    diff -r "$R/shards/1" "$TMP/remote_clean/shards/1"
finish
