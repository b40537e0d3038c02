#!/usr/bin/env bash
# tests/cli_serve.sh: `samc serve` from outside, with curl, on the micro synthetic model and
# the golden truck_320x240.png. Starts servers on free loopback ports (port 0, the port is
# read from the start line) and kills them on exit. Covers every endpoint, agreement with
# `samc segment` / `samc everything`, 20 parallel clients, request timeout, job timeout
# and cancel, queue-full 429, malformed and hostile requests, the bearer token, a clean
# SIGTERM stop (no sanitizer report under `make debug`), a soak of SAMC_SOAK_PREDICTS
# predicts (default 1000; 300 in a sanitized build) and SAMC_SOAK_JOBS jobs (default 10;
# 4) with resident memory measured after warm-up and at the end (fail above 1% growth;
# not checked in a sanitized build), and the page in headless
# Chromium when it is installed (SAMC_SKIP_BROWSER=1 skips it).
# SAM3 (sam3_micro, the golden CLIP vocabulary): find answers equal to `samc find`'s, its
# bad requests, the family refusals both ways, the page's text box, and a soak of
# SAMC_SOAK_FINDS finds (default 1000; 300) with the same memory check.
#
# Runs $SAMC (default ./samc); golden folder $SAMC_GOLDEN or ../shared/golden.
# Prints "N passed, N failed, N skipped" last.
set -u
unset SAMC_DEBUG SAMC_BACKEND SAMC_SERVE_TOKEN SAMC_VOCAB
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
# A sanitized build (make debug) keeps freed memory in quarantine, so its resident size
# says nothing about leaks (LeakSanitizer checks those at the SIGTERM stop instead): the
# soak is shorter there and its memory check is skipped.
SANITIZED=0
grep -q '__asan_init' "$SAMC" 2>/dev/null && SANITIZED=1
SOAK_PREDICTS=${SAMC_SOAK_PREDICTS:-$([ "$SANITIZED" = 1 ] && echo 300 || echo 1000)}
SOAK_JOBS=${SAMC_SOAK_JOBS:-$([ "$SANITIZED" = 1 ] && echo 4 || echo 10)}
SOAK_FINDS=${SAMC_SOAK_FINDS:-$([ "$SANITIZED" = 1 ] && echo 300 || echo 1000)}
PY=/usr/bin/python3
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_serve.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

ok()  { pass=$((pass+1)); echo "OK     cli_serve.$1"; }
bad() { fail=$((fail+1)); echo "NOT OK cli_serve.$1: $2"; [ -s "$TMP/body" ] && head -c 300 "$TMP/body" | sed 's/^/    body: /'; echo; }
skipped() { skip=$((skip+1)); echo "SKIP   cli_serve.$1: $2"; }
check() { local name=$1 why=$2; shift 2; if "$@"; then ok "$name"; else bad "$name" "$why"; fi; }

if ! command -v curl >/dev/null; then
  echo "SKIP   cli_serve: curl is not installed (apt-get install curl)"
  echo "cli_serve: 0 passed, 0 failed, 1 skipped"; exit 0
fi
IMG=$GOLDEN/images/truck_320x240.png
case "$IMG" in /*) ;; *) IMG="$(cd "$(dirname "$IMG")" 2>/dev/null && pwd)/$(basename "$IMG")" ;; esac
if [ ! -f "$IMG" ]; then
  echo "SKIP   cli_serve: no golden image at $IMG"
  echo "cli_serve: 0 passed, 0 failed, 1 skipped"; exit 0
fi
MODEL=$TMP/micro.safetensors
"$SAMC" synth --config micro -o "$MODEL" >/dev/null 2>&1 || { echo "NOT OK cli_serve.synth"; echo "cli_serve: 0 passed, 1 failed, 0 skipped"; exit 1; }
DATA=$TMP/data
mkdir -p "$DATA/sub" "$TMP/outside"
cp "$IMG" "$DATA/truck.png"
cp "$IMG" "$TMP/outside/secret.png"
ln -s "$TMP/outside/secret.png" "$DATA/escape.png"
ln -s "$TMP/outside" "$DATA/outlink"

# start NAME ARGS...: runs `samc serve --port 0 ARGS` in the background (the model is
# $START_MODEL if set, else $MODEL); sets PORT, PID, U.
start() {
  local name=$1; shift
  "$SAMC" serve --model "${START_MODEL:-$MODEL}" --port 0 --threads 1 "$@" >"$TMP/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  PORT=""
  for _ in $(seq 1 200); do
    PORT=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+)\/.*/\1/p' "$TMP/$name.log")
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  U=http://127.0.0.1:$PORT
  [ -n "$PORT" ]
}

# req METHOD PATH [curl args...]: body in $TMP/body, status in $CODE, headers in $TMP/hdr.
req() {
  local m=$1 p=$2; shift 2
  CODE=$(curl -s -X "$m" -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' "$@" "$U$p")
}
field() { sed -nE "s/.*\"$1\":\"?([^\",}]*)\"?.*/\1/p" "$TMP/body" | head -n 1; }
is_error_json() { grep -q '^{"error":"' "$TMP/body"; }
# expect NAME CODE WORD METHOD PATH [curl args...]: status CODE and a JSON error with WORD.
expect() {
  local name=$1 want=$2 word=$3; shift 3
  req "$@"
  if [ "$CODE" != "$want" ]; then bad "$name" "HTTP $CODE, want $want"
  elif ! is_error_json; then bad "$name" "not a JSON {\"error\": ...} body"
  elif ! grep -qiF -- "$word" "$TMP/body"; then bad "$name" "error lacks '$word'"
  else ok "$name"; fi
}
rss_kb() { sed -nE 's/^VmRSS:\s+([0-9]+) kB/\1/p' "/proc/$1/status"; }
# stop PID NAME: SIGTERM, exit 0, nothing from a sanitizer in the log.
stop() {
  kill -TERM "$1"; wait "$1"; local rc=$?
  if [ "$rc" -ne 0 ]; then bad "$2.stop" "exit $rc after SIGTERM"; tail -n 5 "$TMP/$2.log"
  elif grep -q 'Sanitizer' "$TMP/$2.log"; then bad "$2.stop" "sanitizer report"; grep -m3 'Sanitizer' "$TMP/$2.log"
  else ok "$2.stop"; fi
}

# ---- main server -----------------------------------------------------------------------
if ! start main --data-dir "$DATA" --queue 32 --max-body-mb 1 --cache-mb 1; then
  bad start "server did not start"; cat "$TMP/main.log"
  echo "cli_serve: $pass passed, $fail failed, $skip skipped"; exit 1
fi
MAIN=$PID

req GET /healthz
check healthz "HTTP $CODE or no status ok" test "$CODE" = 200 -a "$(field status)" = ok -a "$(field family)" = sam2.1
req GET /
check page "HTTP $CODE or not the page" grep -q 'click to segment' "$TMP/body"
req POST /v1/images --data-binary "@$IMG"
ID=$(field id)
check upload "HTTP $CODE, id '$ID'" test "$CODE" = 201 -a "${#ID}" = 16 -a "$(field width)" = 320 -a "$(field height)" = 240

# predict, one point, RLE, three masks whose runs cover the image
req POST "/v1/images/$ID/predict" -d '{"points": [[100, 100]], "labels": [1], "format": "rle"}'
rle_ok() {
  [ "$CODE" = 200 ] || return 1
  local n; n=$(grep -o '"counts":\[[0-9,]*\]' "$TMP/body" | wc -l)
  [ "$n" = 3 ] || return 1
  grep -o '"counts":\[[0-9,]*\]' "$TMP/body" | sed -E 's/"counts":\[//; s/\]//' |
    awk -F, '{ s = 0; for (i = 1; i <= NF; i++) s += $i; if (s != 76800) bad = 1 } END { exit bad }'
}
check predict_rle "HTTP $CODE or masks are not 3 RLEs of 76800 pixels" rle_ok

# predict as PNG matches `samc segment` byte for byte (same model, same prompt)
req POST "/v1/images/$ID/predict" -d '{"points": [[100, 100], [200, 150]], "labels": [1, 0], "multimask": false, "format": "png"}'
sed -nE 's/.*"masks":\["([^"]*)".*/\1/p' "$TMP/body" | base64 -d >"$TMP/served.png" 2>/dev/null
(cd "$TMP" && "$SAMC" segment "$IMG" --model "$MODEL" --threads 1 --point 100,100 --point 200,150,0 --single --out "$TMP/cli" >/dev/null 2>&1)
check predict_png_matches_segment "HTTP $CODE or PNG differs from samc segment's" cmp -s "$TMP/served.png" "$TMP/cli_0.png"

req POST "/v1/images/$ID/predict" -d '{"boxes": [[10, 10, 200, 200], [50, 60, 120, 180]], "points": [[60, 70]]}'
check predict_boxes "HTTP $CODE or not 2 prompts x 1 mask" test "$CODE" = 200 -a "$(field prompts)" = 2 -a "$(field masks_per_prompt)" = 1

# low-res logits back as mask_input
req POST "/v1/images/$ID/predict" -d '{"points": [[100, 100]], "return_low_res": true}'
LOW=$(sed -nE 's/.*"low_res":\["([^"]*)".*/\1/p' "$TMP/body")
printf '{"points": [[100, 100]], "mask_input": "%s"}' "$LOW" >"$TMP/mask_body.json"
req POST "/v1/images/$ID/predict" --data-binary "@$TMP/mask_body.json"
check predict_mask_input "HTTP $CODE with a mask_input of ${#LOW} base64 chars" test "$CODE" = 200 -a "${#LOW}" = 21848

# ---- jobs ------------------------------------------------------------------------------
JOB_OPTS='"options": {"points_per_side": 8, "points_per_batch": 64, "pred_iou_thresh": 0.5, "stability_score_offset": 0.02, "stability_score_thresh": 0.7, "box_nms_thresh": 0.7}'
req POST /v1/jobs -d "{\"type\": \"everything\", \"image\": \"truck.png\", \"output\": \"sub/out1\", $JOB_OPTS}"
JID=$(field id)
check job_submit "HTTP $CODE, id '$JID'" test "$CODE" = 202 -a "${#JID}" = 16
wait_job() {  # wait_job ID: until the state is final (10 s at most); leaves the state in STATE
  for _ in $(seq 1 200); do
    req GET "/v1/jobs/$1"; STATE=$(field state)
    case "$STATE" in done|failed|cancelled|timed_out) return 0 ;; esac
    sleep 0.05
  done
  return 1
}
wait_job "$JID"
check job_done "state '$STATE' ($(field error))" test "$STATE" = done -a "$(field result)" = sub/out1/masks.json -a -f "$DATA/sub/out1/masks.json"
(cd "$TMP" && "$SAMC" everything "$IMG" --model "$MODEL" --threads 1 --out "$TMP/cli_everything" --points-per-side 8 \
   --points-per-batch 64 --pred-iou-thresh 0.5 --stability-offset 0.02 --stability-thresh 0.7 --box-nms-thresh 0.7 >/dev/null 2>&1)
if [ -x "$PY" ]; then
  same_masks() {
    "$PY" - "$DATA/sub/out1/masks.json" "$TMP/cli_everything/masks.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = ("segmentation", "area", "bbox", "crop_box")
sys.exit(0 if len(a) == len(b) and all(x[k] == y[k] for x, y in zip(a, b) for k in keys) else 1)
EOF
  }
  check job_matches_everything "masks.json differs from samc everything's" same_masks
else
  skipped job_matches_everything "no $PY to compare JSON"
fi
# the default output folder is beside the image
req POST /v1/jobs -d "{\"type\": \"everything\", \"image\": \"truck.png\", $JOB_OPTS}"
JID2=$(field id); wait_job "$JID2"
check job_default_output "state '$STATE'" test "$STATE" = done -a -f "$DATA/truck_masks_$JID2/masks.json"

# a mosaic job on a GeoTIFF (gdal_translate from gdal-bin makes it)
if command -v gdal_translate >/dev/null && gdal_translate -q -a_srs EPSG:32633 -a_ullr 500000 4600120 500160 4600000 \
     "$IMG" "$DATA/truck.tif" 2>/dev/null; then
  MOS_OPTS='"options": {"tile_size": 128, "padding": 16, "points_per_side": 4, "max_passes": 1, "iou_start": 0.1, "iou_end": 0.1, "stability_start": 0.1, "stability_end": 0.1, "min_mask_area": 10, "save_shapefile": false, "save_geopackage": true}'
  req POST /v1/jobs -d "{\"type\": \"mosaic\", \"image\": \"truck.tif\", \"output\": \"sub/mos\", $MOS_OPTS}"
  JM=$(field id)
  check mosaic_submit "HTTP $CODE" test "$CODE" = 202
  wait_job "$JM"
  check mosaic_done "state '$STATE' ($(field error))" test "$STATE" = done -a "$(field result)" = sub/mos/stats.json \
    -a -s "$DATA/sub/mos/labels.tif" -a -s "$DATA/sub/mos/segments.gpkg" -a ! -e "$DATA/sub/mos/segments.shp"
  check mosaic_progress "GET does not show the tiles" grep -q '"tiles_done":6,"tiles_total":6' "$TMP/body"
  check mosaic_type "GET does not say type mosaic" grep -q '"type":"mosaic"' "$TMP/body"
  expect mosaic_option_name 400 "unknown mosaic option" POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif", "options": {"tile": 3}}'
  expect mosaic_option_value 400 "tile_size" POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif", "options": {"tile_size": 2}}'
  expect mosaic_option_type 400 "use_black_mask" POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif", "options": {"use_black_mask": [1]}}'
  expect mosaic_text_on_sam2 400 "need SAM3" POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif", "text": "roof"}'
  expect everything_text 400 "for mosaic jobs" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "text": "roof"}'
else
  skipped mosaic_job "no gdal_translate (Debian gdal-bin) to make a GeoTIFF"
fi

# cancel a long job while it runs (128 x 128 points is 256 batches of 64 on micro)
req POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "options": {"points_per_side": 128}}'
JC=$(field id)
for _ in $(seq 1 100); do req GET "/v1/jobs/$JC"; [ "$(field state)" = running ] && break; sleep 0.02; done
req DELETE "/v1/jobs/$JC"
check job_cancel_answer "HTTP $CODE" test "$CODE" = 200
wait_job "$JC"
check job_cancelled "state '$STATE'" test "$STATE" = cancelled
expect job_cancel_twice 409 "already finished" DELETE "/v1/jobs/$JC"
# a job's own deadline
req POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "timeout_s": 0.2, "options": {"points_per_side": 128}}'
JT=$(field id); wait_job "$JT"
check job_timed_out "state '$STATE'" test "$STATE" = timed_out

# ---- 20 parallel clients ---------------------------------------------------------------
for i in $(seq 1 20); do
  curl -s -o "$TMP/par_$i.json" -w '%{http_code}' -d '{"points": [[150, 120]], "format": "rle"}' \
       "$U/v1/images/$ID/predict" >"$TMP/par_$i.code" &
done
wait_clients() {  # waits for the background clients, not for the servers
  local p q mine
  for p in $(jobs -p); do
    mine=0; for q in "${PIDS[@]}"; do [ "$p" = "$q" ] && mine=1; done
    [ "$mine" = 1 ] || wait "$p"
  done
}
wait_clients
par_ok() {
  for i in $(seq 1 20); do
    [ "$(cat "$TMP/par_$i.code")" = 200 ] || return 1
    cmp -s "$TMP/par_1.json" "$TMP/par_$i.json" || return 1
  done
}
check parallel_20 "a client did not get 200 or the answers differ" par_ok

# ---- malformed and hostile requests ----------------------------------------------------
P=/v1/images/$ID/predict
expect bad_json 400 "malformed JSON" POST "$P" -d '{"points": [[1, 2]'
expect not_object 400 "JSON object" POST "$P" -d '[1, 2]'
expect empty_body 400 "empty body" POST "$P"
expect no_prompt 400 "no prompt" POST "$P" -d '{"multimask": true}'
expect unknown_key 400 "unknown key" POST "$P" -d '{"pointz": [[1, 2]]}'
expect point_outside 400 "outside" POST "$P" -d '{"points": [[1000, 5]]}'
expect point_shape 400 "points" POST "$P" -d '{"points": [[1, 2, 3]]}'
expect labels_count 400 "labels" POST "$P" -d '{"points": [[1, 2]], "labels": [1, 0]}'
expect label_value 400 "labels" POST "$P" -d '{"points": [[1, 2]], "labels": [2]}'
expect box_inverted 400 "inverted" POST "$P" -d '{"boxes": [[100, 100, 50, 150]]}'
expect huge_number 400 "finite" POST "$P" -d '{"points": [[1e400, 2]]}'
expect bad_format 400 "format" POST "$P" -d '{"points": [[1, 2]], "format": "gif"}'
expect bad_mask_input 400 "mask_input" POST "$P" -d '{"mask_input": "AAAA"}'
pts=$(for i in $(seq 1 65); do printf '[1, 1],'; done)
expect too_many_points 400 "more than" POST "$P" -d "{\"points\": [${pts%,}]}"
expect deep_nesting 400 "malformed" POST "$P" -d "$(printf '[%.0s' $(seq 1 2000))"
head -c 1500000 /dev/zero >"$TMP/big.bin"
expect huge_body 413 "limit" POST "$P" --data-binary "@$TMP/big.bin"
expect huge_body_chunked 413 "limit" POST /v1/images -H 'Transfer-Encoding: chunked' --data-binary "@$TMP/big.bin"
expect not_image 415 "not a PNG or JPEG" POST /v1/images --data-binary '{"points": 1}'
head -c 5000 "$IMG" >"$TMP/trunc.png"
expect truncated_png 400 "decode" POST /v1/images --data-binary "@$TMP/trunc.png"
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x00\x00\x00\x01\x00\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00' >"$TMP/bomb.png"
expect png_bomb_header 413 "limits" POST /v1/images --data-binary "@$TMP/bomb.png"
expect empty_upload 400 "empty body" POST /v1/images
expect unknown_id 404 "no image" POST /v1/images/0123456789abcdef/predict -d '{"points": [[1, 2]]}'
expect bad_id_traversal 404 "no such endpoint" POST /v1/images/..%2f..%2fetc/predict -d '{"points": [[1, 2]]}'
expect bad_id 404 "malformed id" POST /v1/images/..%2e%2e/predict -d '{"points": [[1, 2]]}'
expect bad_id_upper 404 "malformed id" GET /v1/jobs/0123456789ABCDEF
expect unknown_job 404 "no job" GET /v1/jobs/0123456789abcdef
expect unknown_route 404 "no such endpoint" GET /v1/nothing
expect wrong_method 405 "not allowed" GET /v1/images
check wrong_method_allow "no Allow: POST header" grep -qi '^Allow: POST' "$TMP/hdr"
expect traversal 400 "'..'" POST /v1/jobs -d '{"type": "everything", "image": "../outside/secret.png"}'
expect traversal_inner 400 "'..'" POST /v1/jobs -d '{"type": "everything", "image": "sub/../../outside/secret.png"}'
expect absolute_path 400 "absolute" POST /v1/jobs -d '{"type": "everything", "image": "/etc/passwd"}'
expect symlink_escape 403 "outside the data folder" POST /v1/jobs -d '{"type": "everything", "image": "escape.png"}'
expect output_escape 403 "outside the data folder" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "output": "outlink/x"}'
expect output_link_out 403 "outside the data folder" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "output": "outlink"}'
expect output_parent_missing 400 "No such file" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "output": "nosuch/x"}'
expect output_traversal 400 "'..'" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "output": "../x"}'
expect missing_image 404 "No such file" POST /v1/jobs -d '{"type": "everything", "image": "nope.png"}'
expect job_type 400 "not supported" POST /v1/jobs -d '{"type": "video", "image": "truck.png"}'
expect job_option 400 "points_per_side" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "options": {"points_per_side": 0}}'
expect job_option_name 400 "unknown key" POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "options": {"points": 3}}'
check no_escape_written "something was written outside the data folder" test ! -e "$TMP/outside/x" -a ! -e "$TMP/x"

req DELETE "/v1/images/$ID"
check image_delete "HTTP $CODE" test "$CODE" = 204
expect deleted_image 404 "no image" POST "/v1/images/$ID/predict" -d '{"points": [[1, 2]]}'
req POST /v1/images --data-binary "@$IMG"
expect find_on_sam2 400 "find needs SAM3" POST "/v1/images/$(field id)/find" -d '{"text": "truck"}'

req GET /healthz
check alive_after_hostile "HTTP $CODE" test "$CODE" = 200

# ---- metrics ---------------------------------------------------------------------------
req GET /metrics
metrics_ok() {
  grep -q '^samc_requests_total{route="predict",code="200"} [0-9]' "$TMP/body" &&
  grep -q '^samc_request_duration_seconds_bucket{route="predict",le="+Inf"} [0-9]' "$TMP/body" &&
  grep -q '^samc_queue_depth 0$' "$TMP/body" &&
  grep -q '^samc_resident_memory_bytes [1-9]' "$TMP/body" &&
  grep -q '^samc_jobs{state="cancelled"} 1$' "$TMP/body" &&
  grep -q '^samc_requests_total{route="predict",code="400"} [0-9]' "$TMP/body" &&
  grep -q 'text/plain; version=0.0.4' "$TMP/hdr"
}
check metrics "HTTP $CODE or a metric is missing" metrics_ok

# ---- browser ---------------------------------------------------------------------------
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ "${SAMC_SKIP_BROWSER:-0}" = 1 ]; then
  skipped browser "SAMC_SKIP_BROWSER=1"
elif [ -z "$CHROME" ]; then
  skipped browser "chromium is not installed (apt-get install chromium to run the page test)"
else
  timeout 90 "$CHROME" --headless --disable-gpu --no-sandbox --user-data-dir="$TMP/chrome" \
    --virtual-time-budget=20000 --dump-dom "$U/?selftest=1" >"$TMP/dom.html" 2>"$TMP/chrome.err"
  line=$(grep -o 'selftest: [^<]*' "$TMP/dom.html" | head -n 1)
  echo "    $line"
  check browser "page self-test did not pass: '${line:-no result}'" grep -q 'selftest: ok .* masks=1 .* drawn=[1-9]' "$TMP/dom.html"
fi

# ---- soak: many predicts and jobs against one process, resident memory flat -----------
req POST /v1/images --data-binary "@$IMG"; SID=$(field id)
printf '{"points": [[100, 100], [220, 90]], "labels": [1, 0], "format": "rle"}' >"$TMP/soak.json"
burst() {  # burst N [ENDPOINT BODY]: N predicts (or finds) over keep-alive connections, 4 clients; codes to $TMP/codes
  local n=$1 per=$(( ($1 + 3) / 4 )) ep=${2:-predict} body=${3:-$TMP/soak.json}
  : >"$TMP/codes"
  for c in 1 2 3 4; do
    yes "$U/v1/images/$SID/$ep" | head -n "$per" |
      xargs curl -s -w '%{stderr}%{http_code}\n' -d "@$body" >/dev/null 2>>"$TMP/codes.$c" &
  done
  wait_clients
  cat "$TMP"/codes.? >"$TMP/codes"; rm -f "$TMP"/codes.?
}
soak_jobs() {
  for _ in $(seq 1 "$1"); do
    req POST /v1/jobs -d "{\"type\": \"everything\", \"image\": \"truck.png\", \"output\": \"sub/soak\", $JOB_OPTS}"
    wait_job "$(field id)" || return 1
    [ "$STATE" = done ] || return 1
  done
}
t0=$(date +%s.%N)
# warm-up: a tenth of each (first uses of the job path and of malloc's arenas settle)
warm=$(( SOAK_PREDICTS / 10 )); [ "$warm" -lt 100 ] && warm=100
warm_jobs=$(( SOAK_JOBS / 10 )); [ "$warm_jobs" -lt 2 ] && warm_jobs=2
burst "$warm"; soak_jobs "$warm_jobs"; burst "$warm"
rss0=$(rss_kb "$MAIN")
burst "$SOAK_PREDICTS"
n200=$(grep -c '^200$' "$TMP/codes")
soak_jobs "$SOAK_JOBS"; jobs_ok=$?
rss1=$(rss_kb "$MAIN")
grep -E '^(RssAnon|RssFile|Threads):' "/proc/$MAIN/status" | tr -s ' \t\n' ' ' | sed 's/^/    at end: /'; echo
t1=$(date +%s.%N)
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.3f", (b - a) * 100 / a }')
echo "    soak: $n200 of $(wc -l <"$TMP/codes") predicts 200, $SOAK_JOBS jobs, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; RSS after warm-up ${rss0} kB, at end ${rss1} kB (${growth}%)"
check soak_answers "$n200 of $SOAK_PREDICTS predicts got 200, jobs ok: $jobs_ok" test "$n200" -ge "$SOAK_PREDICTS" -a "$jobs_ok" = 0
if [ "$SANITIZED" = 1 ]; then
  skipped soak_rss "sanitized build: resident memory includes the sanitizer's quarantine"
else
  check soak_rss "resident memory grew ${growth}% (> 1%)" awk -v g="$growth" 'BEGIN { exit !(g <= 1) }'
fi
stop "$MAIN" main

# ---- request timeout: answered 504 on time, the server stays healthy -------------------
if start slow --timeout 0.001; then
  req POST /v1/images --data-binary "@$IMG"
  check timeout_504 "HTTP $CODE" test "$CODE" = 504 -a "$(grep -c 'timed out' "$TMP/body")" = 1
  req GET /healthz
  check timeout_alive "HTTP $CODE" test "$CODE" = 200
  sleep 0.5
  req GET /metrics
  check timeout_counted "no timed-out count" grep -q '^samc_tasks_timed_out_total [1-9]' "$TMP/body"
  stop "$PID" slow
else bad slow.start "did not start"; fi

# ---- queue full: 429 with Retry-After --------------------------------------------------
if start busy --queue 1 --data-dir "$DATA"; then
  BUSY=$PID
  req POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "options": {"points_per_side": 128}}'; J1=$(field id)
  for _ in $(seq 1 100); do req GET "/v1/jobs/$J1"; [ "$(field state)" = running ] && break; sleep 0.02; done
  req POST /v1/jobs -d '{"type": "everything", "image": "truck.png", "options": {"points_per_side": 128}}'; J2=$(field id)
  expect queue_full 429 "queue full" POST /v1/images --data-binary "@$IMG"
  check queue_full_retry_after "no Retry-After header" grep -qi '^Retry-After: 1' "$TMP/hdr"
  req DELETE "/v1/jobs/$J2"; req DELETE "/v1/jobs/$J1"
  wait_job "$J1"
  check queue_cancel_running "state '$STATE'" test "$STATE" = cancelled
  req POST /v1/images --data-binary "@$IMG"
  check queue_recovers "HTTP $CODE" test "$CODE" = 201
  stop "$BUSY" busy
else bad busy.start "did not start"; fi

# ---- bearer token ----------------------------------------------------------------------
if start token --token s3cret; then
  expect token_missing 401 "bearer token" POST /v1/images --data-binary "@$IMG"
  check token_www_authenticate "no WWW-Authenticate header" grep -qi '^WWW-Authenticate: Bearer' "$TMP/hdr"
  expect token_wrong 401 "bearer token" GET /metrics -H 'Authorization: Bearer s3cres'
  req POST /v1/images --data-binary "@$IMG" -H 'Authorization: Bearer s3cret'
  check token_right "HTTP $CODE" test "$CODE" = 201
  req GET /healthz
  check token_healthz_open "HTTP $CODE" test "$CODE" = 200
  expect jobs_without_data_dir 403 "data-dir" POST /v1/jobs -H 'Authorization: Bearer s3cret' -d '{"type": "everything", "image": "truck.png"}'
  stop "$PID" token
else bad token.start "did not start"; fi

# ---- two workers share the cached embeddings: same answers as one worker ---------------
if start multi --workers 2 --queue 32; then
  req POST /v1/images --data-binary "@$IMG"; MID=$(field id)
  for i in $(seq 1 20); do
    curl -s -o "$TMP/multi_$i.json" -w '%{http_code}' -d '{"points": [[150, 120]], "format": "rle"}' \
         "$U/v1/images/$MID/predict" >"$TMP/multi_$i.code" &
  done
  wait_clients
  multi_ok() {
    for i in $(seq 1 20); do
      [ "$(cat "$TMP/multi_$i.code")" = 200 ] && cmp -s "$TMP/par_1.json" "$TMP/multi_$i.json" || return 1
    done
  }
  check workers_2_parallel_20 "a client did not get 200 or an answer differs from the one-worker server's" multi_ok
  stop "$PID" multi
else bad multi.start "did not start"; fi

# ---- SAM3: find, its errors, the page, a soak ------------------------------------------
VOCAB=$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz
case "$VOCAB" in /*) ;; *) VOCAB="$(pwd)/$VOCAB" ;; esac
M3=$TMP/sam3_micro.safetensors
if [ ! -f "$VOCAB" ]; then
  bad sam3 "golden vocabulary missing: $VOCAB"
elif ! "$SAMC" synth --config sam3_micro -o "$M3" >/dev/null 2>&1; then
  bad sam3 "samc synth --config sam3_micro failed"
elif ! START_MODEL=$M3 start sam3 --vocab "$VOCAB" --data-dir "$DATA"; then
  bad sam3.start "did not start"; cat "$TMP/sam3.log"
else
  S3=$PID
  req GET /healthz
  check sam3_healthz "family is not sam3" test "$(field family)" = sam3 -a "$(field model)" = sam3_micro
  req POST /v1/images --data-binary "@$IMG"; SID=$(field id)
  check sam3_upload "HTTP $CODE" test "$CODE" = 201 -a "${#SID}" = 16
  req POST "/v1/images/$SID/find" -d '{"text": "truck", "threshold": 0.25}'
  cp "$TMP/body" "$TMP/find_rle.json"
  (cd "$TMP" && "$SAMC" find "$IMG" --model "$M3" --vocab "$VOCAB" --threads 1 --text truck --threshold 0.25 \
     --out "$TMP/cli_find" --json >"$TMP/cli_find.json" 2>/dev/null)
  if [ -x "$PY" ]; then
    same_find() {
      "$PY" - "$TMP/find_rle.json" "$TMP/cli_find/instances.json" <<'EOF2'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = ("text", "query", "score", "box", "area", "segmentation")
sys.exit(0 if a["instances"] and len(a["instances"]) == len(b["instances"]) and
         all(x[k] == y[k] for x, y in zip(a["instances"], b["instances"]) for k in keys) else 1)
EOF2
    }
    check find_matches_cli "HTTP $CODE or the instances differ from samc find's" same_find
  else
    bad find_matches_cli "no $PY to compare JSON"
  fi
  req POST "/v1/images/$SID/find" -d '{"text": "truck", "threshold": 0.3, "format": "png"}'
  sed -nE 's/.*"png":"([^"]*)".*/\1/p' "$TMP/body" | head -n 1 | base64 -d >"$TMP/served_find.png" 2>/dev/null
  check find_png_matches_cli "HTTP $CODE or the PNG differs from samc find's" cmp -s "$TMP/served_find.png" "$TMP"/cli_find/t0_k*_q8.png
  req POST "/v1/images/$SID/find" -d '{"boxes": [[248, 110, 292, 155], [10, 10, 60, 60]], "labels": [1, 0], "threshold": -1, "max_detections": 3}'
  check find_boxes "HTTP $CODE or not 3 exemplar-only instances" test "$CODE" = 200 -a "$(grep -o '"query":' "$TMP/body" | wc -l)" = 3 -a "$(field text)" = null
  req POST "/v1/images/$SID/find" -d '{"text": "truck", "threshold": 0.99}'
  check find_nothing "HTTP $CODE or not an empty list" grep -q '^{"instances":\[\],' "$TMP/body"
  req POST "/v1/images/$SID/find" -d "{\"text\": \"$(printf 'red %.0s' {1..40})\"}"
  check find_long_notice "HTTP $CODE or no notice of the cut" grep -q '"notices":\["text is 42 tokens: cut to 32' "$TMP/body"
  F=/v1/images/$SID/find
  expect find_empty 400 "empty" POST "$F" -d '{"text": ""}'
  expect find_spaces 400 "empty" POST "$F" -d '{"text": " \t "}'
  expect find_punct 400 "no letter or digit" POST "$F" -d '{"text": "?!"}'
  printf '{"text": "ro\xffof"}' >"$TMP/bad_utf8.json"
  expect find_not_utf8 400 "UTF-8" POST "$F" --data-binary "@$TMP/bad_utf8.json"
  expect find_text_type 400 "must be a string" POST "$F" -d '{"text": 3}'
  expect find_no_prompt 400 "no prompt" POST "$F" -d '{"threshold": 0.2}'
  expect find_box_outside 400 "outside" POST "$F" -d '{"text": "roof", "boxes": [[0, 0, 400, 10]]}'
  expect find_box_inverted 400 "inverted" POST "$F" -d '{"boxes": [[50, 50, 10, 60]]}'
  expect find_labels 400 "labels" POST "$F" -d '{"boxes": [[5, 5, 50, 50]], "labels": [1, 0]}'
  expect find_label_value 400 "labels" POST "$F" -d '{"boxes": [[5, 5, 50, 50]], "labels": [3]}'
  expect find_threshold 400 "threshold" POST "$F" -d '{"text": "roof", "threshold": 2}'
  expect find_max_det 400 "max_detections" POST "$F" -d '{"text": "roof", "max_detections": 1.5}'
  expect find_unknown_key 400 "unknown key" POST "$F" -d '{"txt": "roof"}'
  expect predict_on_sam3 400 "is SAM3" POST "/v1/images/$SID/predict" -d '{"points": [[10, 10]]}'
  expect everything_on_sam3 400 "is SAM3" POST /v1/jobs -d '{"type": "everything", "image": "truck.png"}'
  if [ -f "$DATA/truck.tif" ]; then
    C_OPTS='"options": {"tile_size": 128, "padding": 16, "min_mask_area": 10, "save_geopackage": true}'
    req POST /v1/jobs -d "{\"type\": \"mosaic\", \"image\": \"truck.tif\", \"output\": \"sub/cmos\", \"text\": [\"truck\", \"a red car\"], \"threshold\": 0.25, $C_OPTS}"
    CJ=$(field id); wait_job "$CJ"
    check mosaic_text_job "state '$STATE' ($(field error))" test "$STATE" = done -a -s "$DATA/sub/cmos/segments.gpkg"
    check mosaic_text_classes "the job does not list its classes, or stats.json has no class table" bash -c "
      grep -q '\"classes\":\[\"truck\",\"a red car\"\]' '$TMP/body' && grep -q '\"class\":[[:space:]]*\"a red car\"' '$DATA/sub/cmos/stats.json'"
    expect mosaic_sam3_no_text 400 "give the classes" POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif"}'
    expect mosaic_text_type 400 "text" POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif", "text": [3]}'
    req POST /v1/jobs -d '{"type": "mosaic", "image": "truck.tif", "output": "sub/cbad", "text": "?!"}'
    CB=$(field id); wait_job "$CB"
    check mosaic_text_refused "state '$STATE' ($(field error))" bash -c "[ '$STATE' = failed ] && grep -q 'no letter or digit' '$TMP/body'"
  else
    skipped mosaic_text_job "no GeoTIFF (gdal_translate) for a mosaic job"
  fi
  if [ "${SAMC_SKIP_BROWSER:-0}" != 1 ] && [ -n "$CHROME" ]; then
    timeout 90 "$CHROME" --headless --disable-gpu --no-sandbox --user-data-dir="$TMP/chrome3" \
      --virtual-time-budget=20000 --dump-dom "$U/?selftest=1" >"$TMP/dom3.html" 2>"$TMP/chrome3.err"
    line=$(grep -o 'selftest: [^<]*' "$TMP/dom3.html" | head -n 1)
    echo "    $line"
    check browser_sam3 "page self-test did not pass: '${line:-no result}'" grep -q 'selftest: ok sam3 .* instances=20 drawn=[1-9]' "$TMP/dom3.html"
    check page_text_box "the page has no visible text box" grep -q '<span id="findbar">' "$TMP/dom3.html"
  else
    skipped browser_sam3 "no chromium or SAMC_SKIP_BROWSER=1"
  fi
  # soak: finds against one process, resident memory flat (as the predict soak above)
  printf '{"text": "truck", "boxes": [[248, 110, 292, 155]], "threshold": 0.2, "format": "rle"}' >"$TMP/soak_find.json"
  t0=$(date +%s.%N)
  warm=$(( SOAK_FINDS / 10 )); [ "$warm" -lt 100 ] && warm=100
  burst "$warm" find "$TMP/soak_find.json"; burst "$warm" find "$TMP/soak_find.json"
  rss0=$(rss_kb "$S3")
  burst "$SOAK_FINDS" find "$TMP/soak_find.json"
  n200=$(grep -c '^200$' "$TMP/codes")
  rss1=$(rss_kb "$S3")
  t1=$(date +%s.%N)
  growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.3f", (b - a) * 100 / a }')
  echo "    find soak: $n200 of $(wc -l <"$TMP/codes") finds 200, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; RSS after warm-up ${rss0} kB, at end ${rss1} kB (${growth}%)"
  check find_soak_answers "$n200 of $SOAK_FINDS finds got 200" test "$n200" -ge "$SOAK_FINDS"
  if [ "$SANITIZED" = 1 ]; then
    skipped find_soak_rss "sanitized build: resident memory includes the sanitizer's quarantine"
  else
    check find_soak_rss "resident memory grew ${growth}% (> 1%)" awk -v g="$growth" 'BEGIN { exit !(g <= 1) }'
  fi
  stop "$S3" sam3
fi
# without a vocabulary: text is refused with how to give one, boxes still work
if [ -f "$M3" ] && START_MODEL=$M3 start sam3_novocab; then
  req POST /v1/images --data-binary "@$IMG"; NID=$(field id)
  expect find_no_vocab 400 "--vocab" POST "/v1/images/$NID/find" -d '{"text": "truck"}'
  req POST "/v1/images/$NID/find" -d '{"boxes": [[248, 110, 292, 155]]}'
  check find_no_vocab_boxes "HTTP $CODE" test "$CODE" = 200
  stop "$PID" sam3_novocab
else bad sam3_novocab.start "did not start"; fi

# ---- command line ----------------------------------------------------------------------
"$SAMC" serve --model "$MODEL" --host nowhere >/dev/null 2>"$TMP/err"; rc=$?
check bad_host "exit $rc or no error line" test "$rc" = 2 -a "$(grep -c '^samc: error: --host' "$TMP/err")" = 1
"$SAMC" serve --model "$MODEL" --port 0 --data-dir "$TMP/missing" >/dev/null 2>"$TMP/err"; rc=$?
check bad_data_dir "exit $rc or no error line" test "$rc" = 1 -a "$(grep -c 'data-dir' "$TMP/err")" = 1

echo "cli_serve: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
