#!/usr/bin/env bash
# tests/cli_mosaic.sh: `samc mosaic` from outside, with the micro synthetic model on a
# georeferenced GeoTIFF made here from the golden truck image (gdal_translate): the
# outputs exist under their final names with the input's CRS and size, progress in JSON
# lines parses, a sam-mosaic YAML config is read and overridden by flags, Ctrl-C stops
# cleanly with no output left, and bad inputs fail with one "samc: error:" line.
# SAM3 classes (--text with sam3_micro and the golden vocabulary): the GeoPackage's
# label_id / class / score / area / perimeter, stats.json's class table, the
# georeferencing, bad class arguments, and 2 shards + merge equal to the single run.
#
# Runs $SAMC (set by tests/run_tests.sh; default ./samc). Needs gdal-bin (gdal_translate,
# gdalinfo, ogrinfo); skips what needs it otherwise. Prints "N passed, N failed, N skipped".
set -u
unset SAMC_DEBUG SAMC_BACKEND
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
PY=/usr/bin/python3
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_mosaic.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
SUITE=cli_mosaic
. "$(dirname "$0")/lib_cli.sh"

finish() { echo "cli_mosaic.sh: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit $?; }

# ---- help ----------------------------------------------------------------------------
expect_ok help "$SAMC" mosaic --help &&
  check help_content "help lacks the sam-mosaic flags or examples" bash -c "
    for k in --tile-size --padding --iou-start --iou-end --stability-start --threshold-step --target-coverage \
             --max-passes --no-black-mask --point-strategy --erosion --min-area --min-contact --merge-strategy \
             --simplify-tolerance --geopackage --no-shapefile --config labels.tif stats.json; do
      grep -q -- \"\$k\" '$TMP/out' || { echo missing \$k; exit 1; }; done
    [ \$(grep -c '^  samc mosaic' '$TMP/out') -ge 2 ]"
expect_ok listed "$SAMC" help && check listed_in_help "not in samc help" grep -q '^  mosaic' "$TMP/out"
if "$SAMC" mosaic "$TMP/x" "$TMP/y" --model "$TMP/z" 2>&1 | grep -q 'built without GDAL'; then
  skipped all "samc built without GDAL"; finish
fi

MODEL=$TMP/micro.safetensors
"$SAMC" synth --config micro -o "$MODEL" >/dev/null 2>&1 || { bad synth "samc synth --config micro failed"; finish; }
IMG=$GOLDEN/images/truck_320x240.png
if ! command -v gdal_translate >/dev/null || [ ! -f "$IMG" ]; then
  skipped runs "needs gdal_translate (Debian gdal-bin) and $IMG"; finish
fi
TIF=$TMP/truck.tif
gdal_translate -q -of GTiff -a_srs EPSG:32633 -a_ullr 500000 4600120 500160 4600000 "$IMG" "$TIF" ||
  { bad make_tif "gdal_translate failed"; finish; }
FAST=(--model "$MODEL" --tile-size 128 --padding 16 --points-per-side 4 --max-passes 2 --iou-start 0.1
      --iou-end 0.1 --stability-start 0.1 --stability-end 0.1 --min-area 10)

# ---- errors ----------------------------------------------------------------------------
echo "not a raster" >"$TMP/text.tif"
expect_fail no_args mosaic "$SAMC" mosaic
expect_fail no_outdir OUTDIR "$SAMC" mosaic "$TIF"
expect_fail no_model --model "$SAMC" mosaic "$TIF" "$TMP/o"
expect_fail missing_input missing.tif "$SAMC" mosaic "$TMP/missing.tif" "$TMP/o" --model "$MODEL"
expect_fail not_a_raster text.tif "$SAMC" mosaic "$TMP/text.tif" "$TMP/o" --model "$MODEL"
expect_fail outdir_under_file "text.tif/out" "$SAMC" mosaic "$TIF" "$TMP/text.tif/out" "${FAST[@]}"
expect_fail tile_too_small --tile-size "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --tile-size 5
expect_fail bad_merge --merge-strategy "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --merge-strategy nearest
expect_fail bad_points --point-strategy "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --point-strategy random
expect_fail iou_order --iou-end "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --iou-start 0.5 --iou-end 0.7
expect_fail bad_number --target-coverage "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --target-coverage abc
expect_fail unknown_flag --tiles "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --tiles 4
expect_fail bad_bands --bands "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --bands 1,2
expect_fail band_out_of_range "band" "$SAMC" mosaic "$TIF" "$TMP/o" "${FAST[@]}" --bands 1,2,9
expect_fail bad_device --device "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --device gpu
expect_fail fp16_on_cpu "needs the CUDA backend" "$SAMC" mosaic "$TIF" "$TMP/o" "${FAST[@]}" --device cpu --precision fp16
"$SAMC" version | grep -q 'cpu_bf16=amx' ||
  expect_fail bf16_on_cpu "needs Intel AMX" "$SAMC" mosaic "$TIF" "$TMP/o" "${FAST[@]}" --device cpu --precision bf16
printf 'tile:\n  size: 128\n  sise: 3\n' >"$TMP/typo.yaml"
expect_fail yaml_unknown_key "tile.sise" "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --config "$TMP/typo.yaml"
printf 'tile: [1, 2\n' >"$TMP/broken.yaml"
expect_fail yaml_broken "broken.yaml" "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --config "$TMP/broken.yaml"
printf 'threshold:\n  iou_start: high\n' >"$TMP/badval.yaml"
expect_fail yaml_bad_value "iou_start" "$SAMC" mosaic "$TIF" "$TMP/o" --model "$MODEL" --config "$TMP/badval.yaml"
check errors_left_nothing "a failed run left files in the output folder" \
  bash -c "[ ! -e '$TMP/o' ] || [ -z \"\$(ls -A '$TMP/o')\" ]"

# ---- a run with JSON progress ----------------------------------------------------------
OUT=$TMP/run1
if expect_ok run_json "$SAMC" mosaic "$TIF" "$OUT" "${FAST[@]}" --geopackage --progress json; then
  check outputs "missing outputs" bash -c "for f in labels.tif segments.shp segments.shx segments.dbf segments.prj \
      segments.gpkg stats.json; do [ -s '$OUT/'\$f ] || { echo no \$f; exit 1; }; done"
  check no_temp "a temporary folder was left" bash -c "! ls -a '$OUT' | grep -q '^\.samc-mosaic'"
  if [ -x "$PY" ]; then
    check progress_json "stdout is not JSON lines ending with a summary" "$PY" -c "
import json, sys
lines = [json.loads(l) for l in open('$TMP/out') if l.strip()]
assert lines and lines[-1]['phase'] == 'summary', lines[-1:]
tiles = [l for l in lines if l['phase'] == 'tiles']
assert tiles and tiles[-1]['tiles_done'] == tiles[-1]['tiles_total'] == 6, tiles[-1:]
s = json.load(open('$OUT/stats.json'))
assert s['grid']['cols'] == 3 and s['grid']['rows'] == 2 and len(s['tiles']) == 6
assert s['segments'] == lines[-1]['segments'] and abs(s['coverage'] - lines[-1]['coverage']) < 1e-9
assert s['config']['tile']['size'] == 128 and s['config']['segmentation']['max_passes'] == 2
assert all(t['n_passes'] <= 2 for t in s['tiles'] if not t['skipped'])
"
  fi
  gdalinfo "$OUT/labels.tif" >"$TMP/info" 2>&1
  check labels_georef "labels.tif lost the CRS, size or geotransform" bash -c "
    grep -q 'Size is 320, 240' '$TMP/info' && grep -q 'ID\[\"EPSG\",32633\]' '$TMP/info' &&
    grep -q 'Origin = (500000.000000000000000,4600120.000000000000000)' '$TMP/info' &&
    grep -q 'Pixel Size = (0.500000000000000,-0.500000000000000)' '$TMP/info' &&
    grep -q 'COMPRESSION=DEFLATE' '$TMP/info' && grep -q 'Block=256x256' '$TMP/info'"
  ogrinfo -so -al "$OUT/segments.gpkg" >"$TMP/ogr" 2>&1
  check gpkg_layer "segments.gpkg lacks the layer, fields or CRS" bash -c "
    grep -q 'Geometry: Polygon' '$TMP/ogr' && grep -q 'label_id:' '$TMP/ogr' && grep -q 'area: Real' '$TMP/ogr' &&
    grep -q 'perimeter: Real' '$TMP/ogr' && grep -q 'EPSG\",32633' '$TMP/ogr'"
fi

# ---- YAML config, flags override it ----------------------------------------------------
cat >"$TMP/sam.yaml" <<EOF
# a sam-mosaic config
tile:
  size: 128
  padding: 16
threshold:
  iou_start: 0.1
  iou_end: 0.1
  stability_start: 0.1
  stability_end: 0.1
segmentation:
  points_per_side: 4
  max_passes: 1
  use_black_mask: true
merge:
  min_mask_area: 10
  merge_strategy: mutual_best
output:
  save_shapefile: false
  streaming_mode: auto
sam_checkpoint: $MODEL
EOF
OUT2=$TMP/run2
if expect_ok yaml_run "$SAMC" mosaic "$TIF" "$OUT2" --config "$TMP/sam.yaml" --tile-size 100 -q --json; then
  check yaml_applied "config or override not applied" bash -c "[ ! -e '$OUT2/segments.shp' ] && [ -s '$OUT2/labels.tif' ]"
  [ -x "$PY" ] && check yaml_stats "stats.json does not show the config with the override" "$PY" -c "
import json
s = json.load(open('$OUT2/stats.json'))
c = s['config']
assert c['tile']['size'] == 100 and c['tile']['padding'] == 16, c['tile']
assert c['segmentation']['max_passes'] == 1 and c['merge']['merge_strategy'] == 'mutual_best'
assert s['grid']['cols'] == 4 and s['grid']['rows'] == 3
json.loads(open('$TMP/out').read())
"
  check quiet "--quiet printed progress on stderr" bash -c "[ ! -s '$TMP/err' ]"
fi

# ---- Ctrl-C ----------------------------------------------------------------------------
BIG=$TMP/big.tif
gdal_translate -q -outsize 1600 1200 -a_srs EPSG:32633 -a_ullr 500000 4600600 500800 4600000 "$IMG" "$BIG"
OUT3=$TMP/run3
"$SAMC" mosaic "$BIG" "$OUT3" "${FAST[@]}" --progress json >"$TMP/int_out" 2>"$TMP/int_err" &
PID=$!
for _ in $(seq 1 300); do grep -q '"tiles_done": 2' "$TMP/int_out" 2>/dev/null && break; sleep 0.1; done
kill -INT "$PID"
wait "$PID"; RC=$?
if [ "$RC" -eq 130 ] && grep -q 'interrupted' "$TMP/int_err" && [ ! -e "$OUT3/labels.tif" ] &&
   [ ! -e "$OUT3/stats.json" ] && ! ls -a "$OUT3" | grep -q '^\.samc-mosaic'; then
  ok ctrl_c
else
  cp "$TMP/int_err" "$TMP/err"; bad ctrl_c "exit $RC (want 130), or output / temporary folder left"
fi

# ---- SAM3 classes: --text on the synthetic sam3_micro model (masks mean nothing; the
# plumbing, the classes, the georeferencing and the shards are what is checked) --------
VOCAB=$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz
M3=$TMP/sam3_micro.safetensors
if [ ! -f "$VOCAB" ]; then
  bad concept_vocab "golden vocabulary missing: $VOCAB"
elif [ ! -x "$PY" ]; then
  bad concept_python "$PY is needed to read the GeoPackage (sqlite3) and stats.json"
elif ! "$SAMC" synth --config sam3_micro -o "$M3" >/dev/null 2>"$TMP/err"; then
  bad concept_synth "samc synth --config sam3_micro failed"
else
  C=(--model "$M3" --vocab "$VOCAB" --text truck --text "a red car" --threshold 0.25 --tile-size 64 --padding 16
     --min-area 10 --geopackage -q)
  expect_fail concept_sam3_no_text "--text" "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$M3" --vocab "$VOCAB" -q
  expect_fail concept_sam2_text "SAM2.1" "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$MODEL" --text roof -q
  expect_fail concept_empty_text "empty" "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$M3" --vocab "$VOCAB" --text "" -q
  expect_fail concept_punct_text "no letter or digit" "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$M3" --vocab "$VOCAB" --text "?!" -q
  expect_fail concept_twice "twice" "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$M3" --text roof --text roof
  expect_fail concept_threshold "--threshold" "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$M3" --text roof --threshold 2
  expect_fail concept_no_vocab "SAMC_VOCAB" env -u SAMC_VOCAB "$SAMC" mosaic "$TIF" "$TMP/c0" --model "$M3" --text roof -q
  check concept_errors_left_nothing "a refused run left files" bash -c "[ ! -e '$TMP/c0' ] || [ -z \"\$(ls -A '$TMP/c0')\" ]"
  CO=$TMP/concept
  if expect_ok concept_run "$SAMC" mosaic "$TIF" "$CO" "${C[@]}"; then
    gdalinfo "$CO/labels.tif" >"$TMP/cinfo" 2>&1
    check concept_georef "labels.tif lost the CRS, size or geotransform" bash -c "
      grep -q 'Size is 320, 240' '$TMP/cinfo' && grep -q 'ID\[\"EPSG\",32633\]' '$TMP/cinfo' &&
      grep -q 'Origin = (500000.000000000000000,4600120.000000000000000)' '$TMP/cinfo' &&
      grep -q 'Pixel Size = (0.500000000000000,-0.500000000000000)' '$TMP/cinfo'"
    ogrinfo -so -al "$CO/segments.gpkg" >"$TMP/cogr" 2>&1
    check concept_gpkg_fields "segments.gpkg lacks label_id, class, score, area, perimeter or the CRS" bash -c "
      grep -q 'label_id: Integer64' '$TMP/cogr' && grep -q 'class: String' '$TMP/cogr' && grep -q 'score: Real' '$TMP/cogr' &&
      grep -q 'area: Real' '$TMP/cogr' && grep -q 'perimeter: Real' '$TMP/cogr' && grep -q 'EPSG\",32633' '$TMP/cogr' &&
      grep -Eq 'Extent: \(500000\.[0-9]*, 4600000\.[0-9]*\) - \(500160\.[0-9]*, 4600120\.[0-9]*\)' '$TMP/cogr'"
    check concept_classes "the polygons' classes and scores or stats.json's class table are wrong" "$PY" -c "
import json, sqlite3
rows = sqlite3.connect('$CO/segments.gpkg').execute('select label_id, class, score, area, perimeter from segments').fetchall()
s = json.load(open('$CO/stats.json'))
assert rows and {r[1] for r in rows} <= {'truck', 'a red car'}, set(r[1] for r in rows)
assert all(0.25 < r[2] < 1 and r[3] > 0 and r[4] > 0 for r in rows)
assert len({(r[0], r[1], r[2]) for r in rows}) == len({r[0] for r in rows}) == s['segments']
cl = s['classes']
assert [c['class'] for c in cl] == ['truck', 'a red car'] and [c['class_id'] for c in cl] == [1, 2]
assert sum(c['segments'] for c in cl) == s['segments'] and sum(c['pixels'] for c in cl) == s['labelled_pixels']
assert s['config']['concept'] == {'classes': ['truck', 'a red car'], 'score_threshold': 0.25}
"
  fi
  # two shards and the merge give the single run's labels, classes and scores
  for k in 0 1; do "$SAMC" mosaic "$TIF" "$TMP/cshards" "${C[@]}" --shard "$k/2" >/dev/null 2>"$TMP/err" || bad "concept_shard_$k" "exit $?"; done
  if expect_ok concept_merge "$SAMC" mosaic merge "$TMP/cshards" -q && [ -d "$CO" ]; then
    check concept_shards_labels "labels.tif of 2 shards + merge differs from the single run's" \
      cmp -s "$CO/labels.tif" "$TMP/cshards/labels.tif"
    check concept_shards_classes "classes or scores of 2 shards + merge differ from the single run's" "$PY" -c "
import json, sqlite3
q = 'select label_id, class, score, area, perimeter from segments order by fid'
a, b = (sqlite3.connect(p + '/segments.gpkg').execute(q).fetchall() for p in ('$CO', '$TMP/cshards'))
assert a and a == b, (len(a), len(b))
sa, sb = (json.load(open(p + '/stats.json')) for p in ('$CO', '$TMP/cshards'))
assert sa['classes'] == sb['classes'] and sa['segments'] == sb['segments']
"
    check concept_joins_within_class "a shard joined segments of two classes" "$PY" -c "
import struct
for k in (0, 1):
    d = '$TMP/cshards/shards/%d/' % k
    cls = open(d + 'classes.u32', 'rb').read(); u = open(d + 'unions.u32', 'rb').read()
    c = struct.unpack('<%dI' % (len(cls) // 4), cls); p = struct.unpack('<%dI' % (len(u) // 4), u)
    assert len(p) > 0 and all(c[p[i] - 1] == c[p[i + 1] - 1] for i in range(0, len(p), 2)), k
"
  fi
fi

finish
