#!/usr/bin/env python3
"""docs/mosaic/dask_mosaic.py: `samc mosaic` shards on a Dask distributed cluster, then the
merge (docs/mosaic-cluster.md). For pipelines that already live in Dask; each task runs
the samc binary (samc itself has no Python), so workers need samc, GDAL and the weights,
and OUTDIR on storage they all see.

  python3 docs/mosaic/dask_mosaic.py IN OUTDIR MODEL N [--scheduler tcp://host:8786] [-- samc flags...]

Without --scheduler a LocalCluster with N worker processes runs on this machine. A shard
that fails is retried by Dask (retries=2): samc redoes it from the start or, if it had
finished, exits 0 at once. Ray works the same way: one @ray.remote(num_gpus=1) function
running the shard command per K, ray.get on all of them, then the merge command.
"""
import os
import subprocess
import sys

from dask.distributed import Client, LocalCluster


def run_shard(samc, src, out, model, k, n, flags):
    cmd = [samc, "mosaic", src, out, "--model", model, "--shard", "%d/%d" % (k, n), "--progress", "none"] + flags
    subprocess.run(cmd, check=True)
    return k


def main(argv):
    flags = argv[argv.index("--") + 1:] if "--" in argv else []
    args = argv[:argv.index("--")] if "--" in argv else argv
    scheduler = None
    if "--scheduler" in args:
        i = args.index("--scheduler")
        scheduler = args[i + 1]
        del args[i:i + 2]
    src, out, model, n = args[0], args[1], args[2], int(args[3])
    samc = os.environ.get("SAMC", "samc")
    if scheduler:
        client = Client(scheduler)
    else:
        client = Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True))
    futures = [client.submit(run_shard, samc, src, out, model, k, n, flags, retries=2, pure=False)
               for k in range(n)]
    client.gather(futures)
    subprocess.run([samc, "mosaic", "merge", out, "--progress", "none"], check=True)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
