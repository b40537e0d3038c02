/* tools/cmd_find.c: `samc find`: every instance of a concept in one image (SAM3).
 *
 * What the official Sam3Processor does: set_image() once, then per text
 * set_text_prompt() and add_geometric_prompt() for the exemplar boxes, and its
 * post-processing (score = sigmoid(logit) * sigmoid(presence), kept when strictly above
 * the threshold, in query order, boxes in pixels, masks at the image's size). The image
 * is encoded once for every --text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli_util.h"
#include "tools/commands.h"
#include "tools/find_report.h"
#include "util/image_io.h"
#include "model/samc.h"

void cmd_find_help(FILE *f) {
    fprintf(f,
"usage: samc find IMAGE --model SAM3.safetensors --text PHRASE [--text PHRASE]...\n"
"                 [--box X0,Y0,X1,Y1[,L]]... [--point X,Y[,L]]... [options]\n"
"\n"
"Finds every instance of a concept in IMAGE with SAM3 (promptable concept segmentation):\n"
"a short noun phrase (\"roof\", \"yellow school bus\") and / or example boxes go in; each\n"
"matching object comes out with a score, a box and a mask. Results are the official\n"
"Sam3Processor's: the image is stretched to the model's square input (1008 px), each of\n"
"the model's queries (200) proposes one object, and\n"
"  score = sigmoid(query logit) x sigmoid(presence logit)\n"
"where the presence logit says whether the concept is in the image at all. A query is\n"
"kept when its score is strictly greater than --threshold; kept instances stay in query\n"
"order (no sorting, no non-maximum suppression), boxes are in image pixels (x0, y0, x1,\n"
"y1, not clamped), masks are at the image's size. Finding nothing is not an error.\n"
"\n"
"prompts (at least one --text or --box):\n"
"  --text PHRASE        what to find; English noun phrases work best. Repeat it to search\n"
"                       several concepts on one encoding of the image (each its own\n"
"                       results). At most 32 tokens are read, as the official tokenizer\n"
"                       does (a notice says when a phrase is cut); text must be UTF-8 and\n"
"                       hold a letter or digit.\n"
"  --box X0,Y0,X1,Y1[,L]  an exemplar in image pixels: L = 1 (default) \"objects like this\",\n"
"                       L = 0 \"not like this\". Boxes are added to every --text; without\n"
"                       --text they are the whole prompt (the official visual-only prompt,\n"
"                       which runs the text encoder on the dummy word \"visual\").\n"
"  --point X,Y[,L]      a point exemplar (the geometry encoder's point branch, which the\n"
"                       official processor has no call for); at most 32 boxes + points\n"
"\n"
"selection:\n"
"  --threshold T        keep scores > T, in [-1, 1] (default 0.5, the processor's; -1\n"
"                       keeps every query)\n"
"  --max-detections N   at most N instances per text, the highest scores (default 0: all)\n"
"\n"
"output:\n"
"  --out DIR            folder, created if missing (default <image name>_find, or none\n"
"                       with --json): DIR/instances.json (image, texts and per instance\n"
"                       text, query, score, box, area in pixels, and the mask as\n"
"                       \"segmentation\": column-major run lengths starting with 0s, as\n"
"                       samc everything writes them), DIR/t<i>_k<j>_q<q>.png (the mask of\n"
"                       kept instance j of text i, query q: 8-bit, 0 or 255) and\n"
"                       DIR/overlay.png (the masks in colour, labelled text and score)\n"
"  --json               print one JSON document {\"instances\": [...], ...} on stdout (all\n"
"                       texts together, each instance naming its text); messages go to\n"
"                       stderr\n"
"  --save-raw FILE      the raw outputs of every query (safetensors, float32):\n"
"                       out.pred_logits [1,Q,1], out.pred_boxes [1,Q,4] (normalised cx,\n"
"                       cy, w, h), out.pred_masks [1,Q,h,w] (low-res mask logits),\n"
"                       out.presence_logit_dec [1,1]; with several --text prefixed t0.,\n"
"                       t1., ...\n"
"\n"
"options:\n"
"  --model FILE         SAM3 weights (samc convert sam3.pt, samc synth --config sam3)\n"
"  --vocab FILE         the CLIP vocabulary bpe_simple_vocab_16e6.txt.gz, needed for --text\n"
"                       when the model file has none inside (samc info tells; also\n"
"                       SAMC_VOCAB)\n"
"  --threads N          CPU threads (default: one per core)\n"
"  --device D           cpu (default), cuda, or auto (SAMC_DEVICE)\n"
"  --precision P        fp32 (default), bf16 or fp16 on CUDA (SAMC_PRECISION): the\n"
"                       linear weights in 16 bits (a 4 GB card holds the model); prefer\n"
"                       fp16: closer to fp32 for SAM3 (kernels/cuda/NOTES.md). bf16 on a\n"
"                       CPU with Intel AMX (Xeon 4th gen+): the ViT, neck and fusion\n"
"                       encoder's products on its tiles: 3.3x faster image encoding\n"
"  --backend B          auto (default), ref, fast, cuda (SAMC_BACKEND)\n"
"  --verbose            trace each stage with its time on stderr (also SAMC_DEBUG=1)\n"
"\n"
"examples:\n"
"  samc find aerial.jpg --model sam3.safetensors --text roof --out roofs\n"
"  # two concepts on one encoding, fewer false finds, JSON for a script\n"
"  samc find street.jpg --model sam3.safetensors --text car --text \"traffic light\" \\\n"
"      --threshold 0.6 --json\n"
"  # \"more like this one, not like that one\"\n"
"  samc find shelf.jpg --model sam3.safetensors --text bottle \\\n"
"      --box 120,40,180,200 --box 400,50,470,210,0\n"
"  # exemplar only, no text\n"
"  samc find cells.png --model sam3.safetensors --box 31,40,58,66\n");
}

static int parse_prompt_flag(cli_args *a, const char *arg, find_args *f) {
    char why[300];
    const char *v = cli_value(a);
    if (!v) return -1;
    if (!strcmp(arg, "--text")) {
        if (!*v) {
            cli_error("--text", "'' is empty: give a noun phrase such as \"roof\", or only --box exemplars for a "
                      "visual prompt");
            return -1;
        }
        f->texts[f->n_texts++] = v;
        return 0;
    }
    if (f->n_boxes + f->n_points >= SAMC_CONCEPT_MAX_GEOMETRY) {
        cli_error(arg, "more than %d boxes and points in all", SAMC_CONCEPT_MAX_GEOMETRY);
        return -1;
    }
    if (!strcmp(arg, "--box")) {
        if (cli_parse_box_label(v, f->boxes[f->n_boxes], &f->box_labels[f->n_boxes], why, sizeof why) != 0) {
            cli_error("--box", "%s", why);
            return -1;
        }
        f->n_boxes++;
    } else {
        if (cli_parse_point(v, &f->points[f->n_points], why, sizeof why) != 0) {
            cli_error("--point", "%s", why);
            return -1;
        }
        f->n_points++;
    }
    return 0;
}

static int parse_args(int argc, char **argv, find_args *f) {
    cli_args a;
    cli_args_init(&a, argc, argv, "find");
    f->threshold = 0.5;
    if (cli_compute_init(&f->compute) != 0) return -1;
    f->verbose = cli_debug_env();
    const char *arg;
    while ((arg = cli_next(&a)) != NULL) {
        int rc = 0;
        long n;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_find_help(stdout);
            return 1;
        } else if (!strcmp(arg, "--text") || !strcmp(arg, "--box") || !strcmp(arg, "--point")) {
            rc = parse_prompt_flag(&a, arg, f);
        } else if (!strcmp(arg, "--model")) {
            rc = (f->model = cli_value(&a)) ? 0 : -1;
        } else if (!strcmp(arg, "--out") || !strcmp(arg, "-o")) {
            rc = (f->out = cli_value(&a)) ? 0 : -1;
        } else if (!strcmp(arg, "--vocab")) {
            rc = (f->vocab = cli_value(&a)) ? 0 : -1;
        } else if (!strcmp(arg, "--save-raw")) {
            rc = (f->save_raw = cli_value(&a)) ? 0 : -1;
        } else if (!strcmp(arg, "--threshold")) {
            rc = cli_value_double(&a, -1.0, 1.0, 0, &f->threshold);
        } else if (!strcmp(arg, "--max-detections")) {
            rc = cli_value_long(&a, 0, 1000000, &f->max_detections);
        } else if (!strcmp(arg, "--threads")) {
            rc = cli_value_long(&a, 1, 4096, &n);
            f->threads = (int)n;
        } else if ((rc = cli_compute_flag(&a, arg, &f->compute)) != 0) {
            rc = rc < 0 ? -1 : 0;
        } else if (!strcmp(arg, "--json") || !strcmp(arg, "--verbose") || !strcmp(arg, "-v")) {
            rc = cli_no_value(&a);
            if (!strcmp(arg, "--json")) f->json = 1;
            else f->verbose = 1;
        } else if (!cli_is_flag(arg) && !f->image) {
            f->image = arg;
        } else {
            return cli_refuse(&a, arg);
        }
        if (rc != 0) return -1;
    }
    if (!f->image) return cli_missing(&a, "IMAGE");
    if (!f->model) return cli_missing(&a, "--model FILE");
    if (f->n_texts == 0 && f->n_boxes == 0 && f->n_points > 0) {
        cli_error("--point", "point exemplars need a --text or a --box beside them (the official visual-only "
                  "prompt is a box)");
        return -1;
    }
    if (f->n_texts == 0 && f->n_boxes == 0) {
        cli_error("find", "no prompt: give --text PHRASE (what to find) and / or --box X0,Y0,X1,Y1 "
                  "(an example of it) (see samc find --help)");
        return -1;
    }
    return 0;
}

/* The vocabulary file: --vocab, else SAMC_VOCAB; NULL when neither. It must be readable
 * (the model reads it at load only when its file has no vocabulary inside). */
static const char *vocab_path(const find_args *f, int *bad) {
    const char *v = f->vocab ? f->vocab : getenv("SAMC_VOCAB");
    *bad = 0;
    if (!v || !*v) return NULL;
    if (access(v, R_OK) != 0) {
        cli_error(f->vocab ? "--vocab" : "SAMC_VOCAB", "cannot read '%s': %s (the CLIP vocabulary "
                  "bpe_simple_vocab_16e6.txt.gz)", v, strerror(errno));
        *bad = 1;
    }
    return v;
}

static samc_model *load_model(find_args *f, samc_error *err) {
    samc_options opt = { .n_threads = f->threads };
    int bad = 0;
    opt.vocab_path = vocab_path(f, &bad);
    if (bad || cli_compute_resolve(&f->compute, &opt) != 0) return NULL;
    if (f->verbose) opt.log = cli_log_stderr;
    if (cli_check_weights_file(f->model) != 0) return NULL;
    double t0 = cli_now_ms();
    samc_model *m = samc_model_load(f->model, &opt, err);
    size_t len = strlen(f->model);
    if (!m && err->status == SAMC_ERR_MODEL && len > 3 && !strcmp(f->model + len - 3, ".pt")) {
        cli_error("model", "%.300s (an official sam3.pt is read once converted: samc convert %s -o "
                  "sam3.safetensors --vocab bpe_simple_vocab_16e6.txt.gz)", err->msg, f->model);
        return NULL;
    }
    if (!m) {   /* a vocabulary file the model could not read is the --vocab's fault */
        int vocab = opt.vocab_path && strstr(err->msg, opt.vocab_path);
        cli_lib_error(vocab ? (f->vocab ? "--vocab" : "SAMC_VOCAB") : "model", err);
        return NULL;
    }
    f->load_ms = cli_now_ms() - t0;
    samc_model_get_info(m, &f->info);
    if (cli_check_family("find", f->model, &f->info, SAMC_FAMILY_SAM3) != 0) {
        samc_model_free(m);
        return NULL;
    }
    return m;
}

/* The image encoded once, then one search per text (or one exemplar-only search). */
static int run_search(find_args *f, const image_rgb *img) {
    samc_error err = { 0 };
    samc_model *m = load_model(f, &err);
    if (!m) return CLI_FAIL;
    int rc = CLI_FAIL;
    samc_image *enc = NULL;
    float *pts = malloc(sizeof *pts * 2 * (size_t)(f->n_points + 1));
    int *pt_labels = malloc(sizeof *pt_labels * (size_t)(f->n_points + 1));
    int32_t (*ids)[SAMC_CONCEPT_CONTEXT] = calloc((size_t)f->n_texts + 1, sizeof *ids);
    if (!pts || !pt_labels || !ids) {
        cli_error("find", "out of memory");
        goto done;
    }
    if (cli_check_texts(f->model, m, f->texts, f->n_texts, ids) != 0) {
        rc = CLI_USAGE;
        goto done;
    }
    double t0 = cli_now_ms();
    if (!(enc = samc_image_new(m, &err)) || samc_image_encode(m, enc, img->rgb, img->w, img->h, &err) != 0) {
        cli_lib_error("encode", &err);
        goto done;
    }
    f->encode_ms = cli_now_ms() - t0;
    for (int i = 0; i < f->n_points; i++) {
        pts[2 * i] = f->points[i].x;
        pts[2 * i + 1] = f->points[i].y;
        pt_labels[i] = f->points[i].label;
    }
    samc_find_options fo = { .threshold = (float)f->threshold, .max_detections = (int)f->max_detections,
                             .want_masks = 1 };
    t0 = cli_now_ms();
    for (int s = 0; s < f->n_sets; s++) {
        samc_concept_prompt p = { .token_ids = f->n_texts ? ids[s] : NULL,
                                  .boxes = f->n_boxes ? &f->boxes[0][0] : NULL, .box_labels = f->box_labels,
                                  .n_boxes = f->n_boxes, .points = f->n_points ? pts : NULL,
                                  .point_labels = pt_labels, .n_points = f->n_points };
        if (samc_find(m, enc, &p, &fo, &f->sets[s], &err) != 0) {
            cli_lib_error("find", &err);
            goto done;
        }
    }
    f->find_ms = cli_now_ms() - t0;
    samc_model_get_info(m, &f->info);
    rc = CLI_OK;
done:
    free(pts);
    free(pt_labels);
    free(ids);
    if (enc) samc_image_free(enc);
    samc_model_free(m);
    return rc;
}

static int alloc_args(find_args *f, int argc) {
    /* every argument is at most one text, box or point: argc bounds the arrays */
    size_t n = (size_t)argc + 1;
    f->texts = calloc(n, sizeof *f->texts);
    f->boxes = calloc(n, sizeof *f->boxes);
    f->box_labels = calloc(n, sizeof *f->box_labels);
    f->points = calloc(n, sizeof *f->points);
    f->sets = calloc(n, sizeof *f->sets);
    return f->texts && f->boxes && f->box_labels && f->points && f->sets ? 0 : -1;
}

static void free_args(find_args *f) {
    for (int s = 0; f->sets && s < f->n_sets; s++) samc_instances_free(&f->sets[s]);
    free(f->texts);
    free(f->boxes);
    free(f->box_labels);
    free(f->points);
    free(f->sets);
}

int cmd_find(int argc, char **argv) {
    find_args f;
    memset(&f, 0, sizeof f);
    image_rgb img = { 0 };
    int rc = CLI_FAIL;
    if (alloc_args(&f, argc) != 0) {
        cli_error("find", "out of memory");
        goto done;
    }
    rc = parse_args(argc, argv, &f);
    if (rc != 0) {
        rc = rc > 0 ? CLI_OK : CLI_USAGE;
        goto done;
    }
    rc = CLI_FAIL;
    f.n_sets = f.n_texts ? f.n_texts : 1;
    char why[512];
    double t0 = cli_now_ms();
    if (image_load_rgb(f.image, &img, why, sizeof why) != 0) {
        cli_error(f.image, "%s", why);
        goto done;
    }
    /* exemplars inside the decoded image, as samc_find requires, said before any load */
    if (cli_check_inside(f.points, f.n_points, (const float (*)[4])f.boxes, f.n_boxes, img.w, img.h) != 0) goto done;
    if (!f.out && !f.json) cli_default_name(f.image, "_find", f.default_out, sizeof f.default_out);
    f.dir = f.out ? f.out : f.json ? NULL : f.default_out;
    if (f.dir && cli_prepare_out_dir("--out", f.dir) != 0) goto done;
    if (f.save_raw && cli_check_writable("--save-raw", f.save_raw) != 0) goto done;
    if (run_search(&f, &img) != CLI_OK) goto done;
    f.total_ms = cli_now_ms() - t0;
    rc = find_write_outputs(&f, &img);
done:
    free_args(&f);
    image_free(&img);
    return rc;
}
