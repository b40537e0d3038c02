#!/usr/bin/env bash
# tests/fuzz/run.sh [seconds [pt|safetensors|serve_request ...]]: runs each fuzzer (built by
# `make fuzz`; all by default) for a bounded time over its seed corpus and prints how many inputs it
# executed.
# New corpus entries and any crash reproducers go to tests/fuzz/out/ (git-ignored).
# Exit status is non-zero if a fuzzer found a crash, leak, hang or sanitizer report.
set -u
secs=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
names=${*:-pt safetensors serve_request}
cd "$(dirname "$0")/../.."
build=${BUILD:-build}
out=tests/fuzz/out
status=0
for name in $names; do
  bin=$build/fuzz/fuzz_$name
  seeds=tests/fuzz/corpus_${name/safetensors/st}
  if [ ! -x "$bin" ]; then echo "fuzz_$name: $bin missing (run make fuzz)"; status=1; continue; fi
  mkdir -p "$out/corpus_$name" "$out/artifacts_$name"
  log="$out/fuzz_$name.log"
  "$bin" "$out/corpus_$name" "$seeds" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
         -max_len=8192 -print_final_stats=1 -artifact_prefix="$out/artifacts_$name/" >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$name: FAILED (exit $rc) after ${runs:-?} executions; see $log and $out/artifacts_$name/"
    status=1
  else
    echo "fuzz_$name: ${runs:-?} executions in ${secs} s, ${cov:-cov: ?}, no findings"
  fi
done
exit $status
