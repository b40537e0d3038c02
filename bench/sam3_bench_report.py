#!/usr/bin/env python3
"""Markdown report of bench/run_sam3_bench.sh's JSON lines (standard library only).

  sam3_bench_report.py RESULTS.jsonl COMMANDS.txt

RESULTS.jsonl: one "meta" line, then the JSON lines of bench_sam3 --json ("samc_sam3",
tagged with "label") and of pytorch_sam3_bench.py ("pytorch_sam3", tagged the same way
by the shell script). Prints the report on stdout.
"""
import json
import sys


def fmt_ms(v):
    if v is None:
        return "-"
    return "%.0f" % v if v >= 100 else "%.1f" % v


def fmt_mb(v):
    return "-" if v is None else "%.0f" % v


def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def get(d, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def main():
    results, commands = sys.argv[1], sys.argv[2]
    with open(results) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    with open(commands) as f:
        cmds = f.read().rstrip("\n")
    meta = next((x for x in lines if x.get("run") == "meta"), {})
    runs = {x.get("label"): x for x in lines if x.get("label")}
    main_cfg = meta.get("config", "?")
    for r in runs.values():  # derived values
        if r.get("run") == "samc_sam3":
            r["load_s"] = r["load_ms"] / 1e3 if "load_ms" in r else None
            if "box" in r:
                r["box"]["ms_minus_text"] = r["box"]["ms_median"] - r["box"]["text_ms_median"]
        elif r.get("n_params"):
            r["weights_fp32_mb"] = r["n_params"] * 4 / 1048576.0
    s32, s16, pt = runs.get("samc_f32"), runs.get("samc_f16"), runs.get("pytorch")
    sb, ptb = runs.get("samc_bf16"), runs.get("pytorch_bf16")  # BF16=1: both in bf16
    torch_runs = [r for r in (pt, ptb) if r is not None]
    out = []
    p = out.append
    p("# SAM3 image model: samc vs the official PyTorch code (%s)" % main_cfg)
    p("")
    p("CPU: %s, %s logical CPUs, %s threads on both sides; %s" % (meta.get("cpu", "?"), meta.get("nproc", "?"),
                                                                  meta.get("threads", "?"), meta.get("date", "?")))
    p("samc: %s, git %s; bench_sam3 on cpu_fast" % (meta.get("samc", "?"), meta.get("samc_git", "?")))
    if pt:
        p("PyTorch: torch %s (CPU capability %s, MKL %s, oneDNN %s), official sam3 at %s; resize: %s; "
          "model in float32 whatever the file's dtype"
          % (pt.get("torch_version"), pt.get("torch_cpu_capability"), pt.get("mkl"), pt.get("mkldnn"),
             meta.get("sam3_src_rev", "?"), pt.get("resize")))
    elif meta.get("skip_torch"):
        p("PyTorch: not run (SKIP_TORCH=1)")
    pr = get(s32 or s16 or pt or {}, "prompts") or {}
    p("Image: %s; weights: samc-synth-v1 (%s); prompts: \"%s\"%s%s; threshold %s; median of %s timed round(s) "
      "after %s warm-up round(s) (a round: set_image, then every prompt on that encoding)"
      % (meta.get("image", "?"), main_cfg, pr.get("text"),
         ", then \"%s\" on the same encoding" % pr["text2"] if pr.get("text2") else "",
         ", then \"%s\" + positive box %s" % (pr.get("box_after"), pr.get("box_px")) if pr.get("box_px") else "",
         meta.get("threshold"), meta.get("iters"), meta.get("warmup")))
    p("")

    # Main table.
    cols = [("samc fp32", s32), ("samc f16", s16), ("PyTorch fp32", pt), ("samc bf16", sb), ("PyTorch bf16", ptb)]
    cols = [(n, r) for n, r in cols if r is not None]
    # (PyTorch column, samc column) pairs that get a ratio column
    ratios = [(a, b) for a, b in (("PyTorch fp32", "samc fp32"), ("PyTorch fp32", "samc f16"),
                                  ("PyTorch bf16", "samc bf16")) if dict(cols).get(a) and dict(cols).get(b)]
    head = "| | " + " | ".join(n for n, _ in cols)
    for a, b in ratios:
        head += " | %s / %s" % (a, b)
    p(head + " |")
    p("|" + "---|" * (head.count("|")))

    def time_row(label, samc_key, torch_key):
        cells = []
        vals = {}
        for n, r in cols:
            v = get(r, *torch_key) if r in torch_runs else get(r, *samc_key)
            vals[n] = v
            cells.append(fmt_ms(v))
        for a, b in ratios:
            cells.append(ratio(vals.get(a), vals.get(b)))
        p("| %s | %s |" % (label, " | ".join(cells)))

    time_row("set_image (ms)", ("set_image_ms_median",), ("set_image_ms_median",))
    time_row("set_text_prompt(\"%s\") (ms)" % pr.get("text"), ("text", "ms_median"), ("text_ms_median",))
    if pr.get("text2"):
        time_row("set_text_prompt(\"%s\"), same image (ms)" % pr["text2"], ("text2", "ms_median"), ("text2_ms_median",))
    if pr.get("box_px"):
        time_row("add_geometric_prompt(box), after \"%s\" (ms) [1]" % pr.get("box_after"), ("box", "ms_median"),
                 ("box_ms_median",))
        time_row("  the same, without samc's text encoder [1]", ("box", "ms_minus_text"), ("box_ms_median",))

    def plain_row(label, samc_key, torch_key, f):
        cells = [f(get(r, *torch_key) if r in torch_runs else get(r, *samc_key)) for _, r in cols]
        cells += [""] * len(ratios)
        p("| %s | %s |" % (label, " | ".join(cells)))

    plain_row("load (s)", ("load_s",), ("load_s",), lambda v: "-" if v is None else "%.1f" % v)
    plain_row("weights held (MiB) [2]", ("weight_mb",), ("weights_fp32_mb",), fmt_mb)
    plain_row("RSS at start, before the model (MiB) [3]", ("rss_at_start_mb",), ("rss_after_import_mb",), fmt_mb)
    plain_row("RSS after load (MiB) [2]", ("rss_after_load_mb",), ("rss_after_load_mb",), fmt_mb)
    plain_row("peak RSS (MiB)", ("peak_rss_mb",), ("peak_rss_mb",), fmt_mb)
    p("")
    p("[1] The official processor keeps the text features when a box is added; samc_find does too when "
      "the text is the previous find's (a cache of the last text's features; older runs encoded the text again); the "
      "second line subtracts samc's text time (per-stage table; about 0 when reused).")
    p("[2] samc maps the weight file (pages count towards RSS once touched; 16-bit files stay 16-bit on "
      "cpu_fast); PyTorch holds a float32 copy of every parameter (read tensor by tensor, no mmap).")
    p("[3] PyTorch: the process after importing torch and sam3, before building the model (PyPI's default "
      "torch wheel is the CUDA build; its libraries are part of this); samc: the process before loading.")
    p("")

    # Per-stage table: samc's stage lines; PyTorch's from pytorch_sam3_bench.py --stages
    # (forward hooks on the same modules; its post-processing is the prompt's time minus
    # the hooked stages).
    stage_cols = [(n, r) for n, r in cols if r not in torch_runs or r.get("stages_ms")]
    if stage_cols:
        p("Per stage (ms, medians; PyTorch's from forward hooks on the official modules):")
        p("")
        p("| stage | " + " | ".join(n for n, _ in stage_cols) + " |")
        p("|---|" + "---|" * len(stage_cols))
        for label, key in (("set_image: preprocess", "preprocess_ms_median"),
                           ("set_image: patch embed", "patch_embed_ms_median"),
                           ("set_image: ViT blocks", "vit_blocks_ms_median"),
                           ("set_image: neck", "neck_ms_median")):
            p("| %s | %s |" % (label, " | ".join("-" if r in torch_runs else fmt_ms(r.get(key))
                                                for _, r in stage_cols)))
        torch_total = {"text": "text_ms_median", "text2": "text2_ms_median", "box": "box_ms_median"}

        def torch_stage(r, prompt, names):
            st = get(r, "stages_ms", prompt)
            if st is None:
                return None
            if names is None:  # the rest: post-processing and glue
                total = r.get(torch_total[prompt])
                return None if total is None else total - sum(st.values())
            return sum(st.get(n, 0.0) for n in names)

        for prompt in ("text", "text2", "box"):
            if not any(prompt in r or get(r, "stages_ms", prompt) for _, r in stage_cols):
                continue
            name = {"text": '"%s"' % pr.get("text"), "text2": '"%s"' % pr.get("text2"),
                    "box": '"%s" + box' % pr.get("box_after")}[prompt]
            for label, key, tnames in (("text encoder", "text_ms_median", ["text"]),
                                       ("geometry encoder", "geometry_ms_median", ["geometry"]),
                                       ("fusion encoder", "fusion_ms_median", ["fusion encoder"]),
                                       ("decoder + scoring", "decoder_ms_median", ["decoder", "scoring"]),
                                       ("segmentation head", "seg_head_ms_median", ["seg head"]),
                                       ("post-processing (PyTorch: the rest)", "post_ms_median", None)):
                p("| %s: %s | %s |" % (name, label, " | ".join(
                    fmt_ms(torch_stage(r, prompt, tnames)) if r in torch_runs else fmt_ms(get(r, prompt, key))
                    for _, r in stage_cols)))
        p("")

    # Same answers?
    p("What each side found (kept instances, presence logit, best query: score):")
    p("")
    p("| prompt | " + " | ".join(n for n, _ in cols) + (" | max abs diff samc fp32 vs PyTorch (of the 6-digit values) |" if pt and s32 else " |"))
    p("|---|" + "---|" * (len(cols) + (1 if pt and s32 else 0)))
    for prompt in ("text", "text2", "box"):
        cells = []
        for _, r in cols:
            res = get(r, "results", prompt) if r in torch_runs else get(r, prompt)
            cells.append("-" if not res else "%d, %.5f, q%d: %.5f" % (res["kept"], res["presence_logit"],
                                                                   res["top"][0][0], res["top"][0][1]))
        if all(c == "-" for c in cells):
            continue
        if pt and s32:
            a, b = get(s32, prompt), get(pt, "results", prompt)
            if a and b:
                same_q = [q for q, _ in a["top"]] == [q for q, _ in b["top"]] and a["kept"] == b["kept"]
                d = max([abs(a["presence_logit"] - b["presence_logit"])] +
                        [abs(x[1] - y[1]) for x, y in zip(a["top"], b["top"])])
                cells.append("%.1e%s" % (d, "" if same_q else " (different queries or count!)"))
            else:
                cells.append("-")
        p("| %s | %s |" % (prompt, " | ".join(cells)))
    p("")
    for label in ("check_pytorch_micro", "check_samc_micro"):
        r = runs.get(label)
        if r is None:
            continue
        if label == "check_pytorch_micro":
            checks = r.get("golden_checks") or []
            worst = max((t.get("max_abs_diff", t.get("max_abs_diff_minus_f16_rounding", 0)) / t["tol"]
                         for c in checks for t in c["tensors"].values() if t.get("tol")), default=None)
            p("Check: the PyTorch harness on sam3_micro vs the goldens (%s): %s%s"
              % (", ".join(c["case"] for c in checks) or "no case matched",
                 "PASS" if r.get("golden_ok") else "FAIL",
                 "" if worst is None else ", worst %.3f x the suggested tolerance" % worst))
        else:
            t = runs.get("check_pytorch_micro")
            agree = []
            for prompt in ("text", "text2", "box"):
                a, b = get(r, prompt), get(t, "results", prompt)
                if a and b:
                    d = max([abs(a["presence_logit"] - b["presence_logit"])] +
                            [abs(x[1] - y[1]) for x, y in zip(a["top"], b["top"])])
                    agree.append("%s %s (%.1e)" % (prompt, "same" if [q for q, _ in a["top"]] == [q for q, _ in b["top"]]
                                                  and a["kept"] == b["kept"] else "DIFFERENT", d))
            p("Check: samc (cpu_fast, fp32) vs the PyTorch harness, same micro weights / image / prompts: %s"
              % ", ".join(agree))
    if pt and "golden_checks" in pt:
        checks = pt["golden_checks"]
        if checks:
            p("Check: the timed PyTorch run vs the %s goldens (%s): %s"
              % (main_cfg, ", ".join(c["case"] for c in checks), "PASS" if pt.get("golden_ok") else "FAIL"))
        else:
            p("Check: no %s golden case has this image and these prompts: the timed PyTorch run was not "
              "compared with a golden" % main_cfg)
    p("")
    p("Commands:")
    p("```")
    p(cmds)
    p("```")
    p("Raw JSON lines (%s):" % results)
    p("```json")
    with open(results) as f:
        p(f.read().rstrip("\n"))
    p("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
