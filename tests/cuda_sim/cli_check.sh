#!/usr/bin/env bash
# tests/cuda_sim/cli_check.sh: the acceptance checkers through the unchanged CLI on the
# CUDA backend (SAMC_BACKEND=cuda), which SAMC_CUDA_LIB points at the simulator
# (tests/cuda_sim/sim_test.sh sets it):
#   sim_cli.micro_cuda       shared/tools/golden_check.py, SAM2.1 micro golden, fp32
#   sim_cli.sam3_micro_cuda  tests/sam3_golden_check.py, the six SAM3 micro cases through
#                            `samc find`, fp32 (SAM3's ops and the ViT on the CUDA backend)
#   sim_cli.sam3_micro_cuda_bf16 / _fp16  the same cases with --precision bf16 / fp16
#                            (SAMC_PRECISION): the linear weights in 16 bits only; the same
#                            detections, scores and mask IoU against the fp32 golden within
#                            the bounds measured in kernels/cuda/NOTES.md ("SAM3 on a 4 GB
#                            card"): bf16 IoU >= 0.87, scores +-1e-3, <= 0.5 % of
#                            mask pixels differ; fp16 0.98, +-2e-4, 0.06 %
#   sim_cli.sam3_micro_cuda_fp16_gemm_tc  the fp16 cases again with SAMC_CUDA_VARIANT_GEMM=tc
#                            (every linear our tensor-core GEMM, kernels/cuda/gemm_tc.cu)
#   sim_cli.sam3_bench_cuda  build/bench/bench_sam3 --device cuda (make gpu-check's sam3
#                            stage) on sam3_micro, fp32 and bf16: device times from the CUDA
#                            events, the device memory, and the same prompts' results as
#                            cpu_fast (fp32: kept count and top queries equal)
set -u
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
CHECKER=${SAMC_GOLDEN_CHECK:-$GOLDEN/../tools/golden_check.py}
SAM3_CHECKER=$(dirname "$0")/../sam3_golden_check.py
VOCAB=$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz
TMP=$(mktemp -d /tmp/samc_sim_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0; fail=0

# check NAME WHAT CMD...: one verdict from a checker's exit status and VERDICT line.
check() {
  local name=$1 what=$2 rc
  shift 2
  SAMC_BACKEND=cuda "$@" >"$TMP/log" 2>&1
  rc=$?
  sed 's/^/    /' "$TMP/log" | tail -n 12
  if [ "$rc" -eq 0 ] && grep -q '^VERDICT' "$TMP/log"; then
    echo "OK     $name: $what"; pass=$((pass + 1))
  else
    echo "NOT OK $name (checker exit $rc)"; fail=$((fail + 1))
  fi
}

if [ ! -f "$CHECKER" ] || ! /usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null || [ ! -d "$GOLDEN/micro" ]; then
  echo "NOT OK sim_cli.micro_cuda: the checker, python3 numpy / Pillow or $GOLDEN/micro is missing"; fail=$((fail + 1))
else
  check sim_cli.micro_cuda "golden_check.py passes with samc --device cuda on the simulator" \
    /usr/bin/python3 "$CHECKER" --samc "$SAMC" --golden "$GOLDEN/micro" --config micro --work "$TMP/w"
fi
if [ ! -d "$GOLDEN/sam3/micro" ] || [ ! -f "$VOCAB" ]; then
  echo "NOT OK sim_cli.sam3_micro_cuda: $GOLDEN/sam3/micro or its vocabulary is missing"; fail=$((fail + 1))
else
  check sim_cli.sam3_micro_cuda "the six SAM3 micro cases pass with samc find --device cuda on the simulator" \
    /usr/bin/python3 "$SAM3_CHECKER" --samc "$SAMC" --golden "$GOLDEN/sam3/micro" --vocab "$VOCAB" --work "$TMP/w3"
  # precision, least mask IoU, score tolerance, most differing mask pixels per case:
  # measured worst 0.8808 / 4.7e-4 / 0.32 % (bf16) and 0.9936 / 5.9e-5 / 0.041 % (fp16) with
  # the ViT, fusion encoder and neck in 16 bits and the convolutions on the 16-bit GEMM,
  # kernels/cuda/NOTES.md ("The SAM3 neck in 16 bits")
  for spec in bf16:0.87:1e-3:0.005 fp16:0.98:2e-4:0.0006; do
    IFS=: read -r prec iou stol flips <<<"$spec"
    check "sim_cli.sam3_micro_cuda_$prec" "the six SAM3 micro cases in $prec (16-bit-only linear weights): same detections, scores +-$stol, mask IoU >= $iou, <= $flips of mask pixels differ" \
      env SAMC_PRECISION="$prec" /usr/bin/python3 "$SAM3_CHECKER" --samc "$SAMC" --golden "$GOLDEN/sam3/micro" \
      --vocab "$VOCAB" --work "$TMP/w3$prec" --lowp-iou "$iou" --score-tol "$stol" --lowp-flips "$flips"
  done
  check sim_cli.sam3_micro_cuda_fp16_gemm_tc "the six SAM3 micro cases in fp16 with GEMM=tc (our tensor-core GEMM): scores +-2e-4, mask IoU >= 0.98, <= 0.0006 of mask pixels differ" \
    env SAMC_PRECISION=fp16 SAMC_CUDA_VARIANT_GEMM=tc /usr/bin/python3 "$SAM3_CHECKER" --samc "$SAMC" \
    --golden "$GOLDEN/sam3/micro" --vocab "$VOCAB" --work "$TMP/w3tc" --lowp-iou 0.98 --score-tol 2e-4 \
    --lowp-flips 0.0006
fi
BENCH_SAM3=${BENCH_SAM3:-${BUILD:-build}/bench/bench_sam3}
if [ ! -x "$BENCH_SAM3" ] || [ ! -f "$VOCAB" ]; then
  echo "NOT OK sim_cli.sam3_bench_cuda: $BENCH_SAM3 or the vocabulary is missing"; fail=$((fail + 1))
else
  B3=(sam3_micro fast 1 "$TMP/s3.safetensors" "$GOLDEN/images/truck_320x240.png" 1 --text truck --text2 wheel
      --box 76,124,124,170 --vocab "$VOCAB")
  if "$SAMC" synth --config sam3_micro -o "$TMP/s3.safetensors" >"$TMP/log" 2>&1 &&
     "$BENCH_SAM3" "${B3[@]}" --device cpu_fast --json "$TMP/b3.json" >>"$TMP/log" 2>&1 &&
     "$BENCH_SAM3" "${B3[@]}" --device cuda --precision fp32 --json "$TMP/b3.json" >>"$TMP/log" 2>&1 &&
     "$BENCH_SAM3" "${B3[@]}" --device cuda --precision bf16 --json "$TMP/b3.json" >>"$TMP/log" 2>&1 &&
     /usr/bin/python3 - "$TMP/b3.json" >>"$TMP/log" 2>&1 <<'EOF'
import json, sys
cpu, f32, b16 = [json.loads(x) for x in open(sys.argv[1])]
for r in (f32, b16):
    assert r["backend"] == "cuda" and r["device_timed"] == 1, r
    assert r["encoder_device_ms_median"] > 0 and r["model_device_mb"] > 0, r
    for k in ("text", "text2", "box"):
        assert r[k]["find_device_ms_median"] > 0 and r[k]["find_device_ms_median"] <= r[k]["ms_median"] + 1, (k, r[k])
assert cpu["backend"] == "cpu_fast" and cpu["device_timed"] == 0 and "model_device_mb" not in cpu, cpu
for k in ("text", "text2", "box"):
    assert [q for q, _ in f32[k]["top"]] == [q for q, _ in cpu[k]["top"]] and f32[k]["kept"] == cpu[k]["kept"], k
    assert max(abs(a[1] - b[1]) for a, b in zip(f32[k]["top"], cpu[k]["top"])) < 1e-4, k
print("VERDICT sam3_bench_cuda: fp32 and bf16 device-timed; fp32 = cpu_fast (kept, top 3)")
EOF
  then
    sed 's/^/    /' "$TMP/log" | grep -E 'VERDICT|sam3_micro on' | cut -c 1-200
    echo "OK     sim_cli.sam3_bench_cuda: bench_sam3 --device cuda times and measures SAM3 on the simulator"; pass=$((pass + 1))
  else
    sed 's/^/    /' "$TMP/log" | tail -n 12
    echo "NOT OK sim_cli.sam3_bench_cuda"; fail=$((fail + 1))
  fi
fi
echo "tests/cuda_sim/cli_check.sh: $pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
