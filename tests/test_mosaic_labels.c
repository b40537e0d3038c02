/* tests/test_mosaic_labels.c: pipelines/mosaic/labels.c on constructed label images.
 *
 * Union-find (smaller root wins in any union order), the three border-merge strategies on
 * hand-built borders (ties, N:1 splits, thresholds) and on a 3x3-tile label mosaic, the
 * fragment cleanup on hand-drawn images and against a flood-fill implementation on
 * random ones, and the compaction to global ids. */
#include <stdint.h>
#include <time.h>

#include "pipelines/mosaic/labels.h"
#include "tests/test.h"

/* ---- helpers ---------------------------------------------------------------------- */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s; }
static uint32_t rng_u32(void) {   /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}
static int rng_below(int n) { return (int)(rng_u32() % (uint32_t)n); }

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* A label image drawn as text: '.' is 0, '1'..'9' are 1..9. */
static uint32_t *img_from(const char *const *rows, int h, int *w_out) {
    int w = (int)strlen(rows[0]);
    uint32_t *img = malloc((size_t)w * h * sizeof *img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) img[y * w + x] = rows[y][x] == '.' ? 0 : (uint32_t)(rows[y][x] - '0');
    *w_out = w;
    return img;
}

/* 1 if img equals the drawing, else prints the first difference. */
static int img_equals(const uint32_t *img, const char *const *rows, int h) {
    int w = (int)strlen(rows[0]);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t want = rows[y][x] == '.' ? 0 : (uint32_t)(rows[y][x] - '0');
            if (img[y * w + x] != want) {
                fprintf(stderr, "  pixel (x %d, y %d): got %u, want %u\n", x, y, img[y * w + x], want);
                return 0;
            }
        }
    return 1;
}

#define ROWS(...) ((const char *const[]){ __VA_ARGS__ })
#define NROWS(...) ((int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)))

/* ---- union-find ------------------------------------------------------------------- */

static void test_uf_smaller_root(void) {
    mosaic_uf uf;
    samc_error err = {0};
    CHECK(mosaic_uf_init(&uf, 10, &err) == 0);
    for (uint32_t i = 0; i < 10; i++) CHECK(mosaic_uf_find(&uf, i) == i);
    CHECK(mosaic_uf_union(&uf, 7, 3) == 1);
    CHECK(mosaic_uf_find(&uf, 7) == 3);
    CHECK(mosaic_uf_union(&uf, 3, 7) == 0);
    CHECK(mosaic_uf_union(&uf, 9, 8) == 1);
    CHECK(mosaic_uf_union(&uf, 8, 7) == 1);   /* {3,7} + {8,9}: root 3 */
    CHECK(mosaic_uf_find(&uf, 9) == 3);
    CHECK(mosaic_uf_union(&uf, 9, 2) == 1);
    CHECK(mosaic_uf_find(&uf, 8) == 2 && mosaic_uf_find(&uf, 7) == 2 && mosaic_uf_find(&uf, 3) == 2);
    CHECK(mosaic_uf_find(&uf, 5) == 5);
    mosaic_uf_free(&uf);
    CHECK(uf.parent == NULL && uf.n == 0);

    /* random unions in several orders: the root is always the smallest id of the set */
    enum { N = 300, U = 200 };
    uint32_t ua[U], ub[U], set_min[N], roots[2][N];
    rng_seed(11);
    for (int i = 0; i < U; i++) { ua[i] = (uint32_t)rng_below(N); ub[i] = (uint32_t)rng_below(N); }
    for (int order = 0; order < 2; order++) {
        uint32_t ref[N];   /* slow reference: ref[i] = smallest id of i's set */
        for (int i = 0; i < N; i++) ref[i] = (uint32_t)i;
        CHECK(mosaic_uf_init(&uf, N, &err) == 0);
        for (int k = 0; k < U; k++) {
            int i = order ? U - 1 - k : k;
            uint32_t ra = ref[ua[i]], rb = ref[ub[i]], lo = ra < rb ? ra : rb;
            int apart = ra != rb;
            for (int j = 0; j < N; j++)
                if (ref[j] == ra || ref[j] == rb) ref[j] = lo;
            CHECK(mosaic_uf_union(&uf, ua[i], ub[i]) == apart);
        }
        for (int i = 0; i < N; i++) {
            roots[order][i] = mosaic_uf_find(&uf, (uint32_t)i);
            CHECKF(roots[order][i] == ref[i], "id %d: root %u, smallest of its set %u", i, roots[order][i], ref[i]);
        }
        if (order == 0) memcpy(set_min, ref, sizeof ref);
        mosaic_uf_free(&uf);
    }
    CHECK(memcmp(roots[0], roots[1], sizeof roots[0]) == 0);
    CHECK(memcmp(roots[0], set_min, sizeof set_min) == 0);
}

static void test_uf_grow(void) {
    mosaic_uf uf;
    samc_error err = {0};
    CHECK(mosaic_uf_init(&uf, 5, &err) == 0);
    CHECK(mosaic_uf_union(&uf, 4, 2) == 1);
    CHECK(mosaic_uf_grow(&uf, 3, &err) == 0 && uf.n == 5);   /* never shrinks */
    /* grow one id at a time well past the first capacity, then a big step */
    for (uint32_t n = 6; n <= 5000; n++) CHECK(mosaic_uf_grow(&uf, n, &err) == 0);
    CHECK(uf.n == 5000 && uf.cap >= 5000);
    CHECK(mosaic_uf_find(&uf, 4) == 2);
    CHECK(mosaic_uf_find(&uf, 4999) == 4999);
    CHECK(mosaic_uf_union(&uf, 4999, 4) == 1);
    CHECK(mosaic_uf_grow(&uf, 200000, &err) == 0);
    CHECK(mosaic_uf_find(&uf, 4999) == 2 && mosaic_uf_find(&uf, 199999) == 199999);
    CHECK(mosaic_uf_find(&uf, 3) == 3);
    mosaic_uf_free(&uf);
}

/* ---- merge at tile discontinuities ------------------------------------------------ */

static void test_merge_strategy_names(void) {
    mosaic_merge_strategy s = MOSAIC_MERGE_NONE;
    const mosaic_merge_strategy all[] = { MOSAIC_MERGE_BEST_MATCH, MOSAIC_MERGE_MUTUAL_BEST, MOSAIC_MERGE_MIN_CONTACT,
                                          MOSAIC_MERGE_NONE };
    for (int i = 0; i < 4; i++) {
        s = (mosaic_merge_strategy)99;
        CHECK(mosaic_merge_strategy_parse(mosaic_merge_strategy_name(all[i]), &s) == 0 && s == all[i]);
    }
    CHECK(strcmp(mosaic_merge_strategy_name(MOSAIC_MERGE_BEST_MATCH), "best_match") == 0);
    CHECK(strcmp(mosaic_merge_strategy_name(MOSAIC_MERGE_MUTUAL_BEST), "mutual_best") == 0);
    CHECK(strcmp(mosaic_merge_strategy_name(MOSAIC_MERGE_MIN_CONTACT), "min_contact") == 0);
    CHECK(strcmp(mosaic_merge_strategy_name(MOSAIC_MERGE_NONE), "none") == 0);
    s = MOSAIC_MERGE_MUTUAL_BEST;
    CHECK(mosaic_merge_strategy_parse("Best_Match", &s) == -1 && s == MOSAIC_MERGE_MUTUAL_BEST);
    CHECK(mosaic_merge_strategy_parse("", &s) == -1);
    CHECK(mosaic_merge_strategy_parse("best", &s) == -1);
    CHECK(mosaic_merge_strategy_parse(NULL, &s) == -1);
}

/* Runs one border through a fresh union-find of n_ids ids; roots[i] gets find(i). */
static int merge_one(const uint32_t *s1, const uint32_t *s2, int n, mosaic_merge_strategy st, int min_contact,
                     uint32_t n_ids, uint32_t *roots, mosaic_merge_stats *stats) {
    mosaic_uf uf;
    samc_error err = {0};
    if (mosaic_uf_init(&uf, n_ids, &err)) return -1;
    memset(stats, 0, sizeof *stats);
    int rc = mosaic_merge_boundary(s1, s2, n, st, min_contact, &uf, stats, &err);
    for (uint32_t i = 0; i < n_ids; i++) roots[i] = mosaic_uf_find(&uf, i);
    mosaic_uf_free(&uf);
    return rc;
}

static void test_merge_split_roof(void) {
    /* a roof cut by the border: two segments (1: 3 px, 2: 4 px) on side 1, whole (10) on
     * side 2 */
    const uint32_t s1[] = { 0, 1, 1, 1, 2, 2, 2, 2, 0 };
    const uint32_t s2[] = { 0, 10, 10, 10, 10, 10, 10, 10, 0 };
    int n = (int)(sizeof s1 / sizeof s1[0]);
    uint32_t r[16];
    mosaic_merge_stats st;

    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_BEST_MATCH, 0, 16, r, &st) == 0);
    CHECK(r[1] == 1 && r[2] == 1 && r[10] == 1);   /* all three, smallest id */
    CHECK(st.pairs_found == 2 && st.pairs_joined == 2);

    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_MUTUAL_BEST, 0, 16, r, &st) == 0);
    CHECK(r[2] == 2 && r[10] == 2 && r[1] == 1);   /* only 10's best, 2 */
    CHECK(st.pairs_found == 2 && st.pairs_joined == 1);

    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_MIN_CONTACT, 4, 16, r, &st) == 0);
    CHECK(r[2] == 2 && r[10] == 2 && r[1] == 1);
    CHECK(st.pairs_found == 2 && st.pairs_joined == 1);
    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_MIN_CONTACT, 3, 16, r, &st) == 0);
    CHECK(r[1] == 1 && r[2] == 1 && r[10] == 1);
    CHECK(st.pairs_joined == 2);
    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_MIN_CONTACT, 5, 16, r, &st) == 0);
    CHECK(r[1] == 1 && r[2] == 2 && r[10] == 10);
    CHECK(st.pairs_found == 2 && st.pairs_joined == 0);

    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_NONE, 0, 16, r, &st) == 0);
    CHECK(r[1] == 1 && r[2] == 2 && r[10] == 10);
    CHECK(st.pairs_found == 2 && st.pairs_joined == 0);

    /* the same roof split on side 2 instead: best_match joins from that side too */
    CHECK(merge_one(s2, s1, n, MOSAIC_MERGE_BEST_MATCH, 0, 16, r, &st) == 0);
    CHECK(r[1] == 1 && r[2] == 1 && r[10] == 1);
    CHECK(merge_one(s2, s1, n, MOSAIC_MERGE_MUTUAL_BEST, 0, 16, r, &st) == 0);
    CHECK(r[1] == 1 && r[2] == 2 && r[10] == 2);
}

static void test_merge_ties(void) {
    /* side-1 segment 1 touches 11 (first along the border) and 10 with 3 px each: its best
     * is the smaller label 10. Side-2 segment 20 touches 5 (first) and 4 with 2 px each:
     * its best is 4. */
    const uint32_t s1[] = { 1, 1, 1, 1, 1, 1, 0, 5, 5, 4, 4 };
    const uint32_t s2[] = { 11, 11, 11, 10, 10, 10, 0, 20, 20, 20, 20 };
    int n = (int)(sizeof s1 / sizeof s1[0]);
    uint32_t r[32];
    mosaic_merge_stats st;

    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_MUTUAL_BEST, 0, 32, r, &st) == 0);
    CHECK(r[10] == 1 && r[11] == 11);
    CHECK(r[20] == 4 && r[5] == 5);
    CHECK(st.pairs_found == 4 && st.pairs_joined == 2);

    /* best_match: 11 and 5 have only one partner each, so everything joins */
    CHECK(merge_one(s1, s2, n, MOSAIC_MERGE_BEST_MATCH, 0, 32, r, &st) == 0);
    CHECK(r[10] == 1 && r[11] == 1 && r[20] == 4 && r[5] == 4);
    CHECK(st.pairs_joined == 4);

    /* ties broken the other way by a larger count: 11 gets 4 px */
    const uint32_t t1[] = { 1, 1, 1, 1, 1, 1, 1 };
    const uint32_t t2[] = { 11, 11, 11, 11, 10, 10, 10 };
    CHECK(merge_one(t1, t2, 7, MOSAIC_MERGE_MUTUAL_BEST, 0, 32, r, &st) == 0);
    CHECK(r[11] == 1 && r[10] == 10);
}

static void test_merge_ignored(void) {
    /* background on either side and equal labels are no contact */
    const uint32_t s1[] = { 0, 0, 3, 3, 3, 0, 5, 5 };
    const uint32_t s2[] = { 7, 7, 0, 3, 3, 0, 6, 6 };
    uint32_t r[8];
    mosaic_merge_stats st;
    const mosaic_merge_strategy all[] = { MOSAIC_MERGE_BEST_MATCH, MOSAIC_MERGE_MUTUAL_BEST, MOSAIC_MERGE_MIN_CONTACT };
    for (int k = 0; k < 3; k++) {
        CHECK(merge_one(s1, s2, 8, all[k], 1, 8, r, &st) == 0);
        CHECK(r[0] == 0 && r[3] == 3 && r[7] == 7);
        CHECK(r[5] == 5 && r[6] == 5);
        CHECK(st.pairs_found == 1 && st.pairs_joined == 1);
    }
    /* nothing valid at all, and an empty border */
    const uint32_t z1[] = { 0, 4, 0 }, z2[] = { 4, 4, 0 };
    CHECK(merge_one(z1, z2, 3, MOSAIC_MERGE_BEST_MATCH, 0, 8, r, &st) == 0);
    CHECK(r[4] == 4 && st.pairs_found == 0 && st.pairs_joined == 0);
    CHECK(merge_one(NULL, NULL, 0, MOSAIC_MERGE_BEST_MATCH, 0, 8, r, &st) == 0);
}

static void test_merge_min_contact(void) {
    /* contact is counted over the whole border, not per run: 1-10 in two runs of 3 and 2 */
    const uint32_t s1[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2 };
    const uint32_t s2[] = { 10, 10, 10, 11, 11, 11, 11, 10, 10, 12, 12 };
    uint32_t r[16];
    mosaic_merge_stats st;
    CHECK(merge_one(s1, s2, 11, MOSAIC_MERGE_MIN_CONTACT, 5, 16, r, &st) == 0);
    CHECK(r[10] == 1 && r[11] == 11 && r[12] == 12);
    CHECK(st.pairs_found == 3 && st.pairs_joined == 1);
    CHECK(merge_one(s1, s2, 11, MOSAIC_MERGE_MIN_CONTACT, 4, 16, r, &st) == 0);
    CHECK(r[10] == 1 && r[11] == 1 && r[12] == 12);
    CHECK(st.pairs_joined == 2);
    CHECK(merge_one(s1, s2, 11, MOSAIC_MERGE_MIN_CONTACT, 2, 16, r, &st) == 0);
    CHECK(r[10] == 1 && r[11] == 1 && r[12] == 2);
    CHECK(merge_one(s1, s2, 11, MOSAIC_MERGE_MIN_CONTACT, 6, 16, r, &st) == 0);
    CHECK(r[10] == 10 && r[11] == 11 && r[12] == 12 && st.pairs_joined == 0);
    /* best_match picks 10 (5 px) for 1, but 11's only partner is 1 */
    CHECK(merge_one(s1, s2, 11, MOSAIC_MERGE_MUTUAL_BEST, 0, 16, r, &st) == 0);
    CHECK(r[10] == 1 && r[11] == 11 && r[12] == 2);
}

static void test_merge_errors_and_stats(void) {
    mosaic_uf uf;
    samc_error err = {0};
    mosaic_merge_stats st = {0};
    CHECK(mosaic_uf_init(&uf, 10, &err) == 0);
    const uint32_t s1[] = { 1, 1, 5 }, s2[] = { 2, 2, 99 };
    CHECK(mosaic_merge_boundary(s1, s2, 3, MOSAIC_MERGE_BEST_MATCH, 0, &uf, &st, &err) == -1);
    CHECK(strstr(err.msg, "99") != NULL && err.status == SAMC_ERR_ARG);
    CHECK(mosaic_uf_find(&uf, 2) == 2 && st.pairs_found == 0);   /* nothing joined on failure */
    CHECK(mosaic_merge_boundary(s1, s2, 2, (mosaic_merge_strategy)17, 0, &uf, &st, &err) == -1);
    CHECK(mosaic_merge_boundary(s1, s2, 2, MOSAIC_MERGE_MIN_CONTACT, -1, &uf, &st, &err) == -1);
    CHECK(mosaic_merge_boundary(s1, s2, -1, MOSAIC_MERGE_BEST_MATCH, 0, &uf, &st, &err) == -1);
    CHECK(mosaic_merge_boundary(NULL, s2, 2, MOSAIC_MERGE_BEST_MATCH, 0, &uf, &st, &err) == -1);
    /* stats are added to */
    CHECK(mosaic_merge_boundary(s1, s2, 2, MOSAIC_MERGE_BEST_MATCH, 0, &uf, &st, &err) == 0);
    CHECK(mosaic_merge_boundary(s1, s2, 2, MOSAIC_MERGE_BEST_MATCH, 0, &uf, &st, &err) == 0);
    CHECK(st.pairs_found == 2 && st.pairs_joined == 2);
    CHECK(mosaic_uf_find(&uf, 2) == 1);
    CHECK(mosaic_merge_boundary(s1, s2, 2, MOSAIC_MERGE_BEST_MATCH, 0, &uf, NULL, &err) == 0);
    mosaic_uf_free(&uf);
}

/* Slow reference of the strategies on labels < L: an L x L count matrix.
 * roots[i] = smallest id of i's set. */
static void merge_reference(const uint32_t *s1, const uint32_t *s2, int n, int L, mosaic_merge_strategy st,
                            int min_contact, uint32_t *roots, int64_t *found, int64_t *joined) {
    int *cnt = calloc((size_t)L * L, sizeof *cnt), *best1 = malloc(L * sizeof *best1), *best2 = malloc(L * sizeof *best2);
#define CNT(a, b) cnt[(size_t)(a) * L + (b)]
    for (int i = 0; i < n; i++)
        if (s1[i] && s2[i] && s1[i] != s2[i]) CNT(s1[i], s2[i])++;
    for (int a = 0; a < L; a++) {
        best1[a] = best2[a] = -1;
        for (int b = 0; b < L; b++) {
            if (CNT(a, b) && (best1[a] < 0 || CNT(a, b) > CNT(a, best1[a]))) best1[a] = b;
            if (CNT(b, a) && (best2[a] < 0 || CNT(b, a) > CNT(best2[a], a))) best2[a] = b;
        }
    }
    for (int i = 0; i < L; i++) roots[i] = (uint32_t)i;
    *found = *joined = 0;
    for (int a = 0; a < L; a++)
        for (int b = 0; b < L; b++) {
            if (!CNT(a, b)) continue;
            (*found)++;
            int join = st == MOSAIC_MERGE_BEST_MATCH    ? best1[a] == b || best2[b] == a
                       : st == MOSAIC_MERGE_MUTUAL_BEST ? best1[a] == b && best2[b] == a
                       : st == MOSAIC_MERGE_MIN_CONTACT ? CNT(a, b) >= min_contact
                                                        : 0;
            if (!join) continue;
            (*joined)++;
            uint32_t ra = roots[a], rb = roots[b], lo = ra < rb ? ra : rb;
            for (int j = 0; j < L; j++)
                if (roots[j] == ra || roots[j] == rb) roots[j] = lo;
        }
#undef CNT
    free(cnt);
    free(best1);
    free(best2);
}

enum { REF_L = 24 };
static void test_merge_random_vs_reference(void) {
    rng_seed(2024);
    uint32_t s1[64], s2[64], got[REF_L], want[REF_L];
    int bad = 0;
    for (int it = 0; it < 3000 && bad < 5; it++) {
        int n = 1 + rng_below(64);
        /* labels overlap between the sides so that equal labels occur; runs are likely */
        for (int i = 0; i < n; i++) {
            if (i > 0 && rng_below(3)) { s1[i] = s1[i - 1]; } else { s1[i] = (uint32_t)rng_below(9); }
            if (i > 0 && rng_below(3)) { s2[i] = s2[i - 1]; } else { s2[i] = (uint32_t)(rng_below(2) ? 0 : 6 + rng_below(18)); }
        }
        mosaic_merge_strategy st = (mosaic_merge_strategy)rng_below(4);
        int mc = rng_below(5);
        mosaic_merge_stats ms;
        int64_t found, joined;
        CHECK(merge_one(s1, s2, n, st, mc, REF_L, got, &ms) == 0);
        merge_reference(s1, s2, n, REF_L, st, mc, want, &found, &joined);
        if (memcmp(got, want, sizeof got) || ms.pairs_found != found || ms.pairs_joined != joined) {
            bad++;
            CHECKF(0, "iteration %d, strategy %s, min_contact %d, n %d: pairs %lld/%lld vs reference %lld/%lld", it,
                   mosaic_merge_strategy_name(st), mc, n, (long long)ms.pairs_found, (long long)ms.pairs_joined,
                   (long long)found, (long long)joined);
        }
    }
}

static void test_merge_large_borders(void) {
    /* A 50,000-pixel border with a random pair at every pixel (the worst case of the run
     * coding, and many ties of 1-3 px), against the reference; then the time of 2000
     * calls on a border of realistic runs. */
    enum { N = 50000, L = 150, LL = 2 * L + 1 };
    uint32_t *s1 = malloc(N * sizeof *s1), *s2 = malloc(N * sizeof *s2), got[LL], want[LL];
    rng_seed(5);
    for (int i = 0; i < N; i++) {
        s1[i] = 1 + (uint32_t)rng_below(L);
        s2[i] = L + 1 + (uint32_t)rng_below(L);
    }
    mosaic_merge_stats st;
    for (int k = 0; k < 4; k++) {
        int64_t found, joined;
        double t0 = now_ms();
        CHECK(merge_one(s1, s2, N, (mosaic_merge_strategy)k, 3, LL, got, &st) == 0);
        double t = now_ms() - t0;
        merge_reference(s1, s2, N, LL, (mosaic_merge_strategy)k, 3, want, &found, &joined);
        CHECKF(memcmp(got, want, sizeof got) == 0 && st.pairs_found == found && st.pairs_joined == joined,
               "%s: pairs %lld/%lld vs reference %lld/%lld", mosaic_merge_strategy_name((mosaic_merge_strategy)k),
               (long long)st.pairs_found, (long long)st.pairs_joined, (long long)found, (long long)joined);
        if (k == 0) fprintf(stderr, "  merge_boundary 50,000 px of noise: %.2f ms\n", t);
        CHECK(t < 1000);   /* a loose bound that only a quadratic pair count would miss */
    }
    CHECK(st.pairs_found > 15000);

    enum { LR = 2000 };
    for (int i = 0; i < N;) {
        int len = 5 + rng_below(56);
        uint32_t a = 1 + (uint32_t)rng_below(LR), b = rng_below(4) ? LR + 1 + (uint32_t)rng_below(LR) : 0;
        for (int j = 0; j < len && i < N; j++, i++) { s1[i] = a; s2[i] = b; }
    }
    mosaic_uf uf;
    samc_error err = {0};
    CHECK(mosaic_uf_init(&uf, 2 * LR + 1, &err) == 0);
    memset(&st, 0, sizeof st);
    double t0 = now_ms();
    for (int k = 0; k < 2000; k++)
        CHECK(mosaic_merge_boundary(s1, s2, N, (mosaic_merge_strategy)(k % 3), 10, &uf, &st, &err) == 0);
    double t_runs = now_ms() - t0;
    fprintf(stderr, "  merge_boundary 50,000 px in runs: %.3f ms per call\n", t_runs / 2000);
    CHECK(t_runs < 20000);
    mosaic_uf_free(&uf);
    free(s1);
    free(s2);
}

/* A 3x3 grid of 10x10 tiles with objects drawn across borders and corners; each tile
 * labels its pieces with its own ids (tile * 10 + object), as the pipeline does. */
enum { TS = 10, GW = 30 };
static void draw(int *obj, int x0, int x1, int y0, int y1, int id) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) obj[y * GW + x] = id;
}

static void mosaic_objects(int *obj) {
    memset(obj, 0, GW * GW * sizeof *obj);
    draw(obj, 0, 29, 1, 3, 1);   /* 1: a U across 7 tiles and 6 borders */
    draw(obj, 26, 28, 1, 28, 1);
    draw(obj, 0, 28, 26, 28, 1);
    draw(obj, 7, 14, 11, 15, 2);   /* 2: an L across 3 tiles */
    draw(obj, 12, 14, 11, 22, 2);
    draw(obj, 17, 22, 7, 12, 3);   /* 3: on the corner of 4 tiles */
    draw(obj, 1, 4, 16, 19, 4);    /* 4 and 5: side by side across the border y = 20, */
    draw(obj, 1, 3, 20, 23, 4);    /* with 1 px of 4 facing 5 across it */
    draw(obj, 5, 8, 17, 19, 5);
    draw(obj, 4, 8, 20, 23, 5);
    draw(obj, 12, 16, 5, 6, 6);    /* 6: inside one tile */
}

/* Merges all 12 borders (forward or reversed order) and checks the partition: roots
 * after the LUT must equal the objects, each with its smallest tile id. */
static void merge_mosaic(mosaic_merge_strategy st, int min_contact, int reversed, int *joined_4_5, int *ok) {
    int obj[GW * GW];
    uint32_t lab[GW * GW], out[GW * GW];
    mosaic_objects(obj);
    for (int y = 0; y < GW; y++)
        for (int x = 0; x < GW; x++) {
            int t = (y / TS) * 3 + x / TS;
            lab[y * GW + x] = obj[y * GW + x] ? (uint32_t)(t * 10 + obj[y * GW + x]) : 0;
        }
    mosaic_uf uf;
    samc_error err = {0};
    mosaic_merge_stats ms = {0};
    *ok = mosaic_uf_init(&uf, 100, &err) == 0;
    for (int k = 0; k < 9; k++) {
        int t = reversed ? 8 - k : k, ty = t / 3, tx = t % 3;
        uint32_t s1[TS], s2[TS];
        if (tx < 2) {
            for (int i = 0; i < TS; i++) {
                s1[i] = lab[(ty * TS + i) * GW + tx * TS + TS - 1];
                s2[i] = lab[(ty * TS + i) * GW + tx * TS + TS];
            }
            *ok &= mosaic_merge_boundary(s1, s2, TS, st, min_contact, &uf, &ms, &err) == 0;
        }
        if (ty < 2) {
            for (int i = 0; i < TS; i++) {
                s1[i] = lab[(ty * TS + TS - 1) * GW + tx * TS + i];
                s2[i] = lab[(ty * TS + TS) * GW + tx * TS + i];
            }
            *ok &= mosaic_merge_boundary(s1, s2, TS, st, min_contact, &uf, &ms, &err) == 0;
        }
    }
    uint32_t lut[100];
    for (uint32_t i = 0; i < 100; i++) lut[i] = mosaic_uf_find(&uf, i);
    for (int i = 0; i < GW * GW; i++) out[i] = lut[lab[i]];
    mosaic_uf_free(&uf);

    /* per object: one label, its smallest tile id; distinct objects apart, except the
     * pair 4/5 which is reported */
    uint32_t obj_label[7] = {0}, obj_min[7];
    for (int o = 0; o < 7; o++) obj_min[o] = UINT32_MAX;
    for (int i = 0; i < GW * GW; i++) {
        int o = obj[i];
        if (!o) { *ok &= out[i] == 0; continue; }
        if (lab[i] < obj_min[o]) obj_min[o] = lab[i];
    }
    for (int i = 0; i < GW * GW; i++) {
        int o = obj[i];
        if (!o) continue;
        if (!obj_label[o]) obj_label[o] = out[i];
        if (out[i] != obj_label[o]) {
            *ok = 0;
        }
    }
    *joined_4_5 = obj_label[4] == obj_label[5];
    for (int o = 1; o < 7; o++) {
        if (o == 5 && *joined_4_5) continue;
        *ok &= obj_label[o] == obj_min[o];
        for (int p = 1; p < o; p++)
            if (!(o == 5 && p == 4)) *ok &= obj_label[o] != obj_label[p];
    }
}

static void test_merge_mosaic_3x3(void) {
    int joined, ok;
    for (int rev = 0; rev < 2; rev++) {
        merge_mosaic(MOSAIC_MERGE_BEST_MATCH, 0, rev, &joined, &ok);
        CHECKF(ok && !joined, "best_match, reversed %d", rev);
        merge_mosaic(MOSAIC_MERGE_MUTUAL_BEST, 0, rev, &joined, &ok);
        CHECKF(ok && !joined, "mutual_best, reversed %d", rev);
        merge_mosaic(MOSAIC_MERGE_MIN_CONTACT, 2, rev, &joined, &ok);
        CHECKF(ok && !joined, "min_contact 2, reversed %d", rev);
        /* 1 px of contact is enough for min_contact 1: objects 4 and 5 become one */
        merge_mosaic(MOSAIC_MERGE_MIN_CONTACT, 1, rev, &joined, &ok);
        CHECKF(ok && joined, "min_contact 1, reversed %d", rev);
        /* 4 px of contact at most: min_contact 4 keeps the 3-px crossings apart */
        merge_mosaic(MOSAIC_MERGE_MIN_CONTACT, 4, rev, &joined, &ok);
        CHECKF(!ok, "min_contact 4 should leave objects cut, reversed %d", rev);
        merge_mosaic(MOSAIC_MERGE_NONE, 0, rev, &joined, &ok);
        CHECKF(!ok, "none should leave objects cut, reversed %d", rev);
    }
}

/* ---- per-tile cleanup -------------------------------------------------------------- */

static int cleanup_drawn(const char *const *in, int h, int min_area, int enc, const char *const *want,
                         mosaic_cleanup_stats *st) {
    int w;
    uint32_t *img = img_from(in, h, &w);
    samc_error err = {0};
    memset(st, 0, sizeof *st);
    int ok = mosaic_cleanup_fragments(img, w, h, min_area, enc, st, &err) == 0 && img_equals(img, want, h);
    free(img);
    return ok;
}

static void test_cleanup_enclosed(void) {
    mosaic_cleanup_stats st;
#define BLOCK "111111", "111111", "112211", "112211", "111111", "111111"
    CHECK(cleanup_drawn(ROWS(BLOCK), 6, 0, 500, ROWS("111111", "111111", "111111", "111111", "111111", "111111"), &st));
    CHECK(st.fragments == 2 && st.merged_enclosed == 1 && st.removed_small == 0 && st.pixels_removed == 0);
    CHECK(cleanup_drawn(ROWS(BLOCK), 6, 0, 4, ROWS("111111", "111111", "111111", "111111", "111111", "111111"), &st));
    CHECK(st.merged_enclosed == 1);   /* area <= enclosed_max_area */
    CHECK(cleanup_drawn(ROWS(BLOCK), 6, 0, 3, ROWS(BLOCK), &st));
    CHECK(st.merged_enclosed == 0 && st.removed_small == 0);
    /* too large to merge, small enough to remove */
    CHECK(cleanup_drawn(ROWS(BLOCK), 6, 5, 3, ROWS("111111", "111111", "11..11", "11..11", "111111", "111111"), &st));
    CHECK(st.merged_enclosed == 0 && st.removed_small == 1 && st.pixels_removed == 4);
    /* disabled rules */
    CHECK(cleanup_drawn(ROWS(BLOCK), 6, 0, 0, ROWS(BLOCK), &st));
    CHECK(st.fragments == 2 && st.merged_enclosed == 0 && st.removed_small == 0);
    CHECK(cleanup_drawn(ROWS(BLOCK), 6, 10, 0, ROWS("111111", "111111", "11..11", "11..11", "111111", "111111"), &st));
    CHECK(st.removed_small == 1);
#undef BLOCK
    /* a second piece of the same label inside another segment goes to that segment; the
     * diagonal pieces of 2 are two fragments */
    CHECK(cleanup_drawn(ROWS("1111111", "1222221", "1212221", "1222221", "1111111"), 5, 0, 5,
                        ROWS("1111111", "1222221", "1222221", "1222221", "1111111"), &st));
    CHECK(st.fragments == 3 && st.merged_enclosed == 1);
    /* with a larger enclosed_max_area the 2s are enclosed by 1 too: one pass swaps them */
    CHECK(cleanup_drawn(ROWS("1111111", "1222221", "1212221", "1222221", "1111111"), 5, 0, 500,
                        ROWS("1111111", "1111111", "1121111", "1111111", "1111111"), &st));
    CHECK(st.fragments == 3 && st.merged_enclosed == 2);
    CHECK(cleanup_drawn(ROWS("11111", "12111", "11211", "11111"), 4, 0, 500, ROWS("11111", "11111", "11111", "11111"),
                        &st));
    CHECK(st.fragments == 3 && st.merged_enclosed == 2);
    /* on the image border: never merged, never removed */
    CHECK(cleanup_drawn(ROWS("2111", "1111", "1113"), 3, 5, 500, ROWS("2111", "1111", "1113"), &st));
    CHECK(st.merged_enclosed == 0 && st.removed_small == 0);
    /* decided on the input labels: the ring of 3 sees 1 and 2 (kept), the 2 inside it sees
     * only 3 (merged); a sequential cleanup would then have merged the ring into 1 */
    CHECK(cleanup_drawn(ROWS(".......", ".11111.", ".13331.", ".13231.", ".13331.", ".11111.", "......."), 7, 0, 500,
                        ROWS(".......", ".11111.", ".13331.", ".13331.", ".13331.", ".11111.", "......."), &st));
    CHECK(st.fragments == 3 && st.merged_enclosed == 1);
}

static void test_cleanup_small(void) {
    mosaic_cleanup_stats st;
    /* 2 touches background: removed when small; 4 on the border is kept */
#define IMG "........", "..1111..", "..1111..", "....2...", "........", "4......."
    CHECK(cleanup_drawn(ROWS(IMG), 6, 2, 500, ROWS("........", "..1111..", "..1111..", "........", "........", "4......."),
                        &st));
    CHECK(st.fragments == 3 && st.merged_enclosed == 0 && st.removed_small == 1 && st.pixels_removed == 1);
    CHECK(cleanup_drawn(ROWS(IMG), 6, 9, 500, ROWS("........", "........", "........", "........", "........", "4......."),
                        &st));
    CHECK(st.removed_small == 2 && st.pixels_removed == 9);
    CHECK(cleanup_drawn(ROWS(IMG), 6, 1, 500, ROWS(IMG), &st));   /* area < 1 never */
    CHECK(st.removed_small == 0);
#undef IMG
    /* enclosed by two different labels: not merged; removed if smaller than min_area */
#define TWO "111222", "111222", "113322", "111222", "111222"
    CHECK(cleanup_drawn(ROWS(TWO), 5, 3, 500, ROWS("111222", "111222", "11..22", "111222", "111222"), &st));
    CHECK(st.merged_enclosed == 0 && st.removed_small == 1 && st.pixels_removed == 2);
    CHECK(cleanup_drawn(ROWS(TWO), 5, 2, 500, ROWS(TWO), &st));
    CHECK(st.merged_enclosed == 0 && st.removed_small == 0 && st.fragments == 3);
#undef TWO
    /* a one-row image: everything is on the border */
    CHECK(cleanup_drawn(ROWS("1.2.33"), 1, 10, 10, ROWS("1.2.33"), &st));
    CHECK(st.fragments == 3);
}

static void test_cleanup_errors(void) {
    uint32_t img[4] = { 1, 2, 3, 4 };
    samc_error err = {0};
    mosaic_cleanup_stats st = {0};
    CHECK(mosaic_cleanup_fragments(img, 2, 2, -1, 0, &st, &err) == -1 && err.status == SAMC_ERR_ARG);
    CHECK(mosaic_cleanup_fragments(img, 2, 2, 0, -5, &st, &err) == -1);
    CHECK(mosaic_cleanup_fragments(img, -2, 2, 0, 0, &st, &err) == -1);
    CHECK(mosaic_cleanup_fragments(NULL, 2, 2, 0, 0, &st, &err) == -1);
    CHECK(mosaic_cleanup_fragments(NULL, 0, 0, 3, 3, &st, &err) == 0);
    CHECK(st.fragments == 0);
    /* stats are added to; NULL stats allowed */
    CHECK(mosaic_cleanup_fragments(img, 2, 2, 0, 0, &st, &err) == 0);
    CHECK(mosaic_cleanup_fragments(img, 2, 2, 0, 0, &st, &err) == 0);
    CHECK(st.fragments == 8);
    CHECK(mosaic_cleanup_fragments(img, 2, 2, 0, 0, NULL, &err) == 0);
    CHECK(img[0] == 1 && img[1] == 2 && img[2] == 3 && img[3] == 4);
}

/* The obvious implementation: a flood fill per fragment over a copy of the input. */
static void cleanup_reference(const uint32_t *in, uint32_t *out, int w, int h, int min_area, int enc,
                              mosaic_cleanup_stats *st) {
    size_t np = (size_t)w * h;
    int *seen = calloc(np, sizeof *seen);
    int *stack = malloc(np * sizeof *stack), *members = malloc(np * sizeof *members);
    memcpy(out, in, np * sizeof *out);
    memset(st, 0, sizeof *st);
    for (size_t s = 0; s < np; s++) {
        if (!in[s] || seen[s]) continue;
        uint32_t v = in[s], other = 0;
        int n_other = 0, border = 0, bg = 0, sp = 0, area = 0;
        stack[sp++] = (int)s;
        seen[s] = 1;
        while (sp) {
            int p = stack[--sp], x = p % w, y = p / w;
            members[area++] = p;
            const int dx[4] = { 1, -1, 0, 0 }, dy[4] = { 0, 0, 1, -1 };
            for (int d = 0; d < 4; d++) {
                int nx = x + dx[d], ny = y + dy[d];
                if (nx < 0 || ny < 0 || nx >= w || ny >= h) { border = 1; continue; }
                int q = ny * w + nx;
                if (in[q] == v) {
                    if (!seen[q]) { seen[q] = 1; stack[sp++] = q; }
                } else if (!in[q]) {
                    bg = 1;
                } else if (n_other == 0 || in[q] != other) {
                    if (n_other == 0) other = in[q];
                    n_other++;
                }
            }
        }
        st->fragments++;
        uint32_t to = v;
        if (enc && area <= enc && !border && !bg && n_other == 1) {
            to = other;
            st->merged_enclosed++;
        } else if (min_area && area < min_area && !border) {
            to = 0;
            st->removed_small++;
            st->pixels_removed += area;
        }
        for (int i = 0; i < area; i++) out[members[i]] = to;
    }
    free(seen);
    free(stack);
    free(members);
}

/* Blobby random labels 0..k: most pixels copy the left or upper neighbour. */
static void random_image(uint32_t *img, int w, int h, int k) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int r = rng_below(10);
            uint32_t v;
            if (r < 3 && x > 0) v = img[y * w + x - 1];
            else if (r < 6 && y > 0) v = img[(y - 1) * w + x];
            else v = (uint32_t)(rng_below(k + 2) > k ? 0 : 1 + rng_below(k));
            img[y * w + x] = v;
        }
}

static int stats_equal(const mosaic_cleanup_stats *a, const mosaic_cleanup_stats *b) {
    return a->fragments == b->fragments && a->merged_enclosed == b->merged_enclosed &&
           a->removed_small == b->removed_small && a->pixels_removed == b->pixels_removed;
}

static void test_cleanup_random_vs_flood_fill(void) {
    rng_seed(77);
    uint32_t img[16 * 16], ref[16 * 16], in[16 * 16];
    int bad = 0;
    int64_t merged = 0, removed = 0;
    for (int it = 0; it < 4000 && bad < 5; it++) {
        int w = 1 + rng_below(16), h = 1 + rng_below(16), k = 1 + rng_below(5);
        random_image(in, w, h, k);
        int min_area = rng_below(8), enc = rng_below(8);
        mosaic_cleanup_stats st = {0}, rst;
        samc_error err = {0};
        memcpy(img, in, sizeof in);
        CHECK(mosaic_cleanup_fragments(img, w, h, min_area, enc, &st, &err) == 0);
        cleanup_reference(in, ref, w, h, min_area, enc, &rst);
        if (memcmp(img, ref, (size_t)w * h * sizeof *img) || !stats_equal(&st, &rst)) {
            bad++;
            CHECKF(0, "iteration %d (%dx%d, min_area %d, enclosed_max_area %d): differs from the flood fill", it, w, h,
                   min_area, enc);
        }
        merged += st.merged_enclosed;
        removed += st.removed_small;
    }
    /* the random images exercise both rules */
    CHECK(merged > 100 && removed > 100);
}

static void test_cleanup_order_independent(void) {
    /* renaming the labels renames the result the same way */
    enum { W = 64, H = 48, K = 40 };
    uint32_t *a = malloc(W * H * sizeof *a), *b = malloc(W * H * sizeof *b), perm[K + 1];
    int64_t merged = 0, removed = 0;
    rng_seed(99);
    for (int trial = 0; trial < 20; trial++) {
        random_image(a, W, H, K);
        perm[0] = 0;
        for (int i = 1; i <= K; i++) perm[i] = (uint32_t)i;
        for (int i = K; i > 1; i--) {
            int j = 1 + rng_below(i);
            uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        for (int i = 0; i < W * H; i++) b[i] = perm[a[i]];
        mosaic_cleanup_stats sa = {0}, sb = {0};
        samc_error err = {0};
        CHECK(mosaic_cleanup_fragments(a, W, H, 4, 6, &sa, &err) == 0);
        CHECK(mosaic_cleanup_fragments(b, W, H, 4, 6, &sb, &err) == 0);
        int same = 1;
        for (int i = 0; i < W * H; i++) same &= b[i] == perm[a[i]];
        CHECKF(same, "trial %d", trial);
        CHECK(stats_equal(&sa, &sb));
        merged += sa.merged_enclosed;
        removed += sa.removed_small;
    }
    CHECK(merged > 20 && removed > 20);
    free(a);
    free(b);
}

static void test_cleanup_large_tile(void) {
    /* 1000x1000, ~2000 segments of ~22x22 px with ragged borders (fragments) and holes */
    enum { W = 1000, H = 1000, C = 22 };
    uint32_t *img = malloc((size_t)W * H * sizeof *img), *in = malloc((size_t)W * H * sizeof *in),
             *ref = malloc((size_t)W * H * sizeof *ref);
    rng_seed(1234);
    int cols = (W + C - 1) / C;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int jx = x + rng_below(7) - 3, jy = y + rng_below(7) - 3;
            if (jx < 0) jx = 0;
            if (jy < 0) jy = 0;
            uint32_t v = (uint32_t)((jy / C) * cols + jx / C + 1);
            in[(size_t)y * W + x] = rng_below(40) ? v : 0;
        }
    memcpy(img, in, (size_t)W * H * sizeof *img);
    mosaic_cleanup_stats st = {0}, rst;
    samc_error err = {0};
    double t0 = now_ms();
    CHECK(mosaic_cleanup_fragments(img, W, H, 100, 500, &st, &err) == 0);
    double t = now_ms() - t0;
    fprintf(stderr, "  cleanup 1000x1000: %.1f ms, %lld fragments, %lld merged, %lld removed\n", t,
            (long long)st.fragments, (long long)st.merged_enclosed, (long long)st.removed_small);
    CHECK(t < 2000);   /* ~10 ms at -O2; a bound only a non-linear labelling would miss */
    cleanup_reference(in, ref, W, H, 100, 500, &rst);
    CHECK(memcmp(img, ref, (size_t)W * H * sizeof *img) == 0);
    CHECK(stats_equal(&st, &rst));
    CHECK(st.fragments > 10000 && st.merged_enclosed > 1000 && st.removed_small > 1000);
    free(img);
    free(in);
    free(ref);
}

/* ---- compaction -------------------------------------------------------------------- */

static void test_compact_basic(void) {
    uint32_t v[] = { 0, 5, 5, 3, 0, 9, 3, 5, 4000000000u };
    const uint32_t want[] = { 0, 10, 10, 11, 0, 12, 11, 10, 13 };
    uint32_t n_ids = 0;
    samc_error err = {0};
    CHECK(mosaic_labels_compact(v, 9, 10, &n_ids, &err) == 0);
    CHECK(n_ids == 4);
    CHECK(memcmp(v, want, sizeof want) == 0);

    uint32_t z[] = { 0, 0, 0 };
    n_ids = 77;
    CHECK(mosaic_labels_compact(z, 3, 1, &n_ids, &err) == 0 && n_ids == 0 && z[0] == 0 && z[2] == 0);
    CHECK(mosaic_labels_compact(NULL, 0, 1, &n_ids, &err) == 0 && n_ids == 0);

    /* the largest id is UINT32_MAX - 1; a failure leaves the labels untouched */
    uint32_t two[] = { 7, 8, 7 };
    CHECK(mosaic_labels_compact(two, 3, UINT32_MAX - 1, &n_ids, &err) == -1);
    CHECK(err.status == SAMC_ERR_ARG && strstr(err.msg, "first_id") != NULL);
    CHECK(two[0] == 7 && two[1] == 8 && two[2] == 7);
    CHECK(mosaic_labels_compact(two, 3, UINT32_MAX - 2, &n_ids, &err) == 0 && n_ids == 2);
    CHECK(two[0] == UINT32_MAX - 2 && two[1] == UINT32_MAX - 1 && two[2] == UINT32_MAX - 2);
    uint32_t one[] = { 0, 6, 6 };
    CHECK(mosaic_labels_compact(one, 3, UINT32_MAX, &n_ids, &err) == -1 && one[1] == 6);
    CHECK(mosaic_labels_compact(one, 3, UINT32_MAX - 1, &n_ids, &err) == 0 && n_ids == 1 && one[1] == UINT32_MAX - 1);
    CHECK(mosaic_labels_compact(one, 3, 0, &n_ids, &err) == -1);
    CHECK(mosaic_labels_compact(one, -1, 1, &n_ids, &err) == -1);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void test_compact_large_random(void) {
    /* 1,000,000 pixels in runs, 100,000 distinct random ids: check first-appearance
     * order and that equal inputs map to equal outputs and different to different */
    enum { N = 1000000, D = 100000 };
    uint32_t *pool = malloc(D * sizeof *pool), *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    rng_seed(3);
    for (int i = 0; i < D; i++) pool[i] = rng_u32() | 1u;   /* non-zero */
    for (int i = 0; i < N;) {
        int len = 1 + rng_below(12);
        uint32_t v = rng_below(10) ? pool[rng_below(D)] : 0;
        for (int j = 0; j < len && i < N; j++, i++) in[i] = v;
    }
    memcpy(out, in, N * sizeof *in);
    uint32_t n_ids = 0, first = 1000;
    samc_error err = {0};
    double t0 = now_ms();
    CHECK(mosaic_labels_compact(out, N, first, &n_ids, &err) == 0);
    fprintf(stderr, "  compact 1,000,000 px, %u ids: %.1f ms\n", n_ids, now_ms() - t0);
    CHECK(n_ids > D / 2 && n_ids <= D);
    uint32_t *orig_of = calloc(n_ids, sizeof *orig_of);
    uint32_t next = first;
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
        if (!in[i]) { ok = out[i] == 0; continue; }
        if (out[i] < first || out[i] >= first + n_ids) { ok = 0; break; }
        uint32_t k = out[i] - first;
        if (!orig_of[k]) {
            ok = out[i] == next++;   /* a new output id is the next one */
            orig_of[k] = in[i];
        } else {
            ok = orig_of[k] == in[i];
        }
        if (!ok) fprintf(stderr, "  pixel %d: in %u out %u\n", i, in[i], out[i]);
    }
    CHECK(ok);
    CHECK(next == first + n_ids);
    /* different inputs got different ids: the ids of each input value are one, and the
     * number of distinct inputs is n_ids */
    uint32_t *sorted = malloc(N * sizeof *sorted);
    int m = 0;
    for (int i = 0; i < N; i++) if (in[i]) sorted[m++] = in[i];
    qsort(sorted, (size_t)m, sizeof *sorted, cmp_u32);
    uint32_t distinct = 0;
    for (int i = 0; i < m; i++) distinct += i == 0 || sorted[i] != sorted[i - 1];
    CHECK(distinct == n_ids);
    free(sorted);
    free(orig_of);
    free(pool);
    free(in);
    free(out);
}

TEST_MAIN(TEST_CASE(test_uf_smaller_root), TEST_CASE(test_uf_grow), TEST_CASE(test_merge_strategy_names),
          TEST_CASE(test_merge_split_roof), TEST_CASE(test_merge_ties), TEST_CASE(test_merge_ignored),
          TEST_CASE(test_merge_min_contact), TEST_CASE(test_merge_errors_and_stats),
          TEST_CASE(test_merge_random_vs_reference), TEST_CASE(test_merge_large_borders),
          TEST_CASE(test_merge_mosaic_3x3), TEST_CASE(test_cleanup_enclosed), TEST_CASE(test_cleanup_small),
          TEST_CASE(test_cleanup_errors), TEST_CASE(test_cleanup_random_vs_flood_fill),
          TEST_CASE(test_cleanup_order_independent), TEST_CASE(test_cleanup_large_tile),
          TEST_CASE(test_compact_basic), TEST_CASE(test_compact_large_random))
