#!/usr/bin/env bash
# bench/gpu_check/package.sh PKG: `make gpu-package`. Writes the folder PKG (git-ignored)
# that `make gpu-check` needs on the GPU machine, which receives only the repository's
# files (and folders named in `carry`), has no Debian -dev packages and no network:
#
#   PKG/golden/     the golden cases (micro without its weights/, tiny, images) and
#   PKG/tools/      shared/tools/golden_check.py, copied from GOLDEN (../shared/golden)
#   PKG/sysroot/    stb and cJSON headers + libraries, zlib's header + link library (the
#                   SAM3 tokenizer), unpacked from Debian's .deb files (apt-get download +
#                   dpkg -x; their copyright files kept)
#   PKG/sam2/       the official sam2 package (PyPI sam2==SAM2_VERSION, its sam2/ folder)
#                   for the PyTorch baseline
#   PKG/golden/sam3/  the SAM3 micro golden cases (manifests, mask PNGs, and of their tensors
#                   only the outputs the checkers compare) and the CLIP BPE vocabulary
#   PKG/sam3py/     the official sam3 package (PyPI sam3==SAM3_VERSION, its wheel, imported
#                   from the zip) and the pure-Python wheels of its imports that a bare
#                   torch + transformers image may lack (timm, einops, ftfy, wcwidth, iopath,
#                   portalocker, tqdm): the SAM3 stage appends them to sys.path, after the
#                   machine's own
#   PKG/build/      samc (SERVE=0, no GDAL), libsamc_cuda.so (sm_90 + compute_90 PTX),
#                   tests/test_golden, the CUDA op test, gpu_bench, bench/bench_sam3: built against
#                   PKG/sysroot only, with the system's copies hidden (hidden.sh), and
#                   audited: no header or library of those packages came from /usr
#   PKG/manifest.json   commit, source hash, versions, sizes, what was hidden
#
# Downloads are cached in GPU_CHECK_CACHE (default ~/.cache/samc-gpu-check). Fails loudly
# on any missing piece, and when the package plus the repository's files exceed 64 MiB.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PKG=${1:?usage: package.sh PKG_FOLDER}
case $PKG in /*) ;; *) PKG=$ROOT/$PKG ;; esac
GOLDEN=${GOLDEN:-$ROOT/../shared/golden}
CACHE=${GPU_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/samc-gpu-check}
JOBS=${JOBS:-$(nproc)}
SAM2_VERSION=${SAM2_VERSION:-1.1.0}
SAM3_VERSION=${SAM3_VERSION:-0.1.4}
# pure-Python wheels (py3-none-any) of what the official sam3 imports besides torch,
# torchvision, numpy, PIL, regex, huggingface_hub, safetensors and yaml (which a torch +
# transformers image has); iopath has only an sdist: its iopath/ folder is unpacked
SAM3_WHEELS=${SAM3_WHEELS:-"timm==1.0.31 einops==0.8.2 ftfy==6.1.1 wcwidth==0.2.13 portalocker==2.10.1 tqdm==4.67.1"}
IOPATH_VERSION=${IOPATH_VERSION:-0.1.10}
CUDA_ARCH_PKG=${CUDA_ARCH_PKG:-"-gencode arch=compute_90,code=[sm_90,compute_90]"}
DEBS="libstb-dev libstb0 libcjson-dev libcjson1 zlib1g-dev zlib1g"
PY=${PYTHON:-python3}

die() { echo "package.sh: $*" >&2; exit 1; }
t0=$(date +%s)
say() { echo "package.sh: [$(( $(date +%s) - t0 )) s] $*"; }

[ -d "$GOLDEN/micro" ] && [ -d "$GOLDEN/tiny" ] && [ -d "$GOLDEN/images" ] \
    || die "golden data not found at $GOLDEN (set GOLDEN=.../shared/golden)"
[ -f "$GOLDEN/../tools/golden_check.py" ] || die "no $GOLDEN/../tools/golden_check.py"
rm -rf "$PKG"
mkdir -p "$PKG" "$CACHE/debs"

say "golden cases from $GOLDEN"
mkdir -p "$PKG/golden" "$PKG/tools"
cp -r "$GOLDEN/images" "$GOLDEN/tiny" "$PKG/golden/"
cp -r "$GOLDEN/micro" "$PKG/golden/micro"
rm -rf "$PKG/golden/micro/weights"          # samc synth writes them bit-identically
cp "$GOLDEN/README.md" "$PKG/golden/"
cp "$GOLDEN/../tools/golden_check.py" "$PKG/tools/"
chmod -R u+w "$PKG/golden" "$PKG/tools"
# SAM3 micro: the cases without set_image/ and weights/ (samc synth writes them), and of
# each case's tensors only what tests/sam3_golden_check.py and the PyTorch same-model check
# compare (the outputs, not the intermediates): a third of the bytes.
[ -d "$GOLDEN/sam3/micro" ] || die "no SAM3 golden data at $GOLDEN/sam3/micro"
mkdir -p "$PKG/golden/sam3/micro" "$PKG/golden/sam3/assets"
cp "$GOLDEN/sam3/assets/bpe_simple_vocab_16e6.txt.gz" "$PKG/golden/sam3/assets/"
cp "$GOLDEN/sam3/micro/model_config.json" "$GOLDEN/sam3/micro/index.json" "$PKG/golden/sam3/micro/"
"$PY" - "$GOLDEN/sam3/micro" "$PKG/golden/sam3/micro" <<'EOF'
import json, os, re, shutil, struct, sys
src, dst = sys.argv[1:3]
keep = re.compile(r"^(t\d+\.)?(out\.(pred_logits|pred_boxes|pred_masks|presence_logit_dec)|"
                  r"post\.(probs_all|keep_idx|scores|boxes_px))$")
for case in sorted(os.listdir(src)):
    if not os.path.isfile(os.path.join(src, case, "manifest.json")):
        continue
    os.makedirs(os.path.join(dst, case))
    shutil.copy(os.path.join(src, case, "manifest.json"), os.path.join(dst, case))
    if os.path.isdir(os.path.join(src, case, "masks")):
        shutil.copytree(os.path.join(src, case, "masks"), os.path.join(dst, case, "masks"))
    with open(os.path.join(src, case, "tensors.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out, blobs, off = {}, [], 0
    for k, v in head.items():
        if k == "__metadata__":
            out[k] = v
            continue
        if not keep.match(k):
            continue
        s, e = v["data_offsets"]
        out[k] = dict(v, data_offsets=[off, off + e - s])
        blobs.append(data[s:e])
        off += e - s
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(dst, case, "tensors.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF
chmod -R u+w "$PKG/golden/sam3"

say "Debian packages: $DEBS"
for p in $DEBS; do
    if ! ls "$CACHE/debs/${p}_"*.deb > /dev/null 2>&1; then
        (cd "$CACHE/debs" && apt-get download "$p" > /dev/null 2>&1) \
            || die "apt-get download $p failed (run apt-get update; Debian's main archive must be reachable)"
    fi
    deb=$(ls "$CACHE/debs/${p}_"*.deb | tail -n 1)
    dpkg -x "$deb" "$PKG/sysroot"
    echo "$(basename "$deb")" >> "$PKG/sysroot/DEBS"
done
# Only headers, libraries and licences travel; links become copies (a carried folder
# keeps links as links).
find "$PKG/sysroot/usr/share" -mindepth 1 -maxdepth 1 ! -name doc -exec rm -rf {} +
find "$PKG/sysroot/usr/share/doc" -type f ! -name copyright -delete
for l in $(find "$PKG/sysroot" -type l); do cp --remove-destination "$(readlink -f "$l")" "$l"; done
SYS=$PKG/sysroot
LIBDIR=$SYS/usr/lib/x86_64-linux-gnu
# zlib is only linked against (zlib.h, libz.so): every system has libz.so.1, and the
# programs take the machine's own at run time (so does Python, which the check starts
# with the package's library folder first).
rm -f "$LIBDIR"/libz.so.* "$LIBDIR"/libz.a
find "$SYS" -maxdepth 1 -mindepth 1 ! -name usr ! -name DEBS -exec rm -rf {} +
for f in "$SYS/usr/include/stb/stb_image.h" "$SYS/usr/include/cjson/cJSON.h" "$SYS/usr/include/zlib.h" \
         "$LIBDIR/libstb.so" "$LIBDIR/libcjson.so" "$LIBDIR/libz.so"; do
    [ -f "$f" ] || die "$f missing after unpacking $DEBS"
done

say "official sam2 $SAM2_VERSION from PyPI"
sdist=$CACHE/sam2-$SAM2_VERSION.tar.gz
if [ ! -f "$sdist" ]; then
    # An sdist only; pip prepares its metadata, which needs setuptools + wheel and (with
    # SAM2_BUILD_CUDA=0) no torch: a small private venv, kept in the cache.
    if [ ! -x "$CACHE/venv/bin/pip" ]; then
        "$PY" -m venv "$CACHE/venv" || die "python3 -m venv failed"
        "$CACHE/venv/bin/pip" install -q wheel setuptools || die "pip install wheel setuptools failed"
    fi
    SAM2_BUILD_CUDA=0 "$CACHE/venv/bin/pip" download -q --no-deps --no-build-isolation --no-binary :all: \
        "sam2==$SAM2_VERSION" -d "$CACHE/sdist" || die "pip download sam2==$SAM2_VERSION failed"
    mv "$CACHE/sdist/sam2-$SAM2_VERSION.tar.gz" "$sdist"
fi
mkdir -p "$PKG/sam2"
tar -xzf "$sdist" -C "$PKG/sam2" --strip-components=1 "sam2-$SAM2_VERSION/sam2" "sam2-$SAM2_VERSION/LICENSE"
[ -f "$PKG/sam2/sam2/sam2_image_predictor.py" ] || die "$sdist has no sam2/sam2_image_predictor.py"

say "official sam3 $SAM3_VERSION and the pure-Python wheels of its imports from PyPI"
mkdir -p "$CACHE/sam3py"
if [ ! -x "$CACHE/venv/bin/pip" ]; then
    "$PY" -m venv "$CACHE/venv" || die "python3 -m venv failed"
    "$CACHE/venv/bin/pip" install -q wheel setuptools || die "pip install wheel setuptools failed"
fi
for spec in "sam3==$SAM3_VERSION" $SAM3_WHEELS; do
    ls "$CACHE/sam3py/${spec%%==*}-${spec#*==}-"*.whl > /dev/null 2>&1 && continue
    "$CACHE/venv/bin/pip" download -q --no-deps --only-binary :all: "$spec" -d "$CACHE/sam3py" \
        || die "pip download $spec failed"
done
if [ ! -f "$CACHE/sam3py/iopath-$IOPATH_VERSION.tar.gz" ]; then
    "$CACHE/venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation "iopath==$IOPATH_VERSION" \
        -d "$CACHE/sam3py" || die "pip download iopath==$IOPATH_VERSION failed"
fi
mkdir -p "$PKG/sam3py/site"
for spec in "sam3==$SAM3_VERSION" $SAM3_WHEELS; do
    whl=$(ls "$CACHE/sam3py/${spec%%==*}-${spec#*==}-"*.whl | tail -n 1)
    case $whl in *-none-any.whl) ;; *) die "$whl is not a pure-Python wheel" ;; esac
    cp "$whl" "$PKG/sam3py/"
done
tar -xzf "$CACHE/sam3py/iopath-$IOPATH_VERSION.tar.gz" -C "$PKG/sam3py/site" --strip-components=1 \
    "iopath-$IOPATH_VERSION/iopath"
[ -f "$PKG/sam3py/site/iopath/common/file_io.py" ] || die "the iopath sdist has no iopath/common/file_io.py"

say "building against $SYS only (CUDA: $CUDA_ARCH_PKG)"
TESTS=
for t in test_golden test_backend_ops test_device_pipeline; do
    [ -f "tests/$t.c" ] && TESTS="$TESTS $PKG/build/tests/$t"
done
CUDA_TARGET=
command -v "${NVCC:-nvcc}" > /dev/null && CUDA_TARGET=$PKG/build/libsamc_cuda.so
# The same make line as the GPU machine's fallback build (gpu_check.py: build_command).
bash bench/gpu_check/hidden.sh "$PY" bench/gpu_check/gpu_check.py --pkg "$PKG" --build "$PKG/build" \
    --arch "$CUDA_ARCH_PKG" --audit > "$PKG/build.log" 2> "$PKG/build.err" \
    || { tail -n 30 "$PKG/build.err" >&2; die "the build against the package failed (log: $PKG/build.log, $PKG/build.err)"; }
HIDDEN=$(grep '^hidden.sh:' "$PKG/build.err" | head -n 1)
say "${HIDDEN#hidden.sh: }"

say "audit: headers (.d files) and libraries (ld --trace)"
forbidden='^/usr/include/(stb/|cjson/|gdal/|microhttpd\.h|yaml\.h|zlib\.h|zconf\.h)|^/usr/lib/x86_64-linux-gnu/lib(stb|cjson|microhttpd|gdal|yaml|z\.)'
deps=$(find "$PKG/build" -name '*.d' -exec cat {} + | tr ' \\' '\n\n' | sed 's/:$//' | grep -v '^$' | sort -u)
bad=$(printf '%s\n' "$deps" | grep -E "$forbidden" || true)
[ -z "$bad" ] || die "the build read system headers it must not: $bad"
for need in "$SYS/usr/include/stb/stb_image.h" "$SYS/usr/include/cjson/cJSON.h" "$SYS/usr/include/zlib.h"; do
    printf '%s\n' "$deps" | grep -qxF "$need" || die "no object read $need: the audit would prove nothing"
done
links=$(grep -E 'lib(stb|cjson|microhttpd|gdal|yaml|z)[^/]*\.(so|a)' "$PKG/build.log" | grep -oE '/[^ ()]*' | sort -u || true)
bad=$(printf '%s\n' "$links" | grep -v "^$SYS/" | grep -E '/lib(stb|cjson|microhttpd|gdal|yaml|z)[.-]' || true)
[ -z "$bad" ] || die "a link used a system library it must not: $bad"
printf '%s\n' "$links" | grep -q "$LIBDIR/libcjson" || die "no link used $LIBDIR/libcjson.so: the audit would prove nothing"
printf '%s\n' "$links" | grep -q "$LIBDIR/libstb" || die "no link used $LIBDIR/libstb.so: the audit would prove nothing"
printf '%s\n' "$links" | grep -q "$LIBDIR/libz.so" || die "no link used $LIBDIR/libz.so: the audit would prove nothing"
say "audit ok: $(printf '%s\n' "$deps" | grep -c "^$SYS/") package headers read, none of /usr's; libraries: $(printf '%s\n' "$links" | xargs -n1 basename | sort -u | tr '\n' ' ')"

for b in "$PKG/build/samc" "$PKG/build/gpu_bench" "$PKG/build/bench/bench_sam3" $TESTS $CUDA_TARGET; do
    bad=$(readelf -d "$b" | grep -oE 'lib(stb|cjson|microhttpd|gdal|yaml)[^]]*' | grep -vE '^lib(stb\.so\.0|cjson\.so\.1)$' || true)
    [ -z "$bad" ] || die "$b needs $bad"
done

# Only the programs travel.
find "$PKG/build" \( -name '*.o' -o -name '*.a' -o -name '*.d' \) -delete
find "$PKG/build" -type d -empty -delete
for b in "$PKG/build/samc" "$PKG/build/gpu_bench" "$PKG/build/bench/bench_sam3" $TESTS $CUDA_TARGET; do [ -f "$b" ] || die "$b was not built"; done

say "manifest"
SRC_HASH=$("$PY" bench/gpu_check/gpu_check.py --source-hash)
# dry_run.sh packages a copy without .git and passes the checkout's commit and state
COMMIT=${GPU_CHECK_COMMIT:-$(git rev-parse HEAD 2> /dev/null || echo unknown)}
DIRTY=${GPU_CHECK_DIRTY:-false}
[ -n "${GPU_CHECK_DIRTY:-}" ] || [ -z "$(git status --porcelain --untracked-files=no 2> /dev/null)" ] || DIRTY=true
HAVE_NVCC=0
[ -n "$CUDA_TARGET" ] && HAVE_NVCC=1
NVCC_V=$([ $HAVE_NVCC = 1 ] && "${NVCC:-nvcc}" --version | tail -n 1 || echo none)
PKG_BYTES=$(du -sb "$PKG" | cut -f1)
REPO_BYTES=$("$PY" bench/gpu_check/gpu_check.py --repo-bytes)
"$PY" - "$PKG/manifest.json" <<EOF
import json, re, sys
json.dump({
    "format": "samc-gpu-package-1",
    "commit": "$COMMIT", "dirty": $( [ $DIRTY = true ] && echo True || echo False ),
    "source_hash": "$SRC_HASH",
    "created": "$(date -Iseconds)", "host": "$(hostname)",
    "cuda_arch": "$CUDA_ARCH_PKG", "sm": sorted({int(x) for x in re.findall(r"sm_(\d+)", "$CUDA_ARCH_PKG")}) if $HAVE_NVCC else [],
    "nvcc": "$NVCC_V", "cc": "$(${CC:-cc} --version | head -n 1)",
    "glibc": "$(ldd --version | head -n 1 | awk '{print $NF}')",
    "debs": open("$SYS/DEBS").read().split(),
    "sam2": "$SAM2_VERSION", "sam3": "$SAM3_VERSION", "sam3_wheels": "$SAM3_WHEELS iopath==$IOPATH_VERSION",
    "hidden": "${HIDDEN#hidden.sh: }",
    "package_bytes": $PKG_BYTES, "repo_bytes": $REPO_BYTES,
}, open(sys.argv[1], "w"), indent=1)
EOF
LIMIT=$((64 * 1024 * 1024))
TOTAL=$((PKG_BYTES + REPO_BYTES))
say "package $PKG: $((PKG_BYTES / 1024)) KiB + repository $((REPO_BYTES / 1024)) KiB = $((TOTAL * 100 / LIMIT))% of the 64 MiB a device call carries"
[ "$TOTAL" -le "$LIMIT" ] || die "package + repository are $TOTAL bytes, over the 64 MiB limit"
echo "package.sh: done in $(( $(date +%s) - t0 )) s: run(command=\"make gpu-check\", carry=[\"$(basename "$PKG")\"], timeout_s=540)"
