#!/usr/bin/python3
"""Checks `samc find` against the SAM3 golden reference data from outside, through its CLI
(the SAM3 twin of shared/tools/golden_check.py).

  samc synth --config sam3_micro -o MODEL            (compared with the golden weights)
  samc find IMAGE --model MODEL --vocab VOCAB [--text T]... [--box X0,Y0,X1,Y1,L]...
            [--point X,Y,L]... --threshold T --out DIR --save-raw RAW --json

For each case of the golden folder (micro: a_text .. f_two_texts) the prompts come from
the manifest's recorded calls (set_text_prompt, add_geometric_prompt, append_points) and
the threshold from its `thresholds`. Compared: the raw outputs of every query
(out.pred_logits, out.pred_boxes, out.pred_masks, out.presence_logit_dec, prefixed t0. /
t1. for two texts) within the manifests' suggested tolerances; the kept queries, scores
and pixel boxes of the JSON report against post.keep_idx / scores / boxes_px; the mask
PNGs against the golden PNGs (allowed flips: max(20 x the fp32-vs-fp64 flips, 1e-5 x the
pixels), README section 8); each instance's RLE in instances.json against its PNG.
Prints one line per case and a verdict line last. Exit 0 iff all pass.

--lowp-iou MIN --score-tol T (a 16-bit run, `--precision bf16|fp16` through SAMC_PRECISION):
the raw outputs are reported but not held to the fp32 tolerances; instead the kept
queries must be the golden's, each score within T of the golden score, and each mask's
IoU with its golden PNG at least MIN (kernels/cuda/NOTES.md, "SAM3 on a 4 GB card");
with --lowp-flips F also at most the fraction F of a case's mask pixels differing from the
golden's (the aggregate: a worst IoU moves with one small, flat mask).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
from PIL import Image

DT = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64,
      "U8": np.uint8, "F16": np.float16}
RAW = ("out.pred_logits", "out.pred_boxes", "out.pred_masks", "out.presence_logit_dec")


def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        a = np.frombuffer(data[s:e], dtype=np.dtype(DT[v["dtype"]]).newbyteorder("<"))
        out[k] = a.reshape(v["shape"])
    return out


def run(cmd, timeout):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    return p, time.time() - t


def prefixes(man):
    """The result sets of a case: [""] or ["t0.", "t1.", ...] (record_prefix of the ops)."""
    pre = [op["record_prefix"] for op in man["ops"] if "record_prefix" in op]
    return pre or [""]


def case_args(man):
    """samc find arguments from the recorded processor calls."""
    args = []
    for op in man["ops"]:
        if op["call"] == "processor.set_text_prompt":
            args += ["--text", op["prompt"]]
        elif "box_xyxy_px" in op:
            b = op["box_xyxy_px"]
            args += ["--box", ",".join(f"{v:.9g}" for v in b) + f",{int(bool(op['label']))}"]
        elif "point_xy_px" in op:
            p = op["point_xy_px"]
            args += ["--point", f"{p[0]:.9g},{p[1]:.9g},{int(op['label'])}"]
        else:
            raise ValueError(f"unknown recorded call {op['call']!r}")
    return args


def pick_threshold(man, ref):
    """One threshold that keeps each set's golden queries (from the golden probs_all):
    the manifest's own for one set; for several, the first of theirs that fits all."""
    thr = man["thresholds"]
    cands = [thr["main"]["confidence_threshold"]] if "main" in thr else \
        [thr[p]["confidence_threshold"] for p in prefixes(man)]
    for t in sorted(cands, reverse=True):
        if all(set(np.nonzero(ref[p + "post.probs_all"].reshape(-1) > np.float32(t))[0]) ==
               set(ref[p + "post.keep_idx"].reshape(-1).tolist()) for p in prefixes(man)):
            return t
    return None


def compare(mine, ref, man, key, mine_key, tol_mult, worst):
    """Max abs error of one tensor against the golden one, within suggested_tol_abs."""
    r = ref.get(key)
    m = mine.get(mine_key)
    if r is None:
        return False, f"golden {key} missing", worst
    if m is None or m.size != r.size:
        return False, f"{mine_key}: missing or shape {None if m is None else m.shape} vs {r.shape}", worst
    m = m.astype(np.float64).reshape(-1)
    rr = r.astype(np.float64).reshape(-1)
    err = float(np.max(np.abs(m - rr)))
    scale = float(np.max(np.abs(rr))) or 1.0
    tol = man["tensors"][key].get("suggested_tol_abs", 1e-6 * scale) * tol_mult
    ok = bool(np.all(np.isfinite(m))) and err <= tol
    return ok, f"{mine_key} rel {err / scale:.1e}{'' if ok else ' OVER ' + format(tol / scale, '.1e')}", \
        max(worst, err / scale)


def rle_decode(seg):
    h, w = seg["size"]
    flat = np.zeros(h * w, dtype=bool)
    pos, val = 0, False
    for c in seg["counts"]:
        flat[pos:pos + c] = val
        pos += c
        val = not val
    return pos == h * w, flat.reshape(w, h).T


def check_instances(doc, inst_file, ref, man, cdir, odir, tol_mult, lowp=None):
    """Kept sets, scores, boxes, mask PNGs and RLEs. Returns (ok, messages). lowp: (min
    IoU, score tolerance, max fraction of differing mask pixels or None) of a 16-bit run,
    or None (fp32: the golden tolerances)."""
    ok, msgs = True, []
    by_set = {}
    for inst in doc["instances"]:
        by_set.setdefault(inst["text_index"], []).append(inst)
    rle_of = {(i["text_index"], i["query"]): i.get("segmentation") for i in inst_file["instances"]}
    for s, p in enumerate(prefixes(man)):
        got = by_set.get(s, [])
        keep = ref[p + "post.keep_idx"].reshape(-1).tolist()
        if [i["query"] for i in got] != keep:
            return False, msgs + [f"{p}kept queries {[i['query'] for i in got]} vs golden {keep}"]
        for key, field in (("post.scores", "score"), ("post.boxes_px", "box")):
            r = ref[p + key].astype(np.float64).reshape(len(keep), -1)
            m = np.array([np.atleast_1d(i[field]) for i in got], dtype=np.float64).reshape(r.shape)
            tol = man["tensors"][p + key]["suggested_tol_abs"] * tol_mult
            if lowp:   # scores to the stated tolerance; boxes reported (their masks are checked)
                tol = lowp[1] if key == "post.scores" else float("inf")
            err = float(np.max(np.abs(m - r))) if r.size else 0.0
            ok &= err <= tol
            msgs.append(f"{p}{key} abs {err:.1e}{'' if err <= tol else ' OVER ' + format(tol, '.1e')}")
    flips, pixels, budget, worst_iou = 0, 0, 0.0, 1.0
    summ = man["summary"]
    for s, p in enumerate(prefixes(man)):
        sm = summ.get(p, summ) if p else summ.get("main", summ)
        budget += max(20 * sm["final_mask_pixels_flipped_fp32_vs_fp64"], 1e-5 * sm["final_mask_pixels_total"])
    for ent in man["masks_png"]:
        base = os.path.basename(ent["file"])
        set_i = int(base[1:base.index("_")]) if base.startswith("t") else 0
        name = base if base.startswith("t") else "t0_" + base
        mine_png = os.path.join(odir, name)
        if not os.path.exists(mine_png):
            return False, msgs + [f"missing {name}"]
        g = np.asarray(Image.open(os.path.join(cdir, ent["file"])).convert("L")) > 0
        mm = np.asarray(Image.open(mine_png).convert("L")) > 127
        if g.shape != mm.shape:
            return False, msgs + [f"{name} shape {mm.shape} vs {g.shape}"]
        flips += int(np.sum(g != mm))
        pixels += g.size
        union = int(np.sum(g | mm))
        worst_iou = min(worst_iou, int(np.sum(g & mm)) / union if union else 1.0)
        seg = rle_of.get((set_i, ent["query"]))
        good, dec = rle_decode(seg) if seg else (False, None)
        if not good or dec.shape != mm.shape or not np.array_equal(dec, mm):
            ok = False
            msgs.append(f"{name}: instances.json RLE differs from the PNG")
    if lowp:
        ok &= worst_iou >= lowp[0]
        msgs.append(f"masks {flips}/{pixels} px differ, worst IoU {worst_iou:.4f}"
                    f"{'' if worst_iou >= lowp[0] else ' UNDER ' + format(lowp[0], '.4f')}")
        if lowp[2] is not None:
            frac = flips / pixels if pixels else 0.0
            ok &= frac <= lowp[2]
            msgs.append(f"{100 * frac:.3f} % of mask pixels differ"
                        f"{'' if frac <= lowp[2] else ' OVER ' + format(100 * lowp[2], '.3f') + ' %'}")
    else:
        ok &= flips <= budget
        msgs.append(f"masks {flips}/{pixels} px differ (allowed {budget:.0f})")
    return ok, msgs


def run_case(a, samc, model, gdir, cname):
    lowp = (a.lowp_iou, a.score_tol, a.lowp_flips) if a.lowp_iou is not None else None
    cdir = os.path.join(gdir, cname)
    man = json.load(open(os.path.join(cdir, "manifest.json")))
    ref = load_st(os.path.join(cdir, "tensors.safetensors"))
    img = os.path.normpath(os.path.join(gdir, man["image"]))   # relative to the config folder
    odir = os.path.join(a.work, cname)
    raw = odir + "_raw.safetensors"
    thr = pick_threshold(man, ref)
    if thr is None:
        return False, "no single threshold reproduces every golden kept set", 0.0, 0.0
    cmd = [samc, "find", img, "--model", model, "--vocab", a.vocab] + case_args(man) + \
          ["--threshold", repr(float(thr)), "--out", odir, "--save-raw", raw, "--json"]
    try:
        p, dt = run(cmd, a.timeout)
    except subprocess.TimeoutExpired:
        return False, f"timeout {a.timeout}s", 0.0, 0.0
    err = p.stderr.decode("utf-8", "replace").strip()
    if p.returncode != 0 or not os.path.exists(raw):
        return False, f"rc={p.returncode} {err[-200:]}", dt, 0.0
    try:
        doc = json.loads(p.stdout.decode("utf-8"))
        inst_file = json.load(open(os.path.join(odir, "instances.json")))
    except (ValueError, OSError) as e:
        return False, f"stdout / instances.json not JSON: {e}", dt, 0.0
    mine = load_st(raw)
    ok, msgs, worst = True, [], 0.0
    for pre in prefixes(man):
        for key in RAW:
            good, msg, worst = compare(mine, ref, man, pre + key, pre + key, a.tol_mult, worst)
            if lowp:   # reported; finite values required
                good = bool(np.all(np.isfinite(mine[pre + key]))) if pre + key in mine else False
                msg = msg.split(" OVER")[0]
            ok &= good
            msgs.append(msg)
    good, more = check_instances(doc, inst_file, ref, man, cdir, odir, a.tol_mult, lowp)
    return ok and good, f"{dt:.1f}s; " + "; ".join(msgs + more), dt, worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samc", required=True)
    ap.add_argument("--golden", required=True, help="config dir, e.g. shared/golden/sam3/micro")
    ap.add_argument("--vocab", required=True, help="bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--config", default="sam3_micro")
    ap.add_argument("--work", required=True)
    ap.add_argument("--tol-mult", type=float, default=1.0,
                    help="multiplier on the manifests' suggested_tol_abs (20x fp32 noise floor)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--cases", default="a,b,c,d,e,f")
    ap.add_argument("--lowp-iou", type=float, default=None,
                    help="16-bit run: the least mask IoU against the golden masks (needs --score-tol)")
    ap.add_argument("--score-tol", type=float, default=None, help="16-bit run: max abs score error")
    ap.add_argument("--lowp-flips", type=float, default=None,
                    help="16-bit run: the largest fraction of a case's mask pixels that may differ")
    a = ap.parse_args()
    if (a.lowp_iou is None) != (a.score_tol is None):
        ap.error("--lowp-iou and --score-tol go together")
    if a.lowp_flips is not None and a.lowp_iou is None:
        ap.error("--lowp-flips needs --lowp-iou and --score-tol")
    os.makedirs(a.work, exist_ok=True)
    samc = os.path.abspath(a.samc)
    gdir = os.path.abspath(a.golden)
    model = os.path.join(a.work, a.config + ".safetensors")
    p, _ = run([samc, "synth", "--config", a.config, "-o", model], a.timeout)
    if p.returncode != 0:
        print(f"synth FAIL rc={p.returncode}: {p.stderr.decode('utf-8', 'replace').strip()[-300:]}")
        print(f"VERDICT {a.config}: 0 cases pass (synth failed)")
        return 1
    ok_all = True
    wref = os.path.join(gdir, "weights", "micro.safetensors")
    if os.path.exists(wref):
        mine, ref = load_st(model), load_st(wref)
        bad = sorted(k for k in ref if k not in mine or mine[k].shape != ref[k].shape or
                     not np.array_equal(mine[k].view(np.uint32), ref[k].view(np.uint32)))
        ok_all &= not bad
        print(f"synth vs {os.path.basename(wref)}: {'OK' if not bad else 'FAIL'} ({len(ref)} tensors, "
              f"{len(bad)} missing or differing{': ' + ', '.join(bad[:3]) if bad else ''})")
    results, worst = [], 0.0
    letters = a.cases.split(",")
    for letter in letters:
        cdirs = [d for d in sorted(os.listdir(gdir)) if d.startswith(letter + "_")]
        if not cdirs:
            results.append((letter, False, "no such case in the golden folder"))
            continue
        ok, msg, _, w = run_case(a, samc, model, gdir, cdirs[0])
        worst = max(worst, w)
        results.append((cdirs[0], ok, msg))
    for cname, ok, msg in results:
        print(f"{'PASS' if ok else 'FAIL'} {a.config}/{cname}: {msg}")
        ok_all &= ok
    npass = sum(1 for r in results if r[1])
    print(f"VERDICT {a.config}: {npass}/{len(results)} cases pass, worst rel err {worst:.1e}")
    return 0 if ok_all and npass == len(results) and results else 1


if __name__ == "__main__":
    sys.exit(main())
