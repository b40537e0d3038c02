#!/usr/bin/env bash
# tests/cli_errors.sh: the samc command line on bad input must fail cleanly: non-zero
# exit, exactly one line "samc: error: <what>: <detail>" on stderr naming the problem, and
# no crash (exit < 128, no sanitizer report). A few good calls check that the
# successful paths still write what they promise (files, JSON, help).
#
# Runs $SAMC (set by tests/run_tests.sh; default ./samc). Prints "N passed, N failed,
# N skipped" last; exits non-zero on any failure.
set -u
unset SAMC_DEBUG SAMC_BACKEND SAMC_DEVICE SAMC_PRECISION
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_errors.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

SUITE=cli_errors
. "$(dirname "$0")/lib_cli.sh"

# A 64x48 RGB PNG (gradient and a red disc), so the script needs no other data.
IMG=$TMP/small.png
base64 -d >"$IMG" <<'EOF'
iVBORw0KGgoAAAANSUhEUgAAAEAAAAAwCAIAAAAuKetIAAAA8ElEQVR42u3YvQrCMBAH8FOa2cXF
VUGcHHyXypHBQYpQB5/Bp3AQcZTDh+nQSQrt0MWlS9/AQXCzJpVKgv/jtnyUH7nANT2ifUDkcyry
OgAAAAAAAAAAANNY1vJuKBmw6wBdScPoopZ0yI4C1ncxmTavhIiyEXt+B5RjJ7DJxWr+tJRiwq4A
tjdpsWqcSzljb0vIspAAAAAAAAD4CtAnRd3lIWzTnxUhm3+iWwApOmo7Q6bZan80cwZxjjggWp0+
9EVpxM/nTqvovIReeYmbaimJud22Py2h644b3pnxUw8AAAAAAAAAAAAAAAAA/BngAdmPK920iM0l
AAAAAElFTkSuQmCC
EOF
head -c 150 "$IMG" >"$TMP/truncated.png"
: >"$TMP/empty.png"
echo "this is a text file, not a picture" >"$TMP/text.png"
# PNG signature + IHDR claiming 100000 x 100000 RGB (CRC 27309c9f) + IEND.
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00\x27\x30\x9c\x9f\x00\x00\x00\x00IEND\xae\x42\x60\x82' >"$TMP/huge.png"
mkdir "$TMP/a_directory.png"

# Model files: the micro synthetic model, garbage, a truncated copy, and a well-formed
# safetensors that is no SAM2.1 model (one tensor "x").
MODEL=$TMP/micro.safetensors
printf 'not a model at all\n%.0s' $(seq 64) >"$TMP/garbage.safetensors"
hdr='{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
while [ $(( ${#hdr} % 8 )) -ne 0 ]; do hdr="$hdr "; done
printf "$(printf '\\x%02x' $(( ${#hdr} )))\x00\x00\x00\x00\x00\x00\x00%s\x00\x00\x80\x3f\x00\x00\x00\x40" "$hdr" \
  >"$TMP/wrong_model.safetensors"

# ---- usage errors (no model needed) --------------------------------------------------
expect_fail unknown_command "unknown command 'frobnicate'" "$SAMC" frobnicate
expect_fail unknown_flag "--frobnicate" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --frobnicate
expect_fail unknown_flag_help "--help" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --frobnicate
expect_fail missing_model "--model" "$SAMC" segment "$IMG" --point 1,1
expect_fail missing_image "IMAGE" "$SAMC" segment --model "$MODEL" --point 1,1
expect_fail missing_value "missing value" "$SAMC" segment "$IMG" --model "$MODEL" --point
expect_fail flag_as_value "missing value" "$SAMC" segment "$IMG" --model --point 1,1
expect_fail no_prompt "no prompt" "$SAMC" segment "$IMG" --model "$MODEL"
expect_fail point_malformed "1,x" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,x
expect_fail point_one_number "--point" "$SAMC" segment "$IMG" --model "$MODEL" --point 5
expect_fail point_nan "--point" "$SAMC" segment "$IMG" --model "$MODEL" --point nan,1
expect_fail point_label "label" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1,2
expect_fail box_three_numbers "--box" "$SAMC" segment "$IMG" --model "$MODEL" --box 1,2,3
expect_fail box_inverted "inverted" "$SAMC" segment "$IMG" --model "$MODEL" --box 30,10,20,40
expect_fail box_inverted_y "inverted" "$SAMC" segment "$IMG" --model "$MODEL" --box 10,40,20,30
for t in 0 -1 abc 1.5 ""; do
  expect_fail "threads_'$t'" "--threads" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --threads "$t"
done
expect_fail backend_bad "--backend" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --backend gpu
expect_fail backend_env_bad "SAMC_BACKEND" env SAMC_BACKEND=gpu "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1
# --device / --precision: bad values name the flag (or variable), on every model command
for c in "segment $IMG --point 1,1 --model $MODEL" "everything $IMG --model $MODEL" "bench --model $MODEL" \
         "info $MODEL" "serve --model $MODEL"; do
  name=${c%% *}
  expect_fail "${name}_device_bad" "--device" "$SAMC" $c --device gpu
  expect_fail "${name}_precision_bad" "--precision" "$SAMC" $c --precision fp8
done
expect_fail device_missing_value "missing value" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --device
expect_fail device_env_bad "SAMC_DEVICE" env SAMC_DEVICE=tpu "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1
expect_fail precision_env_bad "SAMC_PRECISION" env SAMC_PRECISION=int8 "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1
expect_fail device_backend_clash "contradicts --backend cuda" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --device cpu --backend cuda
expect_fail device_backend_clash_bench "contradicts --backend ref" "$SAMC" bench --model "$MODEL" --device cuda --backend ref
expect_fail json_with_value "--json" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --json=yes
expect_fail extra_positional "unexpected argument" "$SAMC" segment "$IMG" "$IMG" --model "$MODEL" --point 1,1
expect_fail synth_unknown_config "unknown config" "$SAMC" synth --config huge -o "$TMP/x.safetensors"
expect_fail synth_missing_out "-o" "$SAMC" synth --config micro
expect_fail bench_iters_zero "--iters" "$SAMC" bench --model "$MODEL" --iters 0
expect_fail bench_decoder_batch_zero "--decoder-batch" "$SAMC" bench --model "$MODEL" --decoder-batch 0
expect_fail bench_decoder_batch_empty_item "--decoder-batch" "$SAMC" bench --model "$MODEL" --decoder-batch 1,,4
expect_fail bench_decoder_batch_too_big "--decoder-batch" "$SAMC" bench --model "$MODEL" --decoder-batch 16385
expect_fail bench_missing_model "--model" "$SAMC" bench
expect_fail convert_bad_dtype "--dtype" "$SAMC" convert in.pt -o "$TMP/o.safetensors" --dtype f8
expect_fail info_missing_file "FILE" "$SAMC" info

# ---- image files (checked before any model is loaded) -------------------------------
expect_fail image_missing "cannot open" "$SAMC" segment "$TMP/nope.png" --model "$MODEL" --point 1,1
expect_fail image_empty "empty" "$SAMC" segment "$TMP/empty.png" --model "$MODEL" --point 1,1
expect_fail image_truncated "truncated" "$SAMC" segment "$TMP/truncated.png" --model "$MODEL" --point 1,1
expect_fail image_text "not a supported image" "$SAMC" segment "$TMP/text.png" --model "$MODEL" --point 1,1
expect_fail image_directory "not a regular file" "$SAMC" segment "$TMP/a_directory.png" --model "$MODEL" --point 1,1
start=$(date +%s%N)
expect_fail image_huge_header "100000x100000" "$SAMC" segment "$TMP/huge.png" --model "$MODEL" --point 1,1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check image_huge_header_fast "took ${ms} ms" [ "$ms" -lt 2000 ]

# ---- prompts against the decoded 64x48 image ----------------------------------------
expect_fail point_outside_x "64x48" "$SAMC" segment "$IMG" --model "$MODEL" --point 65,10
expect_fail point_outside_y "outside" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,48.5
expect_fail point_negative "outside" "$SAMC" segment "$IMG" --model "$MODEL" --point -1,10
expect_fail box_outside "64x48" "$SAMC" segment "$IMG" --model "$MODEL" --box 10,10,70,20
expect_fail box_outside_batch "outside" "$SAMC" segment "$IMG" --model "$MODEL" --box 1,1,5,5 --box 1,1,5,50

# ---- outputs that cannot be written -------------------------------------------------
expect_fail out_dir_missing "cannot write" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/no/such/dir/mask"
expect_fail out_dir_is_file "not a directory" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$IMG/mask"
expect_fail lowres_dir_missing "cannot write" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/m" --save-lowres "$TMP/no/such/low.safetensors"
expect_fail synth_dir_missing "cannot write" "$SAMC" synth --config micro -o "$TMP/no/such/micro.safetensors"

# ---- model files ---------------------------------------------------------------------
expect_fail model_missing "model" "$SAMC" segment "$IMG" --model "$TMP/none.safetensors" --point 10,10 --out "$TMP/m"
expect_fail model_garbage "model" "$SAMC" segment "$IMG" --model "$TMP/garbage.safetensors" --point 10,10 --out "$TMP/m"
expect_fail model_wrong "model" "$SAMC" segment "$IMG" --model "$TMP/wrong_model.safetensors" --point 10,10 --out "$TMP/m"
expect_fail info_garbage "model" "$SAMC" info "$TMP/garbage.safetensors"
expect_fail convert_missing "convert" "$SAMC" convert "$TMP/none.pt" -o "$TMP/o.safetensors"

# ---- good calls on the micro synthetic model ----------------------------------------
expect_ok help "$SAMC" help && check help_lists_commands "no command list" grep -q segment "$TMP/out"
expect_ok bare "$SAMC" && check bare_lists_commands "no command list" grep -q bench "$TMP/out"
expect_ok segment_help "$SAMC" segment --help &&
  check segment_help_content "help lacks prompts or examples" \
    bash -c "grep -q -- --box '$TMP/out' && grep -q -- --mask-input '$TMP/out' && [ \$(grep -c '^  samc segment' '$TMP/out') -ge 3 ]"
for c in info bench synth convert version; do expect_ok "${c}_help" "$SAMC" "$c" --help; done
for c in segment everything bench info serve; do
  expect_ok "${c}_help_device" "$SAMC" "$c" --help &&
    check "${c}_help_lists_device" "help lacks --device or --precision" \
      bash -c "grep -q -- '--device D' '$TMP/out' && grep -q -- '--precision P' '$TMP/out' && grep -q bf16 '$TMP/out'"
done
expect_ok version "$SAMC" version && check version_features "no features line" grep -q '^features: ' "$TMP/out"

if expect_ok synth_micro "$SAMC" synth --config micro -o "$MODEL"; then
  head -c 100000 "$MODEL" >"$TMP/truncated.safetensors"
  expect_fail model_truncated "model" "$SAMC" segment "$IMG" --model "$TMP/truncated.safetensors" --point 10,10 --out "$TMP/m"
  expect_ok info_micro "$SAMC" info "$MODEL" && check info_names_config "no 'micro'" grep -q micro "$TMP/out"

  expect_ok segment_point "$SAMC" segment "$IMG" --model "$MODEL" --point 20.5,10 --out "$TMP/pt" --save-lowres "$TMP/pt_low.safetensors"
  check segment_point_three_masks "missing PNGs" bash -c "for j in 0 1 2; do [ -s '$TMP/pt_'\$j.png ] || exit 1; done; [ ! -e '$TMP/pt_3.png' ]"
  check segment_point_png "not a PNG" is_png "$TMP/pt_0.png"
  expect_ok segment_mask_input "$SAMC" segment "$IMG" --model "$MODEL" --point 20.5,10 --point 50,40,0 --mask-input "$TMP/pt_low.safetensors" --out "$TMP/mi"
  check segment_mask_input_single "want one mask" bash -c "[ -s '$TMP/mi_0.png' ] && [ ! -e '$TMP/mi_1.png' ]"
  expect_fail mask_input_wrong "low_res_masks" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --mask-input "$TMP/wrong_model.safetensors" --out "$TMP/m"
  expect_fail mask_input_missing "mask-input" "$SAMC" segment "$IMG" --model "$MODEL" --point 1,1 --mask-input "$TMP/none.safetensors" --out "$TMP/m"

  expect_ok segment_boxes_json "$SAMC" segment "$IMG" --model "$MODEL" --box 1,1,30,30 --box 20,10,60,47 --point 25,20 --out "$TMP/bx" --json
  check segment_boxes_files "missing batch PNGs" bash -c "[ -s '$TMP/bx_b0_0.png' ] && [ -s '$TMP/bx_b1_0.png' ] && [ ! -e '$TMP/bx_b0_1.png' ]"
  check segment_json_fields "JSON lacks fields" bash -c "for k in masks iou area bbox object_scores timings width height config; do grep -q \"\\\"\$k\\\"\" '$TMP/out' || exit 1; done"
  check segment_json_one_object "stdout is not one object" bash -c "[ \"\$(head -c1 '$TMP/out')\" = '{' ] && [ \"\$(tail -n1 '$TMP/out')\" = '}' ]"

  # Default prefix: <image name>_mask in the current directory.
  expect_ok segment_default_prefix bash -c "cd '$TMP' && '$SAMC' segment small.png --model micro.safetensors --point 5,5,1"
  check segment_default_prefix_file "no small_mask_0.png" test -s "$TMP/small_mask_0.png"

  expect_ok bench_json "$SAMC" bench --model "$MODEL" --image "$IMG" --iters 2 --warmup 0 --json
  check bench_json_fields "JSON lacks fields" bash -c "for k in encoder_ms decoder_ms stages peak_rss_mb threads backend precision config; do grep -q \"\\\"\$k\\\"\" '$TMP/out' || exit 1; done"
  # --decoder-batch: one decoder_batch entry per count, in order, each with its times per
  # call and per prompt (what make gpu-check's bench stage reads).
  expect_ok bench_decoder_batch "$SAMC" bench --model "$MODEL" --image "$IMG" --iters 1 --warmup 0 --decoder-batch 1,5 --json
  tr -d ' \n\t' <"$TMP/out" >"$TMP/bench_flat.json"
  num='[0-9.e+-]*'
  check bench_decoder_batch_json "decoder_batch is not [prompts 1, prompts 5] with times" grep -q \
    "\"decoder_batch\":\[{\"prompts\":1,\"ms\":$num,\"us_per_prompt\":$num,\"device_us_per_prompt\":$num},{\"prompts\":5,\"ms\":$num,\"us_per_prompt\":$num,\"device_us_per_prompt\":$num}\]" \
    "$TMP/bench_flat.json"
  expect_ok bench_decoder_batch_text "$SAMC" bench --model "$MODEL" --image "$IMG" --iters 1 --warmup 0 --decoder-batch 3
  check bench_decoder_batch_line "no 'decoder batch 3:' line" grep -q '^decoder batch 3: .* us per prompt' "$TMP/out"

  # fp16 needs the CUDA backend; bf16 runs on the CPU only where it has AMX
  # (`samc version`: cpu_bf16=amx), and on the reference backend never: elsewhere a clear
  # error at load, naming why.
  expect_fail precision_fp16_cpu "--precision fp16 needs the CUDA backend" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/p" --device cpu --precision fp16
  expect_fail precision_ref_backend "needs the CUDA backend" "$SAMC" bench --model "$MODEL" --backend ref --precision fp16 --iters 1
  expect_fail precision_ref_bf16 "the reference backend computes in fp32" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/p" --backend ref --precision bf16
  # SAMC_CPU_ISA=avx2 stands for a CPU without AVX-512 (and so without AMX)
  expect_fail precision_bf16_avx2 "needs Intel AMX" env SAMC_CPU_ISA=avx2 "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/p" --device cpu --precision bf16
  if "$SAMC" version | grep -q 'cpu_bf16=amx'; then
    expect_ok precision_bf16_cpu "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/pb" --device cpu --precision bf16
    expect_ok precision_env_cpu env SAMC_PRECISION=bf16 "$SAMC" info "$MODEL" --device cpu &&
      check precision_bf16_info "info lacks 'cpu_fast (bf16)'" grep -q '^backend: *cpu_fast (bf16)' "$TMP/out"
  else
    expect_fail precision_bf16_cpu "needs Intel AMX" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/p" --device cpu --precision bf16
    expect_fail precision_default_backend "needs Intel AMX" "$SAMC" segment "$IMG" --model "$MODEL" --point 10,10 --out "$TMP/p" --precision bf16
    expect_fail precision_env_cpu "needs Intel AMX" env SAMC_PRECISION=bf16 "$SAMC" info "$MODEL" --device cpu
  fi
  expect_ok precision_fp32_cpu "$SAMC" info "$MODEL" --device cpu --precision fp32 &&
    check precision_fp32_info "info lacks '(fp32)'" grep -q '^backend: .*(fp32)' "$TMP/out"

  # --device auto: where samc finds no CUDA device it says so in one line and runs on
  # the CPU, with the same masks as --device cpu (and fp32 for a reduced precision).
  expect_ok segment_device_cpu "$SAMC" segment "$IMG" --model "$MODEL" --point 20.5,10 --out "$TMP/dcpu" --json --device cpu
  cp "$TMP/out" "$TMP/dcpu.json"
  if expect_ok segment_device_auto "$SAMC" segment "$IMG" --model "$MODEL" --point 20.5,10 --out "$TMP/dauto" --json --device auto; then
    cp "$TMP/err" "$TMP/dauto.err"; cp "$TMP/out" "$TMP/dauto.json"
    if grep -q 'running on the CPU' "$TMP/dauto.err"; then
      check device_auto_notice "want one line 'samc: no CUDA device (...): running on the CPU'" \
        bash -c "[ \$(grep -c '' '$TMP/dauto.err') -eq 1 ] && grep -q '^samc: no CUDA device (.*): running on the CPU\$' '$TMP/dauto.err'"
      check device_auto_same_masks "masks differ from --device cpu" \
        bash -c "for j in 0 1 2; do cmp -s '$TMP/dauto_'\$j.png '$TMP/dcpu_'\$j.png || exit 1; done"
      check device_auto_same_json "JSON differs from --device cpu beyond timings and file names" \
        bash -c "diff <(grep -v -e '_ms\"' -e '\"file\"' '$TMP/dauto.json') <(grep -v -e '_ms\"' -e '\"file\"' '$TMP/dcpu.json') >/dev/null"
      expect_ok device_auto_bf16 "$SAMC" segment "$IMG" --model "$MODEL" --point 20.5,10 --out "$TMP/dauto16" --device auto --precision bf16
      if "$SAMC" version | grep -q 'cpu_bf16=amx'; then  # bf16 on the CPU's AMX
        check device_auto_bf16_notice "no 'in bf16 (AMX)' notice" grep -q 'running on the CPU in bf16 (AMX)$' "$TMP/err"
      else
        check device_auto_bf16_notice "no 'in fp32 instead of bf16' notice" grep -q 'running on the CPU in fp32 instead of bf16: .*AMX' "$TMP/err"
        check device_auto_bf16_masks "masks differ from --device cpu" cmp -s "$TMP/dauto16_0.png" "$TMP/dcpu_0.png"
      fi
      expect_ok info_device_auto "$SAMC" info "$MODEL" --device auto &&
        check info_device_auto_cpu "info does not show a CPU backend" grep -q '^backend: *cpu_' "$TMP/out"
    else
      skipped device_auto_cpu_fallback "a CUDA device is usable here: --device auto ran on it"
    fi
  fi
  # the CUDA backend is a library loaded on demand: a samc copied away from it still runs
  # on the CPU, and --device cuda names the library it could not load
  if "$SAMC" version | grep -q 'cuda=compiled'; then
    mkdir -p "$TMP/alone" && cp "$SAMC" "$TMP/alone/samc"
    expect_fail cuda_lib_missing "libsamc_cuda.so" env -u LD_LIBRARY_PATH "$TMP/alone/samc" segment "$IMG" \
      --model "$MODEL" --point 1,1 --out "$TMP/alone/m" --device cuda
    expect_ok cuda_lib_missing_cpu_runs env -u LD_LIBRARY_PATH "$TMP/alone/samc" segment "$IMG" --model "$MODEL" \
      --point 1,1 --out "$TMP/alone/m" --device cpu
  else
    skipped cuda_lib_missing "built without CUDA"
  fi
else
  echo "SKIP   cli_errors: the model-dependent checks (samc synth failed)"
  skip=$((skip+1))
fi

echo "tests/cli_errors.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
