#!/usr/bin/env bash
# tests/cli_tokenize.sh: `samc tokenize` from outside: the ids of a few prompts, the
# vocabulary from --vocab, SAMC_VOCAB and a model file's tokenizer.bpe_merges metadata,
# --json, notices, and the errors (no vocabulary, unreadable or malformed files, bad
# flags): one "samc: error:" line and a non-zero exit, never a crash.
#
# Runs $SAMC (set by tests/run_tests.sh; default ./samc) with the official merges file of
# the golden data ($SAMC_GOLDEN, default ../shared/golden). Prints "N passed, N failed,
# N skipped" last; exits non-zero on any failure.
set -u
unset SAMC_VOCAB SAMC_DEBUG
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
VOCAB=$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_tokenize.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

SUITE=cli_tokenize
. "$(dirname "$0")/lib_cli.sh"

# Usage errors need no vocabulary.
expect_fail no_vocab "--vocab" "$SAMC" tokenize "a red car"
expect_fail no_text "no TEXT" "$SAMC" tokenize --vocab "$VOCAB"
expect_fail unknown_flag "--frobnicate" "$SAMC" tokenize --vocab "$VOCAB" --frobnicate roof
expect_fail context_zero "--context" "$SAMC" tokenize --vocab "$VOCAB" --context 0 roof
expect_fail vocab_missing "cannot open" "$SAMC" tokenize --vocab "$TMP/none.txt.gz" roof
expect_fail env_vocab_missing "SAMC_VOCAB" env SAMC_VOCAB="$TMP/none.txt.gz" "$SAMC" tokenize roof
echo "hello, not a vocabulary" >"$TMP/text.gz"
expect_fail vocab_not_bpe "#version" "$SAMC" tokenize --vocab "$TMP/text.gz" roof
expect_fail model_missing "--model" "$SAMC" tokenize --model "$TMP/none.safetensors" roof
if expect_ok help "$SAMC" tokenize --help; then
  check help_teaches "--help lacks an example" grep -q "samc tokenize --vocab bpe_simple_vocab_16e6.txt.gz" "$TMP/out"
fi

if [ ! -f "$VOCAB" ]; then
  skipped golden "no $VOCAB (set SAMC_GOLDEN)"
  echo "tests/cli_tokenize.sh: $pass passed, $fail failed, $skip skipped"
  [ "$fail" -eq 0 ]; exit
fi

if expect_ok ids "$SAMC" tokenize --vocab "$VOCAB" "a red car" truck "wow!~" ""; then
  check ids_values "wrong ids" diff -u - "$TMP/out" <<'EOF'
49406 320 736 1615 49407
49406 4629 49407
49406 2781 0 349 49407
49406 49407
EOF
fi
if expect_ok env_vocab env SAMC_VOCAB="$VOCAB" "$SAMC" tokenize "İstanbul"; then
  check env_vocab_ids "wrong ids" grep -qx "49406 328 16384 11231 49407" "$TMP/out"
fi
if expect_ok dashdash "$SAMC" tokenize --vocab "$VOCAB" -- --roof; then
  check dashdash_ids "'--roof' not read as text" grep -qx "49406 2432 6449 49407" "$TMP/out"
fi
if expect_ok pieces "$SAMC" tokenize --vocab "$VOCAB" --pieces "Don't stop"; then
  check pieces_text "no cleaned text or tokens" grep -q "cleaned: \"don't stop\"" "$TMP/out"
  check pieces_tokens "no piece line" grep -q "'t</w>(713)" "$TMP/out"
fi

# Longer than 32 tokens: cut, last id 49407, a notice on stderr, exit 0.
long=$(printf 'word %.0s' $(seq 40))
if expect_ok truncated "$SAMC" tokenize --vocab "$VOCAB" "$long"; then
  check truncated_ids "not 32 ids ending in 49407" \
    bash -c '[ "$(wc -w <"$1")" -eq 32 ] && [ "$(awk "{print \$NF}" "$1")" = 49407 ]' _ "$TMP/out"
  check truncated_notice "no notice" grep -q "42 tokens, cut to the context length 32" "$TMP/err"
fi
if expect_ok bad_utf8 "$SAMC" tokenize --vocab "$VOCAB" "$(printf 'a\377b')"; then
  check bad_utf8_notice "no notice" grep -q "U+FFFD" "$TMP/err"
  check bad_utf8_ids "wrong ids" grep -qx "49406 320 39802 321 49407" "$TMP/out"
fi

if expect_ok json "$SAMC" tokenize --vocab "$VOCAB" --json "A red car." "wow!~"; then
  check json_doc "not the JSON document" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
p = d["prompts"]
assert d["context_length"] == 32 and len(p) == 2
assert p[0]["ids"][:6] == [49406, 320, 736, 1615, 269, 49407] and len(p[0]["ids"]) == 32
assert p[0]["cleaned"] == "a red car." and p[0]["n_tokens"] == 6 and not p[0]["truncated"]
assert p[1]["pad_mask"][:6] == [0, 0, 1, 0, 0, 1] and p[1]["pieces"][1]["tokens"] == ["!", "~</w>"]
' "$TMP/out"
fi

# Model files: one with the merges in its metadata, one without, one with a bad list.
python3 - "$VOCAB" "$TMP" <<'EOF'
import gzip, json, struct, sys
vocab, tmp = sys.argv[1], sys.argv[2]
lines = gzip.open(vocab).read().decode("utf-8").split("\n")[1:48895]
def write(path, meta):
    header = {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    if meta is not None:
        header["__metadata__"] = {"tokenizer.bpe_merges": meta}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"\0\0\0\0")
write(tmp + "/with_vocab.safetensors", "\n".join(lines))
write(tmp + "/no_vocab.safetensors", None)
write(tmp + "/short_vocab.safetensors", "\n".join(lines[:-1]))
EOF
if expect_ok model_meta "$SAMC" tokenize --model "$TMP/with_vocab.safetensors" "a red car"; then
  check model_meta_ids "wrong ids" grep -qx "49406 320 736 1615 49407" "$TMP/out"
fi
expect_fail model_no_meta "tokenizer.bpe_merges" "$SAMC" tokenize --model "$TMP/no_vocab.safetensors" roof
expect_ok model_no_meta_vocab "$SAMC" tokenize --model "$TMP/no_vocab.safetensors" --vocab "$VOCAB" roof
expect_fail model_short_meta "48893 lines" "$SAMC" tokenize --model "$TMP/short_vocab.safetensors" roof

# Broken gzip files: cut in half, and with a byte flipped in the middle.
size=$(stat -c %s "$VOCAB")
head -c $((size / 2)) "$VOCAB" >"$TMP/half.gz"
expect_fail vocab_truncated "gzip" "$SAMC" tokenize --vocab "$TMP/half.gz" roof
printf '#version: 0.2\ni n\n' | gzip >"$TMP/short.gz"
expect_fail vocab_short "48894" "$SAMC" tokenize --vocab "$TMP/short.gz" roof

echo "tests/cli_tokenize.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
