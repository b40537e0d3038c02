"""bench/bench_util.py: what the PyTorch benchmark scripts (pytorch_sam2_bench.py,
pytorch_sam3_bench.py) share: thread limits set before torch loads, RSS, medians, and
safetensors data as float32 arrays."""
import os


def limit_threads(n):
    """OpenMP, MKL and OpenBLAS read these when the library loads, so they must be set
    before torch is imported; torch.set_num_threads alone leaves OpenBLAS at one per core."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def rss_mb():
    """Resident set size now (MiB), from /proc/self/status."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def float32_array(np, raw, dtype):
    """The float32 values of one safetensors tensor's bytes (F32, F16 or BF16, little-endian);
    None for another dtype."""
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4")
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return None
