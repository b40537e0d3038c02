#!/usr/bin/env python3
"""bench/gpu_check/golden_cli.py: one golden config through samc's CLI on a device and
precision, for `make gpu-check`.

Runs shared/tools/golden_check.py (the acceptance check from outside: samc segment per
case, low-res logits and IoU predictions within the goldens' fp32 tolerances, masks within
0.5% of pixels) with SAMC_DEVICE / SAMC_PRECISION set, so every samc it starts runs there.
Then reads the masks it left in --work and computes, per case, the smallest IoU of a mask
with the golden (fp32 PyTorch) mask: the bf16 / fp16 criterion (>= 0.99), which the
checker's fp32 tolerances do not judge.

Prints one JSON object: config, precision, device, checker_ok (its exit status: the fp32
verdict), verdict (its last line), cases {name: {checker, min_iou}}, min_iou.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image


def mask_file(prefix, golden_file):
    """The file golden_check.py names samc's mask of a golden masks/m<j>.png or b<b>_m<j>.png."""
    base = os.path.basename(golden_file)[:-4]
    if base.startswith("b"):
        b, j = base.split("_m")
        return f"{prefix}_{b}_{j}.png"
    return f"{prefix}_{base[1:]}.png"


def case_iou(gdir, case, work):
    man = json.load(open(os.path.join(gdir, case, "manifest.json")))
    worst = None
    for ent in man.get("masks_png", []):
        mine = mask_file(os.path.join(work, case), ent["file"])
        if not os.path.exists(mine):
            return 0.0, f"missing {os.path.basename(mine)}"
        g = np.asarray(Image.open(os.path.join(gdir, case, ent["file"])).convert("L")) > 0
        m = np.asarray(Image.open(mine).convert("L")) > 127
        if g.shape != m.shape:
            return 0.0, f"{os.path.basename(mine)}: shape {m.shape} vs {g.shape}"
        union = np.logical_or(g, m).sum()
        iou = float(np.logical_and(g, m).sum() / union) if union else 1.0
        worst = iou if worst is None else min(worst, iou)
    return worst, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samc", required=True)
    ap.add_argument("--checker", required=True, help="shared/tools/golden_check.py")
    ap.add_argument("--golden", required=True, help="golden config folder (…/golden/tiny)")
    ap.add_argument("--config", required=True)
    ap.add_argument("--model", required=True, help="samc synth weights of the config")
    ap.add_argument("--work", required=True)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--cases", default="a,b,c,d,e,f,g")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    # the checker writes its model here unless it exists: the same file for every precision
    os.symlink(os.path.abspath(a.model), os.path.join(a.work, a.config + ".safetensors"))
    env = dict(os.environ, SAMC_DEVICE=a.device, SAMC_PRECISION=a.precision)
    env.pop("SAMC_BACKEND", None)
    p = subprocess.run([sys.executable, a.checker, "--samc", a.samc, "--golden", a.golden, "--config", a.config,
                        "--work", a.work, "--cases", a.cases, "--timeout", str(a.timeout)],
                       capture_output=True, text=True, env=env)
    lines = p.stdout.strip().splitlines()
    cases = {}
    for ln in lines:
        parts = ln.split(" ", 2)
        if len(parts) >= 2 and parts[0] in ("PASS", "FAIL") and "/" in parts[1]:
            name = parts[1].split("/", 1)[1].rstrip(":")
            cases[name] = {"checker": parts[0], "detail": parts[2][:300] if len(parts) > 2 else ""}
    for name in cases:
        iou, why = case_iou(a.golden, name, a.work)
        cases[name]["min_iou"] = iou
        if why:
            cases[name]["iou_problem"] = why
    ious = [v["min_iou"] for v in cases.values() if v.get("min_iou") is not None]
    print(json.dumps({"config": a.config, "precision": a.precision, "device": a.device, "checker_ok": p.returncode == 0,
                      "verdict": lines[-1] if lines else p.stderr.strip()[-300:], "cases": cases,
                      "min_iou": min(ious) if ious and len(cases) == len(a.cases.split(",")) else 0.0}))
    return 0 if cases else 1


if __name__ == "__main__":
    sys.exit(main())
