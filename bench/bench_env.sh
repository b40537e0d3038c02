# bench/bench_env.sh: sourced by the benchmark scripts (run_cpu_bench.sh, run_sam3_bench.sh):
# what a report says about the machine and the build. Needs ROOT and SAMC set; sets CPU,
# NPROC, SAMC_VERSION and GIT_REV, and defines json_escape.
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
# Virtual machines often report a bare "AMD EPYC": family/model tell the generation.
CPU_ID=$(lscpu 2>/dev/null | awk -F: '/^CPU family:/ { gsub(/ /, "", $2); f = $2 }
    /^Model:/ { gsub(/ /, "", $2); m = $2 } /^Hypervisor vendor:/ { gsub(/^ +/, "", $2); h = ", " $2 }
    END { if (f != "") printf "family %s model %s%s", f, m, h }')
[ -n "$CPU_ID" ] && CPU="$CPU ($CPU_ID)"
NPROC=$(nproc 2>/dev/null || echo '?')
SAMC_VERSION=$("$SAMC" version 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || GIT_REV="$GIT_REV+dirty"
json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
