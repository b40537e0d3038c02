#!/usr/bin/env python3
"""bench/gpu_check/torch_sam2.py: the PyTorch baseline of `make gpu-check`: the official
SAM2ImagePredictor (sam2 package from the GPU package, built the way
bench/pytorch_sam2_bench.py builds it, whose helpers it imports) on the same samc-synth-v1
weights and image as samc, on the GPU (or the CPU, for the dry run).

One JSON line per result, printed as soon as it is measured (a run killed at its time
limit keeps what it printed):
  {"what": "env", torch, cuda, device, sdpa}
  {"what": "check", ok, lowres_max_abs_diff, lowres_max_abs, tol, iou_max_abs_diff}
      --golden DIR: fp32 eager low-res logits and IoUs of case a_point_multimask against
      the golden (the official outputs): that the weights mean the same network here
  {"what": "bench", mode, set_image_ms, predict_ms, decoder: [{prompts, ms,
      us_per_prompt}], peak_alloc_mb, peak_reserved_mb, compile_s}
      per --modes entry: fp32 (eager, TF32 off: what samc's fp32 computes), bf16 (autocast,
      as the official notebooks run it), bf16-compile (the same with the image encoder
      through torch.compile, default mode; its compile time apart). set_image and predict
      (one point, three masks at the image size) are medians of --iters after --warmup;
      the decoder batches are the prompt encoder + mask decoder of _predict without the
      upsampling to the image size (what samc bench --decoder-batch times), low-res
      outputs copied to the host.
  {"what": "amg", mode, ms, masks}   --amg-points N: SAM2AutomaticMaskGenerator with its
      defaults and N x N points on the 1024 x 1024 centre crop (bf16 modes)
"""
import argparse
import contextlib
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pytorch_sam2_bench as base  # noqa: E402  (bench/pytorch_sam2_bench.py)


def config_name(args):
    return os.path.basename(os.path.dirname(os.path.abspath(args.config_json))) if args.config_json else args.config


def emit(**kw):
    print(json.dumps(kw), flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sam2-src", required=True)
    p.add_argument("--config", default="tiny", choices=sorted(base.CONFIG_YAML))
    p.add_argument("--config-json")
    p.add_argument("--weights", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--modes", default="fp32,bf16,bf16-compile")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--decoder-batches", default="64,1024")
    p.add_argument("--golden", help="golden config folder for the same-model check")
    p.add_argument("--amg-points", type=int, default=0)
    p.add_argument("--amg-modes", default="bf16,bf16-compile", help="modes whose AMG is timed")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    return p.parse_args()


class Timer:
    def __init__(self, torch, device):
        self.torch, self.cuda = torch, device == "cuda"

    def __enter__(self):
        if self.cuda:
            self.torch.cuda.synchronize()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
        self.ms = (time.perf_counter() - self.t) * 1e3


def build(args, torch, np, device):
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    cfg = base.model_config(argparse.Namespace(config_json=args.config_json, sam2_src=args.sam2_src, config=args.config))
    model = base.instantiate(cfg)
    model.load_state_dict(base.read_safetensors(args.weights, torch, np), strict=True)
    model = model.eval().to(device)
    predictor = SAM2ImagePredictor(model)
    s = model.image_size
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    predictor._transforms.transforms = base.antialiased_transform(torch, s)
    return model, predictor


def read_f32(path, key, np):
    """One F32 tensor of a safetensors file (the golden files also hold integer tensors,
    which base.read_safetensors refuses)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        d = json.loads(f.read(n))[key]
        if d["dtype"] != "F32":
            raise ValueError(f"{path}: {key} is {d['dtype']}, not F32")
        lo, hi = d["data_offsets"]
        f.seek(8 + n + lo)
        return np.frombuffer(f.read(hi - lo), dtype="<f4").reshape(d["shape"])


def golden_f32(golden, case, man, key, np):
    """A recorded tensor of a golden case, following its 'same_as' link."""
    ent = man["tensors"][key]
    if ent.get("stored") == "same_as":
        case, key = ent["same_as"].split("/", 1)
    return read_f32(os.path.join(golden, case, "tensors.safetensors"), key, np).reshape(ent["shape"])


def same_model_check(args, torch, np, predictor):
    """fp32 eager outputs of golden case a against the official ones."""
    case = os.path.join(args.golden, "a_point_multimask")
    man = json.load(open(os.path.join(case, "manifest.json")))
    from PIL import Image
    image = np.array(Image.open(os.path.normpath(os.path.join(case, man["image"]))).convert("RGB"))
    pa = man["predict_args"]
    with torch.inference_mode():
        predictor.set_image(image)
        _, iou, low = predictor.predict(point_coords=np.array(pa["point_coords"], dtype=np.float32),
                                        point_labels=np.array(pa["point_labels"], dtype=np.int32),
                                        multimask_output=pa["multimask_output"])
    g_low = golden_f32(args.golden, "a_point_multimask", man, "out.low_res_masks", np).reshape(low.shape)
    g_iou = golden_f32(args.golden, "a_point_multimask", man, "out.iou_predictions", np).reshape(iou.shape)
    diff = float(np.abs(low.astype(np.float64) - g_low).max())
    scale = float(np.abs(g_low).max())
    tol = max(man["tensors"]["out.low_res_masks"]["suggested_tol_abs"], 1e-4 * scale)
    iou_diff = float(np.abs(iou.astype(np.float64) - g_iou).max())
    emit(what="check", case="a_point_multimask", config=config_name(args), device=args.device, torch=torch.__version__, ok=bool(diff <= tol and iou_diff <= 1e-4),
         lowres_max_abs_diff=diff, lowres_max_abs=scale, tol=tol, iou_max_abs_diff=iou_diff)


def decode(predictor, coords, labels):
    """SAM2ImagePredictor._predict's prompt encoder + mask decoder (multimask, points only)
    without postprocess_masks; low-res logits and IoUs on the host."""
    model = predictor.model
    _, pts, lab, _ = predictor._prep_prompts(coords, labels, None, None, True)
    sparse, dense = model.sam_prompt_encoder(points=(pts, lab), boxes=None, masks=None)
    high = [f[-1].unsqueeze(0) for f in predictor._features["high_res_feats"]]
    low, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=predictor._features["image_embed"][-1].unsqueeze(0),
        image_pe=model.sam_prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense, multimask_output=True, repeat_image=pts.shape[0] > 1, high_res_features=high)
    return low.clamp(-32.0, 32.0).float().cpu(), iou.float().cpu()


def grid(n, w, h, np):
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    pts = np.stack([((i % side) + 0.5) * w / side, ((i // side) + 0.5) * h / side], axis=1).astype(np.float32)
    return pts[:, None, :], np.ones((n, 1), dtype=np.int32)


def bench_mode(args, torch, np, model, predictor, image, mode):
    cuda = args.device == "cuda"
    ctx = (lambda: torch.autocast(args.device, dtype=torch.bfloat16)) if mode.startswith("bf16") else None
    compile_s = None
    if mode == "bf16-compile":
        model.image_encoder = torch.compile(model.image_encoder)
        t = time.perf_counter()
        with torch.inference_mode(), ctx():
            predictor.set_image(image)
        compile_s = time.perf_counter() - t
    h, w = image.shape[:2]
    pt = np.array([[0.5 * w, 0.5 * h]], dtype=np.float32)
    lab = np.array([1], dtype=np.int32)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    set_ms, pred_ms = [], []
    with torch.inference_mode():
        with ctx() if ctx else contextlib.nullcontext():
            for i in range(args.warmup + args.iters):
                with Timer(torch, args.device) as t1:
                    predictor.set_image(image)
                with Timer(torch, args.device) as t2:
                    predictor.predict(point_coords=pt, point_labels=lab, multimask_output=True)
                if i >= args.warmup:
                    set_ms.append(t1.ms)
                    pred_ms.append(t2.ms)
            peak = (torch.cuda.max_memory_allocated() / 2**20, torch.cuda.max_memory_reserved() / 2**20) if cuda else (None, None)
            dec = []
            for n in [int(x) for x in args.decoder_batches.split(",") if x]:
                coords, labels = grid(n, w, h, np)
                times = []
                for i in range(args.warmup + args.iters):
                    with Timer(torch, args.device) as t:
                        decode(predictor, coords, labels)
                    if i >= args.warmup:
                        times.append(t.ms)
                ms = base.median(times)
                dec.append({"prompts": n, "ms": round(ms, 4), "us_per_prompt": round(ms * 1e3 / n, 3)})
    emit(what="bench", mode=mode, config=config_name(args), device=args.device, set_image_ms=round(base.median(set_ms), 3),
         set_image_min_ms=round(min(set_ms), 3), predict_ms=round(base.median(pred_ms), 3), decoder=dec,
         peak_alloc_mb=peak[0], peak_reserved_mb=peak[1], compile_s=compile_s, iters=args.iters)
    if args.amg_points and mode in args.amg_modes.split(","):
        amg(args, torch, np, model, image, mode, ctx or contextlib.nullcontext)


def amg(args, torch, np, model, image, mode, ctx):
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    h, w = image.shape[:2]
    c = min(1024, h, w)
    crop = np.ascontiguousarray(image[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c])
    gen = SAM2AutomaticMaskGenerator(model, points_per_side=args.amg_points)
    # its own predictor: the feature sizes of this model's input, samc's antialiased resize
    s = model.image_size
    gen.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    gen.predictor._transforms.transforms = base.antialiased_transform(torch, s)
    times, n = [], 0
    with torch.inference_mode(), ctx():
        for i in range(1 + 3):
            with Timer(torch, args.device) as t:
                n = len(gen.generate(crop))
            if i >= 1:
                times.append(t.ms)
    emit(what="amg", mode=mode, config=config_name(args), device=args.device, ms=round(base.median(times), 3), masks=n, width=c, height=c,
         points_per_side=args.amg_points)


def main():
    args = parse_args()
    if args.threads:
        base.limit_threads(args.threads)
    import numpy as np
    import torch
    from PIL import Image
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.abspath(args.sam2_src))
    base.install_shims()
    sdpa = base.install_sdpa_polyfill(torch)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_sam2: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    emit(what="env", torch=torch.__version__, cuda=torch.version.cuda, sdpa=sdpa,
         device=torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu")
    model, predictor = build(args, torch, np, args.device)
    if args.golden:
        same_model_check(args, torch, np, predictor)
    image = np.array(Image.open(args.image).convert("RGB"))
    for mode in [m for m in args.modes.split(",") if m]:
        if mode not in ("fp32", "bf16", "bf16-compile"):
            sys.exit(f"torch_sam2: unknown mode {mode}")
        bench_mode(args, torch, np, model, predictor, image, mode)


if __name__ == "__main__":
    main()
