#!/usr/bin/env bash
# tests/cuda_sim/teeth.sh: the simulator has teeth. Each mutation below is a bug a GPU
# port makes (a barrier dropped, a bound off by one, a wrong transposition flag in a
# cuBLAS call): the kernel file is rewritten with it (cu2cpp --replace, which fails when
# the text to replace is not there exactly once), built into its own simulated backend,
# and the op test of that op must then fail. The same op test on the unmutated backend
# must pass. Prints one line per check and "N passed, N failed, N skipped" last.
#
# SIM_SWEEP=1 also removes every __syncthreads() of the backend, one at a time
# (cu2cpp --drop-barrier), and runs the op tests of the kernel's ops on each: a barrier
# whose removal no test notices is reported, unless it is listed in REDUNDANT with why.
#
# TEETH_ONLY=PATTERN (a shell glob) runs only the mutations whose name matches it.
#
# Run by `make sim-test` (with the sweep unless SIM_SWEEP=0), which passes SIM_DIR,
# SIM_CXX, SIM_FLAGS and BUILD.
set -u
: "${SIM_DIR:?}" "${SIM_CXX:?}" "${SIM_FLAGS:?}" "${BUILD:?}"
OPS=$BUILD/tests/test_backend_ops
pass=0; fail=0; skip=0
declare -A BASELINE_DONE

# The op tests of one op (odd and small shapes) on the backend library $1, output to $2;
# TEETH_BACKEND picks the backend instance (cuda; cuda_bf16 for the 16-bit paths).
# A run where no case ran (an op name the test does not know) counts as a failure, so a
# mutation can never "survive" an empty test.
op_test() {
  SAMC_CUDA_LIB=$1 "$OPS" --backend "${TEETH_BACKEND:-cuda}" --size odd,small --op "$3" >"$2" 2>&1 &&
    ! grep -q ': 0 passed, 0 failed' "$2"
}

# mutation NAME KERNEL_FILE OP TEXT REPLACEMENT, or mutation NAME KERNEL_FILE OP --drop-barrier K
mutation() {
  local name=$1 file=$2 op=$3 dir=$SIM_DIR/teeth/$1 edit
  # shellcheck disable=SC2053
  [[ $name == ${TEETH_ONLY:-*} ]] || return 0
  if [ "$4" = --drop-barrier ]; then edit=(--drop-barrier "$5"); else edit=(--replace "$4" "$5"); fi
  mkdir -p "$dir"
  if ! "$SIM_DIR/cu2cpp" "${edit[@]}" "kernels/cuda/$file.cu" "$dir/$file.cpp" 2>"$dir/build.log" ||
     ! $SIM_CXX $SIM_FLAGS -c "$dir/$file.cpp" -o "$dir/$file.o" 2>>"$dir/build.log"; then
    echo "NOT OK teeth.$name: the mutated $file.cu does not build:"; sed 's/^/    /' "$dir/build.log"
    fail=$((fail+1)); return
  fi
  local objs
  objs=$(ls "$SIM_DIR"/kernels/*.o | grep -v "/$file.o\$")
  # shellcheck disable=SC2086
  if ! $SIM_CXX -shared -Wl,-Bsymbolic -Wl,-z,defs -o "$dir/lib.so" $objs "$dir/$file.o" "$SIM_DIR"/rt/*.o -pthread \
       2>>"$dir/build.log"; then
    echo "NOT OK teeth.$name: link failed"; sed 's/^/    /' "$dir/build.log"; fail=$((fail+1)); return
  fi
  if [ -z "${BASELINE_DONE[$op@${TEETH_BACKEND:-cuda}]:-}" ]; then
    BASELINE_DONE[$op@${TEETH_BACKEND:-cuda}]=1
    if op_test "$SIM_DIR/libsamc_cuda_sim.so" "$dir/base.log" "$op"; then
      echo "OK     teeth.unmutated_$op: the $op tests pass on the real kernels"; pass=$((pass+1))
    else
      echo "NOT OK teeth.unmutated_$op: the $op tests fail without a mutation:"
      grep '^NOT OK' "$dir/base.log" | head -3; fail=$((fail+1))
    fi
  fi
  if op_test "$dir/lib.so" "$dir/mutated.log" "$op"; then
    echo "NOT OK teeth.$name: the $op tests still pass with the mutation of $file.cu"; fail=$((fail+1))
  else
    echo "OK     teeth.$name: caught by $(grep -c '^NOT OK' "$dir/mutated.log") $op case(s), e.g."
    grep -m 1 '^NOT OK' "$dir/mutated.log" | cut -c 1-400 | sed 's/^/         /'
    pass=$((pass+1))
  fi
}

# A barrier removed: between the K-tile readers and the V-tile writers of attention, and
# between the writers and the readers of transpose's shared tile.
mutation missing_barrier_attention attention attention \
  "__syncthreads(); /* every warp is done with K (and its own pw is visible) */" "/* (barrier removed) */"
mutation missing_barrier_transpose elementwise transpose \
  "s[(size_t)r * C + cc];
                }
                __syncthreads();" "s[(size_t)r * C + cc];
                }"
# The tensor-core attention (16-bit q, k, v: the cuda_bf16 instance): the barrier between
# the K / V tile stores and the warps' fragment loads dropped, and the padded keys of the
# last tile counted as real (an off-by-one in the softmax's key bound).
TEETH_BACKEND=cuda_bf16 mutation missing_barrier_attention_tc attention_tc attention \
  "L.dp, vec);
            __syncthreads();" "L.dp, vec);"
TEETH_BACKEND=cuda_bf16 mutation off_by_one_attention_tc attention_tc attention \
  "float p = key < nk ? expf(srow[key] * scale - m) : 0.0f;" "float p = key <= nk ? expf(srow[key] * scale - m) : 0.0f;"
# Windows read in place (the window geometry of samc_attention_args): a key row at its
# plain offset instead of the window's (fp32 kernel), a window's batch offset with the
# in-window stride for the row of windows (tensor-core kernel), the split-KV combine
# writing its output rows at the plain offset (fp32, the two 9x10 windows' split keys).
mutation window_row_attention attention attention_windows \
  "const cuda_src<T> s = src.at(samc_att_split(row0 + r, tw, st, sty));" \
  "const cuda_src<T> s = src.at((ptrdiff_t)(row0 + r) * st);"
TEETH_BACKEND=cuda_bf16 mutation window_batch_attention_tc attention_tc attention_windows \
  "const T *kb = p.k + samc_att_split(bi, a.win_nx, a.k_sb, a.k_sby) + h * a.k_sh;" \
  "const T *kb = p.k + samc_att_split(bi, a.win_nx, a.k_sb, a.k_sb) + h * a.k_sh;"
mutation window_combine_attention attention attention_windows \
  "samc_att_split(i, a.q_tw, a.o_st, a.o_sty))
            .put" "(ptrdiff_t)i * a.o_st)
            .put"
# q_pool fused into the attention's Q load: one element of the 2x2 cell left out (the
# fp32 kernel, and the tensor-core kernel's pooled Q loader).
mutation pool_cell_attention attention attention_windows \
  "fmaxf(s[d + a.q_sty], s[d + a.q_sty + a.q_st])" "fmaxf(s[d + a.q_sty], s[d + a.q_sty])"
TEETH_BACKEND=cuda_bf16 mutation pool_cell_attention_tc attention_tc attention_windows \
  "fmaxf(lp_f(s[a.q_sty]), lp_f(s[a.q_sty + a.q_st]))" "fmaxf(lp_f(s[a.q_sty]), lp_f(s[a.q_sty]))"
# A bound off by one: the pixel guard of LayerNorm2d, the right border of conv2d.
mutation off_by_one_layer_norm2d norm layer_norm2d "const bool ok = p < HW;" "const bool ok = p <= HW;"
mutation off_by_one_conv2d conv conv2d "ix < 0 || ix >= W) continue;" "ix < 0 || ix > W) continue;"
# A wrong transposition flag: fp32 linear (cublasSgemm) and bf16 linear (cublasGemmEx).
mutation transpose_flag_sgemm gemm linear "cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K" \
  "cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K"
TEETH_BACKEND=cuda_bf16 mutation transpose_flag_gemmex gemm linear "gemm16(c, CUBLAS_OP_T, CUBLAS_OP_N, N, mc, K" \
  "gemm16(c, CUBLAS_OP_N, CUBLAS_OP_N, N, mc, K"
# cuBLASLt (SAMC_CUDA_VARIANT_GEMM=lt, 16-bit linear_act): the residual dropped (beta 0,
# C unread), and the bias left out of the epilogue.
SAMC_CUDA_VARIANT_GEMM=lt TEETH_BACKEND=cuda_bf16 mutation lt_residual_beta gemm linear_act \
  "const float one = 1.0f, beta = r ? 1.0f : 0.0f;" "const float one = 1.0f, beta = 0.0f;"
SAMC_CUDA_VARIANT_GEMM=lt TEETH_BACKEND=cuda_bf16 mutation lt_bias_epilogue gemm linear_act \
  ": (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);" ": CUBLASLT_EPILOGUE_DEFAULT;"
# Our tensor-core GEMM (SAMC_CUDA_VARIANT_GEMM=tc, 16-bit linear_act): the K tail's bound
# off by one (reads the next row's first elements), the next step's x tile stored into the
# buffer the warps are reading, GELU left out of the fused epilogue.
SAMC_CUDA_VARIANT_GEMM=tc TEETH_BACKEND=cuda_bf16 mutation gemm_tc_k_bound gemm_tc linear_act \
  "e[j] = k + j < K ? p[j]" "e[j] = k + j <= K ? p[j]"
SAMC_CUDA_VARIANT_GEMM=tc TEETH_BACKEND=cuda_bf16 mutation gemm_tc_buffer gemm_tc linear_act \
  "sa.store(as[cur ^ 1]);" "sa.store(as[cur]);"
SAMC_CUDA_VARIANT_GEMM=tc TEETH_BACKEND=cuda_bf16 mutation gemm_tc_gelu gemm_tc linear_act \
  "v = cuda_act(v, a.act);" "v = cuda_act(v, a.act == SAMC_ACT_GELU ? SAMC_ACT_NONE : a.act);"
# conv2d as im2col + 16-bit GEMM (bf16 / fp16, 256+ taps): the unfolding's bottom border
# off by one (a row past the image read as data), and every chunk's product written at
# the first chunk's pixels.
TEETH_BACKEND=cuda_bf16 mutation im2col_border conv conv2d \
  "const bool in = iy >= 0 && iy < H" "const bool in = iy >= 0 && iy <= H"
TEETH_BACKEND=cuda_bf16 mutation conv_gemm_chunk conv conv2d \
  "(char *)ys.p + (size_t)p0 * es," "(char *)ys.p,"
# conv_transpose2x2 as a GEMM (16-bit x): the scatter's 2x2 patch transposed, and every
# chunk scattered to the first chunk's pixels.
TEETH_BACKEND=cuda_bf16 mutation convt_scatter_patch conv conv_transpose2x2 \
  "const int co = k >> 2, ky = (k >> 1) & 1, kx = k & 1;" "const int co = k >> 2, kx = (k >> 1) & 1, ky = k & 1;"
TEETH_BACKEND=cuda_bf16 mutation convt_gemm_chunk conv conv_transpose2x2 \
  "const long long p = p0 + j, iy" "const long long p = j, iy"
# The precision map's guard against an op overwriting its own fp32 input with 16-bit
# values (lowp.cu write_as; the SAM3 ViT's first try did that, silently): removed.
TEETH_BACKEND=cuda_bf16 mutation overlap_guard lowp linear_bf16 \
  "if (t == CUDA_LP) ds = e0 / 2, de = (e0 + n + 1) / 2;" "if (t == CUDA_LP) ds = e0 / 2, de = e0 / 2;"
# Weights kept in 16 bits only (SAM3 on a 4 GB card): a linear that forgets them in the
# fp32 phase (it then reads the never-mapped stand-in: the op fails by name), and their
# 16-bit product written as 16-bit values into the fp32 phase's output.
TEETH_BACKEND=cuda_bf16 mutation weights16_fp32_phase gemm linear_bf16 \
  "int lowp = c->phase == CUDA_LP || cuda_is_standin(c, w);" "int lowp = c->phase == CUDA_LP;"
TEETH_BACKEND=cuda_bf16 mutation weights16_output_type gemm linear_bf16 \
  "yv, !out.f32, N)" "yv, 1, N)"
# The image pipeline: a lost carry between the 32-row chunks of a column's toggles, 4- for
# 8-connected regions, a reciprocal multiply for the division of to_tensor (off by an ulp
# for some bytes).
mutation toggle_carry maskpost mask_stats "unsigned tog = bits ^ ((bits << 1) | prev);" "unsigned tog = bits ^ (bits << 1);"
mutation regions_4_connected maskpost mask_stats "for (int dx = -1; dx <= 1; dx++) {" "for (int dx = 0; dx <= 0; dx++) {"
mutation to_tensor_reciprocal preprocess preprocess "__fdiv_rn((float)row[(size_t)k * 3 + c], 255.0f)" \
  "__fmul_rn((float)row[(size_t)k * 3 + c], 1.0f / 255.0f)"
# Barriers that protect nothing, found by the sweep: removing them changes no result for
# any schedule, so no test can notice. file:index  why
REDUNDANT="attention:1"  # the top of the (batch, head) loop: every reader of qs finished before the last tile's V barrier
REDUNDANT="$REDUNDANT maskpost:7"  # mask_regions_kernel's copy into dst: each thread later writes only the pixels it copied, and fill_pass reads src
if [ "${SIM_SWEEP:-0}" = 1 ]; then
  for f in kernels/cuda/*.cu; do
    file=$(basename "$f" .cu)
    n=$(grep -c '__syncthreads()' "$f")
    be=cuda gemm=gemmex
    case $file in attention) op=attention,attention_windows ;; attention_tc) op=attention,attention_windows be=cuda_bf16 ;;
                  gemm_tc) op=linear,linear_act be=cuda_bf16 gemm=tc ;;
                  conv) op=conv2d,conv_transpose2x2 ;; elementwise) op=transpose ;;
                  norm) op=layer_norm,layer_norm2d ;; maskpost) op=mask_stats ;; sam3_ops) op=group_norm ;;
                  *) op=all ;; esac
    for k in $(seq 1 "$n"); do
      case " $REDUNDANT " in *" $file:$k "*)
        echo "SKIP   teeth.sweep_${file}_$k: a redundant barrier (see REDUNDANT)"; skip=$((skip+1)); continue ;; esac
      SAMC_CUDA_VARIANT_GEMM=$gemm TEETH_BACKEND=$be mutation "sweep_${file}_$k" "$file" "$op" --drop-barrier "$k"
    done
  done
fi
echo "tests/cuda_sim/teeth.sh: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
