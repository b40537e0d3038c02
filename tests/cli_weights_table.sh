#!/usr/bin/env bash
# tests/cli_weights_table.sh: the official checkpoint sizes and sha256 appear in three
# places (convert/official_checkpoints.c for samc convert, weights/download.sh, and
# weights/README.md); this checks that all three list the same four files with the same
# numbers, and that download.sh refuses bad arguments without downloading anything.
# Prints "N passed, N failed, N skipped" last.
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "OK     cli_weights_table.$1"; }
bad() { fail=$((fail+1)); echo "NOT OK cli_weights_table.$1: $2"; }

rows=$(sed -n '/^table="/,/"$/p' weights/download.sh | tr -d '"' | sed 's/^table=//')
n=$(printf '%s\n' "$rows" | grep -c .)
[ "$n" -eq 4 ] && ok download_sh_rows || bad download_sh_rows "$n rows in download.sh, want 4"
while read -r name size sha; do
  [ -n "$name" ] || continue
  file="sam2.1_hiera_$name.pt"
  # C table: the file name, then its config, size and hash within the next two lines
  if grep -A2 "\"$file\"" convert/official_checkpoints.c | tr -d '\n ' | grep -q "\"$name\",$size,\"$sha\""; then
    ok "c_table.$name"
  else
    bad "c_table.$name" "convert/official_checkpoints.c lacks $file $size $sha"
  fi
  if grep -F "[$file]" weights/README.md | grep -F "| $size |" | grep -qF "\`$sha\`"; then
    ok "readme.$name"
  else
    bad "readme.$name" "weights/README.md lacks $file $size $sha"
  fi
done <<< "$rows"

out=$(bash weights/download.sh nonsense 2>&1); rc=$?
if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -q "unknown argument 'nonsense'"; then ok bad_argument
else bad bad_argument "exit $rc: $out"; fi
out=$(bash weights/download.sh tiny --dtype f64 2>&1); rc=$?
if [ "$rc" -eq 2 ] && printf '%s' "$out" | grep -q "must be f32, f16 or bf16"; then ok bad_dtype
else bad bad_dtype "exit $rc: $out"; fi

echo "cli_weights_table.sh: $pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
