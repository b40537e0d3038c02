/* model/sam3/tokenizer_text.c: cleaning and pre-tokenisation of the SAM3 tokenizer, as
 * sam3/model/tokenizer_ve.py does them (SimpleTokenizer with clean="lower"):
 *   ftfy.fix_text -> html.unescape(html.unescape(.)) -> strip -> regex.sub(\s+, " ")
 *   -> strip -> str.lower() -> regex.findall(pattern, IGNORECASE).
 * The Python behaviour each function reproduces is named in its comment; the tables
 * come from tools/gen_sam3_tokenizer_tables.py. What of ftfy is covered: tokenizer.h. */
#include <string.h>

#include "model/sam3/tokenizer_tables.h"
#include "model/sam3/tokenizer_text.h"

/* ---- small helpers ------------------------------------------------------------------ */

static void put(sam3_cpbuf *b, uint32_t cp) {
    if (b->n < b->cap) b->p[b->n++] = cp;
    else b->full = 1;
}

static void put_n(sam3_cpbuf *b, const uint32_t *cps, size_t n) {
    for (size_t i = 0; i < n; i++) put(b, cps[i]);
}

/* Up to three code points, zero-terminated (an entity value or a map entry). */
static void put_z(sam3_cpbuf *b, const uint32_t *cps, int max) {
    for (int i = 0; i < max && cps[i]; i++) put(b, cps[i]);
}

static void swap_buf(sam3_cpbuf *a, sam3_cpbuf *b) {
    sam3_cpbuf t = *a;
    *a = *b;
    *b = t;
}

/* The value of the run holding cp. */
static int run_value(const sam3_run *runs, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (runs[mid].first <= cp) lo = mid;
        else hi = mid - 1;
    }
    return runs[lo].value;
}

static int in_sorted(const uint32_t *list, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (list[mid] == cp) return 1;
        if (list[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

static int sam3_char_class(uint32_t cp) {
    return run_value(sam3_char_class_runs, sam3_char_class_runs_n, cp);
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_xdigit(uint32_t c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'f'); }
static int is_alnum(uint32_t c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'z'); }

/* ---- UTF-8 -------------------------------------------------------------------------- */

/* How many bytes starting at s[0] form the longest valid prefix of a UTF-8 sequence
 * (Unicode's "maximal subpart"), and whether it is complete. */
static int utf8_prefix(const uint8_t *s, size_t len, int *complete, uint32_t *cp) {
    uint8_t b = s[0];
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b < 0x80) { *complete = 1; *cp = b; return 1; }
    if (b >= 0xC2 && b <= 0xDF) { need = 1; *cp = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2; *cp = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;   /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3; *cp = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;   /* nothing above U+10FFFF */
    } else { *complete = 0; return 1; }
    int k = 1;
    for (; k <= need && (size_t)k < len; k++) {
        uint8_t c = s[k];
        if (c < lo || c > hi) break;
        *cp = (*cp << 6) | (c & 0x3F);
        lo = 0x80; hi = 0xBF;
    }
    *complete = k == need + 1;
    return k;
}

int sam3_utf8_decode(const uint8_t *s, size_t len, sam3_cpbuf *out) {
    int bad = 0;
    size_t i = 0;
    while (i < len) {
        int complete;
        uint32_t cp;
        int k = utf8_prefix(s + i, len - i, &complete, &cp);
        if (!complete) { cp = 0xFFFD; bad++; }
        put(out, cp);
        i += (size_t)k;
    }
    return bad;
}

int sam3_utf8_put(uint32_t cp, uint8_t *out, size_t cap, size_t *n) {
    uint8_t b[4];
    int k;
    if (cp < 0x80) { b[0] = (uint8_t)cp; k = 1; }
    else if (cp < 0x800) { b[0] = (uint8_t)(0xC0 | (cp >> 6)); b[1] = (uint8_t)(0x80 | (cp & 0x3F)); k = 2; }
    else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12)); b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F)); k = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18)); b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (uint8_t)(0x80 | (cp & 0x3F)); k = 4;
    }
    if (*n + (size_t)k > cap) return -1;
    memcpy(out + *n, b, (size_t)k);
    *n += (size_t)k;
    return 0;
}

/* ---- HTML entities ------------------------------------------------------------------ */

/* Finds name[0..len) (ASCII bytes) in a table sorted by name. */
static const sam3_entity *entity_find(const sam3_entity *tab, int n, const char *name, size_t len) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *e = tab[mid].name;
        int c = strncmp(e, name, len);
        if (c == 0) c = e[len] != '\0';
        if (c == 0) return &tab[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* The name bytes of t[0..n): code points outside ASCII (and NUL) become 0x01, which no
 * entity name holds, so they never match. */
static void entity_key(const uint32_t *t, size_t n, char *key) {
    for (size_t i = 0; i < n; i++) key[i] = (t[i] == 0 || t[i] > 0x7F) ? 0x01 : (char)t[i];
}

/* html.unescape's numeric reference: the code points it gives for num (0 or 1). */
static int charref_value(uint32_t num, uint32_t *cp) {
    for (int i = 0; i < sam3_html_invalid_charref_n; i++)
        if (sam3_html_invalid_charref[i][0] == num) { *cp = sam3_html_invalid_charref[i][1]; return 1; }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { *cp = 0xFFFD; return 1; }
    if (in_sorted(sam3_html_invalid_codepoints, sam3_html_invalid_codepoints_n, num)) return 0;
    *cp = num;
    return 1;
}

/* Digits at t[0..n) in base 10 or 16; the value saturates above U+10FFFF (Python's
 * integers are unbounded, and every such value gives U+FFFD). */
static size_t parse_digits(const uint32_t *t, size_t n, int hex, uint32_t *value) {
    size_t k = 0;
    uint32_t v = 0;
    while (k < n && (hex ? is_xdigit(t[k]) : is_digit(t[k]))) {
        uint32_t d = is_digit(t[k]) ? t[k] - '0' : (t[k] | 32) - 'a' + 10;
        v = v > 0x110000 ? 0x110000 + 1 : v * (hex ? 16u : 10u) + d;
        k++;
    }
    *value = v;
    return k;
}

static int html_name_char(uint32_t c) {
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
}

/* html.unescape's named reference at t[0] == '&' (Python's rule: up to 32 characters
 * other than \t \n \f space < & # ;, an optional ';', the whole name if it is an html5
 * entity, else its longest prefix of at least 2 characters that is one, else nothing).
 * Returns how many code points it consumed (0: not a reference). */
static size_t html_named(const uint32_t *t, size_t n, sam3_cpbuf *out) {
    size_t k = 1;
    while (k < n && k <= 32 && html_name_char(t[k])) k++;
    size_t len = k - 1;
    if (len == 0) return 0;
    size_t total = len + (k < n && t[k] == ';');
    char key[40];
    entity_key(t + 1, total, key);
    const sam3_entity *e = entity_find(sam3_html5_entities, sam3_html5_entities_n, key, total);
    if (e) { put_z(out, e->cp, 3); return 1 + total; }
    for (size_t x = total - 1; x >= 2; x--) {
        e = entity_find(sam3_html5_entities, sam3_html5_entities_n, key, x);
        if (e) {
            put_z(out, e->cp, 3);
            put_n(out, t + 1 + x, total - x);
            return 1 + total;
        }
    }
    put_n(out, t, 1 + total);
    return 1 + total;
}

static void sam3_html_unescape(const sam3_cpbuf *in, sam3_cpbuf *out) {
    const uint32_t *t = in->p;
    size_t n = in->n, i = 0;
    out->n = 0;
    while (i < n) {
        if (t[i] != '&') { put(out, t[i++]); continue; }
        size_t k = i + 2;
        int hex = k < n && (t[k] | 32) == 'x' && k + 1 < n && is_xdigit(t[k + 1]);
        if (i + 1 < n && t[i + 1] == '#' && (hex || (k < n && is_digit(t[k])))) {
            uint32_t num, cp;
            k += (size_t)hex;
            k += parse_digits(t + k, n - k, hex, &num);
            if (k < n && t[k] == ';') k++;
            if (charref_value(num, &cp)) put(out, cp);
            i = k;
            continue;
        }
        size_t used = html_named(t + i, n - i, out);
        if (used == 0) put(out, t[i++]);
        else i += used;
    }
}

/* ---- the ftfy.fix_text subset ------------------------------------------------------- */
/* Each pass reads in and writes out (emptied first) and returns whether it changed
 * anything; fix_segment runs them in ftfy 6's order until nothing changes. */

/* ftfy's unescape_html: `&#?[0-9A-Za-z]{1,24};` replaced when it names an html5 entity
 * (or one of ftfy's upper-cased names), or is a numeric reference html.unescape decodes
 * whole (and not to ';'). */
static size_t ftfy_entity(const uint32_t *t, size_t n, sam3_cpbuf *out) {
    int hash = n > 1 && t[1] == '#';
    size_t k = 1 + (size_t)hash, m = k;
    while (m < n && m - k < 24 && is_alnum(t[m])) m++;
    if (m == k || m >= n || t[m] != ';') return 0;
    size_t len = m - k;
    if (!hash) {
        char key[32];
        entity_key(t + 1, len + 1, key);
        const sam3_entity *e = entity_find(sam3_html5_entities, sam3_html5_entities_n, key, len + 1);
        if (!e) e = entity_find(sam3_ftfy_upper_entities, sam3_ftfy_upper_entities_n, key, len + 1);
        if (!e) return 0;
        put_z(out, e->cp, 3);
        return m + 1;
    }
    int hex = (t[k] | 32) == 'x';
    uint32_t num, cp;
    if (hex && len == 1) return 0;
    if (parse_digits(t + k + hex, len - (size_t)hex, hex, &num) != len - (size_t)hex) return 0;
    int has = charref_value(num, &cp);
    if (has && cp == ';') return 0;
    if (has) put(out, cp);
    return m + 1;
}

static int pass_unescape(const sam3_cpbuf *in, sam3_cpbuf *out) {
    int changed = 0;
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        size_t used = in->p[i] == '&' ? ftfy_entity(in->p + i, in->n - i, out) : 0;
        if (used) { changed = 1; i += used; }
        else put(out, in->p[i++]);
    }
    return changed;
}

/* The byte a character stands for when UTF-8 was read as Windows-1252 (or Latin-1),
 * or -1. */
static int mojibake_byte(uint32_t cp) {
    if (cp < 0x100) return (int)cp;
    for (int b = 0; b < 32; b++)
        if (sam3_cp1252_high[b] == cp) return 0x80 + b;
    return -1;
}

static int is_cont(const uint32_t *t, size_t n, size_t i) {
    int b = i < n ? mojibake_byte(t[i]) : -1;
    return b >= 0x80 && b <= 0xBF;
}

/* The common UTF-8-read-as-Windows-1252 sequences that ftfy repairs wherever they occur
 * (checked against ftfy 6.1.1 in several contexts): returns the characters consumed
 * (0: none) and the repaired code point.
 *   Â/Ã + one byte 80..BF     -> U+0080..U+00FF, except bytes 85 8C 8E 92 9C A5 (… Œ Ž ’ œ ¥),
 *                                which ftfy leaves alone unless its heuristics agree
 *   â € + one byte 80..BF      -> U+2000..U+203F (’ “ ” – — … • and the like)
 *   â ‚ ¬                      -> €
 *   ð Ÿ + two bytes 80..BF    -> U+1F000..U+1FFFF (emoji) */
static size_t mojibake_at(const uint32_t *t, size_t n, size_t i, uint32_t *cp) {
    uint32_t c = t[i];
    int b1 = i + 1 < n ? mojibake_byte(t[i + 1]) : -1;
    int b2 = i + 2 < n ? mojibake_byte(t[i + 2]) : -1;
    if ((c == 0xC2 || c == 0xC3) && b1 >= 0x80 && b1 <= 0xBF && !memchr("\x85\x8c\x8e\x92\x9c\xa5", b1, 6)) {
        *cp = ((c & 0x1F) << 6) | ((uint32_t)b1 & 0x3F);
        return 2;
    }
    if (c == 0xE2 && b1 == 0x80 && is_cont(t, n, i + 2)) { *cp = 0x2000 | ((uint32_t)b2 & 0x3F); return 3; }
    if (c == 0xE2 && b1 == 0x82 && b2 == 0xAC) { *cp = 0x20AC; return 3; }
    if (c == 0xF0 && b1 == 0x9F && is_cont(t, n, i + 2) && is_cont(t, n, i + 3)) {
        *cp = 0x1F000 | (((uint32_t)b2 & 0x3F) << 6) | ((uint32_t)mojibake_byte(t[i + 3]) & 0x3F);
        return 4;
    }
    return 0;
}

static int pass_mojibake(const sam3_cpbuf *in, sam3_cpbuf *out) {
    int changed = 0;
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        uint32_t cp;
        size_t used = mojibake_at(in->p, in->n, i, &cp);
        if (used) { put(out, cp); i += used; changed = 1; }
        else put(out, in->p[i++]);
    }
    return changed;
}

/* ftfy's fix_latin_ligatures table (its choice: Latin ligatures and digraphs only). */
static const uint32_t ligatures[][4] = {
    {0x132, 'I', 'J', 0}, {0x133, 'i', 'j', 0}, {0x149, 0x2BC, 'n', 0},
    {0x1C4, 'D', 0x17D, 0}, {0x1C5, 'D', 0x17E, 0}, {0x1C6, 'd', 0x17E, 0},
    {0x1C7, 'L', 'J', 0}, {0x1C8, 'L', 'j', 0}, {0x1C9, 'l', 'j', 0},
    {0x1CA, 'N', 'J', 0}, {0x1CB, 'N', 'j', 0}, {0x1CC, 'n', 'j', 0},
    {0x1F1, 'D', 'Z', 0}, {0x1F2, 'D', 'z', 0}, {0x1F3, 'd', 'z', 0},
    {0xFB00, 'f', 'f', 0}, {0xFB01, 'f', 'i', 0}, {0xFB02, 'f', 'l', 0},
    {0xFB03, 'f', 'f', 'i'}, {0xFB04, 'f', 'f', 'l'}, {0xFB05, 0x17F, 't', 0}, {0xFB06, 's', 't', 0},
};

/* The per-character fixes, in ftfy's order: C1 controls read as Windows-1252,
 * ligatures, halfwidth/fullwidth forms, curly quotes. One pass each, as in ftfy. */
static int pass_chars(const sam3_cpbuf *in, sam3_cpbuf *out, int which) {
    int changed = 0;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->p[i];
        const uint32_t *rep = NULL;
        uint32_t one[3] = {0, 0, 0};
        if (which == 0 && c >= 0x80 && c <= 0x9F && sam3_cp1252_high[c - 0x80] != c) {
            one[0] = sam3_cp1252_high[c - 0x80]; rep = one;
        } else if (which == 1 && ((c >= 0x132 && c <= 0x1F3) || (c >= 0xFB00 && c <= 0xFB06))) {
            for (size_t k = 0; k < sizeof ligatures / sizeof ligatures[0]; k++)
                if (ligatures[k][0] == c) rep = ligatures[k] + 1;
        } else if (which == 2 && (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF))) {
            for (int k = 0; k < sam3_width_map_n; k++)
                if (sam3_width_map[k][0] == c) rep = sam3_width_map[k] + 1;
        } else if (which == 3 && (c == 0x2BC || (c >= 0x2018 && c <= 0x201B))) {
            one[0] = '\''; rep = one;
        } else if (which == 3 && c >= 0x201C && c <= 0x201F) {
            one[0] = '"'; rep = one;
        }
        if (rep) { put_z(out, rep, which == 1 ? 3 : 2); changed = 1; }
        else put(out, c);
    }
    return changed;
}

/* ftfy's fix_line_breaks (\r\n, \r, U+2028, U+2029, U+0085 -> \n), remove_terminal_escapes
 * (ESC [ digits-or-; letter) and remove_control_chars (U+0000..08, 0B, 0E..1F, 7F,
 * U+206A..206F, U+FEFF, U+FFF9..FFFC), in that order. */
static int pass_breaks(const sam3_cpbuf *in, sam3_cpbuf *out) {
    int changed = 0;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->p[i];
        if (c == '\r' && i + 1 < in->n && in->p[i + 1] == '\n') { changed = 1; continue; }
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) { c = '\n'; changed = 1; }
        put(out, c);
    }
    return changed;
}

static int pass_escapes(const sam3_cpbuf *in, sam3_cpbuf *out) {
    int changed = 0;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (in->p[i] == 0x1B && i + 1 < in->n && in->p[i + 1] == '[') {
            size_t k = i + 2;
            while (k < in->n && (is_digit(in->p[k]) || in->p[k] == ';')) k++;
            if (k < in->n && ((in->p[k] | 32) >= 'a' && (in->p[k] | 32) <= 'z')) {
                i = k;
                changed = 1;
                continue;
            }
        }
        put(out, in->p[i]);
    }
    return changed;
}

static int is_removed_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

static int pass_controls(const sam3_cpbuf *in, sam3_cpbuf *out) {
    int changed = 0;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (is_removed_control(in->p[i])) changed = 1;
        else put(out, in->p[i]);
    }
    return changed;
}

/* ftfy.fix_and_explain on one segment, in seg; tmp is scratch. ftfy loops until the text
 * stops changing; the cap only guards against a cycle, which none of these passes can
 * make (each one only shortens text or maps into characters no pass changes again). */
static void fix_segment(sam3_cpbuf *seg, sam3_cpbuf *tmp, int unescape) {
    for (int round = 0; round < 64; round++) {
        int changed = 0;
        if (unescape && pass_unescape(seg, tmp)) { changed = 1; swap_buf(seg, tmp); }
        while (pass_mojibake(seg, tmp)) { changed = 1; swap_buf(seg, tmp); }
        for (int which = 0; which < 4; which++)
            if (pass_chars(seg, tmp, which)) { changed = 1; swap_buf(seg, tmp); }
        if (pass_breaks(seg, tmp)) { changed = 1; swap_buf(seg, tmp); }
        if (pass_escapes(seg, tmp)) { changed = 1; swap_buf(seg, tmp); }
        if (pass_controls(seg, tmp)) { changed = 1; swap_buf(seg, tmp); }
        if (!changed) return;
    }
}

/* ftfy.fix_text: segments end after each '\n'; HTML unescaping ("auto") is off from the
 * first segment that contains '<' on. */
static void ftfy_fix_text(const sam3_cpbuf *in, sam3_cpbuf *out, sam3_cpbuf *seg, sam3_cpbuf *tmp) {
    int unescape = 1;
    out->n = 0;
    for (size_t pos = 0; pos < in->n;) {
        size_t end = pos;
        while (end < in->n && in->p[end] != '\n') end++;
        if (end < in->n) end++;
        seg->n = 0;
        put_n(seg, in->p + pos, end - pos);
        for (size_t i = pos; i < end && unescape; i++)
            if (in->p[i] == '<') unescape = 0;
        fix_segment(seg, tmp, unescape);
        put_n(out, seg->p, seg->n);
        if (seg->full || tmp->full) out->full = 1;
        pos = end;
    }
}

/* ---- whitespace and case ------------------------------------------------------------ */

static int is_regex_space(uint32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x85 && in_sorted(sam3_regex_space, sam3_regex_space_n, c));
}

static int is_py_space(uint32_t c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && in_sorted(sam3_py_space, sam3_py_space_n, c));
}

/* str.strip() then regex.sub(r"\s+", " ") then str.strip(). */
static void whitespace_clean(const sam3_cpbuf *in, sam3_cpbuf *out) {
    size_t a = 0, b = in->n;
    while (a < b && is_py_space(in->p[a])) a++;
    while (b > a && is_py_space(in->p[b - 1])) b--;
    out->n = 0;
    for (size_t i = a; i < b; i++) {
        if (!is_regex_space(in->p[i])) put(out, in->p[i]);
        else if (i == a || !is_regex_space(in->p[i - 1])) put(out, ' ');
    }
    size_t s = 0;
    while (s < out->n && is_py_space(out->p[s])) s++;
    while (out->n > s && is_py_space(out->p[out->n - 1])) out->n--;
    if (s) {
        memmove(out->p, out->p + s, (out->n - s) * sizeof *out->p);
        out->n -= s;
    }
}

static int case_kind(uint32_t c) {
    return run_value(sam3_case_kind_runs, sam3_case_kind_runs_n, c);
}

/* CPython's final-sigma context for t[i] == U+03A3: a cased letter before it and none
 * after it, case-ignorable characters skipped both ways. */
static int final_sigma(const uint32_t *t, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && case_kind(t[j - 1]) == SAM3_CASE_IGNORABLE) j--;
    if (j == 0 || case_kind(t[j - 1]) != SAM3_CASE_CASED) return 0;
    j = i + 1;
    while (j < n && case_kind(t[j]) == SAM3_CASE_IGNORABLE) j++;
    return j == n || case_kind(t[j]) != SAM3_CASE_CASED;
}

static uint32_t lower_one(uint32_t c) {
    int lo = 0, hi = sam3_lower_runs_n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (sam3_lower_runs[mid].first <= c) lo = mid;
        else hi = mid - 1;
    }
    const sam3_lower_run *r = &sam3_lower_runs[lo];
    if (c >= r->first && c <= r->last && (c - r->first) % (uint32_t)r->stride == 0)
        return (uint32_t)((int32_t)c + r->delta);
    return c;
}

/* str.lower(). */
static void lower_text(const sam3_cpbuf *in, sam3_cpbuf *out) {
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->p[i];
        if (c < 0x80) put(out, (c >= 'A' && c <= 'Z') ? c + 32 : c);
        else if (c == 0x130) { put(out, 'i'); put(out, 0x307); }
        else if (c == 0x3A3) put(out, final_sigma(in->p, in->n, i) ? 0x3C2 : 0x3C3);
        else put(out, lower_one(c));
    }
}

void sam3_text_clean(sam3_cpbuf *text, sam3_cpbuf work[3]) {
    ftfy_fix_text(text, &work[0], &work[1], &work[2]);
    sam3_html_unescape(&work[0], &work[1]);
    sam3_html_unescape(&work[1], &work[0]);
    whitespace_clean(&work[0], &work[1]);
    lower_text(&work[1], text);
    for (int k = 0; k < 3; k++) text->full |= work[k].full;
}

/* ---- pre-tokenisation --------------------------------------------------------------- */

/* Whether c matches the pattern's ASCII character a under IGNORECASE (the regex module's
 * simple case folding: a letter, its upper case, and U+017F long s for 's'). */
static int ci_eq(uint32_t c, char a) {
    if (c == (uint32_t)a) return 1;
    if (a >= 'a' && a <= 'z') return c == (uint32_t)(a - 32) || (a == 's' && c == 0x17F);
    return 0;
}

static size_t match_literal(const uint32_t *t, size_t n, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (k >= n || !ci_eq(t[k], lit[k])) return 0;
    return k;
}

/* `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d`, first alternative first. */
static size_t match_fixed(const uint32_t *t, size_t n) {
    static const char *const alts[] = { "<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
    for (size_t a = 0; a < sizeof alts / sizeof alts[0]; a++) {
        size_t k = match_literal(t, n, alts[a]);
        if (k) return k;
    }
    return 0;
}

int sam3_next_piece(const uint32_t *t, size_t n, size_t *pos, size_t *start, size_t *end) {
    size_t i = *pos;
    while (i < n) {
        size_t k = (t[i] == '<' || t[i] == '\'') ? match_fixed(t + i, n - i) : 0;
        int cls = sam3_char_class(t[i]);
        if (k == 0 && cls == SAM3_CC_SKIP) { i++; continue; }
        *start = i;
        if (k) i += k;
        else if (cls == SAM3_CC_NUMBER) i++;
        else {
            i++;   /* [\p{L}]+ or [^\s\p{L}\p{N}]+: a run of one class */
            while (i < n && sam3_char_class(t[i]) == cls) i++;
        }
        *pos = *end = i;
        return 1;
    }
    *pos = n;
    return 0;
}
