# samc: one Makefile. `make` builds ./samc (CPU always, CUDA when nvcc is found),
# `make test` builds and runs every test, `make debug` builds with ASan/UBSan.
CC      ?= cc
CFLAGS  ?= -O2 -g
# stb's headers (Debian libstb-dev); the GPU package points this at its own copy.
STB_CFLAGS ?= -I/usr/include/stb
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I. $(STB_CFLAGS) -pthread
LDLIBS  += -lm -pthread -ldl
# zlib (zlib1g-dev): the SAM3 tokenizer reads the official gzipped BPE merges file.
LDLIBS  += -lz
BUILD   ?= build

# Sources are found by folder so that adding a file never means editing this list.
LIB_SRC  := $(sort $(wildcard util/*.c loader/*.c kernels/*.c model/*.c model/*/*.c convert/*.c pipelines/amg/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
SERVE_SRC := $(sort $(wildcard serve/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
SERVE_OBJ := $(SERVE_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

# The fast CPU kernels are compiled for AVX2+FMA (kernels/*_avx2.c) and AVX-512
# (kernels/*_avx512.c) in their own files and chosen at run time by CPU features, so
# one binary runs on any x86-64.
$(BUILD)/kernels/%_avx2.o: override CFLAGS += -mavx2 -mfma -mf16c
$(BUILD)/kernels/%_avx512.o: override CFLAGS += -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma
# AMX (kernels/*_amx.c): the bf16 GEMM of --precision bf16 on the CPU, run only where the
# CPU has it (samc_fast_amx_usable).
$(BUILD)/kernels/%_amx.o: override CFLAGS += -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl -mavx512bf16

# CUDA: built when nvcc is on PATH (or NVCC=...), otherwise a stub says "not compiled".
NVCC ?= $(shell command -v nvcc 2>/dev/null)
CUDA_SRC := $(sort $(wildcard kernels/cuda/*.cu))
ifneq ($(NVCC),)
ifneq ($(CUDA_SRC),)
  # The toolkit's root as nvcc itself reports it (`-dryrun` prints TOP=<root>/bin/..), so a
  # wrapper script such as /usr/local/bin/nvcc -> exec /usr/local/cuda-13.0/bin/nvcc still
  # finds the toolkit's lib64 and include; the path's parent only if nvcc does not say.
  CUDA_HOME ?= $(or $(shell $(NVCC) -dryrun -E -x cu /dev/null 2>&1 | \
                 sed -n 's|^\#\$$ TOP=\(.*\)/bin/\.\.$$|\1|p' | head -n 1), \
                 $(patsubst %/bin/nvcc,%,$(NVCC)))
  CUDA_OBJ  := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
  # The CUDA backend is its own shared library, loaded (dlopen) only when a command asks
  # for the GPU: linking cuBLAS/cuDNN into samc cost every CPU run ~215 MB of resident
  # memory in relocations, and a binary that needs them cannot start where they are not
  # installed. kernels/cuda_stub.c finds and loads it (see there).
  CUDA_SO   := $(BUILD)/libsamc_cuda.so
  override CFLAGS += -DSAMC_HAVE_CUDA=1
  CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lcublasLt
  # sm_75 (Turing, T4) for --precision fp16 there; sm_80 / sm_90 and compute_80 PTX.
  # CUDA_ARCH picks other targets (the GPU package: sm_90 only); NVCC_CCBIN another host
  # compiler (CUDA 11.8 accepts g++ <= 11 or clang <= 14: .ci/cuda118).
  CUDA_ARCH ?= --gpu-architecture=sm_80 -gencode arch=compute_75,code=sm_75 \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
  NVCC_HOST := $(if $(NVCC_CCBIN),-ccbin $(NVCC_CCBIN))
  NVFLAGS   ?= -O2 -std=c++17 -Xcompiler -fPIC -I. $(NVCC_HOST) $(CUDA_ARCH)
  $(info samc: nvcc found at $(NVCC) (toolkit $(CUDA_HOME)): building the CUDA backend)
endif
else
  $(info samc: nvcc not found: CPU-only build)
endif

LIB := $(BUILD)/libsamc.a
# serve/ (`samc serve`'s HTTP service) is a library of its own that tools/cmd_serve.c calls.
SERVE_LIB := $(BUILD)/libsamc_serve.a
# SERVE=0 builds samc without `samc serve` (no libmicrohttpd): its command then only says
# so (bench/gpu_check/no_serve.c). The GPU package (make gpu-package) is built this way.
SERVE ?= 1
ifeq ($(SERVE),0)
  TOOL_SRC := $(filter-out tools/cmd_serve.c,$(TOOL_SRC)) bench/gpu_check/no_serve.c
  TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
  SERVE_LIB :=
  SERVE_LDLIBS :=
else
  SERVE_LDLIBS := -lmicrohttpd
endif

# GDAL (Debian libgdal-dev) for `samc mosaic`: raster and vector I/O of mosaic/. Found by
# gdal-config; without it samc builds without the mosaic command, whose tests then skip.
# libyaml (libyaml-dev) reads sam-mosaic's YAML config files.
GDAL_CONFIG ?= $(shell command -v gdal-config 2>/dev/null)
MOSAIC_SRC := $(sort $(wildcard pipelines/mosaic/*.c))
ifneq ($(GDAL_CONFIG),)
  GDAL_CFLAGS := $(shell $(GDAL_CONFIG) --cflags)
  GDAL_LIBS   := $(shell $(GDAL_CONFIG) --libs)
  MOSAIC_OBJ  := $(MOSAIC_SRC:%.c=$(BUILD)/%.o)
  MOSAIC_LIB  := $(BUILD)/libsamc_mosaic.a
  MOSAIC_LDLIBS := $(MOSAIC_LIB) $(GDAL_LIBS) -lyaml
  override CFLAGS += -DSAMC_HAVE_GDAL=1 $(GDAL_CFLAGS)
  $(info samc: GDAL $(shell $(GDAL_CONFIG) --version) found: building `samc mosaic`)
else
  TEST_SRC := $(filter-out tests/test_mosaic_%,$(TEST_SRC))
  TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
  $(info samc: gdal-config not found (Debian: libgdal-dev): building without `samc mosaic`)
endif

SAMC_BIN ?= samc

.PHONY: all test debug clean weights
all: $(SAMC_BIN)

$(BUILD)/%.o: %.c $(wildcard */*.h */*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu $(wildcard kernels/cuda/*.cuh) kernels/ops.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -I$(BUILD)/gen -c $< -o $@

# The backend's switches (kernels/cuda/variants.txt) as rows that kernels/cuda/variants.cu
# compiles in: SAMC_VARIANT_SWITCH("NAME", "VALUE ...") and SAMC_VARIANT_CHOOSE("NAME", SM, "VALUE").
VARIANTS_INC := $(BUILD)/gen/kernels/cuda/variants.inc
$(VARIANTS_INC): kernels/cuda/variants.txt
	@mkdir -p $(dir $@)
	awk 'BEGIN { print "/* generated from kernels/cuda/variants.txt by the Makefile */" } \
	     { sub(/#.*/, "") } NF == 0 { next } \
	     $$1 == "switch" && NF >= 3 && $$2 ~ /^[A-Z0-9_]+$$/ { v = $$3; for (i = 4; i <= NF; i++) v = v " " $$i; \
	         printf "SAMC_VARIANT_SWITCH(\"%s\", \"%s\")\n", $$2, v; next } \
	     $$1 == "choose" && NF == 4 && $$3 ~ /^[0-9]+$$/ { printf "SAMC_VARIANT_CHOOSE(\"%s\", %d, \"%s\")\n", $$2, $$3, $$4; next } \
	     { printf "%s:%d: not \"switch NAME VALUE...\" nor \"choose NAME SM VALUE\"\n", FILENAME, FNR > "/dev/stderr"; exit 1 }' \
	    $< > $@.tmp && mv $@.tmp $@
$(BUILD)/kernels/cuda/variants.o: $(VARIANTS_INC)

$(LIB): $(LIB_OBJ) $(CUDA_SO)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LIB_OBJ)

$(CUDA_SO): $(CUDA_OBJ)
	$(NVCC) $(NVCC_HOST) -shared -o $@ $^ $(CUDA_LIBS) $(CUDA_SO_LDFLAGS)

$(MOSAIC_LIB): $(MOSAIC_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SERVE_LIB): $(SERVE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SAMC_BIN): $(TOOL_OBJ) $(SERVE_LIB) $(LIB) $(MOSAIC_LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $(TOOL_OBJ) $(SERVE_LIB) $(MOSAIC_LDLIBS) $(LIB) -o $@ $(LDLIBS) -lstb -lcjson $(SERVE_LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(LIB) $(MOSAIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(MOSAIC_LDLIBS) $(LIB) -o $@ $(LDLIBS) -lstb -lcjson

test: $(SAMC_BIN) $(TEST_BIN)
	@SAMC=./$(SAMC_BIN) BUILD=$(BUILD) bash tests/run_tests.sh $(TEST_BIN)

debug:
	$(MAKE) BUILD=build-debug SAMC_BIN=build-debug/samc CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	        LDFLAGS="-fsanitize=address,undefined" NVCC= test

clean:
	rm -rf build build-debug samc

# CUDA simulator (tests/cuda_sim/, kernels/cuda/NOTES.md), kept out of `all` and `test`: the
# real kernels/cuda/*.cu compiled as C++ against fake CUDA headers, GPU threads as fibers,
# cuBLAS / cuBLASLt emulated on the host. Needs only a C++20 compiler (no nvcc, no GPU).
# build/sim/libsamc_cuda_sim.so is the CUDA backend for SAMC_CUDA_LIB (kernels/cuda_stub.c);
# `make sim-test` runs the op tests, the micro goldens and the simulator's own tests on it.
SIM_CXX  ?= $(or $(shell command -v g++ 2>/dev/null),$(shell command -v clang++ 2>/dev/null))
SIM_DIR  := $(BUILD)/sim
SIM_SWEEP ?= 1
comma    := ,
SIM_CLANG := $(findstring clang,$(shell $(SIM_CXX) --version 2>/dev/null | head -n 1))
# Out-of-bounds constant-size array indices and misaligned vector loads trap (SIGILL), and
# the simulator turns the trap into a CUDA error naming the kernel, block and thread.
SIM_TRAP := $(if $(SIM_CLANG),-fsanitize=array-bounds$(comma)alignment -fsanitize-trap=array-bounds$(comma)alignment,\
            -fsanitize=bounds$(comma)alignment -fsanitize-undefined-trap-on-error)
# No FMA contraction and no strict aliasing (kernels read float arrays as float4);
# uninitialised locals start as a pattern, not as whatever the stack held.
SIM_FLAGS ?= -std=c++20 -O2 -g
override SIM_FLAGS += -fPIC -fno-strict-aliasing -ffp-contract=off -ftrivial-auto-var-init=pattern \
             -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -I. -Itests/cuda_sim/include $(SIM_TRAP)
SIM_HDR  := $(wildcard tests/cuda_sim/include/*.h) tests/cuda_sim/sim.h
SIM_RT   := $(patsubst tests/cuda_sim/%.cpp,$(SIM_DIR)/rt/%.o,$(wildcard tests/cuda_sim/*.cpp))
SIM_CU   := $(patsubst kernels/cuda/%.cu,$(SIM_DIR)/kernels/%.o,$(sort $(wildcard kernels/cuda/*.cu)))
SIM_LIB  := $(SIM_DIR)/libsamc_cuda_sim.so

.PHONY: sim sim-test
sim: $(SIM_LIB) $(SIM_DIR)/test_sim
# the generated C++ stays, to read what the compiler saw
.PRECIOUS: $(SIM_DIR)/kernels/%.cpp $(SIM_DIR)/test_sim.cpp

$(SIM_DIR)/cu2cpp: tests/cuda_sim/cu2cpp.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=c11 -Wall -Wextra $< -o $@

$(SIM_DIR)/kernels/%.cpp: kernels/cuda/%.cu $(SIM_DIR)/cu2cpp
	@mkdir -p $(dir $@)
	$(SIM_DIR)/cu2cpp $< $@

$(SIM_DIR)/kernels/%.o: $(SIM_DIR)/kernels/%.cpp $(wildcard kernels/cuda/*.cuh) kernels/ops.h $(SIM_HDR)
	$(SIM_CXX) $(SIM_FLAGS) -I$(BUILD)/gen -c $< -o $@
$(SIM_DIR)/kernels/variants.o: $(VARIANTS_INC)

# The simulator's own symbols stay inside the library, but for the CUDA API it provides.
$(SIM_DIR)/rt/%.o: tests/cuda_sim/%.cpp $(SIM_HDR)
	@mkdir -p $(dir $@)
	$(SIM_CXX) $(SIM_FLAGS) -fvisibility=hidden -c $< -o $@

# The simulator's own tests (tests/cuda_sim/test_sim.cu), a program linked with its runtime.
$(SIM_DIR)/test_sim.cpp: tests/cuda_sim/test_sim.cu $(SIM_DIR)/cu2cpp
	$(SIM_DIR)/cu2cpp $< $@

$(SIM_DIR)/test_sim: $(SIM_DIR)/test_sim.cpp $(SIM_RT) tests/test.h $(SIM_HDR)
	$(SIM_CXX) $(SIM_FLAGS) $< $(SIM_RT) -o $@ -pthread

sim-test: $(SIM_LIB) $(SIM_DIR)/test_sim $(SAMC_BIN) $(BUILD)/tests/test_backend_ops $(BUILD)/tests/test_golden \
          $(BUILD)/tests/test_encode_batch $(BUILD)/tests/test_device_pipeline $(BUILD)/tests/test_amg \
          $(BUILD)/bench/bench_sam3 $(filter %/test_mosaic_multipass,$(TEST_BIN))
	@BUILD=$(BUILD) SAMC=./$(SAMC_BIN) SIM_DIR=$(SIM_DIR) SIM_CXX="$(SIM_CXX)" SIM_FLAGS="$(SIM_FLAGS)" \
	  SIM_SWEEP=$(SIM_SWEEP) bash tests/cuda_sim/sim_test.sh

# -Bsymbolic: the simulator's cudaMalloc & co. bind to themselves even in a process that
# also has the real libcudart loaded globally.
$(SIM_LIB): $(SIM_CU) $(SIM_RT)
	$(SIM_CXX) -shared -Wl,-Bsymbolic -Wl,-z,defs -o $@ $^ -pthread

# Fuzzing (clang + libFuzzer with ASan/UBSan), kept out of `all` and `test`:
# `make fuzz` builds $(BUILD)/fuzz/fuzz_pt and fuzz_safetensors, tests/fuzz/run.sh runs
# them; `make fuzz-seeds` rewrites the small seed corpora in tests/fuzz/corpus_*.
FUZZ_CC    ?= clang
FUZZ_FLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_INC   := -std=c11 -D_GNU_SOURCE -I.
.PHONY: fuzz fuzz-seeds
fuzz: $(BUILD)/fuzz/fuzz_pt $(BUILD)/fuzz/fuzz_safetensors $(BUILD)/fuzz/fuzz_serve_request

$(BUILD)/fuzz/fuzz_pt: tests/fuzz/fuzz_pt.c loader/pt.c loader/sha256.c loader/safetensors.c tests/pt_writer.h $(wildcard loader/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_INC) $(filter %.c,$^) -o $@ -pthread -lm

$(BUILD)/fuzz/fuzz_safetensors: tests/fuzz/fuzz_safetensors.c loader/safetensors.c $(wildcard loader/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_INC) $(filter %.c,$^) -o $@ -pthread -lm

# The request parsing of `samc serve`; amg_options_check comes from the (uninstrumented) library.
$(BUILD)/fuzz/fuzz_serve_request: tests/fuzz/fuzz_serve_request.c serve/serve_parse.c serve/serve_parse.h $(LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_INC) $(filter %.c,$^) $(LIB) -o $@ $(LDLIBS) -lcjson

fuzz-seeds: tests/fuzz/gen_seeds.c loader/pt.c loader/sha256.c loader/safetensors.c tests/pt_writer.h
	@mkdir -p $(BUILD)/fuzz tests/fuzz/corpus_pt tests/fuzz/corpus_st
	$(CC) -O1 -g $(FUZZ_INC) $(filter %.c,$^) -o $(BUILD)/fuzz/gen_seeds -pthread -lm
	$(BUILD)/fuzz/gen_seeds tests/fuzz

# Downloads the official SAM2.1 checkpoints (sizes and sha256 checked) and converts them
# to safetensors with the freshly built samc (weights/README.md).
weights: $(SAMC_BIN)
	SAMC=./$(SAMC_BIN) bash weights/download.sh

# Kernel benchmark, kept out of `all` and `test`: GFLOP/s of cpu_fast's GEMM, attention
# and conv on SAM2.1 shapes vs cpu_ref and the measured FMA peak (THREADS=n to pick).
.PHONY: bench-ops
bench-ops: $(BUILD)/bench/bench_gemm
	$(BUILD)/bench/bench_gemm $(THREADS)

$(BUILD)/bench/bench_gemm: tests/bench/bench_gemm.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) -o $@ $(LDLIBS)

# SAM3 per-stage times, peak RSS and arena, kept out of `all` and `test`:
# make bench-sam3 CONFIG=sam3 BACKEND=fast THREADS=2 [WEIGHTS=file] [IMAGE=png] [ITERS=n]
#                 [SAM3_BENCH_ARGS="--warmup 1 --text2 wheel --box X0,Y0,X1,Y1 --vocab F --json F"]
# (options: tests/bench/bench_sam3.c; the side-by-side with PyTorch: bench/run_sam3_bench.sh)
.PHONY: bench-sam3
bench-sam3: $(BUILD)/bench/bench_sam3
	$(BUILD)/bench/bench_sam3 $(or $(CONFIG),sam3_micro) $(or $(BACKEND),fast) $(or $(THREADS),2) "$(WEIGHTS)" "$(IMAGE)" $(or $(ITERS),1) $(SAM3_BENCH_ARGS)

$(BUILD)/bench/bench_sam3: tests/bench/bench_sam3.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) -o $@ $(LDLIBS) -lstb

# Mosaic scale benchmark, kept out of `all` and `test`: `samc mosaic`'s pipeline with the
# oracle mask source on a generated SIZE x SIZE GeoTIFF of Voronoi cells (time, peak RSS,
# stats.json timings). make bench-mosaic SIZE=20000 TILE=1000 DIR=/tmp/samc_bench_mosaic
.PHONY: bench-mosaic
bench-mosaic: $(BUILD)/bench/bench_mosaic
	$(BUILD)/bench/bench_mosaic $(or $(SIZE),20000) $(or $(TILE),1000) $(or $(DIR),/tmp/samc_bench_mosaic)

$(BUILD)/bench/bench_mosaic: tests/bench/bench_mosaic.c tests/mosaic_oracle.h tests/mosaic_testdata.h $(LIB) $(MOSAIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(MOSAIC_LDLIBS) $(LIB) -o $@ $(LDLIBS) -lcjson

# the shared oracle and test-data headers are not in the generic test rule's prerequisites
$(BUILD)/tests/test_mosaic_pipeline $(BUILD)/tests/test_mosaic_shard: tests/mosaic_oracle.h tests/mosaic_testdata.h

# The GPU check (bench/gpu_check/, kernels/cuda/NOTES.md), kept out of `all` and `test`.
# `make gpu-package` writes $(GPU_PKG)/: the golden cases, stb / cJSON headers and
# libraries from Debian's .deb files, the official sam2 package from PyPI and the binaries
# built against only those (sm_90); `make gpu-check` runs the check on a GPU machine from
# that folder, writing report.md / report.json / logs.tar.gz into GPU_CHECK_OUT ($OUT on
# the device machine); `make gpu-check DRY_RUN=1` packages and runs it in a clean copy here,
# with the system's -dev packages hidden, every GPU step marked not run.
GPU_PKG       ?= gpu-check-pkg
GPU_CHECK_OUT ?= $(or $(OUT),build/gpu-check)
GPU_PYTHON    ?= python3
.PHONY: gpu-package gpu-check
gpu-package:
	bash bench/gpu_check/package.sh $(GPU_PKG)

gpu-check:
ifeq ($(DRY_RUN),1)
	bash bench/gpu_check/dry_run.sh $(GPU_CHECK_OUT)
else
	$(GPU_PYTHON) bench/gpu_check/gpu_check.py --pkg $(GPU_PKG) --out $(GPU_CHECK_OUT)
endif

# gpu_bench: AMG, mosaic tiles, encode soak (GDAL-free:
# the mosaic's multipass is linked in directly); cudaMemGetInfo with CUDA.
GPU_BENCH := $(BUILD)/gpu_bench
ifneq ($(CUDA_SO),)
$(GPU_BENCH): override CFLAGS += -I$(CUDA_HOME)/include
$(GPU_BENCH): LDLIBS += $(CUDA_LIBS)
endif
$(GPU_BENCH): bench/gpu_check/gpu_bench.c $(BUILD)/pipelines/mosaic/multipass.o $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/pipelines/mosaic/multipass.o $(LIB) -o $@ $(LDLIBS) -lstb -lcjson
