#!/usr/bin/env bash
# tests/cli_everything.sh: `samc everything` from outside. On the micro synthetic model
# and the golden truck_320x240.png with the settings of the micro amg golden, the run must
# write DIR/masks.json (valid JSON, as many records as the golden, the golden RLE when
# python3 is there to compare) and DIR/overlay.png, and --json must report the golden
# filter counts. Bad arguments must fail with one "samc: error:" line naming the option.
#
# Runs $SAMC (set by tests/run_tests.sh; default ./samc); the golden folder is
# $SAMC_GOLDEN or ../shared/golden. Prints "N passed, N failed, N skipped" last.
set -u
unset SAMC_DEBUG SAMC_BACKEND
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
PY=/usr/bin/python3
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_everything.XXXXXX)
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT

SUITE=cli_everything
. "$(dirname "$0")/lib_cli.sh"
have_py() { [ -x "$PY" ]; }

IMG=$GOLDEN/images/truck_320x240.png
MAN=$GOLDEN/micro/amg/manifest.json
MODEL=$TMP/micro.safetensors
# The micro amg golden's generator settings (shared/golden/README.md, section 6).
GOLDEN_ARGS=(--points-per-side 8 --points-per-batch 64 --pred-iou-thresh 0.5 --stability-offset 0.02
             --stability-thresh 0.7 --box-nms-thresh 0.7 --crop-n-layers 0 --min-mask-region-area 0)

# ---- help ----------------------------------------------------------------------------
expect_ok help "$SAMC" everything --help &&
  check help_content "help lacks options or examples" bash -c "
    for k in --points-per-side --pred-iou-thresh --stability-thresh --box-nms-thresh --crop-n-layers \
             --min-mask-region-area masks.json overlay.png; do grep -q -- \"\$k\" '$TMP/out' || exit 1; done
    [ \$(grep -c '^  samc everything' '$TMP/out') -ge 2 ]"
expect_ok listed "$SAMC" help && check listed_in_help "not in samc help" grep -q '^  everything' "$TMP/out"

if [ ! -f "$IMG" ] || [ ! -f "$MAN" ]; then
  skipped golden "no golden image or manifest under $GOLDEN"
  echo "tests/cli_everything.sh: $pass passed, $fail failed, $skip skipped"
  [ "$fail" -eq 0 ]; exit
fi
if ! "$SAMC" synth --config micro -o "$MODEL" >/dev/null 2>"$TMP/err"; then
  bad synth_micro "samc synth failed"
  echo "tests/cli_everything.sh: $pass passed, $fail failed, $skip skipped"
  exit 1
fi

# ---- bad arguments (each names the option) ------------------------------------------
E=("$SAMC" everything)
expect_fail missing_image "IMAGE" "${E[@]}" --model "$MODEL"
expect_fail missing_model "--model" "${E[@]}" "$IMG"
expect_fail unknown_flag "--frobnicate" "${E[@]}" "$IMG" --model "$MODEL" --frobnicate
expect_fail extra_arg "unexpected argument" "${E[@]}" "$IMG" "$IMG" --model "$MODEL"
expect_fail missing_value "missing value" "${E[@]}" "$IMG" --model "$MODEL" --points-per-side
for v in 0 -3 abc 2.5 2000; do
  expect_fail "points_per_side_'$v'" "--points-per-side" "${E[@]}" "$IMG" --model "$MODEL" --points-per-side "$v"
done
expect_fail points_per_batch_0 "--points-per-batch" "${E[@]}" "$IMG" --model "$MODEL" --points-per-batch 0
for v in 1.5 -0.1 nan inf x 0.5x ""; do
  expect_fail "pred_iou_'$v'" "--pred-iou-thresh" "${E[@]}" "$IMG" --model "$MODEL" --pred-iou-thresh "$v"
done
expect_fail stability_thresh "--stability-thresh" "${E[@]}" "$IMG" --model "$MODEL" --stability-thresh 2
expect_fail stability_offset "--stability-offset" "${E[@]}" "$IMG" --model "$MODEL" --stability-offset -1
expect_fail box_nms "--box-nms-thresh" "${E[@]}" "$IMG" --model "$MODEL" --box-nms-thresh 1.01
expect_fail crop_layers "--crop-n-layers" "${E[@]}" "$IMG" --model "$MODEL" --crop-n-layers 9
expect_fail crop_nms "--crop-nms-thresh" "${E[@]}" "$IMG" --model "$MODEL" --crop-nms-thresh -1
expect_fail crop_overlap "--crop-overlap-ratio" "${E[@]}" "$IMG" --model "$MODEL" --crop-overlap-ratio 1
expect_fail crop_factor "--crop-n-points-downscale-factor" "${E[@]}" "$IMG" --model "$MODEL" --crop-n-points-downscale-factor 0
expect_fail crop_factor_too_big "no points" "${E[@]}" "$IMG" --model "$MODEL" --points-per-side 8 \
  --crop-n-layers 2 --crop-n-points-downscale-factor 4
expect_fail min_region "--min-mask-region-area" "${E[@]}" "$IMG" --model "$MODEL" --min-mask-region-area -5
expect_fail remove_small "--remove-small-regions" "${E[@]}" "$IMG" --model "$MODEL" --remove-small-regions x
expect_fail threads "--threads" "${E[@]}" "$IMG" --model "$MODEL" --threads 0
expect_fail backend "--backend" "${E[@]}" "$IMG" --model "$MODEL" --backend gpu
expect_fail json_value "--json" "${E[@]}" "$IMG" --model "$MODEL" --json=1
expect_fail image_missing "cannot open" "${E[@]}" "$TMP/nope.png" --model "$MODEL" --out "$TMP/o"
expect_fail model_missing "model" "${E[@]}" "$IMG" --model "$TMP/none.safetensors" --out "$TMP/o"
expect_fail out_is_file "not a folder" "${E[@]}" "$IMG" --model "$MODEL" --out "$MODEL"
expect_fail out_parent_missing "cannot create folder" "${E[@]}" "$IMG" --model "$MODEL" --out "$TMP/no/such/dir"
# a folder nobody may write into: a read-only one, or (root writes everywhere else)
# /proc/self, which the kernel refuses even to root
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$TMP/readonly" && chmod a-w "$TMP/readonly"
  RO=$TMP/readonly
else
  RO=/proc/self
fi
expect_fail out_unwritable "cannot write" "${E[@]}" "$IMG" --model "$MODEL" --out "$RO"

# ---- the micro amg golden end to end --------------------------------------------------
OUT=$TMP/run
if expect_ok golden_run "${E[@]}" "$IMG" --model "$MODEL" "${GOLDEN_ARGS[@]}" --out "$OUT" --json; then
  check masks_json_exists "no masks.json" test -s "$OUT/masks.json"
  check overlay_png "overlay.png missing or not a PNG" is_png "$OUT/overlay.png"
  check no_temp_files "temporary files left in $OUT" bash -c "[ \$(ls -A '$OUT' | wc -l) -eq 2 ]"
  check json_stdout_counts "stdout lacks the golden counts" bash -c "
    tr -d ' \t\n' <'$TMP/out' | grep -q '\"candidates\":192,\"passed_iou\":123,\"passed_stability\":63,' &&
    tr -d ' \t\n' <'$TMP/out' | grep -q '\"after_nms\":1,' && grep -q '\"total_ms\"' '$TMP/out'"
  if have_py; then
    check masks_json_parses "masks.json is not a JSON array of records" "$PY" -c "
import json, sys
a = json.load(open('$OUT/masks.json'))
keys = {'segmentation', 'area', 'bbox', 'predicted_iou', 'point_coords', 'stability_score', 'crop_box'}
sys.exit(not (isinstance(a, list) and all(set(r) == keys for r in a)))"
    check masks_match_golden "masks.json differs from the golden records" "$PY" -c "
import json, sys
a = json.load(open('$OUT/masks.json'))
g = json.load(open('$MAN'))['masks']
ok = len(a) == len(g)
for r, m in zip(a, g):
    ok &= r['segmentation'] == {'size': [240, 320], 'counts': m['rle_counts_colmajor']}
    ok &= r['area'] == m['area'] and r['bbox'] == m['bbox_xywh'] and r['point_coords'] == m['point_coords']
    ok &= r['crop_box'] == m['crop_box_xywh'] and abs(r['predicted_iou'] - m['predicted_iou']) < 1e-4
    ok &= abs(r['stability_score'] - m['stability_score']) < 1e-4
sys.exit(not ok)"
  else
    want=$(grep -c '"png"' "$MAN")
    check masks_json_count "masks.json lacks $want records" bash -c "
      [ \"\$(head -c1 '$OUT/masks.json')\" = '[' ] && [ \$(grep -o '\"segmentation\"' '$OUT/masks.json' | wc -l) -eq $want ]"
  fi
  # the same again into the same folder: replaced, not appended
  expect_ok golden_rerun "${E[@]}" "$IMG" --model "$MODEL" "${GOLDEN_ARGS[@]}" --out "$OUT"
  check rerun_text_summary "no summary line" grep -q 'candidates -> ' "$TMP/out"
  check rerun_same_json "masks.json changed on a rerun" bash -c "[ \$(grep -o '\"segmentation\"' '$OUT/masks.json' | wc -l) -eq 1 ]"
fi

# defaults (32 x 32 points) into the default folder <image stem>_masks; nothing passes the
# official thresholds on synthetic weights, so the file is an empty array
cp "$IMG" "$TMP/truck.png"
if expect_ok default_run bash -c "cd '$TMP' && '$SAMC' everything truck.png --model micro.safetensors --json"; then
  check default_dir "no truck_masks/masks.json" test -s "$TMP/truck_masks/masks.json"
  check default_counts "not 32x32 points x 3 candidates" bash -c "tr -d ' \t\n' <'$TMP/out' | grep -q '\"points\":1024,\"batches\":16,\"candidates\":3072,'"
fi
# crops and both small-region steps run and give well-formed output
if expect_ok crops_run "${E[@]}" "$IMG" --model "$MODEL" --points-per-side 4 --pred-iou-thresh 0.4 \
     --stability-offset 0.02 --stability-thresh 0.5 --crop-n-layers 1 --min-mask-region-area 20 \
     --remove-small-regions 30 --out "$TMP/crops" --json; then
  check crops_counts "not 5 crops" bash -c "tr -d ' \t\n' <'$TMP/out' | grep -q '\"crops\":5,\"points\":80,'"
  if have_py; then
    check crops_json "masks.json malformed" "$PY" -c "
import json; a = json.load(open('$TMP/crops/masks.json'))
assert all(sum(r['segmentation']['counts']) == 240 * 320 and sum(r['segmentation']['counts'][1::2]) == r['area'] for r in a)"
  fi
fi

echo "tests/cli_everything.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
