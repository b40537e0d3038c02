/* tools/cmd_tokenize.c: `samc tokenize`: SAM3 text prompts to the token ids the text
 * encoder sees (model/sam3/tokenizer.h), for checking prompts and the tokenizer. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"
#include "model/sam3/tokenizer.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

void cmd_tokenize_help(FILE *f) {
    fprintf(f,
"usage: samc tokenize [--vocab FILE | --model FILE] [--context N] [--pieces] [--json] [--] TEXT...\n"
"\n"
"Tokenizes each TEXT as SAM3 does before its text encoder (the CLIP BPE of the official\n"
"tokenizer_ve.py: clean, lower-case, split, byte-pair merges) and prints one line of ids\n"
"per TEXT: <start_of_text>=49406, the tokens, <end_of_text>=49407. The model sees them\n"
"zero-padded to the context length (32); id 0 is masked as padding, and so is a bare\n"
"\"!\" token, whose id is also 0. Longer prompts are cut to 32 ids, the last one 49407\n"
"(a notice says so on stderr).\n"
"\n"
"The vocabulary (the BPE merges) comes from, in this order:\n"
"  --model FILE   a SAM3 safetensors file whose metadata has tokenizer.bpe_merges\n"
"  --vocab FILE   the official bpe_simple_vocab_16e6.txt.gz (also plain text)\n"
"  SAMC_VOCAB     environment variable naming that file\n"
"\n"
"  --context N    context length (default 32, as SAM3)\n"
"  --pieces       also print how the text was cleaned and split, and each piece's tokens\n"
"  --json         one JSON document: per TEXT the cleaned text, the ids and pad mask at\n"
"                 the context length, the untruncated count, flags, pieces\n"
"  --             every later argument is TEXT, even if it starts with '-'\n"
"\n"
"Text is UTF-8 (invalid bytes count as U+FFFD, with a notice); at most %d bytes of each\n"
"TEXT are read. ftfy's repairs are covered only in part (model/sam3/tokenizer.h).\n"
"\n"
"examples:\n"
"  samc tokenize --vocab bpe_simple_vocab_16e6.txt.gz \"a red car\" truck\n"
"    49406 320 736 1615 49407\n"
"    49406 4629 49407\n"
"  SAMC_VOCAB=bpe_simple_vocab_16e6.txt.gz samc tokenize --pieces \"Don't stop!\"\n"
"  samc tokenize --model sam3.safetensors --json \"every roof\"\n", SAM3_TOKENIZER_MAX_INPUT);
}

typedef struct {
    const char *vocab, *model;
    int context, pieces, json;
    const char *texts[256];
    int n_texts;
} tokenize_args;

/* The tokenizer from the model's metadata, else from --vocab / SAMC_VOCAB. */
static sam3_tokenizer *open_tokenizer(const tokenize_args *ta, const char **source) {
    samc_error err = { 0 };
    const char *vocab = ta->vocab ? ta->vocab : getenv("SAMC_VOCAB");
    if (vocab && !*vocab) vocab = NULL;
    if (ta->model) {
        st_file f;
        char msg[SAMC_ERRMSG];
        if (st_open(ta->model, &f, msg) != 0) {
            cli_error("--model", "%s", msg);
            return NULL;
        }
        const char *merges = st_meta_get(&f, SAM3_MERGES_META_KEY);
        sam3_tokenizer *t = merges ? sam3_tokenizer_load_merges(merges, strlen(merges), &err) : NULL;
        st_close(&f);
        if (merges && !t) {
            cli_error("--model", "%s: metadata %s", ta->model, err.msg);
            return NULL;
        }
        if (t) { *source = ta->model; return t; }
        if (!vocab) {
            cli_error("--model", "%s has no %s metadata: pass --vocab bpe_simple_vocab_16e6.txt.gz "
                      "(or set SAMC_VOCAB)", ta->model, SAM3_MERGES_META_KEY);
            return NULL;
        }
    }
    if (!vocab) {
        cli_error("tokenize", "no vocabulary: pass --vocab bpe_simple_vocab_16e6.txt.gz (the official CLIP "
                  "merges file), --model FILE with %s metadata, or set SAMC_VOCAB", SAM3_MERGES_META_KEY);
        return NULL;
    }
    sam3_tokenizer *t = sam3_tokenizer_load_gz(vocab, &err);
    if (!t) cli_lib_error(ta->vocab ? "--vocab" : "SAMC_VOCAB", &err);
    *source = vocab;
    return t;
}

static int parse_args(int argc, char **argv, tokenize_args *ta) {
    cli_args a;
    cli_args_init(&a, argc, argv, "tokenize");
    const char *arg;
    int only_text = 0;
    ta->context = SAM3_CONTEXT_LENGTH;
    while ((arg = cli_next(&a)) != NULL) {
        long v;
        if (only_text || !cli_is_flag(arg)) {
            if (ta->n_texts == (int)(sizeof ta->texts / sizeof ta->texts[0])) {
                cli_error("tokenize", "more than %d TEXT arguments", ta->n_texts);
                return -1;
            }
            ta->texts[ta->n_texts++] = argv[a.i];
        } else if (!strcmp(arg, "--")) {
            only_text = 1;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cmd_tokenize_help(stdout);
            return 1;
        } else if (!strcmp(arg, "--vocab")) {
            if (!(ta->vocab = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--model")) {
            if (!(ta->model = cli_value(&a))) return -1;
        } else if (!strcmp(arg, "--context")) {
            if (cli_value_long(&a, 1, 4096, &v) != 0) return -1;
            ta->context = (int)v;
        } else if (!strcmp(arg, "--pieces") || !strcmp(arg, "--json")) {
            if (cli_no_value(&a) != 0) return -1;
            if (!strcmp(arg, "--json")) ta->json = 1;
            else ta->pieces = 1;
        } else {
            cli_unknown_flag(&a);
            return -1;
        }
    }
    if (ta->n_texts == 0) {
        cli_error("tokenize", "no TEXT to tokenize (see samc tokenize --help)");
        return -1;
    }
    return 0;
}

/* Collects the pieces of one text, for --pieces (printed) or --json (an array). */
typedef struct {
    const sam3_tokenizer *t;
    cJSON *array;
} piece_ctx;

static int on_piece(void *vctx, const char *piece, size_t len, const int32_t *ids, int n_ids) {
    piece_ctx *c = vctx;
    if (!c->array) {
        printf("  %-20.*s ->", (int)len, piece);
        for (int i = 0; i < n_ids; i++) printf(" %s(%d)", sam3_tokenizer_token(c->t, ids[i]), (int)ids[i]);
        printf("\n");
        return 0;
    }
    cJSON *p = cJSON_CreateObject(), *tok = cJSON_CreateArray(), *idl = cJSON_CreateArray();
    char *s = strndup(piece, len);
    cJSON_AddStringToObject(p, "piece", s ? s : "");
    free(s);
    for (int i = 0; i < n_ids; i++) {
        cJSON_AddItemToArray(tok, cJSON_CreateString(sam3_tokenizer_token(c->t, ids[i])));
        cJSON_AddItemToArray(idl, cJSON_CreateNumber(ids[i]));
    }
    cJSON_AddItemToObject(p, "tokens", tok);
    cJSON_AddItemToObject(p, "ids", idl);
    cJSON_AddItemToArray(c->array, p);
    return 0;
}

static void notices(const char *text, unsigned flags, int n_tokens, int context) {
    if (flags & SAM3_TOK_TRUNCATED)
        fprintf(stderr, "samc: tokenize: '%.40s': %d tokens, cut to the context length %d (last id 49407)\n",
                text, n_tokens, context);
    if (flags & SAM3_TOK_INPUT_CUT)
        fprintf(stderr, "samc: tokenize: '%.40s...': only the first %d bytes were read\n", text, SAM3_TOKENIZER_MAX_INPUT);
    if (flags & SAM3_TOK_BAD_UTF8)
        fprintf(stderr, "samc: tokenize: '%.40s': invalid UTF-8 bytes read as U+FFFD\n", text);
}

/* One TEXT as a JSON object. */
static cJSON *text_json(sam3_tokenizer *t, const char *text, const int32_t *ids, int context, int n_tokens,
                        unsigned flags, const char *cleaned) {
    cJSON *o = cJSON_CreateObject(), *idl = cJSON_CreateArray(), *mask = cJSON_CreateArray();
    int32_t *m = malloc((size_t)context * sizeof *m);
    if (m) sam3_pad_mask(ids, context, m);
    for (int i = 0; i < context; i++) {
        cJSON_AddItemToArray(idl, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(mask, cJSON_CreateNumber(m ? m[i] : ids[i] == 0));
    }
    free(m);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "cleaned", cleaned);
    cJSON_AddItemToObject(o, "ids", idl);
    cJSON_AddItemToObject(o, "pad_mask", mask);
    cJSON_AddNumberToObject(o, "n_tokens", n_tokens);
    cJSON_AddBoolToObject(o, "truncated", (flags & SAM3_TOK_TRUNCATED) != 0);
    cJSON_AddBoolToObject(o, "input_cut", (flags & SAM3_TOK_INPUT_CUT) != 0);
    cJSON_AddBoolToObject(o, "invalid_utf8", (flags & SAM3_TOK_BAD_UTF8) != 0);
    piece_ctx pc = { t, cJSON_CreateArray() };
    sam3_tokenize_pieces(t, text, strlen(text), on_piece, &pc, NULL, NULL);
    cJSON_AddItemToObject(o, "pieces", pc.array);
    return o;
}

int cmd_tokenize(int argc, char **argv) {
    tokenize_args ta = { 0 };
    int rc = parse_args(argc, argv, &ta);
    if (rc) return rc > 0 ? CLI_OK : CLI_USAGE;
    const char *source = NULL;
    sam3_tokenizer *t = open_tokenizer(&ta, &source);
    if (!t) return CLI_FAIL;
    int32_t *ids = malloc((size_t)ta.context * sizeof *ids);
    /* the cleaned text is at most 3 bytes per input byte (a bad byte becomes U+FFFD) */
    size_t clean_size = 3 * SAM3_TOKENIZER_MAX_INPUT + 1;
    char *cleaned = malloc(clean_size);
    cJSON *doc = ta.json ? cJSON_CreateObject() : NULL, *list = ta.json ? cJSON_CreateArray() : NULL;
    rc = ids && cleaned ? CLI_OK : CLI_FAIL;
    if (rc) cli_error("tokenize", "out of memory");
    for (int k = 0; k < ta.n_texts && rc == CLI_OK; k++) {
        const char *text = ta.texts[k];
        samc_error err = { 0 };
        int n_tokens;
        unsigned flags;
        if (sam3_tokenize(t, text, strlen(text), ta.context, ids, &n_tokens, &flags, &err) != 0 ||
            sam3_tokenizer_clean(t, text, strlen(text), cleaned, clean_size, NULL, &err) != 0) {
            cli_lib_error("tokenize", &err);
            rc = CLI_FAIL;
            break;
        }
        notices(text, flags, n_tokens, ta.context);
        if (ta.json) {
            cJSON_AddItemToArray(list, text_json(t, text, ids, ta.context, n_tokens, flags, cleaned));
            continue;
        }
        int shown = n_tokens < ta.context ? n_tokens : ta.context;
        for (int i = 0; i < shown; i++) printf("%s%d", i ? " " : "", (int)ids[i]);
        printf("\n");
        if (ta.pieces) {
            printf("  cleaned: \"%s\"\n", cleaned);
            piece_ctx pc = { t, NULL };
            sam3_tokenize_pieces(t, text, strlen(text), on_piece, &pc, NULL, NULL);
        }
    }
    if (ta.json && rc == CLI_OK) {
        cJSON_AddStringToObject(doc, "vocab", source);
        cJSON_AddNumberToObject(doc, "context_length", ta.context);
        cJSON_AddItemToObject(doc, "prompts", list);
        list = NULL;
        char *s = cJSON_Print(doc);
        if (s) printf("%s\n", s);
        free(s);
    }
    cJSON_Delete(list);
    cJSON_Delete(doc);
    free(ids);
    free(cleaned);
    sam3_tokenizer_free(t);
    return rc;
}
