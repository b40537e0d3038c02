#!/usr/bin/env bash
# bench/gpu_check/hidden.sh CMD [ARGS...]: runs CMD with the Debian packages that the GPU
# machine lacks hidden (stb, cJSON, zlib's -dev, libmicrohttpd, GDAL, libyaml: headers,
# libraries, gdal-config), so that a build or a program that still needs one of them fails
# here as it would there. In a private mount namespace, /usr/include,
# /usr/lib/x86_64-linux-gnu and /usr/bin get an overlay from which those packages' files
# are removed; nothing outside the command sees a change. Needs root (unshare, mount):
# elsewhere it runs CMD as it is and says so on stderr (the package build's audit still
# checks what was read). zlib's runtime library stays (everything needs it, and the GPU
# machine has it); HIDE_RUNTIME=0 hides only the -dev packages (see below).
#
# Prints "hidden.sh: hidden: N files of PKGS" (or "hidden.sh: not hidden: WHY") on stderr
# first; GPU_CHECK_HIDDEN=1 is set inside.
set -euo pipefail

# HIDE_RUNTIME=0 hides only the -dev packages (headers, libX.so, gdal-config) and leaves the
# runtime libraries: Debian's python3-torch, which the dry run's PyTorch stage uses, loads
# libcjson and libgdal through OpenCV. The build (package.sh) hides both.
DEV_PKGS="libstb-dev libcjson-dev zlib1g-dev libmicrohttpd-dev libgdal-dev libyaml-dev gdal-bin"
RUNTIME_PKGS="libstb0 libcjson1 libmicrohttpd12 libgdal32 libyaml-0-2"
PKGS=$DEV_PKGS
[ "${HIDE_RUNTIME:-1}" = 0 ] || PKGS="$DEV_PKGS $RUNTIME_PKGS"
DIRS="/usr/include /usr/lib/x86_64-linux-gnu /usr/bin"

[ $# -ge 1 ] || { echo "usage: hidden.sh CMD [ARGS...]" >&2; exit 2; }

if [ "${1:-}" = --inside ]; then
    tmp=$2; shift 2
    mount --make-rprivate /
    i=0
    for d in $DIRS; do
        i=$((i + 1))
        mkdir -p "$tmp/upper$i" "$tmp/work$i"
        mount -t overlay overlay -o "lowerdir=$d,upperdir=$tmp/upper$i,workdir=$tmp/work$i" "$d"
    done
    # The packages' own file lists; /lib/... is /usr/lib/... on a merged-/usr system.
    files=$(for p in $PKGS; do dpkg -L "$p" 2>/dev/null || true; done | sed 's|^/lib/|/usr/lib/|' | sort -u)
    n=0
    for f in $files; do
        case $f in /usr/include/*|/usr/lib/x86_64-linux-gnu/*|/usr/bin/*) ;; *) continue ;; esac
        if [ -f "$f" ] || [ -L "$f" ]; then rm -f "$f"; n=$((n + 1)); fi
    done
    # folders of their own (/usr/include/stb, cjson, gdal) go when empty
    for f in $(printf '%s\n' $files | sort -r); do
        case $f in /usr/include/?*) [ -d "$f" ] && rmdir "$f" 2>/dev/null || true ;; esac
    done
    for probe in /usr/include/stb/stb_image.h /usr/include/cjson/cJSON.h /usr/include/microhttpd.h /usr/include/zlib.h \
                 /usr/include/gdal/gdal.h /usr/include/yaml.h /usr/bin/gdal-config; do
        [ ! -e "$probe" ] || { echo "hidden.sh: $probe is still visible" >&2; exit 1; }
    done
    echo "hidden.sh: hidden: $n files of $(echo $PKGS)" >&2
    export GPU_CHECK_HIDDEN=1
    "$@"
    exit $?
fi

why=
if [ "$(id -u)" != 0 ]; then why="not root"
elif ! command -v unshare > /dev/null; then why="no unshare"
elif ! unshare -m true 2> /dev/null; then why="unshare -m is not allowed here"
fi
if [ -n "$why" ]; then
    echo "hidden.sh: not hidden: $why; running $1 with the system's packages visible" >&2
    GPU_CHECK_HIDDEN=0 "$@"
    exit $?
fi
tmp=$(mktemp -d /tmp/samc-hidden.XXXXXX)
rc=0
unshare -m bash "$0" --inside "$tmp" "$@" || rc=$?
rm -rf "$tmp"
exit $rc
