#!/usr/bin/env bash
# tests/cli_find.sh: `samc find` (SAM3 concept prompts) from outside, on the synthetic
# sam3_micro model (masks mean nothing; semantics, files and errors are checked) and the
# golden truck_320x240.png with the golden CLIP vocabulary:
# * outputs: DIR/instances.json (valid JSON, one record per mask PNG, RLE = the PNG),
#   overlay.png, mask PNGs, --json as one document on stdout, --save-raw names / shapes;
# * semantics: score > threshold strictly and in query order, -1 keeps every query, a
#   threshold above every score finds nothing (exit 0), --max-detections keeps the best,
#   several --text on one encoding equal separate runs, exemplar-only boxes, negative
#   boxes, the vocabulary from the model file, --vocab or SAMC_VOCAB;
# * bad input, each one "samc: error:" line naming the argument: empty, blank and
#   punctuation-only text, bytes that are not UTF-8, boxes outside the image or inverted,
#   bad labels, SAM2.1 weights to find and SAM3 weights to segment / everything, truncated
#   and foreign checkpoints, a missing vocabulary; a text longer than the context is cut
#   as the official tokenizer does, with a notice.
# Missing golden data or python3 fail the suite. Prints "N passed, N failed, N skipped" last.
set -u
unset SAMC_DEBUG SAMC_BACKEND SAMC_VOCAB
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
[ -d "$GOLDEN" ] && GOLDEN=$(cd "$GOLDEN" && pwd)
PY=/usr/bin/python3
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_find.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

SUITE=cli_find
. "$(dirname "$0")/lib_cli.sh"
finish() { echo "tests/cli_find.sh: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit; }

IMG=$GOLDEN/images/truck_320x240.png
VOCAB=$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz
PT=$GOLDEN/sam3/micro/weights/micro.pt
M3=$TMP/sam3_micro.safetensors
M2=$TMP/micro.safetensors

# ---- help ------------------------------------------------------------------------------
expect_ok help "$SAMC" find --help &&
  check help_content "help lacks the semantics, options or examples" bash -c "
    for k in 'score = sigmoid' 'strictly greater' --threshold --max-detections --box --point --vocab \
             --save-raw instances.json overlay.png 'visual'; do grep -q -- \"\$k\" '$TMP/out' || exit 1; done
    [ \$(grep -c '^  samc find' '$TMP/out') -ge 4 ]"
expect_ok listed "$SAMC" help && check listed_in_help "not in samc help" grep -q '^  find ' "$TMP/out"

for f in "$IMG" "$VOCAB" "$PT"; do
  [ -f "$f" ] || { fail=$((fail+1)); echo "NOT OK $SUITE.golden_data: missing $f"; finish; }
done
[ -x "$PY" ] || { fail=$((fail+1)); echo "NOT OK $SUITE.python: $PY not found"; finish; }
if ! "$SAMC" synth --config sam3_micro -o "$M3" >/dev/null 2>"$TMP/err" ||
   ! "$SAMC" synth --config micro -o "$M2" >/dev/null 2>>"$TMP/err"; then
  bad synth "samc synth failed"; finish
fi

# pycheck NAME WHY FILE EXPR: EXPR (Python, `d` = the JSON document in FILE) is true.
pycheck() {
  local name=$1 why=$2 file=$3 expr=$4
  if "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$file" \
       2>"$TMP/pyerr"; then ok "$name"; else cp "$TMP/pyerr" "$TMP/err"; bad "$name" "$why"; fi
}
F=("$SAMC" find "$IMG" --model "$M3" --vocab "$VOCAB")

# ---- a text: files, JSON, threshold semantics ------------------------------------------
expect_ok text_run "${F[@]}" --text truck --threshold 0.25 --out "$TMP/o1" --save-raw "$TMP/raw1.safetensors"
check text_files "instances.json or overlay.png missing" bash -c "
  [ -s '$TMP/o1/instances.json' ] && head -c 8 '$TMP/o1/overlay.png' | od -An -tx1 | tr -d ' \n' | grep -q ^89504e47"
pycheck text_records "records lack keys, break the threshold or query order, or mismatch the PNGs" "$TMP/o1/instances.json" "
  len(d['instances']) > 0 and all(set(i) >= {'text','score','box','area','query','segmentation','file'} for i in d['instances'])
  and all(i['text'] == 'truck' and i['score'] > 0.25 and len(i['box']) == 4 for i in d['instances'])
  and [i['query'] for i in d['instances']] == sorted(i['query'] for i in d['instances'])
  and sorted(i['file'] for i in d['instances']) == sorted(f for f in __import__('os').listdir('$TMP/o1') if f.startswith('t0_k'))
  and all(sum(i['segmentation']['counts'][1::2]) == i['area'] for i in d['instances'])
  and all(i['segmentation']['size'] == [240, 320] for i in d['instances'])"
check text_report "text report lacks the instance lines" bash -c "grep -q \"^'truck': [0-9]* instances with score > 0.25\" '$TMP/out' && grep -q '  t0_k0_q' '$TMP/out'"
"$PY" - "$TMP/raw1.safetensors" >"$TMP/out" 2>"$TMP/err" <<'EOF'
import json, struct, sys
h = json.loads(open(sys.argv[1], 'rb').read()[8:8 + struct.unpack('<Q', open(sys.argv[1], 'rb').read(8))[0]])
want = {'out.pred_logits': [1, 20, 1], 'out.pred_boxes': [1, 20, 4], 'out.pred_masks': [1, 20, 72, 72],
        'out.presence_logit_dec': [1, 1]}
got = {k: v['shape'] for k, v in h.items() if k != '__metadata__'}
sys.exit(0 if got == want and all(v['dtype'] == 'F32' for k, v in h.items() if k != '__metadata__') else 1)
EOF
check save_raw_names "--save-raw names or shapes differ from the golden ones" [ $? -eq 0 ]

mkdir "$TMP/cwd" && cd "$TMP/cwd" || exit 1
expect_ok json_only "${F[@]}" --text truck --threshold -1 --json
cp "$TMP/out" "$TMP/all.json"
check json_no_files "--json without --out must write no files" bash -c "[ -z \"\$(ls -A '$TMP/cwd')\" ]"
expect_ok default_dir "${F[@]}" --text truck --threshold 0.25
check default_dir_files "without --out and --json the files go to <image>_find" test -s "$TMP/cwd/truck_320x240_find/instances.json"
cd - >/dev/null || exit 1
pycheck json_keep_all "--threshold -1 must keep all 20 queries, in order, named" "$TMP/all.json" "
  [i['query'] for i in d['instances']] == list(range(20)) and all(i['text'] == 'truck' and 'segmentation' not in i for i in d['instances'])
  and d['texts'][0]['queries'] == 20"
expect_ok none_found "${F[@]}" --text truck --threshold 0.99 --json
pycheck none_found_empty "a threshold above every score must give an empty list" "$TMP/out" "d['instances'] == []"
expect_ok max_det "${F[@]}" --text truck --threshold -1 --max-detections 3 --json
"$PY" -c "
import json, sys
a = json.load(open(sys.argv[1]))['instances']; m = json.load(open(sys.argv[2]))['instances']
best = sorted(sorted(a, key=lambda i: -i['score'])[:3], key=lambda i: i['query'])
sys.exit(0 if [i['query'] for i in m] == [i['query'] for i in best] else 1)" "$TMP/all.json" "$TMP/out" 2>"$TMP/err"
check max_det_best "--max-detections 3 must keep the 3 best scores in query order" [ $? -eq 0 ]

# ---- several texts on one encoding = separate runs ---------------------------------------
expect_ok two_texts "${F[@]}" --text roof --text "a red car" --threshold -1 --json --save-raw "$TMP/raw2.safetensors"
cp "$TMP/out" "$TMP/two.json"
expect_ok second_alone "${F[@]}" --text "a red car" --threshold -1 --json
"$PY" -c "
import json, sys
two = json.load(open(sys.argv[1])); one = json.load(open(sys.argv[2]))
t1 = [(i['query'], i['score'], i['box']) for i in two['instances'] if i['text_index'] == 1 and i['text'] == 'a red car']
sys.exit(0 if t1 == [(i['query'], i['score'], i['box']) for i in one['instances']] and len(two['texts']) == 2 else 1)" \
  "$TMP/two.json" "$TMP/out" 2>"$TMP/err"
check two_texts_equal "the second of two texts must equal its own run" [ $? -eq 0 ]
check two_texts_raw "--save-raw with two texts must prefix t0. and t1." bash -c "
  head -c 2000 '$TMP/raw2.safetensors' | grep -aq '\"t0.out.pred_masks\"' && head -c 2000 '$TMP/raw2.safetensors' | grep -aq '\"t1.out.presence_logit_dec\"'"

# ---- exemplars --------------------------------------------------------------------------
expect_ok box_only "${F[@]}" --box 248,110,292,155 --threshold -1 --json
pycheck box_only_visual "an exemplar-only prompt has text null" "$TMP/out" "len(d['instances']) == 20 and d['instances'][0]['text'] is None"
expect_ok box_only_no_vocab "$SAMC" find "$IMG" --model "$M3" --box 248,110,292,155 --json
expect_ok negative_box "${F[@]}" --text window --box 168,62,228,90,0 --threshold -1 --json
cp "$TMP/out" "$TMP/neg.json"
expect_ok positive_box "${F[@]}" --text window --box 168,62,228,90 --threshold -1 --json
check neg_differs "a negative exemplar must change the scores" bash -c "! cmp -s <(grep score '$TMP/neg.json') <(grep score '$TMP/out')"
expect_ok text_point "${F[@]}" --text door --point 200,110 --out "$TMP/o2"

# ---- the vocabulary: in the file, --vocab, SAMC_VOCAB ------------------------------------
if "$SAMC" convert "$PT" -o "$TMP/with_vocab.safetensors" --vocab "$VOCAB" >/dev/null 2>"$TMP/err"; then
  expect_ok vocab_in_file "$SAMC" find "$IMG" --model "$TMP/with_vocab.safetensors" --text truck --threshold -1 --json
  check vocab_in_file_same "results differ from --vocab" bash -c "cmp -s <(grep -E 'score|query' '$TMP/out') <(grep -E 'score|query' '$TMP/all.json')"
else bad vocab_convert "samc convert --vocab failed"; fi
expect_ok vocab_env env SAMC_VOCAB="$VOCAB" "$SAMC" find "$IMG" --model "$M3" --text truck --threshold -1 --json
check vocab_env_same "SAMC_VOCAB results differ from --vocab" bash -c "cmp -s <(grep -E 'score|query' '$TMP/out') <(grep -E 'score|query' '$TMP/all.json')"

# ---- long text: cut to 32 tokens as the official tokenizer does, with a notice ----------
LONG="$(printf 'red %.0s' {1..30})roof of a house"
LONG2="$(printf 'red %.0s' {1..30})car on the street"
expect_ok long_text "${F[@]}" --text "$LONG" --threshold -1 --json --save-raw "$TMP/long1.safetensors"
check long_notice "no notice of the cut on stderr" grep -q "is 36 tokens: cut to 32" "$TMP/err"
pycheck long_stdout_json "stdout must stay one JSON document" "$TMP/out" "len(d['instances']) == 20"
"$SAMC" tokenize --vocab "$VOCAB" "$LONG" >"$TMP/ids" 2>/dev/null
check long_ids "samc tokenize must cut the same text to 32 ids ending in 49407" bash -c "
  [ \$(wc -w <'$TMP/ids') -eq 32 ] && [ \$(awk '{print \$NF}' '$TMP/ids') = 49407 ]"
expect_ok long_text2 "${F[@]}" --text "$LONG2" --threshold -1 --save-raw "$TMP/long2.safetensors" --json
check long_tail_ignored "texts equal in their first 31 tokens must give the same outputs" cmp -s "$TMP/long1.safetensors" "$TMP/long2.safetensors"

# ---- bad input ----------------------------------------------------------------------------
expect_fail text_empty "empty" "${F[@]}" --text ""
expect_fail text_spaces "empty" "${F[@]}" --text "   "
expect_fail text_unicode_spaces "empty" "${F[@]}" --text $'\t\xc2\xa0 \n'
expect_fail text_punctuation "no letter or digit" "${F[@]}" --text "?!..."
expect_fail text_bang "no letter or digit" "${F[@]}" --text "!"
expect_fail text_not_utf8 "not valid UTF-8" "${F[@]}" --text $'ro\xffof'
expect_fail text_not_utf8_second "not valid UTF-8" "${F[@]}" --text roof --text $'\xc3('
expect_fail box_outside "outside the 320x240 image" "${F[@]}" --text roof --box 10,10,400,50
expect_fail box_negative "outside" "${F[@]}" --box -5,10,40,50
expect_fail box_inverted "inverted" "${F[@]}" --text roof --box 50,10,40,50
expect_fail box_empty "inverted or empty" "${F[@]}" --text roof --box 10,10,10,50
expect_fail box_label "label" "${F[@]}" --text roof --box 10,10,40,50,2
expect_fail box_numbers "--box" "${F[@]}" --text roof --box 10,10,40
expect_fail point_outside "--point" "${F[@]}" --text roof --point 321,5
expect_fail point_alone "--point" "${F[@]}" --point 20,20
expect_fail no_prompt "no prompt" "$SAMC" find "$IMG" --model "$M3"
expect_fail threshold_range "--threshold" "${F[@]}" --text roof --threshold 1.5
expect_fail threshold_nan "--threshold" "${F[@]}" --text roof --threshold nan
expect_fail max_det_negative "--max-detections" "${F[@]}" --text roof --max-detections -1
expect_fail missing_model "--model" "$SAMC" find "$IMG" --text roof
expect_fail missing_image "IMAGE" "$SAMC" find --model "$M3" --text roof
expect_fail unknown_flag "--frobnicate" "${F[@]}" --text roof --frobnicate
expect_fail out_is_file "not a folder" "${F[@]}" --text roof --out "$IMG"
expect_fail sam2_to_find "SAM2.1 model" "$SAMC" find "$IMG" --model "$M2" --text roof
expect_fail sam3_to_segment "SAM3 model" "$SAMC" segment "$IMG" --model "$M3" --point 10,10 --out "$TMP/s"
expect_fail sam3_to_everything "SAM3 model" "$SAMC" everything "$IMG" --model "$M3" --out "$TMP/e"
head -c 200000 "$M3" >"$TMP/truncated.safetensors"
expect_fail truncated_model "past the end" "${F[@]}" --text roof --model "$TMP/truncated.safetensors"
expect_fail foreign_model "not a weight file" "$SAMC" find "$IMG" --model "$IMG" --text roof
expect_fail sam3_pt_direct "samc convert" "$SAMC" find "$IMG" --model "$PT" --text roof
expect_fail no_vocabulary "SAMC_VOCAB" "$SAMC" find "$IMG" --model "$M3" --text roof
expect_fail vocab_missing_file "cannot read" "$SAMC" find "$IMG" --model "$M3" --vocab "$TMP/none.txt.gz" --text roof
echo "not a vocabulary" >"$TMP/bad_vocab.txt"
expect_fail vocab_bad_file "--vocab" "$SAMC" find "$IMG" --model "$M3" --vocab "$TMP/bad_vocab.txt" --text roof

finish
