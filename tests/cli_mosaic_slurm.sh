#!/usr/bin/env bash
# tests/cli_mosaic_slurm.sh: the Slurm recipe of docs/mosaic-cluster.md run for real on a
# single-node Slurm cluster that this test starts and stops itself (munged, slurmctld and
# slurmd from Debian's munge and slurm-wlm, in a scratch folder, on free local ports):
# docs/mosaic/slurm-shard.sbatch as a job array of 3 shards, docs/mosaic/slurm-merge.sbatch
# as a job depending on it; the merged labels.tif and polygons must be the single run's.
# Needs root (slurmd starts jobs) and the packages (.ci/deps installs them); otherwise
# it says why and skips. Prints "N passed, N failed, N skipped".
set -u
unset SAMC_DEBUG SAMC_BACKEND
SAMC=${SAMC:-./samc}
case "$SAMC" in /*) ;; *) SAMC="$(cd "$(dirname "$SAMC")" && pwd)/$(basename "$SAMC")" ;; esac
HERE="$(cd "$(dirname "$0")" && pwd)"
DOCS="$HERE/../docs/mosaic"
GOLDEN=${SAMC_GOLDEN:-../shared/golden}
pass=0; fail=0; skip=0
TMP=$(mktemp -d /tmp/samc_cli_slurm.XXXXXX)
chmod 755 "$TMP"
PIDS=()   # the daemons this test started, stopped by their ids at the end
stop_cluster() {
  [ "${#PIDS[@]}" -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap stop_cluster EXIT
SUITE=cli_mosaic_slurm
. "$HERE/lib_cli.sh"
finish() { echo "cli_mosaic_slurm.sh: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit $?; }

for b in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$b" >/dev/null || { skipped slurm "no $b: install Debian's slurm-wlm and munge (.ci/deps does)"; finish; }
done
[ "$(id -u)" -eq 0 ] || { skipped slurm "slurmd must run as root to start jobs; run as root"; finish; }
IMG=$GOLDEN/images/truck_320x240.png
if ! command -v gdal_translate >/dev/null || [ ! -f "$IMG" ]; then skipped slurm "needs gdal_translate and $IMG"; finish; fi
if "$SAMC" mosaic "$TMP/x" "$TMP/y" --model "$TMP/z" 2>&1 | grep -q 'built without GDAL'; then
  skipped slurm "samc built without GDAL"; finish
fi

# ---- the cluster ---------------------------------------------------------------------------
C=$TMP/cluster
mkdir -p "$C/state" "$C/spool" "$C/log"
dd if=/dev/urandom of="$C/munge.key" bs=1024 count=1 2>/dev/null && chmod 400 "$C/munge.key"
munged --force --socket="$C/munge.sock" --key-file="$C/munge.key" --log-file="$C/log/munged.log" \
  --pid-file="$C/munged.pid" --seed-file="$C/munged.seed" || { bad munged "munged did not start"; finish; }
for _ in $(seq 1 50); do [ -s "$C/munged.pid" ] && break; sleep 0.1; done
PIDS+=("$(cat "$C/munged.pid")")
read -r P1 P2 < <(/usr/bin/python3 -c "
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(('127.0.0.1', 0))
print(*[s.getsockname()[1] for s in ss])")
HOST=$(hostname -s)
cat >"$C/slurm.conf" <<CONF
ClusterName=samctest
SlurmctldHost=$HOST
SlurmUser=root
SlurmctldPort=$P1
SlurmdPort=$P2
AuthType=auth/munge
AuthInfo=socket=$C/munge.sock
CredType=cred/munge
StateSaveLocation=$C/state
SlurmdSpoolDir=$C/spool
SlurmctldPidFile=$C/slurmctld.pid
SlurmdPidFile=$C/slurmd.pid
SlurmctldLogFile=$C/log/slurmctld.log
SlurmdLogFile=$C/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
$(slurmd -C | head -n 1) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$C/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$C/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$C/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break; sleep 0.2; done
if [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; then ok cluster_up
else
  cp "$C/log/slurmctld.log" "$TMP/err" 2>/dev/null; bad cluster_up "the node is not idle: $(sinfo -h -o %t 2>&1)"
  finish
fi

# ---- the recipe ----------------------------------------------------------------------------
MODEL=$TMP/micro.safetensors
"$SAMC" synth --config micro -o "$MODEL" >/dev/null 2>&1 || { bad synth "samc synth failed"; finish; }
TIF=$TMP/in.tif
gdal_translate -q -outsize 512 384 -a_srs EPSG:32633 -a_ullr 500000 4600384 500512 4600000 "$IMG" "$TIF"
ARGS="--tile-size 128 --padding 16 --points-per-side 4 --max-passes 2 --iou-start 0.1 --iou-end 0.1
      --stability-start 0.1 --stability-end 0.1 --min-area 10 --geopackage --threads 1"
# shellcheck disable=SC2086
expect_ok single "$SAMC" mosaic "$TIF" "$TMP/single" --model "$MODEL" $ARGS -q || finish
OUT=$TMP/sharded
export SAMC MOSAIC_IN=$TIF MOSAIC_OUT=$OUT MOSAIC_MODEL=$MODEL MOSAIC_ARGS="$ARGS"
ARRAY=$(sbatch --parsable --array=0-2 --cpus-per-task=1 -o "$TMP/shard_%a.log" "$DOCS/slurm-shard.sbatch" 2>"$TMP/err")
MERGE=$(sbatch --parsable --dependency=afterok:"$ARRAY" -o "$TMP/merge.log" "$DOCS/slurm-merge.sbatch" 2>>"$TMP/err")
if [ -n "$ARRAY" ] && [ -n "$MERGE" ]; then ok submitted; else bad submitted "sbatch failed"; finish; fi
for _ in $(seq 1 900); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
STATE=$(scontrol show job "$MERGE" 2>/dev/null | grep -o 'JobState=[A-Z_]*')
cat "$TMP"/shard_*.log "$TMP/merge.log" >"$TMP/err" 2>/dev/null
if [ "$STATE" = JobState=COMPLETED ]; then ok jobs_completed
else bad jobs_completed "merge job: ${STATE:-unknown} (queue: $(squeue -h 2>&1 | head -n 3))"; finish; fi
check slurm_equals_single "the Slurm-run shards + merge differ from the single run" bash -c "
  cmp -s '$TMP/single/labels.tif' '$OUT/labels.tif' && cmp -s '$TMP/single/segments.shp' '$OUT/segments.shp' &&
  cmp -s '$TMP/single/segments.dbf' '$OUT/segments.dbf'"
check slurm_stats_shards "stats.json lacks the 3 shards' timings" /usr/bin/python3 -c "
import json
s = json.load(open('$OUT/stats.json'))
assert [x['shard'] for x in s['shards']] == [0, 1, 2] and all(x['wall_s'] > 0 for x in s['shards'])"
finish
