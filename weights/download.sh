#!/usr/bin/env bash
# weights/download.sh [tiny|small|base_plus|large|all|sam3] [--dtype f32|f16|bf16] [--image-only] [--no-convert] [--transformers]
#
# Downloads official SAM2.1 checkpoints into weights/, resuming partial downloads, checks
# each file's size and sha256 (values: weights/README.md), then converts it with
# `samc convert` to weights/sam2.1_hiera_<size>[_<dtype>][_image].safetensors.
# sam3: the gated facebook/sam3 from the Hugging Face hub (accept its license there; put a
# token in HF_TOKEN), sam3.pt (or with --transformers its model.safetensors + config.json)
# and the CLIP vocabulary, then weights/sam3[_<dtype>][_image].safetensors with the
# vocabulary inside (weights/README.md, section SAM3).
# SAMC=path/to/samc overrides the binary (default: ./samc at the repository root);
# SAMC_WEIGHTS_URL=... another base URL (a mirror holding the same files);
# SAMC_HF_URL=... another hub (default https://huggingface.co), SAMC_VOCAB_URL=... the vocabulary;
# SAMC_WEIGHTS_DIR=... another folder for the files (default: weights/).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
dir=${SAMC_WEIGHTS_DIR:-$here}   # where the files go (default: this folder)
base_url=${SAMC_WEIGHTS_URL:-https://dl.fbaipublicfiles.com/segment_anything_2/092824}

# name size sha256 (keep in sync with convert/official_checkpoints.c and weights/README.md)
table="tiny 156008466 7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69
small 184416285 6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38
base_plus 323606802 a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5
large 898083611 2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"

which=all dtype=f32 image_only=0 convert=1 transformers=0
while [ $# -gt 0 ]; do
  case "$1" in
    tiny|small|base_plus|large|all|sam3) which=$1 ;;
    --transformers) transformers=1 ;;
    --dtype) shift; dtype=${1:-}; case "$dtype" in f32|f16|bf16) ;; *) echo "download.sh: --dtype must be f32, f16 or bf16" >&2; exit 2 ;; esac ;;
    --image-only) image_only=1 ;;
    --no-convert) convert=0 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "download.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

samc=${SAMC:-$root/samc}
if [ "$convert" = 1 ] && [ ! -x "$samc" ]; then
  echo "download.sh: $samc not found: run 'make' first, or pass --no-convert" >&2
  exit 2
fi

fetch() {  # fetch URL FILE: resumes FILE if it is partly there
  if command -v curl >/dev/null 2>&1; then
    curl -L --fail --retry 3 -C - -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -c -O "$2" "$1"
  else
    echo "download.sh: neither curl nor wget is installed" >&2
    return 1
  fi
}

file_size() { stat -c %s "$1" 2>/dev/null || stat -f %z "$1"; }
file_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

verify() {  # verify FILE SIZE SHA256
  local got
  got=$(file_size "$1")
  if [ "$got" != "$2" ]; then
    echo "download.sh: $1: $got bytes, expected $2 (incomplete download: run again to resume)" >&2
    return 1
  fi
  echo "checking sha256 of $1 ..."
  got=$(file_sha256 "$1")
  if [ "$got" != "$3" ]; then
    echo "download.sh: $1: sha256 $got, expected $3 (corrupted download: delete it and run again)" >&2
    return 1
  fi
}

# ---- SAM3 -------------------------------------------------------------------------
# The vocabulary: bpe_simple_vocab_16e6.txt.gz as the sam3 package ships it (the same file
# as openai/CLIP's). Its sha256 was computed from shared/golden/sam3/assets, whose md5
# 933b7abbbbde62c36f02f0e6ccde464f is the official file's; `samc convert` checks the
# merges inside against their own sha256 too.
vocab_url=${SAMC_VOCAB_URL:-https://raw.githubusercontent.com/facebookresearch/sam3/main/sam3/assets/bpe_simple_vocab_16e6.txt.gz}
vocab_sha=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a   # 1356917 bytes
hf_url=${SAMC_HF_URL:-https://huggingface.co}

# hub_fetch FILE DEST: a file of facebook/sam3 with the token, resuming DEST.part.
hub_fetch() {
  local url="$hf_url/facebook/sam3/resolve/main/$1"
  if command -v curl >/dev/null 2>&1; then
    curl -L --fail --retry 3 -C - -H "Authorization: Bearer $HF_TOKEN" -o "$2" "$url"
  else
    wget -c --header="Authorization: Bearer $HF_TOKEN" -O "$2" "$url"
  fi
}

# hub_expect FILE: "size sha256" the hub publishes for a Git LFS file (the X-Linked-Size
# and X-Linked-Etag headers of its resolve URL, i.e. the LFS pointer), or nothing.
hub_expect() {
  command -v curl >/dev/null 2>&1 || return 0
  curl -sI --retry 2 -H "Authorization: Bearer $HF_TOKEN" "$hf_url/facebook/sam3/resolve/main/$1" | tr -d '\r"' |
    awk 'tolower($1)=="x-linked-size:"{s=$2} tolower($1)=="x-linked-etag:"{e=$2} END{if (s ~ /^[0-9]+$/ && length(e) == 64 && e ~ /^[0-9a-f]+$/) print s, e}'
}

# sam3_get FILE DEST: downloads and checks against what the hub publishes; without that,
# prints the size and sha256 so that they can be compared with the hub's file page.
sam3_get() {
  local file=$1 dest=$2 expect
  expect=$(hub_expect "$file" || true)
  if [ -f "$dest" ]; then
    echo "$file: already downloaded"
  else
    echo "downloading facebook/sam3 $file ..."
    hub_fetch "$file" "$dest.part" || { echo "download.sh: $file: download failed (access granted on $hf_url/facebook/sam3? run again to resume)" >&2; return 1; }
    mv "$dest.part" "$dest"
  fi
  if [ -n "$expect" ]; then
    verify "$dest" ${expect% *} ${expect#* } || return 1
    echo "$file: size and sha256 as the hub publishes them"
  else
    echo "$file: $(file_size "$dest") bytes, sha256 $(file_sha256 "$dest")"
    echo "  (the hub published no hash here: compare with the SHA256 on $hf_url/facebook/sam3/blob/main/$file)"
  fi
}

sam3_main() {
  if [ -z "${HF_TOKEN:-}" ]; then
    echo "download.sh: sam3 is gated: accept the license on $hf_url/facebook/sam3, create a read token" >&2
    echo "  ($hf_url/settings/tokens) and run again with HF_TOKEN=hf_... in the environment" >&2
    exit 2
  fi
  local vocab="$dir/bpe_simple_vocab_16e6.txt.gz" src
  if [ -f "$vocab" ]; then
    verify "$vocab" 1356917 "$vocab_sha" || exit 1
  else
    echo "downloading the CLIP vocabulary ..."
    fetch "$vocab_url" "$vocab.part" || { echo "download.sh: vocabulary download failed" >&2; exit 1; }
    verify "$vocab.part" 1356917 "$vocab_sha" || exit 1
    mv "$vocab.part" "$vocab"
  fi
  if [ "$transformers" = 1 ]; then
    src="$dir/sam3-transformers"
    mkdir -p "$src"
    sam3_get config.json "$src/config.json" || exit 1
    sam3_get model.safetensors "$src/model.safetensors" || exit 1
  else
    src="$dir/sam3.pt"
    sam3_get sam3.pt "$src" || exit 1
  fi
  [ "$convert" = 1 ] || exit 0
  local out="$dir/sam3"
  [ "$dtype" = f32 ] || out="${out}_$dtype"
  [ "$image_only" = 0 ] || out="${out}_image"
  local args=(convert "$src" -o "$out.safetensors" --dtype "$dtype" --vocab "$vocab")
  [ "$image_only" = 0 ] || args+=(--image-only)
  "$samc" "${args[@]}"
}

if [ "$which" = sam3 ]; then
  sam3_main
  exit $?
fi

status=0
while read -r name size sha; do
  [ "$which" = all ] || [ "$which" = "$name" ] || continue
  file="sam2.1_hiera_$name.pt"
  dest="$dir/$file"
  if [ -f "$dest" ] && [ "$(file_size "$dest")" = "$size" ]; then
    echo "$file: already downloaded"
    verify "$dest" "$size" "$sha" || { status=1; continue; }
  else
    echo "downloading $file ($size bytes) ..."
    if ! fetch "$base_url/$file" "$dest.part"; then
      echo "download.sh: $file: download failed (run again to resume)" >&2
      status=1; continue
    fi
    verify "$dest.part" "$size" "$sha" || { status=1; continue; }
    mv "$dest.part" "$dest"
  fi
  if [ "$convert" = 1 ]; then
    out="$dir/sam2.1_hiera_$name"
    [ "$dtype" = f32 ] || out="${out}_$dtype"
    [ "$image_only" = 0 ] || out="${out}_image"
    args=(convert "$dest" -o "$out.safetensors" --dtype "$dtype")
    [ "$image_only" = 0 ] || args+=(--image-only)
    "$samc" "${args[@]}" || status=1
  fi
done <<< "$table"
exit $status
