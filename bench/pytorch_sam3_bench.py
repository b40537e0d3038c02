#!/usr/bin/env python3
"""Times the official PyTorch SAM3 image model (Sam3Processor) on the CPU or a GPU, for BENCHMARKS.md.

This is a measuring tool, not part of samc (samc never needs Python). It imports the
official `sam3` package from a checkout given with --sam3-src (facebookresearch/sam3;
nothing of it is copied into this repository), builds Sam3Image with the official
builder (`build_sam3_image_model`, config sam3) or, for the cut-down test config, with
the same classes and the resolved arguments of a model_config.json
(shared/golden/sam3/micro/model_config.json), loads the weights from a samc
.safetensors file (`samc synth --config sam3` writes every tensor of Sam3Image under its
official name, without the 32 RoPE tables, which the constructor computes), and times
the official Sam3Processor on one image:

  set_image(image)                          image encoding (ViT + neck)
  set_text_prompt(TEXT)                     text encoder + grounding + post-processing
  set_text_prompt(TEXT2)                    a second text on the same encoding (--text2)
  add_geometric_prompt(BOX, True)           TEXT2 (or TEXT) + a positive box (--box); the
                                            processor keeps the text features, so this
                                            call does not run the text encoder again

It prints one JSON line per mode (times in ms, medians and minima over --iters after
--warmup). --device cuda runs on the GPU (make gpu-check's sam3 stage): each call is timed
between torch.cuda.synchronize() calls, with the peak memory of the mode
(max_memory_allocated / max_memory_reserved); --modes fp32,bf16: fp32 eager with TF32 off
(the official builder turns it on at import), bf16 = torch.autocast(bfloat16) around every
call (the official code's own fp32 islands, e.g. the decoder FFN, stay fp32). On the CPU
too: --modes bf16 is torch.autocast("cpu", bfloat16), oneDNN's bf16 kernels (AMX where the
CPU has it), the baseline of samc's --precision bf16 on the CPU.

Changes to the official code, all at run time, none changing a number
(shared/golden/sam3/README.md, section 10):
  * stand-in modules for pkg_resources, decord, pycocotools and psutil when they are
    missing: imported by the package, never called on the image path;
  * P1: Tensor.pin_memory() is the identity (the geometry encoder pins a 4-float tensor,
    which needs a GPU);
  * P2/P3: the device="cuda" caches of PositionEmbeddingSine and of the decoder's boxRPB
    coordinates are built on the CPU;
  * P4 (default; --stock-resize turns it off): the processor's uint8 Resize takes
    torchvision's float path, F.interpolate(u8.float(), antialias=True).round(), which is
    what the goldens and samc compute. On AVX2/AVX-512 CPUs torchvision otherwise uses a
    fixed-point uint8 kernel that differs by +-1 in ~17% of the pixels (same speed class).

--check-golden DIR compares what this run computed with the goldens of DIR
(shared/golden/sam3/micro or shared/golden/sam3/sam3): a_text when TEXT and the image
match it, b_text_posbox when TEXT2 and BOX do, against each tensor's suggested_tol_abs,
and the kept set at the golden's threshold. "golden_ok" is true / false, or null when no
case matched (then nothing was compared); the exit status is 1 when a check failed.
"""
import argparse
import json
import os
import resource
import struct
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import float32_array, limit_threads, median, rss_mb  # noqa: E402  (bench/bench_util.py)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sam3-src", default=os.environ.get("SAM3_SRC"),
                   help="directory holding the official sam3 package, or its wheel (PyPI sam3, imported from "
                        "the zip) (default: $SAM3_SRC)")
    p.add_argument("--config-json",
                   help="a resolved model config (shared/golden/sam3/micro/model_config.json); "
                        "default: the official build_sam3_image_model (config sam3)")
    p.add_argument("--weights", required=True, help="samc .safetensors file (Sam3Image names; F32/F16/BF16)")
    p.add_argument("--image", required=True, help="RGB image (PNG/JPEG)")
    p.add_argument("--bpe", help="bpe_simple_vocab_16e6.txt.gz (default: the one in SAM3_SRC/sam3/assets)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--iters", type=int, default=3, help="timed rounds (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--text", default="truck", help="first text prompt (default truck)")
    p.add_argument("--text2", default="", help="second text prompt on the same encoding (empty: none)")
    p.add_argument("--box", default="",
                   help="X0,Y0,X1,Y1 in image pixels: a positive exemplar added after the last text "
                        "(empty: none)")
    p.add_argument("--threshold", type=float, default=0.3145480155944824,
                   help="confidence threshold, kept = score > T (default: the full golden's for "
                        "'truck', 6 instances)")
    p.add_argument("--stock-resize", action="store_true",
                   help="keep torchvision's uint8 Resize kernel instead of the float path (P4)")
    p.add_argument("--check-golden", help="golden config folder to compare with (see above)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")
    p.add_argument("--modes", default="fp32",
                   help="comma-separated: fp32 (eager, TF32 off), bf16 (autocast); one JSON line each (default fp32)")
    p.add_argument("--skip-init", action="store_true",
                   help="build the model without its random initialisation (torch.nn.init and timm's "
                        "trunc_normal_ do nothing while it is built): every tensor is loaded from --weights "
                        "after (load_weights refuses a file that lacks one), so no number changes; the full "
                        "config builds in seconds instead of a minute on the CPU")
    p.add_argument("--stages", action="store_true",
                   help="also time the model's stages inside each prompt (forward hooks on the text encoder, "
                        "geometry encoder, fusion encoder, decoder, scoring and segmentation head; a GPU is "
                        "synchronised at each): JSON stages_ms, the median per prompt kind, comparable with "
                        "samc's per-stage lines")
    p.add_argument("--extra-path", action="append", default=[],
                   help="a folder or .whl appended to sys.path (modules the machine lacks; its own come first)")
    return p.parse_args()


def install_stubs():
    """Modules the sam3 package imports at load time but the image path never calls
    (video decoding, COCO tools, process stats, the package-resource lookup of the
    default BPE path, which --bpe replaces)."""
    import importlib.util
    stubbed = []
    for name in ("pkg_resources", "decord", "pycocotools", "pycocotools.mask", "psutil"):
        parent = name.split(".")[0]
        if parent not in stubbed and importlib.util.find_spec(parent) is not None:
            continue
        mod = types.ModuleType(name)

        def getattr_(attr, _mod=name):
            if attr.startswith("__"):
                raise AttributeError(attr)

            def never(*a, **k):
                raise RuntimeError("stub %s.%s called: the image path should not need it" % (_mod, attr))
            return type(attr, (), {"__init__": never, "__call__": never})

        mod.__getattr__ = getattr_
        mod.__path__ = []
        sys.modules[name] = mod
        if "." in name:
            setattr(sys.modules[parent], name.rsplit(".", 1)[1], mod)
        stubbed.append(name)
    return stubbed


def apply_cpu_patches(torch):
    """P1-P3 of shared/golden/sam3/README.md, section 10 (no number changes)."""
    import sam3.model.decoder as decoder
    import sam3.model.position_encoding as position_encoding

    # P1: scale.pin_memory() in the geometry encoder's box pooling.
    torch.Tensor.pin_memory = lambda self, *a, **k: self

    # P2: PositionEmbeddingSine precomputes its cache from torch.zeros(..., device="cuda").
    class TorchOnCpu:
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def zeros(*a, **k):
            if str(k.get("device", "cpu")).startswith("cuda"):
                k["device"] = "cpu"
            return torch.zeros(*a, **k)

    position_encoding.torch = TorchOnCpu()

    # P3: TransformerDecoder builds its boxRPB coordinate cache with device="cuda".
    get_coords = decoder.TransformerDecoder._get_coords

    def get_coords_cpu(H, W, device):
        return get_coords(H, W, "cpu" if str(device).startswith("cuda") else device)

    decoder.TransformerDecoder._get_coords = staticmethod(get_coords_cpu)


def skip_random_init(torch):
    """--skip-init: the initialisers become no-ops while the model is built (the constructor's
    computed buffers, the RoPE tables, are not initialisers and stay); returns the undo."""
    import torch.nn.init as init
    import sam3.model.vitdet as vitdet
    names = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
             "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")
    saved = {n: getattr(init, n) for n in names if hasattr(init, n)}
    saved_vit = vitdet.trunc_normal_

    def keep(t, *a, **k):
        return t

    for n in saved:
        setattr(init, n, keep)
    vitdet.trunc_normal_ = keep

    def undo():
        for n, f in saved.items():
            setattr(init, n, f)
        vitdet.trunc_normal_ = saved_vit
    return undo


def build_from_config(cfg, bpe_path):
    """Sam3Image from a resolved model_config.json: the same classes and calls as
    sam3/model_builder.py's _create_* functions, with the config's arguments."""
    import torch.nn as nn
    import sam3.model_builder as mb
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion, TransformerEncoderLayer

    def mha(c):
        return mb.MultiheadAttention(**c)

    vit_args = {k: v for k, v in cfg["vit"].items() if k != "act_layer"}  # act_layer: a description
    vit_args["global_att_blocks"] = tuple(vit_args["global_att_blocks"])
    vit_args["rel_pos_blocks"] = tuple(vit_args["rel_pos_blocks"])
    vit = mb.ViT(**vit_args)
    neck = mb.Sam3DualViTDetNeck(position_encoding=mb.PositionEmbeddingSine(**cfg["position_encoding"]),
                                 trunk=vit, **cfg["neck"])
    tok_args = dict(cfg["tokenizer"], bpe_path=bpe_path)
    text = mb.VETextEncoder(tokenizer=mb.SimpleTokenizer(**tok_args), **cfg["text_encoder"])
    backbone = mb.SAM3VLBackbone(visual=neck, text=text, **cfg["vl_backbone"])

    def layer_args(c):
        c = dict(c)
        for k in ("self_attention", "cross_attention"):
            if k in c:
                c[k] = mha(c[k])
        return c

    encoder = TransformerEncoderFusion(layer=TransformerEncoderLayer(**layer_args(cfg["encoder_layer"])),
                                       **cfg["encoder"])
    decoder = TransformerDecoder(layer=TransformerDecoderLayer(**layer_args(cfg["decoder_layer"])),
                                 **cfg["decoder"])
    transformer = mb.TransformerWrapper(encoder=encoder, decoder=decoder, **cfg["transformer_wrapper"])

    dps = dict(cfg["dot_prod_scoring"])
    mlp = dict(dps.pop("prompt_mlp"))
    if mlp.get("out_norm") == "nn.LayerNorm(d_model)":
        mlp["out_norm"] = nn.LayerNorm(dps["d_model"])
    scoring = mb.DotProductScoring(prompt_mlp=mb.MLP(**mlp), **dps)

    seg = mb.UniversalSegmentationHead(pixel_decoder=mb.PixelDecoder(**cfg["pixel_decoder"]),
                                       cross_attend_prompt=mha(cfg["seg_cross_attend_prompt"]),
                                       **cfg["segmentation_head"])
    geo = mb.SequenceGeometryEncoder(pos_enc=mb.PositionEmbeddingSine(**cfg["geo_position_encoding"]),
                                     layer=TransformerEncoderLayer(**layer_args(cfg["geo_layer"])),
                                     **cfg["geometry_encoder"])
    model = mb.Sam3Image(backbone=backbone, transformer=transformer, input_geometry_encoder=geo,
                         segmentation_head=seg, dot_prod_scoring=scoring, **cfg["sam3_image"])
    return model.eval()


def safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header, 8 + n


def load_weights(model, path, torch, np):
    """Copies every tensor of the file into the model, one at a time with plain reads
    (no mmap), so that the peak RSS is the model's plus one tensor's, not the file's on
    top. The file must hold every state_dict entry but the RoPE buffers (freqs_cis),
    which the constructor computed; anything else missing or extra is an error."""
    header, base = safetensors_header(path)
    meta = header.pop("__metadata__", {}) or {}
    sd = model.state_dict()
    computed = {k for k in sd if k.endswith(".attn.freqs_cis")}
    missing = sorted(set(sd) - set(header) - computed)
    extra = sorted(set(header) - set(sd))
    if missing or extra:
        sys.exit("pytorch_sam3_bench: %s does not match Sam3Image: missing %s, unexpected %s"
                 % (path, missing[:5], extra[:5]))
    dtypes = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        with torch.no_grad():
            for name, d in header.items():
                lo, hi = d["data_offsets"]
                raw = bytearray(hi - lo)  # writable, so that torch.from_numpy does not warn
                if os.preadv(fd, [raw], base + lo) != hi - lo:
                    sys.exit("pytorch_sam3_bench: %s: tensor %s truncated" % (path, name))
                a = float32_array(np, raw, d["dtype"])
                if a is None:
                    sys.exit("pytorch_sam3_bench: %s: tensor %s: dtype %s not handled" % (path, name, d["dtype"]))
                dst = sd[name]
                if list(dst.shape) != list(d["shape"]):
                    sys.exit("pytorch_sam3_bench: %s: %s has shape %s, the model %s"
                             % (path, name, d["shape"], list(dst.shape)))
                dst.copy_(torch.from_numpy(a.reshape(d["shape"])))
                dtypes[d["dtype"]] = dtypes.get(d["dtype"], 0) + 1
                del raw, a
    finally:
        os.close(fd)
    return {"file_dtypes": dtypes, "loaded_tensors": len(header), "computed_buffers": len(computed),
            "weights_meta_config": meta.get("config")}


def float_resize(torch, size):
    """P4: torchvision's float Resize path for a uint8 image (section 3 of the golden README)."""
    F = torch.nn.functional

    def resize(img):
        x = F.interpolate(img[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)[0]
        return x.round().clamp_(0, 255).to(torch.uint8)

    return resize


def summarize(out, state):
    """What both samc and PyTorch report for one grounding: kept count, presence logit,
    the best three queries."""
    probs = (out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)).squeeze(-1)[0]
    order = sorted(range(probs.numel()), key=lambda q: -float(probs[q]))[:3]
    return {"kept": int(state["scores"].numel()), "presence_logit": round(float(out["presence_logit_dec"].reshape(-1)[0]), 6),
            "top": [[q, round(float(probs[q]), 6)] for q in order]}


def check_case(case_dir, out, state, np, torch):
    """Max |torch - golden| of the grounding outputs against the manifest's tolerances."""
    from safetensors.numpy import load_file
    with open(os.path.join(case_dir, "manifest.json")) as f:
        man = json.load(f)
    gold = load_file(os.path.join(case_dir, "tensors.safetensors"))
    probs = (out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)).squeeze(-1)
    mine = {"out.pred_logits": out["pred_logits"], "out.pred_boxes": out["pred_boxes"],
            "out.presence_logit_dec": out["presence_logit_dec"], "out.pred_masks": out["pred_masks"],
            "post.probs_all": probs}
    report = {"case": os.path.basename(case_dir), "tensors": {}, "ok": True}
    for name, t in mine.items():
        info = man["tensors"].get(name)
        if info is None:
            continue
        x = t.detach().float().cpu().numpy().astype(np.float64)
        tol = float(info.get("suggested_tol_abs", 0.0))
        if info["stored"] == "full":
            g = gold[name].astype(np.float64)
            d = float(np.abs(x.reshape(g.shape) - g).max())
        elif info["stored"] == "sample4096":
            idx = gold[name + ".sample_idx"].astype(np.int64)
            g = gold[name + ".sample_val"].astype(np.float64)
            d = float(np.abs(x.reshape(-1)[idx] - g).max())
        else:
            continue
        ok = d <= tol
        report["tensors"][name] = {"max_abs_diff": d, "tol": tol, "ok": ok}
        report["ok"] &= ok
    if "out.pred_masks_top10" in gold:  # full config: the top-10 queries' masks, stored as f16
        idx = gold["out.top10_idx"].astype(np.int64)
        g = gold["out.pred_masks_top10"].astype(np.float64)
        x = out["pred_masks"][0].float().cpu().numpy()[idx].astype(np.float64)
        tol = float(man["tensors"]["out.pred_masks"].get("suggested_tol_abs", 0.0))
        d = float((np.abs(x - g) - np.abs(g) * 2.0 ** -11).max())
        report["tensors"]["out.pred_masks_top10"] = {"max_abs_diff_minus_f16_rounding": d, "tol": tol, "ok": d <= tol}
        report["ok"] &= d <= tol
    thr = man["thresholds"]["main"]["confidence_threshold"]
    keep = [int(q) for q in torch.nonzero(probs[0] > thr).reshape(-1)]
    gkeep = [int(q) for q in gold["post.keep_idx"]]
    report["keep_idx_equal"] = keep == gkeep
    report["ok"] &= keep == gkeep
    return report


def golden_cases(args, box):
    """(case folder, which grounding it records) for the cases this run's prompts match."""
    cases = []
    root = os.path.abspath(args.check_golden)
    image = os.path.basename(args.image)
    for case, want in (("a_text", "text"), ("b_text_posbox", "box")):
        path = os.path.join(root, case)
        if not os.path.isfile(os.path.join(path, "manifest.json")):
            continue
        with open(os.path.join(path, "manifest.json")) as f:
            man = json.load(f)
        if os.path.basename(man["image"]) != image:
            continue
        ops = man["ops"]
        if want == "text" and ops == [{"call": "processor.set_text_prompt", "prompt": args.text}]:
            cases.append((path, "text"))
        if (want == "box" and args.text2 and box and len(ops) == 2
                and ops[0] == {"call": "processor.set_text_prompt", "prompt": args.text2}
                and ops[1]["call"] == "processor.add_geometric_prompt" and ops[1]["label"] is True
                and [float(v) for v in ops[1]["box_xyxy_px"]] == box):
            cases.append((path, "box"))
    return cases


def main():
    args = parse_args()
    if args.iters < 1 or args.warmup < 0 or args.threads < 1:
        sys.exit("pytorch_sam3_bench: --iters >= 1, --warmup >= 0, --threads >= 1")
    if not args.sam3_src or not (os.path.isfile(os.path.join(args.sam3_src, "sam3", "model_builder.py"))
                                 or (args.sam3_src.endswith(".whl") and os.path.isfile(args.sam3_src))):
        sys.exit("pytorch_sam3_bench: --sam3-src (or SAM3_SRC) must be a directory holding sam3/model_builder.py "
                 "or the sam3 wheel")
    box = [float(v) for v in args.box.split(",")] if args.box else []
    if box and len(box) != 4:
        sys.exit("pytorch_sam3_bench: --box X0,Y0,X1,Y1")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("fp32", "bf16") for m in modes):
        sys.exit("pytorch_sam3_bench: --modes takes fp32 and / or bf16")
    limit_threads(args.threads)
    sys.path += [os.path.abspath(x) for x in args.extra_path]
    import numpy as np
    import torch
    from PIL import Image

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("pytorch_sam3_bench: --device cuda, but torch sees no GPU")
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.abspath(args.sam3_src))
    stubbed = install_stubs()
    import sam3.model_builder as mb
    from sam3.model.sam3_image_processor import Sam3Processor
    if args.device == "cpu":
        apply_cpu_patches(torch)
    # What importing torch (and, on a CUDA wheel, its CUDA libraries) costs before any model.
    rss_import = rss_mb()
    bpe = args.bpe or os.path.join(args.sam3_src, "sam3", "assets", "bpe_simple_vocab_16e6.txt.gz")

    t0 = time.perf_counter()
    undo_init = skip_random_init(torch) if args.skip_init else None
    if args.config_json:
        with open(args.config_json) as f:
            cfg = json.load(f)
        config = cfg.get("name", os.path.basename(args.config_json))
        model = build_from_config(cfg, bpe)
        resolution = cfg["image_size"]
    else:
        config = "sam3"
        model = mb.build_sam3_image_model(bpe_path=bpe, device="cpu", eval_mode=True, checkpoint_path=None,
                                          load_from_HF=False, enable_segmentation=True,
                                          enable_inst_interactivity=False)
        resolution = 1008
    if undo_init:
        undo_init()
    build_s = time.perf_counter() - t0
    load = load_weights(model, args.weights, torch, np)
    model.eval()
    if args.device == "cuda":
        model.to("cuda")
        torch.cuda.synchronize()
    n_params = sum(v.numel() for k, v in model.state_dict().items() if not k.endswith("freqs_cis"))
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()

    processor = Sam3Processor(model, resolution=resolution, device=args.device, confidence_threshold=args.threshold)
    if not args.stock_resize:
        steps = processor.transform.transforms
        assert type(steps[1]).__name__ == "Resize", steps
        steps[1] = float_resize(torch, resolution)

    # Keep the raw outputs of each grounding (a reference, no extra work) for the checks.
    captured = []
    forward_grounding = model.forward_grounding

    def capture(*a, **k):
        out = forward_grounding(*a, **k)
        captured.append(out)
        return out

    model.forward_grounding = capture

    image = Image.open(args.image).convert("RGB")
    w, h = image.size
    box_norm = None
    if box:
        x0, y0, x1, y1 = box
        box_norm = [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]

    cuda = args.device == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    # --stages: wall time per call of each stage module, summed per prompt.
    stage_ms = {}
    if args.stages:
        stage_modules = [("text", model.backbone.language_backbone), ("geometry", model.geometry_encoder),
                         ("fusion encoder", model.transformer.encoder), ("decoder", model.transformer.decoder),
                         ("scoring", model.dot_prod_scoring), ("seg head", model.segmentation_head)]
        for name, mod in stage_modules:
            def pre(_m, _a, _name=name):
                sync()
                stage_ms.setdefault("_start", {})[_name] = time.perf_counter()

            def post(_m, _a, _o, _name=name):
                sync()
                stage_ms[_name] = stage_ms.get(_name, 0.0) + (time.perf_counter() - stage_ms["_start"][_name]) * 1e3

            mod.register_forward_pre_hook(pre)
            mod.register_forward_hook(post)

    def take_stages():
        out = {k: v for k, v in stage_ms.items() if k != "_start"}
        stage_ms.clear()
        return out

    base = {"run": "pytorch_sam3", "config": config, "device": args.device, "threads": args.threads,
            "torch_num_threads": torch.get_num_threads(), "iters": args.iters, "warmup": args.warmup}
    failed = False
    for mode in modes:
        if cuda:
            # fp32: true fp32 (the official builder enabled TF32 at import); bf16: autocast,
            # TF32 as the official code sets it for what autocast leaves in fp32.
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode != "fp32"
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        ctx = (torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16) if mode == "bf16"
               else torch.autocast("cuda", enabled=False) if cuda else torch.no_grad())
        times = {"set_image": [], "text": [], "text2": [], "box": []}
        stages = {"text": [], "text2": [], "box": []}
        results = {}
        checks = []
        with torch.inference_mode(), ctx:
            for it in range(args.warmup + args.iters):
                captured.clear()
                r = {}
                sync()
                t = [time.perf_counter()]
                state = processor.set_image(image)
                sync()
                t.append(time.perf_counter())
                take_stages()
                processor.set_text_prompt(args.text, state)
                sync()
                t.append(time.perf_counter())
                st = {"text": take_stages()}
                r["text"] = summarize(captured[-1], state)
                if args.text2:
                    processor.set_text_prompt(args.text2, state)
                    sync()
                    t.append(time.perf_counter())
                    st["text2"] = take_stages()
                    r["text2"] = summarize(captured[-1], state)
                if box_norm:
                    processor.add_geometric_prompt(box_norm, True, state)
                    sync()
                    t.append(time.perf_counter())
                    st["box"] = take_stages()
                    r["box"] = summarize(captured[-1], state)
                if it >= args.warmup and args.stages:
                    for k, v in st.items():
                        stages[k].append(v)
                if it >= args.warmup:
                    keys = ["set_image", "text"] + (["text2"] if args.text2 else []) + (["box"] if box_norm else [])
                    for i, k in enumerate(keys):
                        times[k].append((t[i + 1] - t[i]) * 1e3)
                if it == args.warmup and args.check_golden and mode == "fp32":
                    outs = {"text": captured[0], "box": captured[-1]}
                    for path, which in golden_cases(args, box):
                        checks.append(check_case(path, outs[which], state, np, torch))
                results = r
                del state

        result = dict(base, mode=mode)
        for k, v in times.items():
            if v:
                result[k + "_ms_median"] = round(median(v), 3)
                result[k + "_ms_min"] = round(min(v), 3)
        if args.stages:
            result["stages_ms"] = {}
            for k, v in stages.items():
                names = []  # in the order the stages ran
                for d in v:
                    names += [n for n in d if n not in names]
                if v:
                    result["stages_ms"][k] = {n: round(median([d.get(n, 0.0) for d in v]), 1) for n in names}
        result.update({
            "prompts": {"text": args.text, "text2": args.text2 or None, "box_px": box or None,
                        "box_after": (args.text2 or args.text) if box else None},
            "results": results,
            "threshold": args.threshold,
            "torch_version": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl": torch.backends.mkl.is_available(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "resize": "torchvision-uint8" if args.stock_resize else "float (P4)",
            "model_dtype": "float32",
            "autocast": "bfloat16" if mode == "bf16" else None,
            "tf32": bool(cuda and mode != "fp32"),
            "stubbed_modules": stubbed,
            "image": os.path.basename(args.image),
            "width": w,
            "height": h,
            "n_params": n_params,
            "build_s": round(build_s, 2),
            "skip_init": args.skip_init,
            "load_s": round(load_s, 2),
            "rss_after_import_mb": rss_import,
            "rss_after_load_mb": rss_loaded,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
            "weights": os.path.basename(args.weights),
        })
        if cuda:
            result.update({"gpu": torch.cuda.get_device_name(0),
                           "peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 1048576.0, 1),
                           "peak_reserved_mb": round(torch.cuda.max_memory_reserved() / 1048576.0, 1)})
        result.update(load)
        if args.check_golden and mode == "fp32":
            # None: no golden case matches these prompts / this image (nothing was compared).
            result["golden_checks"] = checks
            result["golden_ok"] = all(c["ok"] for c in checks) if checks else None
            if result["golden_ok"] is False:
                failed = True
                print("pytorch_sam3_bench: golden check failed: %s" % json.dumps(checks), file=sys.stderr)
        print(json.dumps(result), flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
