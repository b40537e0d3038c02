#!/usr/bin/env python3
"""bench/gpu_check/gpu_check.py: `make gpu-check`, one command that checks samc's CUDA
path and measures it against PyTorch on whatever GPU it finds, in under 8 minutes.

It works from the package that `make gpu-package` made (GPU_PKG, default gpu-check-pkg:
golden cases, stb / cJSON from Debian's .deb files, the official sam2 package, binaries
built for sm_90 against only those) and runs these stages, most important first, each
with its own time limit inside one overall budget (--budget, default 470 s), so that a
hang costs one stage and a cut-short run still answers the first questions:

  1 build      use the package's binaries (same sources, the device's architecture
               compiled in, every library found) or rebuild them here for the device
  2 cuda_ops   the CUDA op tests (test_backend_ops --backend cuda: every op against cpu_ref)
               and the device pipeline (test_device_pipeline: preprocessing on the device
               = the host's, graph replay = direct execution, device stage times, memory)
  3 golden     micro: test_golden (cuda fp32 tensor by tensor, bf16 / fp16 mask IoU);
               tiny: the CLI through shared/tools/golden_check.py in fp32 / bf16 / fp16
               (fp32: the goldens' tolerances; all: mask IoU >= 0.99 vs the fp32 golden)
  4 bench      samc bench for tiny and large, bf16 and fp32: encoder / decoder, the best
               encode batch, stage times from CUDA events (encoder device time apart from
               the host's preprocess and the upload); samc bench --decoder-batch: decoder us
               per prompt at batch 1, 64 and 1024; the measured device memory of one image
  5 pytorch    the official SAM2ImagePredictor on the same GPU and weights: same-model
               check against the golden, fp32 eager, bf16 autocast, bf16 + torch.compile
  6 amg_tiles  AMG 32x32 on a 1024x1024 crop; 1024x1024 tiles through encode + multipass
  7 soak       1,000 consecutive encodes, device memory and RSS before and after
  8 sanitizer  compute-sanitizer memcheck and racecheck on a micro segment (fp32, bf16)
  9 variants   times each value of each switch in kernels/cuda/variants.txt, writes the
               winners to OUT/variants.txt
 10 extra      with time left: the kernel timings of the op test (--backend cuda --perf,
               its PERF lines) and test_golden on tiny

(sam3 runs after pytorch: the six SAM3 micro golden cases through `samc find` on the
device (tests/sam3_golden_check.py, fp32), bench_sam3 on the device (micro, then the full
sam3 config, bf16 and fp32) and the official sam3 package on the same GPU, weights, image
and prompts (bench/pytorch_sam3_bench.py; same-model check on the CPU first); the stages
before it leave it FLOOR seconds of the budget.)

It writes OUT/report.md, OUT/report.json and OUT/logs.tar.gz (every command, its output
and time) after every stage, and prints a summary. With --dry-run (make gpu-check
DRY_RUN=1, through dry_run.sh) no GPU is needed: the same stages run on the CPU with the
micro model where that exercises the harness, and every GPU result is "not run".
Without a GPU and without --dry-run it fails at once.

--source-hash prints the hash of the sources that package.sh records (to tell whether the
package's binaries were built from these sources).
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "gpu_check")
SRC_DIRS = ["util", "loader", "kernels", "model", "convert", "pipelines", "serve", "tools", "tests", "bench"]
SRC_EXT = (".c", ".h", ".cu", ".cuh")

# (key, what, limit, unit): the targets for H100 / H200 in bf16.
TARGETS = [
    ("large_image_to_masks_ms", "Hiera-L image -> masks (bf16, 1 image, 1 point, 3 masks)", 5.0, "ms"),
    ("tiny_encoder_ms", "Hiera-tiny encoder (bf16, per image)", 1.5, "ms"),
    ("decoder_us_per_prompt", "decoder per prompt at batch >= 64 (bf16)", 15.0, "us"),
    ("amg_large_ms", "AMG 32x32, Hiera-L, 1024x1024 (bf16)", 40.0, "ms"),
    ("large_peak_device_mb", "peak device memory, one Hiera-L image (bf16)", 2048.0, "MiB"),
    ("sam3_image_text_ms", "SAM3 image + text (bf16, 1 image, 1 text prompt, 1008 px)", 20.0, "ms"),
]


def source_hash(root=ROOT):
    """sha256 over the sources (path and content, sorted): what the package was built from."""
    h = hashlib.sha256()
    paths = [os.path.join(root, "Makefile")]
    for d in SRC_DIRS:
        for dirpath, dirnames, files in os.walk(os.path.join(root, d)):
            dirnames[:] = sorted(x for x in dirnames if not x.startswith("."))
            paths += [os.path.join(dirpath, f) for f in files if f.endswith(SRC_EXT)]
    for p in sorted(paths):
        h.update(os.path.relpath(p, root).encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read() + b"\0")
    return h.hexdigest()


def repo_bytes(root=ROOT):
    """Bytes of what a device call sends besides carried folders: the tracked and the
    untracked-not-ignored files (git), or, in a copy without .git, every file outside the
    build folders and the package."""
    try:
        r = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True)
        files = [os.path.join(root, f.decode()) for f in r.stdout.split(b"\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, names in os.walk(root):
            if dirpath == root:
                dirnames[:] = [d for d in dirnames if not d.startswith(("build", ".git", "gpu-check-pkg"))]
            files += [os.path.join(dirpath, n) for n in names]
    return sum(os.path.getsize(f) for f in files if os.path.isfile(f))


# a make started from this script is not a sub-make of the one that started it
MAKE_ENV = {"MAKEFLAGS": "", "MFLAGS": "", "MAKELEVEL": "", "DRY_RUN": ""}


class Limit(Exception):
    pass


class Check:
    """The state of one run: deadline, logs, results, environment."""

    def __init__(self, a):
        self.a = a
        self.dry = a.dry_run
        self.t0 = time.time()
        self.deadline = self.t0 + a.budget
        self.pkg = os.path.abspath(a.pkg)
        self.out = os.path.abspath(a.out)
        self.work = os.path.abspath(a.work)
        self.logs = os.path.join(self.work, "logs")
        shutil.rmtree(self.work, ignore_errors=True)     # nothing of an earlier run may count
        for d in (self.out, self.work, self.logs):
            os.makedirs(d, exist_ok=True)
        self.report = {"format": "samc-gpu-check-1", "dry_run": self.dry, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                       "stages": {}, "targets": {}, "notes": []}
        self.stage = None
        self.stage_end = None
        self.n_log = 0
        self.env = dict(os.environ)
        self.bin = {}
        self.device = "cpu" if self.dry else "cuda"

    def left(self):
        return self.deadline - time.time()

    def run(self, name, cmd, limit, env=None, cwd=None, check=False):
        """Runs cmd (a list) in its own process group with a time limit that never passes
        the stage's end; logs it. Returns (rc, stdout, stderr, seconds); rc None = killed."""
        limit = min(limit, self.stage_end - time.time())
        if limit < 1:
            raise Limit(f"{name}: no time left in stage {self.stage}")
        e = dict(self.env)
        e.update(env or {})
        t = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=cwd or ROOT,
                             start_new_session=True, text=True, errors="replace")
        try:
            out, err = p.communicate(timeout=limit)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                out, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
            rc = None
        secs = time.time() - t
        self.n_log += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        with open(os.path.join(self.logs, f"{self.n_log:03d}_{self.stage}_{safe}.log"), "w") as f:
            envs = " ".join(f"{k}={v}" for k, v in (env or {}).items())
            f.write(f"$ {envs} {' '.join(cmd)}\n# rc {rc if rc is not None else 'killed at the time limit'}, "
                    f"{secs:.1f} s\n--- stdout\n{out}\n--- stderr\n{err}\n")
        if rc is None:
            print(f"  {name}: killed after {secs:.0f} s (time limit)", flush=True)
        if check and rc != 0:
            tail = (err or out).strip().splitlines()[-3:]
            raise RuntimeError(f"{name} failed (rc {rc}): {' / '.join(tail)}")
        return rc, out, err, secs

    def json_lines(self, text):
        out = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def json_object(self, text):
        """The one JSON object a command printed (possibly over several lines), or None."""
        s = text.find("{")
        try:
            return json.loads(text[s:]) if s >= 0 else None
        except ValueError:
            return None


# ---- helpers ------------------------------------------------------------------------

def find_python(c, need):
    """An interpreter that imports every module in need (first of this one, python3, /usr/bin/python3)."""
    seen = []
    for p in [sys.executable, shutil.which("python3"), "/usr/bin/python3"]:
        if not p or p in seen or not os.path.exists(p):
            continue
        seen.append(p)
        r = subprocess.run([p, "-c", "import " + ", ".join(need)], capture_output=True)
        if r.returncode == 0:
            return p
    return None


def gpu_info():
    """nvidia-smi's view of GPU 0, or None when there is none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    q = "name,driver_version,memory.total,compute_cap,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,power.limit"
    r = subprocess.run([smi, "--query-gpu=" + q, "--format=csv,noheader,nounits"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    v = [x.strip() for x in r.stdout.strip().splitlines()[0].split(",")]
    info = dict(zip(q.split(","), v))
    info["count"] = len(r.stdout.strip().splitlines())
    return info


def cuda_lib_dirs():
    """Folders that may hold the CUDA runtime / cuBLAS the backend library needs."""
    dirs = []
    nvcc = shutil.which("nvcc")
    homes = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))] if nvcc else []
    homes += ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"))
    for h in homes:
        dirs += [os.path.join(h, "lib64"), os.path.join(h, "targets", "x86_64-linux", "lib")]
    for sp in sorted(glob.glob("/opt/*/.venv/lib/python3*/site-packages")) + sorted(
            glob.glob("/usr/local/lib/python3*/dist-packages")):
        dirs += sorted(glob.glob(os.path.join(sp, "nvidia", "*", "lib")))
    return [d for d in dirs if os.path.isdir(d)]


def missing_libs(c, path):
    """Shared libraries ldd cannot find for path."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True, env=c.env)
    return re.findall(r"^\s*(\S+) => not found", r.stdout, re.M)


def package_libs_used(c, binaries):
    """Problems: a program that takes stb or cJSON from anywhere but the package's sysroot."""
    sysroot = os.path.join(c.pkg, "sysroot")
    bad = []
    for b in binaries:
        r = subprocess.run(["ldd", b], capture_output=True, text=True, env=c.env)
        for lib, path in re.findall(r"^\s*(lib(?:stb|cjson)\S*) => (\S+)", r.stdout, re.M):
            if not os.path.realpath(path).startswith(os.path.realpath(sysroot) + os.sep):
                bad.append(f"{os.path.basename(b)}: {lib} from {path}")
    return bad


def set_library_path(c, binaries):
    """LD_LIBRARY_PATH: the package's sysroot, then a folder for each CUDA library ldd misses."""
    dirs = [os.path.join(c.pkg, "sysroot", "usr", "lib", "x86_64-linux-gnu")]
    c.env["LD_LIBRARY_PATH"] = ":".join(dirs + [x for x in c.env.get("LD_LIBRARY_PATH", "").split(":") if x])
    cands = cuda_lib_dirs()
    for b in binaries:
        for lib in missing_libs(c, b):
            for d in cands:
                if os.path.exists(os.path.join(d, lib)) and d not in dirs:
                    dirs.append(d)
                    break
    c.env["LD_LIBRARY_PATH"] = ":".join(dirs + [x for x in os.environ.get("LD_LIBRARY_PATH", "").split(":") if x])
    return {b: missing_libs(c, b) for b in binaries}


def build_command(pkg, build, arch, audit=False):
    """The one make line of the package's binaries, against the package's sysroot only, for
    the CUDA targets in arch: package.sh runs it (audit: -MD and ld --trace, for its check of
    what was read), and the build stage again on a device the package does not fit."""
    sysroot = os.path.join(pkg, "sysroot")
    libdir = os.path.join(sysroot, "usr", "lib", "x86_64-linux-gnu")
    tests = [os.path.join(build, "tests", t) for t in ("test_golden", "test_backend_ops", "test_device_pipeline")
             if os.path.exists(os.path.join(ROOT, "tests", t + ".c"))]
    targets = [os.path.join(build, "samc"), os.path.join(build, "gpu_bench"), os.path.join(build, "bench", "bench_sam3")] + tests
    if shutil.which(os.environ.get("NVCC") or "nvcc"):
        targets.append(os.path.join(build, "libsamc_cuda.so"))
    return ["make", "-C", ROOT, f"-j{os.cpu_count() or 4}", f"BUILD={build}", f"SAMC_BIN={build}/samc", "SERVE=0",
            "GDAL_CONFIG=", f"STB_CFLAGS=-I{sysroot}/usr/include/stb",
            f"CFLAGS=-O2 -g{' -MD' if audit else ''} -I{sysroot}/usr/include",
            f"LDFLAGS=-L{libdir}{' -Wl,--trace' if audit else ''}", f"CUDA_ARCH={arch}"] + targets


def fmt(v, unit="", nd=2):
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        return f"{v:.{nd}f}{(' ' + unit) if unit else ''}"
    return str(v)


# ---- stages -------------------------------------------------------------------------

def stage_env(c):
    """What machine, what package."""
    if not shutil.which("nvcc"):     # a CUDA image may keep its toolkit off PATH
        for d in ["/usr/local/cuda/bin"] + sorted(glob.glob("/usr/local/cuda-*/bin")):
            if os.path.exists(os.path.join(d, "nvcc")):
                os.environ["PATH"] = c.env["PATH"] = d + os.pathsep + os.environ.get("PATH", "")
                break
    info = {"gpu": gpu_info(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    man_path = os.path.join(c.pkg, "manifest.json")
    if not os.path.exists(man_path):
        raise RuntimeError(f"no package at {c.pkg} (make gpu-package here, then carry it: see kernels/cuda/NOTES.md)")
    c.manifest = json.load(open(man_path))
    info["package"] = {k: c.manifest.get(k) for k in ("commit", "dirty", "created", "host", "cuda_arch", "nvcc", "glibc",
                                                      "debs", "sam2", "hidden", "package_bytes")}
    info["source_hash_matches"] = c.manifest.get("source_hash") == source_hash()
    for tool in ("nvcc", "gcc", "make", "compute-sanitizer"):
        p = shutil.which(tool)
        if p and tool in ("nvcc", "gcc"):
            r = subprocess.run([p, "--version"], capture_output=True, text=True)
            lines = [x for x in r.stdout.splitlines() if x.strip()]
            info[tool] = (lines[-1] if tool == "nvcc" else lines[0]) if lines else p
        else:
            info[tool] = p
    c.report["machine"] = info
    if not c.dry and not info["gpu"]:
        raise RuntimeError("no GPU: nvidia-smi found none (make gpu-check DRY_RUN=1 is the run without one)")
    g = info["gpu"]
    summary = (f"{g['name']}, cc {g['compute_cap']}, {g['memory.total']} MiB, driver {g['driver_version']}" if g
               else "no GPU (dry run)")
    return "ok", summary, info


def stage_build(c):
    pb = os.path.join(c.pkg, "build")
    g = c.report["machine"]["gpu"]
    cc = int(float(g["compute_cap"]) * 10 + 0.5) if g else None
    why = []
    if not c.report["machine"]["source_hash_matches"]:
        why.append("the sources differ from the package's")
    if cc is not None and cc not in c.manifest.get("sm", []):
        why.append(f"the package has no sm_{cc} code")
    if cc is not None and not os.path.exists(os.path.join(pb, "libsamc_cuda.so")):
        why.append("the package has no libsamc_cuda.so")
    if os.environ.get("GPU_CHECK_REBUILD") == "1":
        why.append("GPU_CHECK_REBUILD=1")
    build, rebuilt, data = pb, False, {}
    if not why:
        progs = [os.path.join(pb, x) for x in ("samc", "gpu_bench", "bench/bench_sam3")] + glob.glob(
            os.path.join(pb, "tests", "test_*"))
        missing = {b: m for b, m in set_library_path(c, progs + glob.glob(os.path.join(pb, "*.so"))).items() if m}
        rc, out, err, _ = c.run("samc_version", [os.path.join(pb, "samc"), "version"], 30)
        if missing:
            why.append("libraries not found: " + "; ".join(f"{os.path.basename(b)}: {' '.join(m)}" for b, m in missing.items()))
        elif rc != 0:
            why.append(f"the package's samc does not run here: {(err or out).strip()[-200:]}")
    if why:
        arch = f"-gencode arch=compute_{cc},code=[sm_{cc},compute_{cc}]" if cc else c.manifest.get("cuda_arch", "")
        build = os.path.join(c.work, "build")
        c.run("make", build_command(c.pkg, build, arch), 600, check=True, env=MAKE_ENV)
        rebuilt = True
        progs = [os.path.join(build, x) for x in ("samc", "gpu_bench", "bench/bench_sam3")] + glob.glob(
            os.path.join(build, "tests", "test_*"))
        missing = {b: m for b, m in set_library_path(c, progs + glob.glob(os.path.join(build, "*.so"))).items() if m}
        if missing:
            raise RuntimeError("libraries not found after the rebuild: " + str(missing))
    c.bin = {"samc": os.path.join(build, "samc"), "gpu_bench": os.path.join(build, "gpu_bench"),
             "cuda_lib": os.path.join(build, "libsamc_cuda.so"), "test_golden": os.path.join(build, "tests", "test_golden"),
             "bench_sam3": os.path.join(build, "bench", "bench_sam3")}
    for key, t in (("op_test", "test_backend_ops"), ("pipeline_test", "test_device_pipeline")):
        if os.path.exists(os.path.join(build, "tests", t)):
            c.bin[key] = os.path.join(build, "tests", t)
    if os.path.exists(c.bin["cuda_lib"]):
        c.env["SAMC_CUDA_LIB"] = c.bin["cuda_lib"]
    c.env["SAMC_GOLDEN"] = os.path.join(c.pkg, "golden")
    progs = [c.bin[k] for k in ("samc", "gpu_bench", "test_golden", "op_test") if k in c.bin]
    bad = package_libs_used(c, progs)
    if bad:
        raise RuntimeError("not the package's libraries: " + "; ".join(bad))
    rc, out, err, _ = c.run("samc_version", [c.bin["samc"], "version"], 30, check=True)
    data.update({"rebuilt": rebuilt, "why": why, "version": out.strip(), "ld_library_path": c.env["LD_LIBRARY_PATH"]})
    cuobjdump = shutil.which("cuobjdump")
    if cuobjdump and os.path.exists(c.bin["cuda_lib"]):
        rc, out, err, _ = c.run("cuobjdump", [cuobjdump, "--list-elf", c.bin["cuda_lib"]], 30)
        data["sass"] = sorted(set(re.findall(r"sm_\d+a?", out)))
    how = f"rebuilt ({'; '.join(why)})" if rebuilt else "the package's binaries (built from these sources)"
    return "ok", how + ("" if rebuilt else f", {c.manifest.get('cuda_arch')}"), data


def parse_tests(out):
    """The verdict lines of a tests/test.h program."""
    cases = {}
    for m in re.finditer(r"^(OK|NOT OK|SKIP)\s+\S+?\.(test_\w+)$", out, re.M):
        cases[m.group(2)] = m.group(1)
    tot = re.search(r"(\d+) passed, (\d+) failed, (\d+) skipped", out)
    return cases, tuple(int(x) for x in tot.groups()) if tot else None


def stage_cuda_ops(c):
    if "op_test" not in c.bin:
        raise RuntimeError("no CUDA op test program was built (tests/test_backend_ops.c)")
    rc, out, err, secs = c.run("op_test", [c.bin["op_test"], "--backend", "cuda"], 200)
    cases, tot = parse_tests(out)
    bad = [ln.strip() for ln in (out + err).splitlines() if ln.strip().startswith("NOT OK") or "FAIL" in ln][:20]
    dev = re.search(r"^cuda device: (.*)$", out, re.M)
    skip = re.search(r"^SKIP   cuda: (.*)$", out, re.M)
    ops = re.findall(r"^(OK|NOT OK)\s+(\w+) cuda \[", out, re.M)
    data = {"rc": rc, "totals": tot, "failures": bad, "device": dev.group(1) if dev else None,
            "ops": sorted({o for _, o in ops}), "seconds": round(secs, 1)}
    if "pipeline_test" in c.bin:
        prc, pout, perr, psecs = c.run("device_pipeline", [c.bin["pipeline_test"]], 90)
        pcases, ptot = parse_tests(pout)
        data["pipeline"] = {"rc": prc, "cases": pcases, "totals": ptot, "seconds": round(psecs, 1),
                            "failures": [ln.strip() for ln in (pout + perr).splitlines() if "FAIL" in ln][:10],
                            "lines": [ln.strip() for ln in pout.splitlines() if ln.startswith("  ")][:10]}
    if rc is None:
        return "timeout", f"killed after {secs:.0f} s", data
    pipe = data.get("pipeline", {})
    ptot = pipe.get("totals") or (0, 0, 0)
    if c.dry:
        why = skip.group(1) if skip else "?"
        data["skip_reason"] = why
        if "could not be loaded" in why or "lacks the samc CUDA entry points" in why:
            return "fail", f"the CUDA library does not load: {why}", data
        if tot and tot[1] == 0 and tot[0] + tot[2] > 0 and ptot[1] == 0:
            return "not run", f"dry run: the cuda cases skip ({why[:80]}); the library loads", data
        return "fail", "the op test did not report as expected", data
    ok = rc == 0 and tot and tot[1] == 0 and tot[0] > 0 and (not pipe or (pipe["rc"] == 0 and ptot[1] == 0))
    summary = (f"{tot[0]} passed, {tot[1]} failed, {tot[2]} skipped in {secs:.0f} s" if tot else f"no verdict (rc {rc})")
    if pipe:
        summary += f"; device pipeline {ptot[0]} passed, {ptot[1]} failed, {ptot[2]} skipped"
    return ("ok" if ok else "fail"), summary, data


def golden_micro(c):
    env = {"SAMC_GOLDEN_CONFIGS": "micro"}
    rc, out, err, secs = c.run("test_golden_micro", [c.bin["test_golden"]], 120, env=env)
    cases, tot = parse_tests(out)
    ious = [{"precision": m.group(2), "where": m.group(3), "case": m.group(4), "iou": float(m.group(5)), "ok": m.group(1) == "OK"}
            for m in re.finditer(r"^\s+(OK|NOT OK)\s+(bf16|fp16) \((cuda|emulated on cpu_fast)\) (\S+): smallest mask IoU vs fp32 golden ([\d.]+)",
                                 out, re.M)]
    cuda = {k: v for k, v in cases.items() if "cuda" in k}
    return {"rc": rc, "cases": cases, "totals": tot, "cuda_cases": cuda, "ious": ious, "seconds": round(secs, 1)}


def golden_cli(c, config, precisions, device):
    res = {}
    model = os.path.join(c.work, f"golden_{config}.safetensors")
    if not os.path.exists(model):
        c.run(f"synth_{config}", [c.bin["samc"], "synth", "--config", config, "-o", model], 120, check=True)
    py = find_python(c, ["numpy", "PIL"])
    if not py:
        raise RuntimeError("no Python with numpy and PIL for the golden checker")
    for p in precisions:
        cmd = [py, os.path.join(HERE, "golden_cli.py"), "--samc", c.bin["samc"], "--checker",
               os.path.join(c.pkg, "tools", "golden_check.py"), "--golden", os.path.join(c.pkg, "golden", config),
               "--config", config, "--model", model, "--work", os.path.join(c.work, f"golden_{config}_{p}"),
               "--precision", p, "--device", device]
        rc, out, err, secs = c.run(f"golden_cli_{config}_{p}", cmd, 150)
        r = c.json_lines(out)
        res[p] = r[-1] if r else {"error": (err or out).strip()[-300:], "rc": rc}
        res[p]["seconds"] = round(secs, 1)
    return res


def plan(c):
    """What each stage runs. On the GPU: tiny and large, bf16 and fp32. In the dry run the
    same code runs on cpu_fast with micro standing in for both models (fp32 only, few
    iterations): every result keeps its real config, backend and precision, and the
    targets take only cuda bf16 results of the right model, so none comes from a dry run."""
    if c.dry:
        return {"models": {"tiny": "micro", "large": "micro"}, "precisions": ["fp32"], "iters": 1, "warmup": 0,
                "encode_batches": {"tiny": [2], "large": [2]}, "decoder_batches": "1,4,16",
                "golden": ("micro", ["fp32"]), "torch_modes": "fp32", "torch_roles": ["tiny"], "amg_points": 4,
                "crop": 256, "tiles": 1, "max_passes": 1, "soak": 20,
                "image": "truck_320x240.png"}
    return {"models": {"tiny": "tiny", "large": "large"}, "precisions": ["bf16", "fp32"], "iters": 20, "warmup": 3,
            "encode_batches": {"tiny": [2, 4, 8, 16, 32], "large": [2, 4, 8]}, "decoder_batches": "1,64,1024",
            "golden": ("tiny", ["fp32", "bf16", "fp16"]), "torch_modes": "fp32,bf16,bf16-compile",
            "torch_roles": ["tiny", "large"], "amg_points": 32, "crop": 1024, "tiles": 4, "max_passes": 2,
            "soak": 1000, "image": "truck_1800x1200.png"}


def stage_golden(c):
    data = {"micro": golden_micro(c)}
    m = data["micro"]
    cfg, precs = plan(c)["golden"]
    data["cli"] = golden_cli(c, cfg, precs, c.device)
    fails = []
    if c.dry:
        fails += [k for k, v in m["cases"].items() if "cuda" not in k and "tiny" not in k and v != "OK"]
        fails += [k for k, v in m["cuda_cases"].items() if v != "SKIP"]
    else:
        fails += [k for k, v in m["cuda_cases"].items() if v != "OK"]
        fails += [f"micro {i['precision']} {i['case']}" for i in m["ious"] if i["where"] == "cuda" and not i["ok"]]
    for p, r in data["cli"].items():
        if "min_iou" not in r:
            fails.append(f"{cfg} {p}: {r.get('error', '?')[:80]}")
            continue
        if r["min_iou"] < 0.99:
            fails.append(f"{cfg} {p} IoU {r['min_iou']:.4f}")
        if p == "fp32" and not r.get("checker_ok"):
            fails.append(f"{cfg} fp32 over the golden tolerances")
    t = data["cli"]
    ious = ", ".join(f"{p} {t[p]['min_iou']:.4f}" for p in t if "min_iou" in t[p])
    if c.dry:
        tot = m["totals"] or (0, 0, 0)
        summary = (f"dry run: cuda cases skip; harness checked on cpu_fast (micro test_golden: {tot[0]} passed, "
                   f"{tot[1]} failed, {tot[2]} skipped; CLI {cfg} min IoU {ious})")
        return ("fail" if fails else "not run"), summary + (f"; FAIL: {', '.join(fails)}" if fails else ""), data
    summary = f"micro cuda {sum(v == 'OK' for v in m['cuda_cases'].values())}/{len(m['cuda_cases'])} OK; {cfg} min IoU {ious}"
    return ("fail" if fails else "ok"), summary + (f"; FAIL: {', '.join(fails)}" if fails else ""), data


def synth(c, config):
    path = os.path.join(c.work, f"{config}.safetensors")
    if not os.path.exists(path):
        c.run(f"synth_{config}", [c.bin["samc"], "synth", "--config", config, "-o", path], 120, check=True)
    return path


def image(c, name=None):
    return os.path.join(c.pkg, "golden", "images", name or plan(c)["image"])


def samc_bench(c, name, model, img, prec, iters, warmup, batches=None, env=None, decoder=None):
    cmd = [c.bin["samc"], "bench", "--model", model, "--image", img, "--device", c.device, "--precision", prec,
           "--iters", str(iters), "--warmup", str(warmup), "--json"]
    if batches:
        cmd += ["--encode-batch", ",".join(str(b) for b in batches)]
    if decoder:
        cmd += ["--decoder-batch", decoder]
    rc, out, err, secs = c.run(name, cmd, 120, env=env)
    r = c.json_object(out) if rc == 0 else None
    if r is None:
        return {"error": (err or out).strip()[-300:], "rc": rc}
    best = (1, r["encoder_ms"])
    for e in r.get("encode_batch", []):
        if e["ms_per_image"] < best[1]:
            best = (e["batch"], e["ms_per_image"])
    r["best_batch"], r["best_ms_per_image"] = best
    return r


def gpu_bench(c, name, mode, model, img, prec, extra, limit=120):
    cmd = [c.bin["gpu_bench"], mode, "--model", model, "--image", img, "--device", c.device, "--precision", prec] + extra
    rc, out, err, secs = c.run(name, cmd, limit)
    r = c.json_lines(out)
    if rc != 0 or not r:
        return {"error": (err or out).strip()[-300:], "rc": rc}
    r[-1]["seconds"] = round(secs, 1)
    return r[-1]


def bench_views(r):
    """The decoder and memory views of one samc bench result (its --decoder-batch list and
    its measured device memory), as the tables and targets read them."""
    head = {k: r.get(k) for k in ("config", "backend", "precision")}
    dec = dict(head, batches=r.get("decoder_batch", []))
    mem = dict(head, **{k: r.get(k) for k in ("model_device_mb", "device_total_mb", "device_used_at_start_mb",
                                                "device_used_after_load_mb", "device_used_after_encode_mb",
                                                "device_used_after_predict_mb", "weight_mb", "scratch_mb", "graphs")})
    return dec, mem


def stage_bench(c):
    pl = plan(c)
    img = image(c)
    data = {}
    for role in ("tiny", "large"):
        w = synth(c, pl["models"][role])
        for i, p in enumerate(pl["precisions"]):
            batches = pl["encode_batches"][role] if i == 0 else pl["encode_batches"][role][:2]
            r = samc_bench(c, f"bench_{role}_{p}", w, img, p, pl["iters"], pl["warmup"], batches,
                           decoder=pl["decoder_batches"] if role == "large" else None)
            data[f"{role}_{p}"] = r
            if role == "large" and "error" not in r:
                data[f"decoder_large_{p}"], data[f"memory_large_{p}"] = bench_views(r)
    bad = [k for k, v in data.items() if "error" in v]
    s = []
    for role in ("large", "tiny"):
        r = data.get(f"{role}_{pl['precisions'][0]}", {})
        if "encoder_ms" in r:
            s.append(f"{r['config']} {r['precision']} encode {r['encoder_ms']:.2f} ms wall, "
                     f"{fmt(r.get('encoder_device_ms'))} ms device (best batch {r['best_batch']}: "
                     f"{r['best_ms_per_image']:.2f} ms/image) + predict {r['decoder_ms']:.2f} ms")
    summary = "; ".join(s) + (f"; failed: {', '.join(bad)}" if bad else "")
    if c.dry:
        return ("fail" if bad else "not run"), "dry run on cpu_fast: " + summary, data
    return ("fail" if bad else "ok"), summary, data


def stage_pytorch(c):
    py = find_python(c, ["torch", "numpy", "PIL", "yaml"])
    if not py:
        return "fail", ("no Python with torch, numpy, PIL and yaml (here: apt-get install python3-torch "
                        "python3-torchvision python3-yaml, as .ci/run does)"), {}
    pl = plan(c)
    base = [py, os.path.join(HERE, "torch_sam2.py"), "--sam2-src", os.path.join(c.pkg, "sam2"), "--device", c.device,
            "--image", image(c), "--iters", str(max(1, pl["iters"] // 2)), "--warmup", str(pl["warmup"]),
            "--decoder-batches", pl["decoder_batches"].replace("1,", "", 1), "--modes", pl["torch_modes"]]
    data = {"python": py}
    notes = []
    for role in pl["torch_roles"]:
        cfg = pl["models"][role]
        golden = os.path.join(c.pkg, "golden", cfg)
        model = (["--config-json", os.path.join(golden, "model_config.json")] if cfg == "micro" else ["--config", cfg])
        cmd = base + model + ["--weights", synth(c, cfg)]
        if role == "tiny":
            cmd += ["--golden", golden]
        if role == "large" or c.dry:
            cmd += ["--amg-points", str(pl["amg_points"])] + (["--amg-modes", "fp32"] if c.dry else [])
        rc, out, err, secs = c.run(f"torch_{role}", cmd, 150 if role == "tiny" else 300, env={"PYTHONUNBUFFERED": "1"})
        data[role] = c.json_lines(out)
        if rc != 0:
            notes.append(f"{cfg}: {'killed at the time limit' if rc is None else 'rc ' + str(rc)} after "
                         f"{len(data[role])} results ({(err or '').strip()[-160:]})")
    chk = [r for r in data.get("tiny", []) if r.get("what") == "check"]
    ok = bool(chk and chk[0].get("ok"))
    s = [f"same-model check ({chk[0]['config'] if chk else '?'} fp32 vs golden, torch {chk[0]['torch'] if chk else '?'}): "
         + ("ok" if ok else "FAILED") + (f", low-res max |diff| {chk[0]['lowres_max_abs_diff']:.2e}" if chk else "")]
    if c.dry:
        return ("not run" if ok and not notes else "fail"), "dry run on the CPU: " + "; ".join(s + notes), data
    return ("ok" if ok and not notes else ("partial" if ok else "fail")), "; ".join(s + notes), data


def stage_amg_tiles(c):
    pl = plan(c)
    p = pl["precisions"][0]
    large = synth(c, pl["models"]["large"])
    img = image(c)
    data = {"amg_large": gpu_bench(c, "amg_large", "amg", large, img, p,
                                   ["--points-per-side", str(pl["amg_points"]), "--crop", str(pl["crop"]),
                                    "--iters", str(max(1, pl["iters"] // 4)), "--warmup", str(min(2, pl["warmup"]))]),
            "tiles_large": gpu_bench(c, "tiles_large", "tiles", large, img, p,
                                     ["--tiles", str(pl["tiles"]), "--max-passes", str(pl["max_passes"]),
                                      "--points-per-side", str(pl["amg_points"]), "--crop", str(pl["crop"])])}
    bad = [k for k, v in data.items() if "error" in v]
    a, t = data["amg_large"], data["tiles_large"]
    s = []
    if "ms" in a:
        s.append(f"AMG {a['points_per_side']}x{a['points_per_side']} {a['config']} {a['precision']} {a['width']}x{a['height']} "
                 f"{a['ms']:.1f} ms ({a['masks']} masks)")
    if "ms_per_tile" in t:
        s.append(f"tiles {t['ms_per_tile']:.1f} ms/tile ({t['passes']} passes over {t['tiles']} tiles of "
                 f"{t['width']}x{t['height']})")
    summary = "; ".join(s) + (f"; failed: {', '.join(bad)}" if bad else "")
    if c.dry:
        return ("fail" if bad else "not run"), "dry run on cpu_fast: " + summary, data
    return ("fail" if bad else "ok"), summary, data


def stage_soak(c):
    pl = plan(c)
    secs = max(10, min(75, c.stage_end - time.time() - 25))
    r = gpu_bench(c, "soak_large", "soak", synth(c, pl["models"]["large"]), image(c), pl["precisions"][0],
                  ["--encodes", str(pl["soak"]), "--seconds", f"{secs:.0f}"], limit=secs + 30)
    if "error" in r:
        return "fail", r["error"][:200], r
    summary = (f"{r['encodes_done']}/{r['encodes_asked']} {r['config']} {r['precision']} encodes in {r['seconds']:.1f} s, "
               f"RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MiB, median {r['ms_median']:.2f} ms")
    if c.dry:
        return "not run", f"dry run on cpu_fast: {summary} (no device memory to read)", r
    grew = r["device_used_after_mb"] - r["device_used_before_mb"]
    r["device_growth_mb"] = grew
    status = "ok" if grew <= 2.0 and r["encodes_done"] == r["encodes_asked"] else ("partial" if grew <= 2.0 else "fail")
    return status, f"{summary}, device {r['device_used_before_mb']:.0f} -> {r['device_used_after_mb']:.0f} MiB", r


def find_sanitizer():
    p = shutil.which("compute-sanitizer")
    if p:
        return p
    nvcc = shutil.which("nvcc")
    cands = [os.path.join(os.path.dirname(os.path.realpath(nvcc)), "compute-sanitizer")] if nvcc else []
    cands += glob.glob("/usr/local/cuda*/bin/compute-sanitizer") + glob.glob("/usr/local/cuda*/compute-sanitizer/compute-sanitizer")
    cands += glob.glob("/opt/nvidia/**/compute-sanitizer", recursive=True)
    return next((x for x in cands if os.path.isfile(x) and os.access(x, os.X_OK)), None)


def stage_sanitizer(c):
    san = find_sanitizer()
    data = {"compute_sanitizer": san}
    if c.dry:
        return "not run", f"dry run (compute-sanitizer {'at ' + san if san else 'not installed here'})", data
    if not san:
        return "not run", "compute-sanitizer not found", data
    micro = synth(c, "micro")
    img = os.path.join(c.pkg, "golden", "images", "truck_320x240.png")
    fails = []
    for tool, prec in (("memcheck", "fp32"), ("racecheck", "fp32"), ("memcheck", "bf16")):
        cmd = [san, "--tool", tool, "--error-exitcode", "99", c.bin["samc"], "segment", img, "--model", micro,
               "--point", "160,120", "--device", "cuda", "--precision", prec, "--out", os.path.join(c.work, f"san_{tool}")]
        rc, out, err, secs = c.run(f"{tool}_{prec}", cmd, 150)
        summ = re.search(r"(?:ERROR|RACECHECK) SUMMARY: (\d+) (?:error|hazard)", out + err)
        hazards = re.search(r"RACECHECK SUMMARY: (\d+) hazard", out + err)
        data[f"{tool}_{prec}"] = {"rc": rc, "errors": int(summ.group(1)) if summ else None,
                                  "hazards": int(hazards.group(1)) if hazards else None, "seconds": round(secs, 1),
                                  "tail": (out + err).strip()[-400:]}
        if rc != 0 or not summ or int(summ.group(1)) or (hazards and int(hazards.group(1))):
            fails.append(f"{tool} {prec}: rc {rc}, {summ.group(0) if summ else 'no summary'}")
    return ("fail" if fails else "ok"), "; ".join(fails) if fails else "memcheck (fp32, bf16) and racecheck: 0 errors", data


def read_variants(path):
    """kernels/cuda/variants.txt: 'switch NAME VALUE...' and 'choose NAME SM VALUE ...' lines."""
    switches, choices = {}, []
    for n, line in enumerate(open(path), 1):
        t = line.split("#", 1)[0].split()
        if not t:
            continue
        if t[0] == "switch" and len(t) >= 3 and re.fullmatch(r"[A-Z0-9_]+", t[1]):
            switches[t[1]] = t[2:]
        elif t[0] == "choose" and len(t) >= 4 and re.fullmatch(r"\d+", t[2]):
            choices.append((t[1], int(t[2]), t[3]))
        else:
            raise RuntimeError(f"{path}:{n}: not 'switch NAME VALUE...' nor 'choose NAME SM VALUE': {line.strip()}")
    for name, sm, v in choices:
        if name not in switches or v not in switches[name]:
            raise RuntimeError(f"{path}: choose {name} {sm} {v}: no such switch or value")
    return switches, choices


# Switches that change nothing in SAM2.1 (the variants stage's model): CONV only acts on
# convolutions of 256+ taps, which SAM3 has (its neck and pixel decoder) and SAM2.1 not.
SAM3_ONLY_SWITCHES = {"CONV"}


def stage_variants(c):
    path = os.path.join(ROOT, "kernels", "cuda", "variants.txt")
    switches, choices = read_variants(path)
    data = {"switches": switches, "choices": choices, "timings": {}}
    if not switches:
        return "ok", "no switches in kernels/cuda/variants.txt yet: nothing to time", data
    if c.dry:
        return "not run", f"dry run: {len(switches)} switches read ({', '.join(switches)})", data
    g = c.report["machine"]["gpu"]
    sm = int(float(g["compute_cap"]) * 10 + 0.5)
    large = synth(c, "large")
    img = os.path.join(c.pkg, "golden", "images", "truck_1800x1200.png")
    winners = {}
    for name, values in switches.items():
        if name in SAM3_ONLY_SWITCHES:  # nothing of SAM2.1 large takes them: timed in the extra stage
            continue
        best = None
        for v in values:
            env = {f"SAMC_CUDA_VARIANT_{name}": v}
            # the micro golden's CUDA cases only (the CPU ones do not depend on a switch)
            rc, out, err, _ = c.run(f"variant_{name}_{v}_golden", [c.bin["test_golden"], "test_micro_cuda",
                                    "test_micro_cuda_bf16", "test_micro_cuda_fp16"], 60,
                                    env=dict(env, SAMC_GOLDEN_CONFIGS="micro"))
            cases, tot = parse_tests(out)
            correct = rc == 0 and all(x == "OK" for k, x in cases.items() if "cuda" in k)
            r = samc_bench(c, f"variant_{name}_{v}_bench", large, img, "bf16", 10, 2, env=env)
            ms = r["encoder_ms"] + r["decoder_ms"] if "encoder_ms" in r else None
            data["timings"][f"{name}={v}"] = {"correct": correct, "ms": ms}
            if correct and ms is not None and (best is None or ms < best[1]):
                best = (v, ms)
        if best:
            winners[name] = best
    lines = [ln.rstrip("\n") for ln in open(path)]
    lines = [ln for ln in lines if not (ln.split()[:1] == ["choose"] and ln.split()[1] in winners and ln.split()[2] == str(sm))]
    stamp = time.strftime("%Y-%m-%d")
    for name, (v, ms) in winners.items():
        lines.append(f"choose {name} {sm} {v}  # {ms:.3f} ms large bf16 image -> masks, {g['name']}, {stamp}")
    with open(os.path.join(c.out, "variants.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    data["winners"] = winners
    return "ok", "winners: " + ", ".join(f"{k}={v[0]}" for k, v in winners.items()), data


def stage_extra(c):
    if c.dry:
        return "not run", "dry run", {}
    data = {}
    if "op_test" in c.bin:
        rc, out, err, secs = c.run("op_perf", [c.bin["op_test"], "--backend", "cuda", "--perf"], 150)
        data["op_bench"] = [ln.strip() for ln in out.splitlines() if ln.startswith("PERF")]
        # the 16-bit MLP linears (Hiera-L shapes) under each way of running them
        # (switch GEMM): where our tensor-core GEMM's fused GELU wins and where cuBLAS does
        for v in ("gemmex", "lt", "tc"):
            rc, out, err, secs = c.run(f"op_perf_linear_act_{v}", [c.bin["op_test"], "--backend", "cuda_bf16", "--op",
                                       "linear_act", "--size", "sam,big", "--perf"], 40,
                                       env={"SAMC_CUDA_VARIANT_GEMM": v})
            data["op_bench"] += [f"GEMM={v} " + ln.strip() for ln in out.splitlines() if ln.startswith("PERF")]
        # SAM3's long convolutions (neck and pixel decoder 3x3 over 256 channels, the ViT's
        # patch embed) and the neck's transposed ones through the 16-bit GEMM (im2col /
        # scatter) and through the direct FMA kernels
        for v in ("gemm", "direct"):
            rc, out, err, secs = c.run(f"op_perf_conv2d_{v}", [c.bin["op_test"], "--backend", "cuda_bf16", "--op",
                                       "conv2d,conv_transpose2x2", "--size", "big", "--perf"], 40,
                                       env={"SAMC_CUDA_VARIANT_CONV": v})
            data["op_bench"] += [f"CONV={v} " + ln.strip() for ln in out.splitlines() if ln.startswith("PERF")]
    rc, out, err, secs = c.run("test_golden_tiny", [c.bin["test_golden"]], 400, env={"SAMC_GOLDEN_CONFIGS": "tiny"})
    cases, tot = parse_tests(out)
    data["golden_tiny"] = {"rc": rc, "cases": cases, "totals": tot, "seconds": round(secs, 1)}
    cuda = {k: v for k, v in cases.items() if "cuda" in k}
    bad = [k for k, v in cuda.items() if v != "OK"]
    return ("fail" if bad else ("ok" if rc is not None else "partial")), (
        f"{len(data.get('op_bench', []))} kernel timings; test_golden tiny cuda: "
        + (", ".join(f"{k[5:]} {v}" for k, v in cuda.items()) or ("killed" if rc is None else "none"))), data


# ---- SAM3 ----------------------------------------------------------------------------

SAM3_PROBE = r"""
import importlib, json, sys
sys.path += sys.argv[1:]
out = {"python": sys.version.split()[0], "missing": [], "errors": {}}
for m in ("torch", "torchvision", "numpy", "PIL", "safetensors", "regex", "huggingface_hub", "yaml", "timm", "einops",
          "ftfy", "iopath", "tqdm"):
    try:
        mod = importlib.import_module(m)
        out[m] = getattr(mod, "__version__", "?")
    except Exception as e:     # a module that is there but does not import counts as missing
        out["missing"].append(m)
        out["errors"][m] = f"{type(e).__name__}: {e}"[:160]
if "torch" in out and "torch" not in out["missing"]:
    import torch
    out["sdpa"] = hasattr(torch.nn.functional, "scaled_dot_product_attention")
    out["cuda"] = torch.cuda.is_available()
try:
    import transformers
    out["transformers"] = transformers.__version__
    out["transformers_sam3"] = hasattr(transformers, "Sam3Model")
except Exception as e:
    out["transformers"] = None
print(json.dumps(out))
"""

# the prompts of both sides: the micro golden's b_text_posbox box on the 320x240 truck, the
# same box scaled by 5.625 on the 1800x1200 one (bench/run_sam3_bench.sh)
SAM3_BOX = {"truck_320x240.png": "76,124,124,170", "truck_1800x1200.png": "427.5,697.5,697.5,956.25"}
SAM3_THRESHOLD = "0.3145480155944824"


def sam3_plan(c):
    if c.dry:
        return {"configs": ["sam3_micro"], "precisions": ["fp32"], "iters": 1, "warmup": 0, "torch_modes": None,
                "full_min_s": None}
    # bf16 first (the 20 ms target's row, beside PyTorch's bf16 autocast), then fp16 (the
    # closer to fp32 for SAM3 on the simulator: kernels/cuda/NOTES.md), fp32 last
    return {"configs": ["sam3_micro", "sam3"], "precisions": ["bf16", "fp16", "fp32"], "iters": 10, "warmup": 2,
            "torch_modes": "bf16,fp32", "full_min_s": 150}


def sam3_image(config):
    return "truck_320x240.png" if config == "sam3_micro" else "truck_1800x1200.png"


def sam3_torch_python(c, extra):
    """The first interpreter (SAM3_TORCH_PYTHON, this one, python3, /usr/bin/python3) that
    imports everything the official sam3 image path needs, with torch >= 2 (its attention is
    F.scaled_dot_product_attention), and what each candidate lacked."""
    seen, probes = [], []
    for p in [os.environ.get("SAM3_TORCH_PYTHON"), sys.executable, shutil.which("python3"), "/usr/bin/python3"]:
        if not p or p in seen or not os.path.exists(p):
            continue
        seen.append(p)
        r = subprocess.run([p, "-c", SAM3_PROBE] + extra, capture_output=True, text=True, env=c.env)
        try:
            info = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            info = {"missing": ["?"], "errors": {"probe": (r.stderr or "")[-200:]}}
        info["path"] = p
        probes.append(info)
        if not info["missing"] and info.get("sdpa"):
            return p, probes
    return None, probes


def sam3_why_not(probes):
    out = []
    for p in probes:
        why = [f"missing {', '.join(p['missing'])}"] if p["missing"] else []
        if p.get("sdpa") is False:
            why.append(f"torch {p.get('torch')} has no scaled_dot_product_attention (the official sam3 needs torch >= 2.0)")
        out.append(f"{p['path']} (Python {p.get('python', '?')}): {'; '.join(why)}")
    return " / ".join(out) or "no Python found"


def sam3_samc(c, config, weights, prec, pl, vocab):
    img = image(c, sam3_image(config))
    cmd = [c.bin["bench_sam3"], config, "fast", str(os.cpu_count() or 1), weights, img, str(pl["iters"]),
           "--warmup", str(pl["warmup"]), "--device", "cuda" if not c.dry else "cpu_fast", "--precision", prec,
           "--text", "truck", "--text2", "wheel", "--box", SAM3_BOX[os.path.basename(img)],
           "--threshold", SAM3_THRESHOLD, "--vocab", vocab, "--json", "-"]
    rc, out, err, secs = c.run(f"sam3_samc_{config}_{prec}", cmd, 150)
    r = [x for x in c.json_lines(out) if x.get("run") == "samc_sam3"]
    if rc != 0 or not r:
        return {"error": (err or out).strip()[-300:], "rc": rc, "config": config, "precision": prec}
    r = r[-1]
    r["seconds"] = round(secs, 1)
    return r


def sam3_torch(c, py, extra, config, weights, device, modes, pl, vocab, check=None, limit=200):
    img = image(c, sam3_image(config))
    cmd = [py, os.path.join(ROOT, "bench", "pytorch_sam3_bench.py"), "--sam3-src", extra[0], "--weights", weights,
           "--image", img, "--bpe", vocab, "--threads", str(os.cpu_count() or 1), "--device", device, "--modes", modes,
           "--iters", str(pl["iters"]), "--warmup", str(pl["warmup"]), "--text", "truck", "--text2", "wheel",
           "--box", SAM3_BOX[os.path.basename(img)], "--threshold", SAM3_THRESHOLD, "--skip-init"]
    for x in extra[1:]:
        cmd += ["--extra-path", x]
    if config == "sam3_micro":
        cmd += ["--config-json", os.path.join(c.pkg, "golden", "sam3", "micro", "model_config.json")]
    if check:
        cmd += ["--check-golden", check]
    rc, out, err, secs = c.run(f"sam3_torch_{config}_{device}_{modes.replace(',', '_')}", cmd, limit,
                               env={"PYTHONUNBUFFERED": "1"})
    res = [x for x in c.json_lines(out) if x.get("run") == "pytorch_sam3"]
    note = None
    if rc != 0:
        note = (f"PyTorch {config} {device} {modes}: {'killed at the time limit' if rc is None else 'rc ' + str(rc)} "
                f"after {len(res)} results ({(err or '').strip()[-200:]})")
    return res, note


def sam3_golden_lowp(c, py, gold, vocab, fails, notes):
    """The six SAM3 micro cases through `samc find` on the device in fp16 and bf16 (16-bit-only
    linear weights): same detections, mask IoU and score bounds as measured on the simulator
    (the numbers of tests/cuda_sim/cli_check.sh; kernels/cuda/NOTES.md, "SAM3 on a 4 GB
    card"), while the stage has time. Returns ({precision: result}, cut short?)."""
    res, cut = {}, False
    for prec, iou, stol, flips in (("fp16", "0.98", "2e-4", "0.0006"), ("bf16", "0.87", "1e-3", "0.005")):
        try:
            rc, out, err, secs = c.run(f"sam3_golden_cli_{prec}", [py, os.path.join(ROOT, "tests", "sam3_golden_check.py"),
                                       "--samc", c.bin["samc"], "--golden", gold, "--vocab", vocab, "--work",
                                       os.path.join(c.work, f"sam3_golden_{prec}"), "--timeout", "60", "--lowp-iou",
                                       iou, "--score-tol", stol, "--lowp-flips", flips], 90,
                                       env={"SAMC_BACKEND": "cuda", "SAMC_PRECISION": prec})
        except Limit:
            cut = True
            notes.append(f"micro golden in {prec} on the device not run: no time left in the stage")
            continue
        v = re.search(r"^VERDICT (\S+): (\d+)/(\d+) cases pass", out, re.M)
        res[prec] = {"rc": rc, "seconds": round(secs, 1), "bounds": {"iou": iou, "score": stol, "flips": flips},
                     "lines": [ln for ln in out.splitlines() if ln.startswith(("PASS", "FAIL", "VERDICT"))]}
        if rc != 0 or not v or v.group(2) != v.group(3):
            fails.append(f"micro golden on cuda in {prec}: " + (f"{v.group(2)}/{v.group(3)} cases pass" if v else
                                                                 f"rc {rc}: {(err or out).strip()[-120:]}"))
    return res, cut


def stage_sam3(c):
    """SAM3 (issue 12): the CLI against the micro golden on the device (fp32), bench_sam3 on the
    device (micro, then the full sam3 config when the stage has time), and the official sam3
    package on the same GPU, weights, image and prompts (same-model check on the CPU first)."""
    pl = sam3_plan(c)
    gold = os.path.join(c.pkg, "golden", "sam3", "micro")
    vocab = os.path.join(c.pkg, "golden", "sam3", "assets", "bpe_simple_vocab_16e6.txt.gz")
    data = {"plan": pl, "samc": {}, "torch": [], "notes": []}
    fails, notes, partial = [], [], False
    # 1. correctness: six micro cases through `samc find` on the device, fp32
    py = find_python(c, ["numpy", "PIL"])
    if not py:
        raise RuntimeError("no Python with numpy and PIL for tests/sam3_golden_check.py")
    backend = "fast" if c.dry else "cuda"
    rc, out, err, secs = c.run("sam3_golden_cli", [py, os.path.join(ROOT, "tests", "sam3_golden_check.py"), "--samc",
                                                   c.bin["samc"], "--golden", gold, "--vocab", vocab, "--work",
                                                   os.path.join(c.work, "sam3_golden"), "--timeout", "60"],
                               120, env={"SAMC_BACKEND": backend, "SAMC_PRECISION": "fp32"})
    verdict = re.search(r"^VERDICT (\S+): (\d+)/(\d+) cases pass, worst rel err (\S+)$", out, re.M)
    data["golden"] = {"backend": backend, "rc": rc, "seconds": round(secs, 1),
                      "lines": [ln for ln in out.splitlines() if ln.startswith(("PASS", "FAIL", "synth", "VERDICT"))],
                      "passed": int(verdict.group(2)) if verdict else 0, "cases": int(verdict.group(3)) if verdict else 0,
                      "worst_rel_err": verdict.group(4) if verdict else None}
    g = data["golden"]
    if rc != 0 or not verdict or g["passed"] != g["cases"]:
        fails.append(f"micro golden on {backend}: {g['passed']}/{g['cases']} cases pass"
                     + ("" if verdict else f" (rc {rc}: {(err or out).strip()[-120:]})"))
    # 2. the Python side: which interpreter can run the official package
    whls = sorted(glob.glob(os.path.join(c.pkg, "sam3py", "sam3-*.whl")))
    extra = whls[:1] + sorted(x for x in glob.glob(os.path.join(c.pkg, "sam3py", "*.whl")) if x not in whls[:1]) \
        + [os.path.join(c.pkg, "sam3py", "site")]
    tpy, probes = sam3_torch_python(c, extra) if whls else (None, [])
    data["python_probes"] = probes
    if not whls:
        notes.append("no official sam3 wheel in the package (package.sh)")
    tinfo = next((p for p in probes if p["path"] == tpy), probes[0] if probes else {})
    if tinfo.get("transformers"):
        notes.append(f"transformers {tinfo['transformers']} here {'has' if tinfo.get('transformers_sam3') else 'has no'} "
                     "Sam3Model; the PyTorch side is the official sam3 package (the goldens' own code) either way")
    why_torch = None if tpy else sam3_why_not(probes)
    # 3. samc on the micro config, and the same-model check of the PyTorch side (CPU, fp32)
    micro = os.path.join(c.work, "sam3_micro.safetensors")
    c.run("synth_sam3_micro", [c.bin["samc"], "synth", "--config", "sam3_micro", "-o", micro], 60, check=True)
    for p in pl["precisions"]:
        r = sam3_samc(c, "sam3_micro", micro, p, pl, vocab)
        data["samc"][f"sam3_micro_{p}"] = r
        if "error" in r:
            fails.append(f"bench_sam3 sam3_micro {p}: {r['error'][-100:]}")
    if tpy:
        res, note = sam3_torch(c, tpy, extra, "sam3_micro", micro, "cpu", "fp32", dict(pl, iters=1, warmup=0), vocab,
                               check=gold, limit=120)
        data["torch"] += res
        chk = [r for r in res if r.get("golden_ok") is not None]
        data["same_model"] = {"python": tpy, "ok": bool(chk and chk[0]["golden_ok"]),
                              "checks": chk[0]["golden_checks"] if chk else None}
        if not data["same_model"]["ok"]:
            fails.append("PyTorch same-model check (sam3_micro fp32 on the CPU vs the golden a_text, b_text_posbox) failed"
                         + (f": {note}" if note else ""))
    else:
        data["same_model"] = {"ok": None, "why_not": why_torch}
        notes.append(f"PyTorch side not run: {why_torch}")
    # 4. the device: PyTorch micro, then the full config when the stage has the time
    if not c.dry:
        if tpy:
            res, note = sam3_torch(c, tpy, extra, "sam3_micro", micro, "cuda", pl["torch_modes"], pl, vocab, limit=120)
            data["torch"] += res
            if note:
                partial = True
                notes.append(note)
        left = c.stage_end - time.time()
        if left < pl["full_min_s"]:
            partial = True
            notes.append(f"full sam3 config not run: {left:.0f} s left in the stage, it needs about {pl['full_min_s']}")
        else:
            full = os.path.join(c.work, "sam3.safetensors")
            try:      # the micro results above stay in the report whatever happens here
                rc, out, err, secs = c.run("synth_sam3", [c.bin["samc"], "synth", "--config", "sam3", "-o", full], 90)
                data["synth_sam3_s"] = round(secs, 1)
                if rc != 0:
                    fails.append(f"samc synth --config sam3: rc {rc} ({(err or out).strip()[-120:]})")
                else:
                    for p in pl["precisions"]:
                        r = sam3_samc(c, "sam3", full, p, pl, vocab)
                        data["samc"][f"sam3_{p}"] = r
                        if "error" in r:
                            fails.append(f"bench_sam3 sam3 {p}: {r['error'][-100:]}")
                        if p == pl["precisions"][0] and tpy:   # the target's pair first: samc bf16, PyTorch
                            res, note = sam3_torch(c, tpy, extra, "sam3", full, "cuda", pl["torch_modes"], pl, vocab,
                                                   limit=max(30, c.stage_end - time.time() - 40))
                            data["torch"] += res
                            if note:
                                partial = True
                                notes.append(note)
            except Limit as e:
                partial = True
                notes.append(f"full sam3 config cut at the stage's time limit ({e})")
            finally:
                try:
                    os.remove(full)
                except OSError:
                    pass
    # 5. last (the full config's numbers come first): the micro cases in 16 bits on the device
    if not c.dry:
        data["golden_lowp"], cut = sam3_golden_lowp(c, py, gold, vocab, fails, notes)
        partial = partial or cut
    data["notes"] = notes
    s = []
    s.append(f"micro golden via the CLI on {backend}: {g['passed']}/{g['cases']} pass (worst rel {g['worst_rel_err']})")
    for prec, gl in data.get("golden_lowp", {}).items():
        s.append(f"micro golden {prec} on cuda: " + next((ln[8:] for ln in gl["lines"] if ln.startswith("VERDICT")),
                                                         f"rc {gl['rc']}"))
    sm = data["same_model"]
    s.append("PyTorch same-model check: " + ("ok" if sm["ok"] else "FAILED" if sm["ok"] is False else "not run"))
    for key in ("sam3_bf16", "sam3_micro_bf16", "sam3_micro_fp32"):
        r = data["samc"].get(key)
        if r and "set_image_ms_median" in r:
            s.append(f"{r['config']} {r['backend']} {r['precision']}: image {r['set_image_ms_median']:.2f} + text "
                     f"{r['text']['ms_median']:.2f} ms")
            break
    summary = "; ".join(s + [f"FAIL: {', '.join(fails)}"] * bool(fails))
    if c.dry:
        return ("fail" if fails else "not run"), "dry run on cpu_fast: " + summary, data
    return ("fail" if fails else ("partial" if partial or not tpy else "ok")), summary, data


def sam3_rows(c):
    """The side-by-side table of the SAM3 stage: samc's bench_sam3 and PyTorch per config and precision."""
    d = get(c.report, "stages", "sam3", "data") or {}
    rows = []
    for key, r in sorted((d.get("samc") or {}).items()):
        if "set_image_ms_median" not in r:
            continue
        t, t2, b = r.get("text", {}), r.get("text2", {}), r.get("box", {})
        dev = r.get("device_timed")
        rows.append(f"| {r['config']} | samc | {r['backend']} | {r['precision']} | {fmt(r['set_image_ms_median'])}"
                    f"{' (' + fmt(r.get('encoder_device_ms_median')) + ')' if dev else ''} | {fmt(t.get('ms_median'))}"
                    f"{' (' + fmt(t.get('find_device_ms_median')) + ')' if dev else ''} | {fmt(t2.get('ms_median'))} | "
                    f"{fmt(b.get('ms_median'))} | {fmt(b['ms_median'] - b['text_ms_median']) if b else '-'} | "
                    f"{fmt(r['set_image_ms_median'] + t['ms_median']) if t else '-'} | "
                    f"{fmt(r.get('model_device_mb'), nd=0)} |")
    for r in d.get("torch") or []:
        if "set_image_ms_median" not in r:
            continue
        rows.append(f"| {r['config']} | PyTorch {r.get('torch_version', '')} | {r['device']} | {r['mode']} | "
                    f"{fmt(r['set_image_ms_median'])} | {fmt(r.get('text_ms_median'))} | {fmt(r.get('text2_ms_median'))} | "
                    f"{fmt(r.get('box_ms_median'))} | {fmt(r.get('box_ms_median'))} | "
                    f"{fmt(r['set_image_ms_median'] + r['text_ms_median']) if r.get('text_ms_median') is not None else '-'} | "
                    f"{fmt(r.get('peak_reserved_mb'), nd=0)} |")
    if not rows:
        return []
    return ["| config | side | backend | precision | image ms (device) | text ms (device) | extra text ms | "
            "text + box ms | box prompt without the text encoder ms | image + text ms | device MiB |",
            "|---|---|---|---|---|---|---|---|---|---|---|"] + rows


STAGES = [("env", stage_env, 20), ("build", stage_build, 240), ("cuda_ops", stage_cuda_ops, 240),
          ("golden", stage_golden, 200), ("bench", stage_bench, 200), ("pytorch", stage_pytorch, 240),
          ("sam3", stage_sam3, 200), ("amg_tiles", stage_amg_tiles, 120), ("soak", stage_soak, 110), ("sanitizer", stage_sanitizer, 150),
          ("variants", stage_variants, 110), ("extra", stage_extra, 400)]
RESERVE = 8     # seconds kept for the report after the last stage
# seconds of the budget that the stages before a stage leave to it (env and build excepted),
# so that a slow SAM2.1 run still leaves SAM3 its micro part and the report
FLOOR = {"sam3": 75}


# ---- targets and report ---------------------------------------------------------------

def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def is_target_run(r, config):
    """A result that may stand for a target: the right model, bf16, on the GPU."""
    return isinstance(r, dict) and r.get("config") == config and r.get("precision") == "bf16" and r.get("backend") == "cuda"


def torch_results(c, role, device=None):
    out = [r for r in get(c.report, "stages", "pytorch", "data", role) or [] if isinstance(r, dict)]
    return [r for r in out if device is None or r.get("device") == device]


def torch_best(c, role, config, what, key):
    """The fastest bf16 / bf16-compile PyTorch value of key for config on the GPU, with its mode."""
    best = None
    for r in torch_results(c, role, "cuda"):
        if r.get("what") == what and r.get("config") == config and r.get("mode", "").startswith("bf16") \
                and r.get(key) is not None and (best is None or r[key] < best[0]):
            best = (r[key], r["mode"])
    return best


def targets(c):
    b = get(c.report, "stages", "bench", "data") or {}
    lb, tb = b.get("large_bf16", {}), b.get("tiny_bf16", {})
    d = b.get("decoder_large_bf16", {})
    dec = [x for x in d.get("batches", []) if x["prompts"] >= 64] if is_target_run(d, "large") else []
    amg = get(c.report, "stages", "amg_tiles", "data", "amg_large") or {}
    mem = b.get("memory_large_bf16", {})
    samc = {
        "large_image_to_masks_ms": lb["encoder_ms"] + lb["decoder_ms"] if is_target_run(lb, "large") else None,
        "tiny_encoder_ms": tb.get("best_ms_per_image") if is_target_run(tb, "tiny") else None,
        "decoder_us_per_prompt": min(x["us_per_prompt"] for x in dec) if dec else None,
        "amg_large_ms": amg.get("ms") if is_target_run(amg, "large") else None,
        "large_peak_device_mb": mem.get("model_device_mb") if is_target_run(mem, "large") else None,
        "sam3_image_text_ms": None,
    }
    s3 = (get(c.report, "stages", "sam3", "data", "samc") or {}).get("sam3_bf16") or {}
    if is_target_run(s3, "sam3") and "text" in s3:
        samc["sam3_image_text_ms"] = s3["set_image_ms_median"] + s3["text"]["ms_median"]
    detail = {
        "large_image_to_masks_ms": f"encoder {fmt(lb.get('encoder_ms'))} + predict {fmt(lb.get('decoder_ms'))} (median wall)",
        "tiny_encoder_ms": f"batch 1: {fmt(tb.get('encoder_ms'))}, best batch {tb.get('best_batch', '-')}",
        "decoder_us_per_prompt": "; ".join(f"{x['prompts']} prompts: {x['us_per_prompt']:.1f}" for x in dec),
        "amg_large_ms": f"{amg.get('masks', '-')} masks",
        "large_peak_device_mb": "device memory in use after the first encode + predict, minus at the backend's start",
        "sam3_image_text_ms": (f"set_image {fmt(s3.get('set_image_ms_median'))} (device {fmt(s3.get('encoder_device_ms_median'))}) "
                               f"+ text {fmt(get(s3, 'text', 'ms_median'))} (device {fmt(get(s3, 'text', 'find_device_ms_median'))}), "
                               "median wall (bench_sam3)" if s3 else "bench_sam3 sam3 bf16 not run"),
    }
    t_set = torch_best(c, "large", "large", "bench", "set_image_ms")
    t_pred = torch_best(c, "large", "large", "bench", "predict_ms")
    t_dec = None
    for r in torch_results(c, "large", "cuda"):
        if r.get("what") == "bench" and r.get("config") == "large" and r.get("mode", "").startswith("bf16"):
            for x in r.get("decoder", []):
                if x["prompts"] >= 64 and (t_dec is None or x["us_per_prompt"] < t_dec[0]):
                    t_dec = (x["us_per_prompt"], r["mode"])
    torch = {
        "large_image_to_masks_ms": (t_set[0] + t_pred[0], t_set[1]) if t_set and t_pred else None,
        "tiny_encoder_ms": torch_best(c, "tiny", "tiny", "bench", "set_image_ms"),
        "decoder_us_per_prompt": t_dec,
        "amg_large_ms": torch_best(c, "large", "large", "amg", "ms"),
        "large_peak_device_mb": torch_best(c, "large", "large", "bench", "peak_reserved_mb"),
        "sam3_image_text_ms": None,
    }
    for r in get(c.report, "stages", "sam3", "data", "torch") or []:
        if r.get("config") == "sam3" and r.get("device") == "cuda" and r.get("mode") == "bf16" \
                and r.get("text_ms_median") is not None:
            torch["sam3_image_text_ms"] = (r["set_image_ms_median"] + r["text_ms_median"], "bf16 autocast, official sam3")
    out = {}
    for key, what, limit, unit in TARGETS:
        v = samc[key]
        out[key] = {"what": what, "target": limit, "unit": unit, "samc": v, "detail": detail[key],
                    "met": (v <= limit) if v is not None else None,
                    "pytorch": torch[key][0] if torch[key] else None, "pytorch_mode": torch[key][1] if torch[key] else None}
    return out


def same_device(samc_result):
    return "cuda" if samc_result.get("backend") == "cuda" else "cpu"


def bench_table(c):
    b = get(c.report, "stages", "bench", "data") or {}
    rows = []
    for role in ("tiny", "large"):
        for p in ("bf16", "fp32"):
            r = b.get(f"{role}_{p}", {})
            if "encoder_ms" not in r:
                continue
            tr = [x for x in torch_results(c, role, same_device(r)) if x.get("what") == "bench" and x.get("config") == r["config"]]
            t = [x for x in tr if x.get("mode") == p]
            tc = [x for x in tr if x.get("mode") == "bf16-compile"]
            rows.append(f"| {r['config']} | {r['backend']} | {p} | {fmt(r['encoder_ms'])} | {r['best_batch']}: "
                        f"{fmt(r['best_ms_per_image'])} | {fmt(r['decoder_ms'])} | {fmt(t[0]['set_image_ms']) if t else '-'} | "
                        f"{fmt(t[0]['predict_ms']) if t else '-'} | "
                        f"{fmt(tc[0]['set_image_ms']) if tc and p == 'bf16' else '-'} |")
    if not rows:
        return []
    return ["| model | backend | precision | samc encoder ms (batch 1) | samc best batch: ms/image | samc predict ms | "
            "PyTorch set_image ms | PyTorch predict ms | PyTorch bf16+compile set_image ms |",
            "|---|---|---|---|---|---|---|---|---|"] + rows


STAGE_NAMES = ["preprocess", "upload", "preprocess_device", "patch_embed", "stage0", "stage1", "stage2", "stage3",
               "neck", "encoder_device", "encode_total", "prompt_encoder", "decoder", "postprocess"]


def stages_table(b):
    rows = []
    for key in sorted(k for k in b if k.split("_")[-1] in ("bf16", "fp32", "fp16") and "_" in k
                      and not k.startswith(("decoder_", "memory_"))):
        r = b[key]
        if r.get("stages"):
            rows.append(f"| {r['config']} {r['backend']} {r['precision']} | "
                        + " | ".join(fmt(get(r, "stages", n, "median_ms")) for n in STAGE_NAMES) + " |")
    return rows


def decoder_table(c, b):
    rows = []
    for key in sorted(k for k in b if k.startswith("decoder_large_")):
        d = b[key]
        tr = [q for q in torch_results(c, "large", same_device(d)) + torch_results(c, "tiny", same_device(d))
              if q.get("what") == "bench" and q.get("config") == d.get("config") and q.get("mode") == d.get("precision")]
        for x in d.get("batches", []):
            t = [y for q in tr[:1] for y in q.get("decoder", []) if y["prompts"] == x["prompts"]]
            rows.append(f"| {d['config']} | {d['backend']} | {d['precision']} | {x['prompts']} | {x['us_per_prompt']:.1f} | "
                        f"{fmt(x.get('device_us_per_prompt'), nd=1)} | {fmt(t[0]['us_per_prompt'], nd=1) if t else '-'} |")
    return rows


def memory_table(c, b):
    rows = []
    for key in sorted(k for k in b if k.startswith("memory_large_")):
        m = b[key]
        if "weight_mb" in m:
            t = [q for q in torch_results(c, "large", same_device(m)) if q.get("what") == "bench"
                 and q.get("config") == m["config"] and q.get("mode") == m["precision"]]
            rows.append(f"| {m['config']} | {m['backend']} | {m['precision']} | {fmt(m['model_device_mb'], nd=0)} | "
                        f"{fmt(m['weight_mb'], nd=0)} | {fmt(m['scratch_mb'], nd=0)} | "
                        f"{fmt(t[0]['peak_reserved_mb'], nd=0) if t else '-'} |")
    return rows


def write_report(c, final=False):
    c.report["elapsed_s"] = round(time.time() - c.t0, 1)
    c.report["targets"] = targets(c)
    with open(os.path.join(c.out, "report.json"), "w") as f:
        json.dump(c.report, f, indent=1, default=str)
    md = render_md(c)
    with open(os.path.join(c.out, "report.md"), "w") as f:
        f.write(md)
    with tarfile.open(os.path.join(c.out, "logs.tar.gz"), "w:gz") as t:
        t.add(c.logs, arcname="logs")
    return md


def render_md(c):
    r = c.report
    m = r.get("machine", {})
    g = m.get("gpu") or {}
    L = ["# samc GPU check" + (" (dry run: no GPU)" if c.dry else ""), ""]
    if c.dry:
        L += ["Dry run: no GPU. Every stage ran what needs none; the tables come from cpu_fast (and PyTorch on the CPU) "
              "with the micro model standing in for tiny and large, in fp32, to show that each step and this report work. "
              "No number here is a GPU measurement, and none enters the targets.", ""]
    L.append(f"- started {r['started']}, {r['elapsed_s']} s of the {c.a.budget:.0f} s budget")
    L.append(f"- GPU: {g.get('name', 'none')}" + (f", cc {g['compute_cap']}, {g['memory.total']} MiB, driver "
                                                     f"{g['driver_version']}, SM clock {g['clocks.sm']}/{g['clocks.max.sm']} MHz, "
                                                     f"{g['temperature.gpu']} C, {g['power.draw']}/{g['power.limit']} W" if g else ""))
    L.append(f"- host: {m.get('cpus')} CPUs, nvcc: {m.get('nvcc')}, {m.get('gcc')}, Python {m.get('python')}")
    pk = m.get("package") or {}
    L.append(f"- package: commit {pk.get('commit')}{' (dirty)' if pk.get('dirty') else ''}, made {pk.get('created')} on "
             f"{pk.get('host')}, {pk.get('cuda_arch')}, {pk.get('hidden')}")
    L += ["", "## Stages", "", "| # | stage | status | s | summary |", "|---|---|---|---|---|"]
    for i, (name, _, _) in enumerate(STAGES):
        s = r["stages"].get(name)
        if s:
            L.append(f"| {i} | {name} | {s['status']} | {s['seconds']:.0f} | {s['summary'].replace('|', '/')} |")
        else:
            L.append(f"| {i} | {name} | not reached | - | |")
    L += ["", "## Targets (H100 / H200, bf16)", "",
          "| target | limit | samc | met | PyTorch (best bf16 mode) | samc detail |", "|---|---|---|---|---|---|"]
    for key, t in r["targets"].items():
        met = {True: "yes", False: "NO", None: "not run"}[t["met"]]
        L.append(f"| {t['what']} | <= {t['target']:g} {t['unit']} | {fmt(t['samc'], t['unit'])} | {met} | "
                 f"{fmt(t['pytorch'], t['unit'])}{' (' + t['pytorch_mode'] + ')' if t['pytorch_mode'] else ''} | {t['detail']} |")
    b = get(r, "stages", "bench", "data") or {}
    bt = bench_table(c)
    if bt:
        L += ["", f"## samc vs PyTorch ({plan(c)['image']}, one centre point, 3 masks at the image size; medians)", ""] + bt
    st = stages_table(b)
    if st:
        L += ["", "Stages, median ms (device times between CUDA events in stream order, also inside the graphs; "
              "preprocess is the host's staging of the uint8 image, encode the host wall time of the call):", "",
              "| run | preprocess (host) | upload | preprocess (device) | patch embed | stage 0 | 1 | 2 | 3 | neck | "
              "encoder (device) | encode (wall) | prompt enc | decoder | post |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"] + st
    dt = decoder_table(c, b)
    if dt:
        L += ["", "Decoder per prompt (samc bench --decoder-batch: 3 masks, low-res outputs copied to the host, "
              "decoder calls of up to 256 prompts; median wall per call / prompts), us:", "",
              "| model | backend | precision | prompts | samc | samc device | PyTorch |",
              "|---|---|---|---|---|---|---|"] + dt
    mt = memory_table(c, b)
    if mt:
        L += ["", "Device memory of one image, MiB (samc: cudaMemGetInfo after its first encode and predict minus at the "
              "backend's start, as samc bench --json reports it; PyTorch: max_memory_reserved):", "",
              "| model | backend | precision | samc device | samc weights | samc scratch | PyTorch reserved |",
              "|---|---|---|---|---|---|---|"] + mt
    s3 = sam3_rows(c)
    if s3:
        L += ["", "## SAM3: samc vs the official PyTorch code (same weights, image and prompts: \"truck\", then "
              "\"wheel\" on the same encoding, then \"wheel\" + a box; medians, ms)", "",
              "image = set_image; text = the first text prompt (text encoder + grounding + post-processing); extra "
              "text = a second text on the same encoding; text + box = the second text plus one positive box exemplar "
              "(samc encodes the text again, PyTorch's processor keeps its features); box prompt without the text "
              "encoder = text + box less samc's text encoder time (PyTorch: the same as text + box), the cost of one "
              "exemplar prompt on both sides. "
              "In brackets samc's device times (CUDA events). Device MiB: samc's device memory after the first encode "
              "and find minus at the backend's start; PyTorch: max_memory_reserved. The aim is image + text <= 20 ms "
              "for sam3 in bf16 on an H100 / H200.", ""] + s3
        for n in get(r, "stages", "sam3", "data", "notes") or []:
            L.append(f"- {n}")
    L += ["", "## Notes", ""]
    L += [f"- {n}" for n in r["notes"]]
    L += ["- Weights are samc-synth-v1 (synthetic): both sides run the same network, but few AMG / multipass masks pass "
          "the filters, so their per-mask work is less than with real weights.",
          "- Approximate or missing (hooks wanted, kernels/cuda/NOTES.md): stage times of batched encodes (samc bench "
          "gives only the time per image of a batch)."]
    for name, s in r["stages"].items():
        if s["status"] in ("fail", "timeout", "error", "partial"):
            L += ["", f"### {name}: {s['status']}", "", "```", json.dumps(s.get("data"), indent=1, default=str)[:3000], "```"]
    return "\n".join(L) + "\n"


def summary_lines(c):
    out = [f"gpu-check{' (dry run)' if c.dry else ''}: {c.report['elapsed_s']} s"]
    for name, _, _ in STAGES:
        s = c.report["stages"].get(name)
        out.append(f"  {name:10s} {s['status'] if s else 'not reached':12s} {s['seconds'] if s else 0:5.0f} s  "
                   f"{s['summary'] if s else ''}"[:220])
    out.append("targets:")
    for key, t in c.report["targets"].items():
        met = {True: "met", False: "MISSED", None: "not run"}[t["met"]]
        out.append(f"  {t['what']:58s} <= {t['target']:g} {t['unit']:3s} samc {fmt(t['samc'], t['unit']):>12s}  "
                   f"{met:8s} PyTorch {fmt(t['pytorch'], t['unit'])}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pkg", default=os.path.join(ROOT, "gpu-check-pkg"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "gpu-check"))
    ap.add_argument("--work", default=os.environ.get("GPU_CHECK_WORK", "/tmp/samc-gpu-check"))
    ap.add_argument("--budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET", 470)))
    ap.add_argument("--dry-run", action="store_true", default=os.environ.get("GPU_CHECK_DRY_RUN") == "1")
    ap.add_argument("--only", help="comma-separated stages to run (env and build always run)")
    ap.add_argument("--source-hash", action="store_true")
    ap.add_argument("--repo-bytes", action="store_true")
    ap.add_argument("--build", metavar="DIR", help="only build the package's binaries into DIR (package.sh)")
    ap.add_argument("--arch", help="with --build: CUDA_ARCH")
    ap.add_argument("--audit", action="store_true", help="with --build: -MD and ld --trace for package.sh's audit")
    a = ap.parse_args()
    if a.source_hash or a.repo_bytes:
        print(source_hash() if a.source_hash else repo_bytes())
        return 0
    if a.build:
        env = dict(os.environ, **MAKE_ENV)
        return subprocess.run(build_command(os.path.abspath(a.pkg), os.path.abspath(a.build), a.arch or "", a.audit),
                              env=env).returncode
    c = Check(a)
    only = set(a.only.split(",")) if a.only else None
    print(f"gpu-check: package {c.pkg}, out {c.out}, budget {a.budget:.0f} s{', dry run' if c.dry else ''}", flush=True)
    names = [n for n, _, _ in STAGES]
    for i, (name, fn, limit) in enumerate(STAGES):
        if only and name not in only and name not in ("env", "build"):
            continue
        c.stage = name
        floor = 0 if name in ("env", "build") else sum(
            v for k, v in FLOOR.items() if k in names[i + 1:] and (not only or k in only))
        left = c.left() - RESERVE - floor
        t = time.time()
        if left < 10:
            status, summary, data = "not run", "no time left in the budget", {}
        else:
            c.stage_end = t + min(limit, left)
            print(f"[{t - c.t0:5.0f} s] {name} (up to {min(limit, left):.0f} s)", flush=True)
            try:
                status, summary, data = fn(c)
            except Limit as e:
                status, summary, data = "timeout", str(e), {}
            except Exception as e:     # a stage's failure is reported, the next stage still runs
                status, summary, data = "error", f"{type(e).__name__}: {e}", {}
        c.report["stages"][name] = {"status": status, "summary": summary, "seconds": round(time.time() - t, 1),
                                    "data": data}
        print(f"         {name}: {status}: {summary}"[:400], flush=True)
        write_report(c)
        if name in ("env", "build") and status not in ("ok",):
            c.report["notes"].append(f"stopped: stage {name} did not succeed, nothing else can run")
            break
    write_report(c, final=True)
    print("\n".join(summary_lines(c)))
    print(f"report: {c.out}/report.md, report.json, logs.tar.gz")
    failed = [n for n, s in c.report["stages"].items() if s["status"] in ("fail", "error", "timeout")]
    if failed:
        print(f"gpu-check: FAILED stages: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
