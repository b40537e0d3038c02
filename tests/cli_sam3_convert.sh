#!/usr/bin/env bash
# tests/cli_sam3_convert.sh: `samc convert` and `samc info` on SAM3 files from outside, and
# weights/download.sh sam3 against a stand-in hub (file:// URLs serving the micro
# checkpoint as sam3.pt): the vocabulary from --vocab / SAMC_VOCAB lands in the file, its
# absence is said, SAM2.1 files refuse --vocab and ignore SAMC_VOCAB, bad vocabularies and
# truncated checkpoints fail with one error line. The library side is tested in depth by
# tests/test_sam3_convert.c. Fails when the golden data is missing.
# Prints "N passed, N failed, N skipped" last.
set -u
unset SAMC_VOCAB SAMC_DEBUG
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
case "$GOLDEN" in /*) ;; *) GOLDEN="$(pwd)/$GOLDEN" ;; esac
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_sam3.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
SUITE=cli_sam3_convert
. "$(dirname "$0")/lib_cli.sh"

PT=$GOLDEN/sam3/micro/weights/micro.pt
VOCAB=$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz
SAM2=$GOLDEN/micro/weights/micro.pt
if [ ! -f "$PT" ] || [ ! -f "$VOCAB" ] || [ ! -f "$SAM2" ]; then
  : >"$TMP/err"; bad golden_data "missing under $GOLDEN (set SAMC_GOLDEN)"
  echo "cli_sam3_convert.sh: $pass passed, $fail failed, $skip skipped"; exit 1
fi

# with the vocabulary: one file is the whole model
if expect_ok convert_vocab "$SAMC" convert "$PT" -o "$TMP/m.safetensors" --vocab "$VOCAB"; then
  check convert_vocab.report "no SAM3 sam3_micro line" grep -q "SAM3 'sam3_micro' from the pt layout, 316 tensors" "$TMP/out"
  check convert_vocab.quiet "stderr not empty" test ! -s "$TMP/err"
fi
if expect_ok info_vocab "$SAMC" info "$TMP/m.safetensors"; then
  check info_vocab.config "no config line" grep -q '^config: *SAM3 sam3_micro (image 252x252)' "$TMP/out"
  check info_vocab.vocab "no vocabulary line" grep -q '^vocabulary: *embedded' "$TMP/out"
  check info_vocab.modules "no module rows" grep -q '^  backbone.language_backbone *31 tensors' "$TMP/out"
  check info_vocab.meta "merges printed in full" grep -q 'tokenizer.bpe_merges (524604 bytes, 48894 lines)' "$TMP/out"
fi
# without: said on stderr and by info
if expect_ok convert_novocab "$SAMC" convert "$PT" -o "$TMP/n.safetensors" --dtype bf16 --image-only; then
  check convert_novocab.notice "no notice" grep -q 'notice: no vocabulary embedded' "$TMP/err"
fi
expect_ok info_novocab "$SAMC" info "$TMP/n.safetensors" && check info_novocab.none "no 'none'" grep -q '^vocabulary: *none' "$TMP/out"
expect_ok info_plan "$SAMC" info "$TMP/n.safetensors" --device cuda --precision bf16 &&
  check info_plan.device "no device plan" grep -q '^device plan: .* MiB for the model' "$TMP/out"
expect_ok info_pt "$SAMC" info "$PT" && check info_pt.layout "no official layout" grep -q 'sam3_micro (image 252x252), official layout' "$TMP/out"
# SAMC_VOCAB: used for SAM3, ignored for SAM2.1
SAMC_VOCAB=$VOCAB expect_ok env_vocab "$SAMC" convert "$PT" -o "$TMP/e.safetensors" &&
  check env_vocab.embedded "not embedded" grep -q 'vocabulary: embedded from SAMC_VOCAB' "$TMP/out"
SAMC_VOCAB=$VOCAB expect_ok env_vocab_sam2 "$SAMC" convert "$SAM2" -o "$TMP/s2.safetensors" &&
  check env_vocab_sam2.family "not SAM2.1" grep -q "SAM2.1 'micro'" "$TMP/out"
# refusals: one error line each
expect_fail vocab_for_sam2 "SAM3 models only" "$SAMC" convert "$SAM2" -o "$TMP/x.safetensors" --vocab "$VOCAB"
printf '#version: 0.2\ni n\nt h\n' >"$TMP/short.txt"
expect_fail vocab_line_count "2 merge lines" "$SAMC" convert "$PT" -o "$TMP/x.safetensors" --vocab "$TMP/short.txt"
SAMC_VOCAB=$TMP/short.txt expect_fail env_vocab_bad "SAMC_VOCAB" "$SAMC" convert "$PT" -o "$TMP/x.safetensors"
head -c 5000000 "$PT" >"$TMP/sam3.pt"
expect_fail truncated_pt "sam3.pt" "$SAMC" convert "$TMP/sam3.pt" -o "$TMP/x.safetensors"
expect_fail truncated_info "sam3.pt" "$SAMC" info "$TMP/sam3.pt"
cp "$SAM2" "$TMP/sam3.pt"
expect_fail sam2_as_sam3 "not SAM3" "$SAMC" convert "$TMP/sam3.pt" -o "$TMP/x.safetensors"

# weights/download.sh sam3 against a stand-in hub
HUB=$TMP/hub
mkdir -p "$HUB/facebook/sam3/resolve/main" "$TMP/w"
cp "$PT" "$HUB/facebook/sam3/resolve/main/sam3.pt"
DL=$(cd "$(dirname "$0")/.." && pwd)/weights/download.sh
out=$(HF_TOKEN= bash "$DL" sam3 2>&1); rc=$?
if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -q 'gated' && printf '%s' "$out" | grep -q 'HF_TOKEN'; then ok download_no_token
else : >"$TMP/err"; bad download_no_token "exit $rc: $out"; fi
if command -v curl >/dev/null 2>&1; then
  if expect_ok download_sam3 env HF_TOKEN=x SAMC="$SAMC" SAMC_HF_URL="file://$HUB" SAMC_VOCAB_URL="file://$VOCAB" \
       SAMC_WEIGHTS_DIR="$TMP/w" bash "$DL" sam3 --dtype f16; then
    check download_sam3.sha "no sha256 line" grep -q "sam3.pt: $(stat -c %s "$PT") bytes, sha256 $(sha256sum "$PT" | cut -d' ' -f1)" "$TMP/out"
    check download_sam3.vocab "vocabulary not embedded" grep -q 'vocabulary: embedded' "$TMP/out"
    expect_ok download_sam3.info "$SAMC" info "$TMP/w/sam3_f16.safetensors" &&
      check download_sam3.info_vocab "no vocabulary" grep -q '^vocabulary: *embedded' "$TMP/out"
  fi
  printf 'not the vocabulary' >"$TMP/badvocab.gz"
  rm -f "$TMP/w/bpe_simple_vocab_16e6.txt.gz"
  out=$(HF_TOKEN=x SAMC="$SAMC" SAMC_HF_URL="file://$HUB" SAMC_VOCAB_URL="file://$TMP/badvocab.gz" SAMC_WEIGHTS_DIR="$TMP/w" \
        bash "$DL" sam3 2>&1); rc=$?
  if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -q 'bpe_simple_vocab_16e6.txt.gz.part: 18 bytes, expected 1356917' &&
     [ ! -f "$TMP/w/bpe_simple_vocab_16e6.txt.gz" ]; then ok download_bad_vocab
  else : >"$TMP/err"; bad download_bad_vocab "exit $rc: $out"; fi
  # a hub that publishes the LFS size and sha256 (X-Linked-Size / X-Linked-Etag): the
  # download is checked against them, a wrong hash refuses the file
  if [ -x /usr/bin/python3 ]; then
    cat >"$TMP/hub.py" <<'PY'
import http.server, os, sys
path, sha, portfile = sys.argv[1:4]
class Hub(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(302)
        self.send_header("X-Linked-Size", str(os.path.getsize(path)))
        self.send_header("X-Linked-Etag", '"%s"' % sha)
        self.send_header("Location", "/file")
        self.end_headers()
    def do_GET(self):
        data = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hub)
open(portfile, "w").write(str(server.server_port))
server.serve_forever()
PY
    for case in right wrong; do
      sha=$(sha256sum "$PT" | cut -d' ' -f1)
      [ "$case" = right ] || sha=$(printf '%064d' 1)
      rm -f "$TMP/port" "$TMP/w/sam3.pt" "$TMP/w/bpe_simple_vocab_16e6.txt.gz.part"
      /usr/bin/python3 "$TMP/hub.py" "$PT" "$sha" "$TMP/port" & hub_pid=$!
      for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
      out=$(HF_TOKEN=x SAMC="$SAMC" SAMC_HF_URL="http://127.0.0.1:$(cat "$TMP/port")" SAMC_VOCAB_URL="file://$VOCAB" \
            SAMC_WEIGHTS_DIR="$TMP/w" bash "$DL" sam3 --no-convert 2>&1); rc=$?
      kill "$hub_pid" 2>/dev/null; wait "$hub_pid" 2>/dev/null
      if [ "$case" = right ] && [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q 'size and sha256 as the hub publishes them'; then ok download_hub_hash.right
      elif [ "$case" = wrong ] && [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -q "expected $sha (corrupted download"; then ok download_hub_hash.wrong
      else : >"$TMP/err"; bad "download_hub_hash.$case" "exit $rc: $out"; fi
    done
  else
    skipped download_hub_hash "/usr/bin/python3 not installed"
  fi
else
  skipped download_sam3 "curl not installed"
fi

echo "cli_sam3_convert.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
