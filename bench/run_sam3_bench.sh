#!/usr/bin/env bash
# bench/run_sam3_bench.sh: samc (cpu_fast, fp32 and f16 weights) vs the official PyTorch
# SAM3 image model, side by side on one machine, for BENCHMARKS.md. See bench/README.md.
#
# 1. Check (CHECK=1): the PyTorch harness on sam3_micro (the weights samc synth writes)
#    against the goldens (a_text, b_text_posbox), and samc on the same weights, image and
#    prompts against that PyTorch run.
# 2. samc-synth-v1 weights of CONFIG (`samc synth`), and their f16 conversion
#    (`samc convert --dtype f16`).
# 3. The same rounds on each side, one process at a time, same thread count:
#    set_image, set_text_prompt(TEXT), set_text_prompt(TEXT2), add_geometric_prompt(BOX)
#    (bench_sam3 --json; bench/pytorch_sam3_bench.py); peak RSS of each process.
# 4. A markdown table (bench/sam3_bench_report.py), the commands, the CPU, raw JSON lines.
#
# Environment (all optional except SAM3_SRC, unless SKIP_TORCH=1):
#   CONFIG        sam3 (default, the official 1008-px model) or sam3_micro
#   THREADS       threads for samc and torch (default 2)
#   ITERS         timed rounds per process (default 3), WARMUP untimed rounds first (default 1)
#   DTYPES        samc weight dtypes to run (default "f32 f16")
#   BF16=1        also bf16 on both sides, fp32 weights: samc --precision bf16 (needs a
#                 CPU with Intel AMX) and PyTorch under torch.autocast("cpu", bfloat16)
#   TEXT, TEXT2   prompts (default truck, wheel; TEXT2= for none)
#   BOX           X0,Y0,X1,Y1 in image pixels, added after the last text (default: the
#                 golden b_text_posbox box scaled to the default image; BOX= for none)
#   THRESHOLD     keep scores > T (default 0.3145480155944824: the golden's for "truck")
#   CHECK=0       skip step 1
#   SKIP_TORCH=1  samc only (no Python with torch needed; the report still needs python3)
#   SAM3_SRC      a facebookresearch/sam3 source tree (the directory holding sam3/)
#   PYTHON        interpreter with torch 2.x, torchvision, timm, ftfy, regex, einops, iopath,
#                 huggingface_hub, numpy, PIL, safetensors (default python3)
#   GOLDEN        shared golden folder (default /work/shared/golden)
#   IMAGE         image (default GOLDEN/images/truck_1800x1200.png)
#   VOCAB         bpe_simple_vocab_16e6.txt.gz (default GOLDEN/sam3/assets/...)
#   SAMC, BENCH_SAM3  binaries (default ./samc, build/bench/bench_sam3, built if missing)
#   WEIGHTS_DIR   synthetic weights go here (default /tmp; sam3: 3.4 GB + 1.7 GB);
#                 KEEP_WEIGHTS=1 keeps them (and reuses them on the next run)
#   OUT_DIR       results (default build/sam3_bench, ignored by git)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG=${CONFIG:-sam3}
THREADS=${THREADS:-2}
ITERS=${ITERS:-3}
WARMUP=${WARMUP:-1}
DTYPES=${DTYPES:-f32 f16}
BF16=${BF16:-0}
TEXT=${TEXT:-truck}
TEXT2=${TEXT2-wheel}
GOLDEN=${GOLDEN:-/work/shared/golden}
IMAGE=${IMAGE:-$GOLDEN/images/truck_1800x1200.png}
case $(basename "$IMAGE") in
    truck_1800x1200.png) DEFAULT_BOX=427.5,697.5,697.5,956.25 ;;  # golden (76,124,124,170) x 5.625
    truck_320x240.png) DEFAULT_BOX=76,124,124,170 ;;
    *) DEFAULT_BOX= ;;
esac
BOX=${BOX-$DEFAULT_BOX}
THRESHOLD=${THRESHOLD:-0.3145480155944824}
CHECK=${CHECK:-1}
SKIP_TORCH=${SKIP_TORCH:-0}
SAM3_SRC=${SAM3_SRC:-}
PYTHON=${PYTHON:-python3}
VOCAB=${VOCAB:-$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz}
SAMC=${SAMC:-$ROOT/samc}
BENCH_SAM3=${BENCH_SAM3:-}
WEIGHTS_DIR=${WEIGHTS_DIR:-/tmp}
KEEP_WEIGHTS=${KEEP_WEIGHTS:-0}
OUT_DIR=${OUT_DIR:-$ROOT/build/sam3_bench}

die() { echo "run_sam3_bench: $*" >&2; exit 2; }

case $CONFIG in sam3 | sam3_micro) ;; *) die "CONFIG is sam3 or sam3_micro" ;; esac
[ -x "$SAMC" ] || die "no samc binary at $SAMC (run make, or set SAMC=path)"
if [ -z "$BENCH_SAM3" ]; then
    BENCH_SAM3=$ROOT/build/bench/bench_sam3
    make -C "$ROOT" -s build/bench/bench_sam3 >&2 || die "cannot build build/bench/bench_sam3"
fi
[ -x "$BENCH_SAM3" ] || die "no bench_sam3 at $BENCH_SAM3"
[ -r "$IMAGE" ] || die "image $IMAGE not readable (set IMAGE=path)"
[ -r "$VOCAB" ] || die "vocabulary $VOCAB not readable (set VOCAB=bpe_simple_vocab_16e6.txt.gz)"
REPORT_PY=python3
command -v python3 > /dev/null || REPORT_PY=$PYTHON
MICRO_JSON=$GOLDEN/sam3/micro/model_config.json
if [ "$SKIP_TORCH" != 1 ]; then
    [ -n "$SAM3_SRC" ] || die "set SAM3_SRC to a facebookresearch/sam3 source tree (or SKIP_TORCH=1)"
    [ -f "$SAM3_SRC/sam3/model_builder.py" ] || die "$SAM3_SRC has no sam3/model_builder.py"
    missing=$("$PYTHON" -c '
import importlib.util
mods = "torch torchvision timm ftfy regex einops iopath huggingface_hub numpy PIL safetensors".split()
print(" ".join(m for m in mods if importlib.util.find_spec(m) is None))' 2>/dev/null) \
        || die "$PYTHON does not run"
    [ -z "$missing" ] || die "$PYTHON lacks: $missing (bench/README.md, 'SAM3' section)"
    [ "$CONFIG" = sam3 ] || [ -r "$MICRO_JSON" ] || die "$MICRO_JSON not readable (set GOLDEN)"
fi
if [ "$CHECK" = 1 ]; then
    [ -r "$MICRO_JSON" ] && [ -r "$GOLDEN/images/truck_320x240.png" ] || die "CHECK=1 needs $GOLDEN/sam3/micro (or CHECK=0)"
fi

mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
STAMP=$(date +%Y%m%d_%H%M%S)
RESULTS=$OUT_DIR/sam3_results_$STAMP.jsonl
REPORT=$OUT_DIR/sam3_report_$STAMP.md
CMDS=$OUT_DIR/sam3_commands_$STAMP.txt
: > "$RESULTS" && : > "$CMDS" || die "cannot write in $OUT_DIR"

. "$ROOT/bench/bench_env.sh"
SAM3_REV=${SAM3_REV:-}
if [ -z "$SAM3_REV" ] && [ -n "$SAM3_SRC" ]; then
    SAM3_REV=$(git -C "$SAM3_SRC" rev-parse --short HEAD 2>/dev/null || echo "unknown (not a git checkout; set SAM3_REV)")
fi
printf '{"run":"meta","date":"%s","cpu":"%s","nproc":"%s","threads":%s,"config":"%s","samc":"%s","samc_git":"%s","sam3_src_rev":"%s","image":"%s","threshold":%s,"iters":%s,"warmup":%s,"skip_torch":%s}\n' \
    "$(date -Iseconds)" "$(json_escape "$CPU")" "$NPROC" "$THREADS" "$CONFIG" "$(json_escape "$SAMC_VERSION")" \
    "$GIT_REV" "$(json_escape "$SAM3_REV")" "$(json_escape "$(basename "$IMAGE")")" "$THRESHOLD" "$ITERS" "$WARMUP" \
    "$([ "$SKIP_TORCH" = 1 ] && echo true || echo false)" >> "$RESULTS"

# Runs a command (logged, with its exact words, in CMDS), stdout+stderr to LOG.
run_logged() {
    local log=$1; shift
    printf '%q ' "$@" | sed 's/ $//' >> "$CMDS"; echo >> "$CMDS"
    echo "+ $*" >&2
    "$@" > "$log" 2>&1
}
# Appends the JSON line in FILE to RESULTS with "label": LABEL.
add_json() {
    local label=$1 file=$2
    [ -s "$file" ] || return 1
    sed -n "s/^{/{\"label\":\"$label\",/p" "$file" | tail -n 1 >> "$RESULTS"
}
FAILED=0
fail() { echo "run_sam3_bench: $*" >&2; FAILED=1; }

SYNTHED=
synth() {  # synth CONFIG FILE: writes it unless done in this run, or KEEP_WEIGHTS=1 and it is there
    case " $SYNTHED " in *" $2 "*) return 0 ;; esac
    if [ "$KEEP_WEIGHTS" = 1 ] && [ -s "$2" ]; then
        echo "(reusing $2)" >&2
    else
        run_logged "$OUT_DIR/synth_$1.log" "$SAMC" synth --config "$1" -o "$2" || { cat "$OUT_DIR/synth_$1.log" >&2; return 1; }
    fi
    SYNTHED="$SYNTHED $2"
}

# bench_samc LABEL WEIGHTS IMAGE TEXT2 BOX ITERS WARMUP [extra args]
bench_samc() {
    local label=$1 w=$2 img=$3 t2=$4 box=$5 iters=$6 warm=$7 tmp=$OUT_DIR/$1_$STAMP.json
    shift 7
    rm -f "$tmp"
    run_logged "$OUT_DIR/$label.log" "$BENCH_SAM3" "$CONFIG_FOR_RUN" fast "$THREADS" "$w" "$img" "$iters" \
        --warmup "$warm" --text "$TEXT" --text2 "$t2" --box "$box" --threshold "$THRESHOLD" --vocab "$VOCAB" \
        --json "$tmp" "$@" || { fail "bench_sam3 ($label) failed, see $OUT_DIR/$label.log"; tail -n 5 "$OUT_DIR/$label.log" >&2; }
    add_json "$label" "$tmp" || fail "bench_sam3 ($label) wrote no JSON"
    rm -f "$tmp"
}

# bench_torch LABEL WEIGHTS IMAGE TEXT2 BOX ITERS WARMUP [extra args]
bench_torch() {
    local label=$1 w=$2 img=$3 t2=$4 box=$5 iters=$6 warm=$7; shift 7
    local cfg=()
    [ "$CONFIG_FOR_RUN" = sam3 ] || cfg=(--config-json "$MICRO_JSON")
    run_logged "$OUT_DIR/$label.log" "$PYTHON" "$ROOT/bench/pytorch_sam3_bench.py" --sam3-src "$SAM3_SRC" "${cfg[@]}" \
        --weights "$w" --image "$img" --bpe "$VOCAB" --threads "$THREADS" --iters "$iters" --warmup "$warm" \
        --text "$TEXT" --text2 "$t2" --box "$box" --threshold "$THRESHOLD" "$@" \
        || { fail "pytorch_sam3_bench ($label) failed, see $OUT_DIR/$label.log"; tail -n 5 "$OUT_DIR/$label.log" >&2; }
    # The JSON line is the last line starting with {"run": of the log (warnings go there too).
    grep '^{"run": "pytorch_sam3"' "$OUT_DIR/$label.log" | tail -n 1 > "$OUT_DIR/$label.json"
    add_json "$label" "$OUT_DIR/$label.json" || fail "pytorch_sam3_bench ($label) wrote no JSON"
    rm -f "$OUT_DIR/$label.json"
}

W_MICRO=$WEIGHTS_DIR/samc_bench_sam3_micro.safetensors
W32=$WEIGHTS_DIR/samc_bench_$CONFIG.safetensors
W16=$WEIGHTS_DIR/samc_bench_${CONFIG}_f16.safetensors

# 1. Same model, same numbers.
if [ "$CHECK" = 1 ]; then
    synth sam3_micro "$W_MICRO" || die "samc synth --config sam3_micro failed"
    CONFIG_FOR_RUN=sam3_micro
    if [ "$SKIP_TORCH" != 1 ]; then
        bench_torch check_pytorch_micro "$W_MICRO" "$GOLDEN/images/truck_320x240.png" wheel 76,124,124,170 1 0 \
            --check-golden "$GOLDEN/sam3/micro"
        grep -q '"label":"check_pytorch_micro".*"golden_ok": true' "$RESULTS" \
            || fail "the PyTorch harness does not reproduce the sam3_micro goldens (see $OUT_DIR/check_pytorch_micro.log)"
    fi
    bench_samc check_samc_micro "$W_MICRO" "$GOLDEN/images/truck_320x240.png" wheel 76,124,124,170 1 0
fi

# 2. Weights.
synth "$CONFIG" "$W32" || die "samc synth --config $CONFIG failed"
for dt in $DTYPES; do
    [ "$dt" = f32 ] && continue
    w=$WEIGHTS_DIR/samc_bench_${CONFIG}_$dt.safetensors
    if ! { [ "$KEEP_WEIGHTS" = 1 ] && [ -s "$w" ]; }; then
        run_logged "$OUT_DIR/convert_$dt.log" "$SAMC" convert "$W32" -o "$w" --dtype "$dt" \
            || die "samc convert --dtype $dt failed (see $OUT_DIR/convert_$dt.log)"
    fi
done

# 3. Timed runs, one process at a time.
CONFIG_FOR_RUN=$CONFIG
for dt in $DTYPES; do
    w=$W32
    [ "$dt" = f32 ] || w=$WEIGHTS_DIR/samc_bench_${CONFIG}_$dt.safetensors
    bench_samc "samc_$dt" "$w" "$IMAGE" "$TEXT2" "$BOX" "$ITERS" "$WARMUP"
done
[ "$BF16" = 1 ] && bench_samc samc_bf16 "$W32" "$IMAGE" "$TEXT2" "$BOX" "$ITERS" "$WARMUP" --precision bf16
if [ "$SKIP_TORCH" != 1 ]; then
    # Compare with the goldens too where they exist for this config / image / prompt.
    gold=()
    case $CONFIG in
        sam3) [ -d "$GOLDEN/sam3/sam3" ] && gold=(--check-golden "$GOLDEN/sam3/sam3") ;;
        sam3_micro) [ -d "$GOLDEN/sam3/micro" ] && gold=(--check-golden "$GOLDEN/sam3/micro") ;;
    esac
    bench_torch pytorch "$W32" "$IMAGE" "$TEXT2" "$BOX" "$ITERS" "$WARMUP" --stages "${gold[@]}"
    [ "$BF16" = 1 ] && bench_torch pytorch_bf16 "$W32" "$IMAGE" "$TEXT2" "$BOX" "$ITERS" "$WARMUP" --modes bf16 --stages
fi
if [ "$KEEP_WEIGHTS" != 1 ]; then
    rm -f "$W32" "$W_MICRO"
    for dt in $DTYPES; do [ "$dt" = f32 ] || rm -f "$WEIGHTS_DIR/samc_bench_${CONFIG}_$dt.safetensors"; done
fi

# 4. Report.
"$REPORT_PY" "$ROOT/bench/sam3_bench_report.py" "$RESULTS" "$CMDS" | tee "$REPORT"
echo "report: $REPORT" >&2
[ "$FAILED" = 0 ] || { echo "run_sam3_bench: some runs failed (see above)" >&2; exit 1; }
