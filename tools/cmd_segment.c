/* tools/cmd_segment.c: `samc segment`: masks for point / box / mask prompts on one image.
 *
 * Mirrors what SAM2ImagePredictor.set_image() + predict() do for one image: points and
 * boxes in original pixels, several boxes as one batch with the points shared by every
 * box (the predictor broadcasts them), multimask output by default only for a single
 * point (the ambiguous case the notebooks use it for). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "util/image_io.h"
#include "model/samc.h"
#include "tools/segment_report.h"

void cmd_segment_help(FILE *f) {
    fprintf(f,
"usage: samc segment IMAGE --model FILE [prompts] [options]\n"
"\n"
"Predicts object masks in IMAGE (PNG, JPEG, BMP, ...) from prompts given in the image's\n"
"own pixel coordinates (x to the right, y down, 0..width and 0..height).\n"
"\n"
"prompts (at least one --point or --box):\n"
"  --point X,Y[,L]      a click; L = 1 foreground (default) or 0 background. Repeat it:\n"
"                       all points together describe one object.\n"
"  --box X0,Y0,X1,Y1    a box around the object (X1 > X0, Y1 > Y0). With several --box\n"
"                       each box is one item of a batch: one prediction per box, and any\n"
"                       --point is added to every box.\n"
"  --mask-input FILE    a previous --save-lowres file: its best mask (highest predicted\n"
"                       IoU, batch item 0) is given back as a dense prompt, to refine a\n"
"                       mask with extra clicks.\n"
"\n"
"output:\n"
"  --multimask          three candidate masks per prompt (default for a single point\n"
"                       without box or mask input)\n"
"  --single             one mask per prompt (default otherwise)\n"
"  --out PREFIX         masks go to PREFIX_<j>.png, or PREFIX_b<b>_<j>.png with several\n"
"                       boxes: 8-bit grayscale PNGs, 0 or 255, at the image's size.\n"
"                       Default PREFIX: <image name without extension>_mask\n"
"  --save-lowres FILE   also save the low-res logits, IoU predictions and object scores\n"
"                       (safetensors: low_res_masks [B,M,S/4,S/4], iou_predictions [B,M],\n"
"                       object_score_logits [B,1])\n"
"  --json               print one JSON object: image size, config, masks (file, iou, area\n"
"                       in pixels, bbox as [x, y, width, height]), object scores, timings\n"
"\n"
"options:\n"
"  --model FILE         weights: .safetensors (F32/F16/BF16) or an official .pt checkpoint\n"
"  --threads N          CPU threads (default: one per core)\n"
"  --device D           cpu (default), cuda, or auto: CUDA when a GPU is usable, else\n"
"                       the CPU with a notice on stderr (default from SAMC_DEVICE)\n"
"  --precision P        fp32 (default); bf16 (CUDA, sm_80+) or fp16 (CUDA, sm_60+): the\n"
"                       matrix products in 16 bits with fp32 accumulation (SAMC_PRECISION);\n"
"                       bf16 also on a CPU with Intel AMX (Xeon 4th generation or later)\n"
"  --backend B          auto (default), ref (plain C reference), fast (SIMD), cuda;\n"
"                       the SAMC_BACKEND environment variable sets the default\n"
"  --verbose            trace each stage with its time on stderr (also SAMC_DEBUG=1)\n"
"\n"
"examples:\n"
"  # one click: three candidate masks truck_mask_0.png .. truck_mask_2.png\n"
"  samc segment truck.jpg --model sam2.1_hiera_tiny.safetensors --point 500,375\n"
"  # a box plus a background click inside it, one mask\n"
"  samc segment truck.jpg --model tiny.safetensors --box 425,600,700,875 --point 575,750,0\n"
"  # three boxes in one batch: boxes_b0_0.png, boxes_b1_0.png, boxes_b2_0.png\n"
"  samc segment truck.jpg --model tiny.safetensors --box 75,275,1725,850 \\\n"
"      --box 425,600,700,875 --box 1375,550,1650,800 --out boxes\n"
"  # refine: keep the low-res logits of a click, then add a background click\n"
"  samc segment truck.jpg --model tiny.safetensors --point 500,375 \\\n"
"      --save-lowres a.safetensors\n"
"  samc segment truck.jpg --model tiny.safetensors --point 500,375 --point 1125,625,0 \\\n"
"      --mask-input a.safetensors --single\n");
}

static int parse_args(int argc, char **argv, segment_args *s) {
    cli_args a;
    cli_args_init(&a, argc, argv, "segment");
    char why[256];
    s->multimask = -1;
    if (cli_compute_init(&s->compute) != 0) return -1;
    s->verbose = cli_debug_env();
    const char *arg;
    while ((arg = cli_next(&a)) != NULL) {
        const char *v;
        long n;
        int rc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_segment_help(stdout);
            return 1;
        } else if (!strcmp(arg, "--point")) {
            if (!(v = cli_value(&a))) return -1;
            if (cli_parse_point(v, &s->points[s->n_points], why, sizeof why) != 0) {
                cli_error("--point", "%s", why);
                return -1;
            }
            s->n_points++;
        } else if (!strcmp(arg, "--box")) {
            if (!(v = cli_value(&a))) return -1;
            if (cli_parse_box(v, s->boxes[s->n_boxes], why, sizeof why) != 0) {
                cli_error("--box", "%s", why);
                return -1;
            }
            s->n_boxes++;
        } else if (!strcmp(arg, "--model")) {
            if (!(s->model = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--mask-input")) {
            if (!(s->mask_input = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--out") || !strcmp(arg, "-o")) {
            if (!(s->out = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--save-lowres")) {
            if (!(s->save_lowres = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--threads")) {
            if (cli_value_long(&a, 1, 4096, &n) != 0) return -1;
            s->threads = (int)n;
        } else if ((rc = cli_compute_flag(&a, arg, &s->compute)) != 0) {
            if (rc < 0) return -1;
        } else if (!strcmp(arg, "--multimask") || !strcmp(arg, "--single")) {
            if (cli_no_value(&a) != 0) return -1;
            s->multimask = !strcmp(arg, "--multimask");
        } else if (!strcmp(arg, "--json") || !strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
            if (cli_no_value(&a) != 0) return -1;
            if (!strcmp(arg, "--json")) s->json = 1;
            else s->verbose = 1;
        } else if (!cli_is_flag(arg) && !s->image) {
            s->image = arg;
        } else {
            return cli_refuse(&a, arg);
        }
    }
    if (!s->image) return cli_missing(&a, "IMAGE");
    if (!s->model) return cli_missing(&a, "--model FILE");
    if (s->n_points == 0 && s->n_boxes == 0) {
        cli_error("segment", "no prompt: give at least one --point X,Y or --box X0,Y0,X1,Y1 "
                  "(see samc segment --help)");
        return -1;
    }
    if (s->multimask < 0)
        s->multimask = s->n_points == 1 && s->n_boxes == 0 && !s->mask_input;
    return 0;
}

static int run_model(segment_args *s, const image_rgb *img, samc_masks *out) {
    samc_error err = { 0 };
    samc_options opt = { .n_threads = s->threads };
    if (cli_compute_resolve(&s->compute, &opt) != 0) return CLI_USAGE;
    opt.max_batch = s->n_boxes > 64 ? s->n_boxes : 0;
    if (s->verbose) opt.log = cli_log_stderr;
    int rc = CLI_FAIL;
    float *mask_in = NULL, *pts = NULL;
    int *labels = NULL;
    samc_prompt *prompts = NULL;
    samc_image *enc = NULL;
    samc_model *m = samc_model_load(s->model, &opt, &err);
    if (!m) {
        cli_lib_error("model", &err);
        return CLI_FAIL;
    }
    samc_model_get_info(m, &s->info);
    if (cli_check_family("segment", s->model, &s->info, SAMC_FAMILY_SAM2) != 0) goto done;
    if (s->mask_input) {
        int ls = s->info.image_size / 4;
        mask_in = malloc((size_t)ls * ls * sizeof *mask_in);
        if (!mask_in) {
            cli_error("--mask-input", "out of memory for a %dx%d mask", ls, ls);
            goto done;
        }
        if (samc_load_mask_input(s->mask_input, ls, mask_in, &err) != 0) {
            cli_lib_error("--mask-input", &err);
            goto done;
        }
    }
    if (!(enc = samc_image_new(m, &err)) ||
        samc_image_encode(m, enc, img->rgb, img->w, img->h, &err) != 0) {
        cli_lib_error("encode", &err);
        goto done;
    }
    int n_prompts = s->n_boxes > 0 ? s->n_boxes : 1;
    pts = malloc((size_t)(s->n_points + 1) * 2 * sizeof *pts);
    labels = malloc((size_t)(s->n_points + 1) * sizeof *labels);
    prompts = calloc((size_t)n_prompts, sizeof *prompts);
    if (!pts || !labels || !prompts) {
        cli_error("segment", "out of memory for %d prompts", n_prompts);
        goto done;
    }
    for (int i = 0; i < s->n_points; i++) {
        pts[2 * i] = s->points[i].x;
        pts[2 * i + 1] = s->points[i].y;
        labels[i] = s->points[i].label;
    }
    for (int b = 0; b < n_prompts; b++) {
        prompts[b] = (samc_prompt){ .points = s->n_points ? pts : NULL,
                                    .labels = s->n_points ? labels : NULL,
                                    .n_points = s->n_points,
                                    .box = s->n_boxes ? s->boxes[b] : NULL,
                                    .mask_input = mask_in };
    }
    samc_predict_options po = { .multimask = s->multimask, .want_masks = 1 };
    if (samc_predict(m, enc, prompts, n_prompts, &po, out, &err) != 0) {
        cli_lib_error("predict", &err);
        goto done;
    }
    samc_model_get_timings(m, &s->timings);
    samc_model_get_info(m, &s->info);
    rc = CLI_OK;
done:
    free(prompts);
    free(labels);
    free(pts);
    free(mask_in);
    if (enc) samc_image_free(enc);
    samc_model_free(m);
    return rc;
}

int cmd_segment(int argc, char **argv) {
    segment_args s;
    memset(&s, 0, sizeof s);
    /* Every argument is at most one point or box: argc bounds both arrays. */
    s.points = calloc((size_t)argc, sizeof *s.points);
    s.boxes = calloc((size_t)argc, sizeof *s.boxes);
    if (!s.points || !s.boxes) {
        free(s.points);
        free(s.boxes);
        cli_error("segment", "out of memory");
        return CLI_FAIL;
    }
    image_rgb img = { 0 };
    samc_masks out = { 0 };
    int rc = parse_args(argc, argv, &s);
    if (rc != 0) {
        rc = rc > 0 ? CLI_OK : CLI_USAGE;
        goto done;
    }
    rc = CLI_FAIL;
    char why[512];
    if (image_load_rgb(s.image, &img, why, sizeof why) != 0) {
        cli_error(s.image, "%s", why);
        goto done;
    }
    /* prompts inside the decoded image, as samc_predict requires, said before any load */
    if (cli_check_inside(s.points, s.n_points, (const float (*)[4])s.boxes, s.n_boxes, img.w, img.h) != 0) goto done;
    if (!s.out) cli_default_name(s.image, "_mask", s.default_out, sizeof s.default_out);
    if (cli_check_writable("--out", s.out ? s.out : s.default_out) != 0) goto done;
    if (s.save_lowres && cli_check_writable("--save-lowres", s.save_lowres) != 0) goto done;
    double t0 = cli_now_ms();
    if (run_model(&s, &img, &out) != 0) goto done;
    s.total_ms = cli_now_ms() - t0;
    rc = segment_write_outputs(&s, &out);
done:
    samc_masks_free(&out);
    image_free(&img);
    free(s.points);
    free(s.boxes);
    return rc;
}
