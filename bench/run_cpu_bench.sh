#!/usr/bin/env bash
# bench/run_cpu_bench.sh: samc cpu_fast vs samc cpu_ref vs the official PyTorch SAM2.1,
# timed in one run on one machine, for BENCHMARKS.md. See bench/README.md.
#
# For each config it writes samc-synth-v1 weights (`samc synth`), runs `samc bench` with
# the fast and the reference backend and bench/pytorch_sam2_bench.py (the official
# SAM2ImagePredictor on the same weights, image and thread count), then prints a
# markdown table, the exact commands and the CPU, and keeps every raw JSON line.
#
# Environment (all optional except SAM2_SRC, unless SKIP_TORCH=1):
#   CONFIGS       configs to run (default: tiny small base_plus large)
#   THREADS       threads for samc and torch (default 2)
#   ITERS         timed runs of samc fast (default 5), WARMUP untimed ones first (default 1)
#   REF_ITERS     timed runs of samc ref (default 1, no warm-up: it is slow)
#   TORCH_ITERS   timed runs of PyTorch (default 3), TORCH_WARMUP (default 1)
#   SKIP_REF      configs whose ref run is skipped, e.g. "large", or "all"
#   SKIP_TORCH=1  no PyTorch runs (no Python needed then)
#   SAM2_SRC      a facebookresearch/sam2 checkout (the directory holding sam2/)
#   PYTHON        interpreter with torch 1.13+, torchvision, yaml, numpy, PIL
#                 (default /usr/bin/python3: Debian 12's python3-torch 1.13; or a venv with
#                 torch 2.x from PyPI, e.g. PYTHON=/work/venv-torch/bin/python: bench/README.md)
#   SAM2_REV      the official commit, for the report when SAM2_SRC is not a git checkout
#   IMAGE         image to encode (default: the golden truck, 1800x1200)
#   SAMC          samc binary (default ./samc of this checkout)
#   WEIGHTS_DIR   where synthetic weights go (default /tmp); KEEP_WEIGHTS=1 keeps them
#   OUT_DIR       where results go (default build/cpu_bench, ignored by git)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIGS=${CONFIGS:-tiny small base_plus large}
THREADS=${THREADS:-2}
ITERS=${ITERS:-5}
WARMUP=${WARMUP:-1}
REF_ITERS=${REF_ITERS:-1}
TORCH_ITERS=${TORCH_ITERS:-3}
TORCH_WARMUP=${TORCH_WARMUP:-1}
SKIP_REF=${SKIP_REF:-}
SKIP_TORCH=${SKIP_TORCH:-0}
SAM2_SRC=${SAM2_SRC:-}
PYTHON=${PYTHON:-/usr/bin/python3}
IMAGE=${IMAGE:-/work/shared/golden/images/truck_1800x1200.png}
SAMC=${SAMC:-$ROOT/samc}
WEIGHTS_DIR=${WEIGHTS_DIR:-/tmp}
KEEP_WEIGHTS=${KEEP_WEIGHTS:-0}
OUT_DIR=${OUT_DIR:-$ROOT/build/cpu_bench}

die() { echo "run_cpu_bench: $*" >&2; exit 2; }

[ -x "$SAMC" ] || die "no samc binary at $SAMC (run make, or set SAMC=path)"
[ -r "$IMAGE" ] || die "image $IMAGE not readable (set IMAGE=path)"
if [ "$SKIP_TORCH" != 1 ]; then
    [ -n "$SAM2_SRC" ] || die "set SAM2_SRC to a facebookresearch/sam2 checkout (or SKIP_TORCH=1)"
    [ -f "$SAM2_SRC/sam2/sam2_image_predictor.py" ] || die "$SAM2_SRC has no sam2/sam2_image_predictor.py"
    "$PYTHON" -c 'import torch, torchvision, yaml, numpy, PIL' 2>/dev/null \
        || die "$PYTHON lacks torch/torchvision/yaml/numpy/PIL (Debian: apt-get install python3-torch python3-torchvision python3-yaml; PyPI: bench/README.md)"
fi

# samc bench may predate --backend: then only the default backend (auto = fast) is run.
HAVE_BACKEND=1
"$SAMC" bench --help 2>/dev/null | grep -q -- '--backend' || HAVE_BACKEND=0
"$SAMC" bench --help 2>/dev/null | grep -q -- '--json' || die "$SAMC bench has no --json"

mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
STAMP=$(date +%Y%m%d_%H%M%S)
RESULTS=$OUT_DIR/results_$STAMP.jsonl
REPORT=$OUT_DIR/report_$STAMP.md
: > "$RESULTS" || die "cannot write $RESULTS"

. "$ROOT/bench/bench_env.sh"
TORCH_SRC_REV=${SAM2_REV:-}
[ -z "$TORCH_SRC_REV" ] && [ -n "$SAM2_SRC" ] && TORCH_SRC_REV=$(git -C "$SAM2_SRC" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout (set SAM2_REV)")
printf '{"run":"meta","date":"%s","cpu":"%s","nproc":"%s","threads":%s,"samc":"%s","samc_git":"%s","sam2_src_rev":"%s","image":"%s"}\n' \
    "$(date -Iseconds)" "$(json_escape "$CPU")" "$NPROC" "$THREADS" "$(json_escape "$SAMC_VERSION")" \
    "$GIT_REV" "$(json_escape "$TORCH_SRC_REV")" "$(json_escape "$IMAGE")" >> "$RESULTS"

# A number from a one-line JSON object: json_num KEY LINE (empty when absent).
json_num() { printf '%s' "$2" | sed -n "s/.*\"$1\":[[:space:]]*\\([-0-9.eE+]*\\).*/\\1/p"; }
# Formats a number of milliseconds, or "-" when empty.
fmt() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { printf (v >= 100 ? "%.0f" : "%.1f"), v }' || printf -- '-'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "-" }' || printf -- '-'; }
skip_ref() { [ "$SKIP_REF" = all ] && return 0; for c in $SKIP_REF; do [ "$c" = "$1" ] && return 0; done; return 1; }

COMMANDS=()
# Runs a command, logs it, and appends its JSON output (compacted to one line) to
# RESULTS; the line is left in LAST, empty on failure.
run_json() {
    local log=$1; shift
    COMMANDS+=("$*")
    echo "+ $*" >&2
    local out
    if out=$("$@" 2> "$log"); then
        # cJSON prints a tab-indented multi-line object; strings here hold no tabs/newlines.
        LAST=$(printf '%s' "$out" | tr -d '\n\t')
        case $LAST in \{*\}) printf '%s\n' "$LAST" >> "$RESULTS" ;; *) LAST= ;; esac
    else
        echo "run_cpu_bench: failed (see $log):" >&2
        tail -n 5 "$log" >&2
        LAST=
    fi
}

ROWS=()
for cfg in $CONFIGS; do
    w=$WEIGHTS_DIR/samc_bench_$cfg.safetensors
    COMMANDS+=("$SAMC synth --config $cfg -o $w")
    echo "+ $SAMC synth --config $cfg -o $w" >&2
    if ! "$SAMC" synth --config "$cfg" -o "$w" > /dev/null; then
        ROWS+=("| $cfg | synth failed | | | | | | | | | |")
        continue
    fi
    params=$("$SAMC" info "$w" 2>/dev/null | sed -n 's/^parameters:[[:space:]]*\([0-9]*\).*/\1/p')

    backend_fast=(); backend_ref=()
    [ $HAVE_BACKEND = 1 ] && backend_fast=(--backend fast) && backend_ref=(--backend ref)
    run_json "$OUT_DIR/samc_fast_$cfg.log" "$SAMC" bench --model "$w" --image "$IMAGE" "${backend_fast[@]}" \
        --threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" --json
    fast=$LAST
    ref=
    if [ $HAVE_BACKEND = 1 ] && ! skip_ref "$cfg"; then
        run_json "$OUT_DIR/samc_ref_$cfg.log" "$SAMC" bench --model "$w" --image "$IMAGE" "${backend_ref[@]}" \
            --threads "$THREADS" --iters "$REF_ITERS" --warmup 0 --json
        ref=$LAST
    fi
    torch=
    if [ "$SKIP_TORCH" != 1 ]; then
        run_json "$OUT_DIR/pytorch_$cfg.log" "$PYTHON" "$ROOT/bench/pytorch_sam2_bench.py" --sam2-src "$SAM2_SRC" \
            --config "$cfg" --weights "$w" --image "$IMAGE" --threads "$THREADS" \
            --iters "$TORCH_ITERS" --warmup "$TORCH_WARMUP"
        torch=$LAST
    fi
    [ "$KEEP_WEIGHTS" = 1 ] || rm -f "$w"

    [ -n "$params" ] || params=$(json_num n_params "$torch")
    pm=$( [ -n "$params" ] && awk -v p="$params" 'BEGIN { printf "%.1fM", p / 1e6 }' || printf -- '-')
    fe=$(json_num encoder_ms "$fast"); fd=$(json_num decoder_ms "$fast"); fr=$(json_num peak_rss_mb "$fast")
    re=$(json_num encoder_ms "$ref");  rd=$(json_num decoder_ms "$ref");  rr=$(json_num peak_rss_mb "$ref")
    te=$(json_num set_image_ms_median "$torch"); td=$(json_num predict_ms_median "$torch"); tr_=$(json_num peak_rss_mb "$torch")
    ROWS+=("| $cfg | $pm | $(fmt "$fe") | $(fmt "$re") | $(fmt "$te") | $(ratio "$te" "$fe") | $(ratio "$re" "$fe") | $(fmt "$fd") | $(fmt "$rd") | $(fmt "$td") | $(fmt "$fr") / $(fmt "$rr") / $(fmt "$tr_") |")
done

TORCH_VERSION=
TORCH_DETAIL=
if [ "$SKIP_TORCH" != 1 ]; then
    json_str() { sed -n "s/.*\"$1\":[[:space:]]*\"\([^\"]*\)\".*/\\1/p" "$RESULTS" | head -n 1; }
    TORCH_VERSION=$(json_str torch_version)
    TORCH_PKG=$(json_str torch_package)
    TORCH_DETAIL="${TORCH_PKG:+ (Debian python3-torch $TORCH_PKG)}; BLAS: $(json_str blas); CPU capability: $(json_str torch_cpu_capability); resize: $(json_str resize); attention: $(json_str sdpa)"
fi

{
    echo "CPU: ${CPU:-unknown}, $NPROC logical CPUs, $THREADS threads; $(date -Iseconds)"
    echo "samc: $SAMC_VERSION, git $GIT_REV"
    [ "$SKIP_TORCH" = 1 ] || echo "PyTorch: torch ${TORCH_VERSION:-?}$TORCH_DETAIL; official sam2 at ${TORCH_SRC_REV:-?}"
    echo "Image: $IMAGE; weights: samc-synth-v1; samc fast: median of $ITERS (+$WARMUP warm-up), ref: $REF_ITERS run, PyTorch: median of $TORCH_ITERS (+$TORCH_WARMUP warm-up)"
    [ $HAVE_BACKEND = 1 ] || echo "Note: this samc bench has no --backend: the fast column is the default backend and ref was not run."
    echo
    echo "| config | params | samc fast encoder ms | samc ref encoder ms | PyTorch set_image ms | speedup fast vs PyTorch | speedup fast vs ref | samc fast decoder ms | samc ref decoder ms | PyTorch predict ms | peak RSS MiB fast / ref / PyTorch |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Encoder = samc image encode incl. preprocessing (wall) vs SAM2ImagePredictor.set_image;"
    echo "decoder = one centre point, three masks, upsampled to the image size, vs predict(multimask_output=True)."
    if [ "$SKIP_TORCH" != 1 ]; then
        IMPORT_RSS=$(json_num rss_after_import_mb "$(grep -m 1 rss_after_import_mb "$RESULTS")")
        [ -n "$IMPORT_RSS" ] && echo "PyTorch's RSS after importing torch and sam2, before any model: $(fmt "$IMPORT_RSS") MiB (part of its peak)."
    fi
    echo
    echo "Commands:"
    echo '```'
    printf '%s\n' "${COMMANDS[@]}"
    echo '```'
    echo "Raw JSON lines ($RESULTS):"
    echo '```json'
    cat "$RESULTS"
    echo '```'
} | tee "$REPORT"
echo "report: $REPORT" >&2
