#!/usr/bin/python3
"""Times the official PyTorch SAM2.1 image predictor on the CPU, for BENCHMARKS.md.

This is a measuring tool, not part of samc (samc never needs Python). It imports the
official `sam2` package from a checkout given with --sam2-src (clone
facebookresearch/sam2 yourself; nothing of it is copied here), builds SAM2Base from the
official YAML config without hydra, loads the weights from a samc .safetensors file
(`samc synth` writes every tensor of the official checkpoint under its official name),
wraps the model in the official SAM2ImagePredictor and times set_image and predict.

It prints one JSON line:
  {"config", "threads", "set_image_ms_median", "predict_ms_median", "torch_version",
   "peak_rss_mb", ...}

It runs on Debian 12's python3-torch 1.13.1 and on torch 2.x from PyPI (MKL + oneDNN).
Environment shims, needed only on the old stack (see shared/golden/README.md, sections 3
and 9, which produced the goldens the same way):
  * hydra, iopath and tqdm are imported by the package but not needed for inference;
    tiny stand-in modules are installed when the real ones are missing.
  * torch 1.13 has no F.scaled_dot_product_attention: a plain softmax(q kT / sqrt(d)) v
    is installed when it is missing (it is what a 1.13 user would have to write). torch
    2.x uses its own.
  * torchvision 0.14's tensor Resize does not antialias while torchvision >= 0.17 (and
    samc) do. --resize auto (default) keeps the predictor's own torchvision transform on
    torchvision >= 0.17 and replaces it by the antialiased F.interpolate on older ones;
    --resize torchvision / antialias force one or the other.

Checking that it is the same model as samc's:
  samc segment IMG --model W --point X,Y --multimask --save-lowres samc_lowres.safetensors
  pytorch_sam2_bench.py ... --point X,Y --compare-lowres samc_lowres.safetensors
prints max |torch - samc| over the three low-res logit maps.
"""
import argparse
import contextlib
import importlib
import json
import math
import os
import resource
import struct
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import float32_array, limit_threads, median, rss_mb  # noqa: E402  (bench/bench_util.py)

CONFIG_YAML = {
    "tiny": "sam2.1_hiera_t.yaml",
    "small": "sam2.1_hiera_s.yaml",
    "base_plus": "sam2.1_hiera_b+.yaml",
    "large": "sam2.1_hiera_l.yaml",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sam2-src", required=True,
                   help="directory holding the official sam2 package (a facebookresearch/sam2 checkout)")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIG_YAML),
                   help="official SAM2.1 config (its YAML under sam2/configs/sam2.1)")
    p.add_argument("--config-json",
                   help="a resolved model config as JSON (e.g. shared/golden/micro/model_config.json) "
                        "instead of --config's YAML")
    p.add_argument("--weights", required=True, help="samc .safetensors file (F32/F16/BF16)")
    p.add_argument("--image", required=True, help="RGB image (PNG/JPEG)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--iters", type=int, default=3, help="timed runs of set_image and predict (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--point", help="X,Y prompt in image pixels (default: the image centre, as samc bench)")
    p.add_argument("--resize", choices=("auto", "torchvision", "antialias"), default="auto",
                   help="auto (default): the predictor's torchvision Resize where it antialiases "
                        "(torchvision >= 0.17), else the antialiased F.interpolate")
    p.add_argument("--stock-resize", action="store_true", help="the same as --resize torchvision")
    p.add_argument("--compare-lowres",
                   help="samc --save-lowres file: report max |diff| of the low-res logits of --point")
    p.add_argument("--bf16", action="store_true",
                   help="run under torch.autocast('cpu', bfloat16) (oneDNN's bf16 kernels, AMX where the CPU "
                        "has it): the baseline of samc --precision bf16 on the CPU")
    p.add_argument("--save-lowres", help="write this run's low-res logits (M,S/4,S/4) as .npy")
    return p.parse_args()


def install_shims():
    """Stand-ins for modules sam2 imports but inference does not use."""
    def missing(name):
        try:
            importlib.import_module(name)
            return False
        except ImportError:
            return True

    if missing("hydra"):
        # sam2/__init__.py registers its config module with hydra at import time.
        hydra = types.ModuleType("hydra")
        hydra.initialize_config_module = lambda *a, **k: None
        core = types.ModuleType("hydra.core")
        global_hydra = types.ModuleType("hydra.core.global_hydra")

        class GlobalHydra:
            @staticmethod
            def instance():
                return GlobalHydra()

            def is_initialized(self):
                return True

        global_hydra.GlobalHydra = GlobalHydra
        hydra.core = core
        core.global_hydra = global_hydra
        sys.modules.update({"hydra": hydra, "hydra.core": core, "hydra.core.global_hydra": global_hydra})
    if missing("iopath"):
        # hieradet imports a path manager only to load MAE-pretrained trunk weights.
        names = ["iopath", "iopath.common", "iopath.common.file_io"]
        mods = [types.ModuleType(n) for n in names]
        mods[2].g_pathmgr = types.SimpleNamespace(open=open)
        mods[0].common, mods[1].file_io = mods[1], mods[2]
        sys.modules.update(dict(zip(names, mods)))
    if missing("tqdm"):
        tqdm = types.ModuleType("tqdm")
        tqdm.tqdm = lambda it=None, *a, **k: it
        sys.modules["tqdm"] = tqdm


def install_sdpa_polyfill(torch):
    F = torch.nn.functional
    if hasattr(F, "scaled_dot_product_attention"):
        return "native"

    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
        if attn_mask is not None or is_causal or dropout_p:
            raise NotImplementedError("sdpa polyfill: only the eval-mode, unmasked case")
        scale = 1.0 / math.sqrt(q.shape[-1])
        return torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1) @ v

    F.scaled_dot_product_attention = sdpa
    return "polyfill"


def instantiate(node):
    """hydra.utils.instantiate for what the SAM2 configs use: `_target_` dicts, lists."""
    if isinstance(node, list):
        return [instantiate(x) for x in node]
    if not isinstance(node, dict):
        return node
    kwargs = {k: instantiate(v) for k, v in node.items() if k != "_target_"}
    if "_target_" not in node:
        return kwargs
    module, _, name = node["_target_"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def load_yaml(stream):
    """yaml.safe_load with YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-6` (no dot) as a
    string, while hydra's OmegaConf reads it as the float the configs mean
    (CXBlock's layer_scale_init_value)."""
    import re
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # Only the exponent forms YAML 1.1 misses; everything else keeps SafeLoader's rules.
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."))
    return yaml.load(stream, Loader=Loader)


def model_config(args):
    if args.config_json:
        with open(args.config_json) as f:
            cfg = json.load(f)
    else:
        path = os.path.join(args.sam2_src, "sam2", "configs", "sam2.1", CONFIG_YAML[args.config])
        with open(path) as f:
            cfg = load_yaml(f)["model"]
    # The overrides every official build_sam2(..., apply_postprocessing=True) adds.
    extra = cfg.setdefault("sam_mask_decoder_extra_args", {}) or {}
    extra.update(dynamic_multimask_via_stability=True, dynamic_multimask_stability_delta=0.05,
                 dynamic_multimask_stability_thresh=0.98)
    cfg["sam_mask_decoder_extra_args"] = extra
    return cfg


def read_safetensors(path, torch, np):
    """All tensors of a safetensors file as float32 torch tensors (Debian has no
    python3-safetensors): u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        lo, hi = d["data_offsets"]
        raw = memoryview(blob)[base + lo:base + hi]
        a = float32_array(np, raw, d["dtype"])
        if a is None:
            raise ValueError("%s: tensor %s: dtype %s not handled" % (path, name, d["dtype"]))
        out[name] = torch.from_numpy(a.reshape(d["shape"]).copy())
    return out


def antialiased_transform(torch, size):
    """The predictor's Resize+Normalize with torchvision >= 0.17 semantics (antialiased
    bilinear), which samc and the goldens follow (shared/golden/README.md, section 3)."""
    F = torch.nn.functional

    class AntialiasedResizeNormalize(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))

        def forward(self, x):
            x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)[0]
            return (x - self.mean) / self.std

    return AntialiasedResizeNormalize()


def loaded_blas(torch):
    """The BLAS torch computes with. Debian's torch links the libblas.so.3 alternative,
    which is the slow netlib reference BLAS unless an optimised one (libopenblas0-pthread)
    is installed: then the library mapped into the process says which. PyPI's torch has
    MKL linked in statically (its build config says BLAS_INFO=mkl)."""
    config = torch.__config__.show()
    info = next((w.split("=", 1)[1].rstrip(",") for w in config.split() if w.startswith("BLAS_INFO=")), None)
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                base = os.path.basename(path)
                # numpy's own OpenBLAS and CUDA's cuBLAS are not what torch's CPU ops use.
                if ("blas" in base or "mkl_rt" in base) and "cublas" not in base and "numpy" not in path:
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    if libs:
        return ",".join(sorted(libs))
    return "built-in %s" % info if info else "unknown"


def debian_version(package, torch):
    """The Debian package version, when the torch imported is the Debian one."""
    if not os.path.realpath(torch.__file__).startswith("/usr/lib/python3/"):
        return None
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True,
                              text=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    args = parse_args()
    if args.iters < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("pytorch_sam2_bench: --iters >= 1, --warmup >= 0, --threads >= 1")
    limit_threads(args.threads)
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.abspath(args.sam2_src))
    install_shims()
    sdpa = install_sdpa_polyfill(torch)
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    # What importing torch (and, on a CUDA wheel, its CUDA libraries) costs before any model.
    rss_import = rss_mb()

    t0 = time.perf_counter()
    cfg = model_config(args)
    model = instantiate(cfg)
    state = read_safetensors(args.weights, torch, np)
    model.load_state_dict(state, strict=True)
    del state
    model.eval()
    n_params = sum(p.numel() for p in model.state_dict().values())
    load_s = time.perf_counter() - t0

    predictor = SAM2ImagePredictor(model)
    s = model.image_size
    # The predictor hard-codes the feature sizes of a 1024 input; they are S/4, S/8, S/16.
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    resize = "torchvision" if args.stock_resize else args.resize
    if resize == "auto":
        import torchvision
        tv = tuple(int(x) for x in torchvision.__version__.split("+")[0].split(".")[:2])
        resize = "torchvision" if tv >= (0, 17) else "antialias"
    if resize == "antialias":
        predictor._transforms.transforms = antialiased_transform(torch, s)

    image = np.array(Image.open(args.image).convert("RGB"))
    h, w = image.shape[:2]
    if args.point:
        px, py = (float(v) for v in args.point.split(","))
    else:
        px, py = 0.5 * w, 0.5 * h
    coords = np.array([[px, py]], dtype=np.float32)
    labels = np.array([1], dtype=np.int32)

    set_ms, pred_ms = [], []
    low = None
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    with ctx:
        for i in range(args.warmup + args.iters):
            t0 = time.perf_counter()
            predictor.set_image(image)
            t1 = time.perf_counter()
            masks, iou, low = predictor.predict(point_coords=coords, point_labels=labels,
                                                multimask_output=True)
            t2 = time.perf_counter()
            if i >= args.warmup:
                set_ms.append((t1 - t0) * 1e3)
                pred_ms.append((t2 - t1) * 1e3)

    result = {
        "config": (os.path.basename(os.path.dirname(os.path.abspath(args.config_json)))
                   if args.config_json else args.config),
        "threads": args.threads,
        "autocast": "bfloat16" if args.bf16 else None,
        "set_image_ms_median": round(median(set_ms), 2),
        "set_image_ms_min": round(min(set_ms), 2),
        "predict_ms_median": round(median(pred_ms), 2),
        "predict_ms_min": round(min(pred_ms), 2),
        "iters": args.iters,
        "warmup": args.warmup,
        "torch_version": torch.__version__,
        "torch_package": debian_version("python3-torch", torch),
        "torch_num_threads": torch.get_num_threads(),
        "torch_cpu_capability": (torch.backends.cpu.get_cpu_capability()
                                 if hasattr(torch.backends, "cpu") else None),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "blas": loaded_blas(torch),
        "sdpa": sdpa,
        "resize": resize,
        "image": os.path.basename(args.image),
        "width": w,
        "height": h,
        "point": [px, py],
        "n_params": n_params,
        "load_s": round(load_s, 2),
        "rss_after_import_mb": rss_import,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    if args.save_lowres:
        np.save(args.save_lowres, low)
    if args.compare_lowres:
        other_st = read_safetensors(args.compare_lowres, torch, np)
        other = other_st["low_res_masks"].numpy()
        other = other.reshape(-1, *low.shape[-2:])
        if other.shape != low.shape:
            sys.exit("pytorch_sam2_bench: %s: low_res_masks %s, torch gives %s"
                     % (args.compare_lowres, other.shape, low.shape))
        diff = np.abs(other.astype(np.float64) - low.astype(np.float64))
        result["lowres_max_abs_diff"] = float(diff.max())
        result["lowres_max_abs"] = float(np.abs(low).max())
        other_iou = other_st["iou_predictions"].numpy().reshape(-1)
        result["iou_max_abs_diff"] = float(np.abs(other_iou.astype(np.float64) - iou.astype(np.float64)).max())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
