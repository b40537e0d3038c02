#!/usr/bin/env bash
# weights/download.sh [tiny|small|base_plus|large|all] [--dtype f32|f16|bf16] [--image-only] [--no-convert]
#
# Downloads official SAM2.1 checkpoints into weights/, resuming partial downloads, checks
# each file's size and sha256 (values: weights/README.md), then converts it with
# `samc convert` to weights/sam2.1_hiera_<size>[_<dtype>][_image].safetensors.
# SAMC=path/to/samc overrides the binary (default: ./samc at the repository root);
# SAMC_WEIGHTS_URL=... another base URL (a mirror holding the same files).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
base_url=${SAMC_WEIGHTS_URL:-https://dl.fbaipublicfiles.com/segment_anything_2/092824}

# name size sha256 (keep in sync with convert/official_checkpoints.c and weights/README.md)
table="tiny 156008466 7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69
small 184416285 6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38
base_plus 323606802 a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5
large 898083611 2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"

which=all dtype=f32 image_only=0 convert=1
while [ $# -gt 0 ]; do
  case "$1" in
    tiny|small|base_plus|large|all) which=$1 ;;
    --dtype) shift; dtype=${1:-}; case "$dtype" in f32|f16|bf16) ;; *) echo "download.sh: --dtype must be f32, f16 or bf16" >&2; exit 2 ;; esac ;;
    --image-only) image_only=1 ;;
    --no-convert) convert=0 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

status=0
while read -r name size sha; do
  [ "$which" = all ] || [ "$which" = "$name" ] || continue
  file="sam2.1_hiera_$name.pt"
  dest="$here/$file"
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
    out="$here/sam2.1_hiera_$name"
    [ "$dtype" = f32 ] || out="${out}_$dtype"
    [ "$image_only" = 0 ] || out="${out}_image"
    args=(convert "$dest" -o "$out.safetensors" --dtype "$dtype")
    [ "$image_only" = 0 ] || args+=(--image-only)
    "$samc" "${args[@]}" || status=1
  fi
done <<< "$table"
exit $status
