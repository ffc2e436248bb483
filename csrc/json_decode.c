/*
 * json_decode.c -- proto3 JSON text -> protobuf bytes, canonical as encode
 * writes them: fields in field-number order, proto3 implicit-presence zeros
 * omitted, repeated scalars packed where the schema says so, map entries
 * sorted by key (key and value always written), shortest varints.
 *
 * The parser is strict RFC 8259 JSON (no comments, no trailing commas, no
 * NaN literals, UTF-8 checked, escapes and surrogate pairs checked, nothing
 * after the value) and writes protobuf as it reads: each member of an
 * object is written where it ends up in the output, its extent noted on the
 * scratch stack; when an object's members were not in field order, the
 * object's bytes are put in order once at its end. Nested lengths are
 * written after the body (one byte reserved, the body moved when the
 * length needs more), as encode does.
 *
 * Errors: the first failure pushes its message (field path and byte
 * offset) and every function returns 0 up to the method, which returns nil
 * and that message.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct jr {
    lua_State *L;
    const dp_schema *S;
    dp_jscratch *sc;
    dp_jbuf *out;             /* the protobuf bytes */
    dp_jbuf *stk;             /* per-object member extents, seen-bitmaps */
    dp_jbuf *str;             /* the last string read with escapes */
    const unsigned char *base, *p, *end;
    dp_jopts o;
    const char *tname;
    int depth;                /* message levels (the path) */
    int nest;                 /* JSON nesting counted against max_depth: message
                                 levels but google.protobuf.Value's */
    dp_pathel path[2 * DP_MAX_MAX_DEPTH + 4];
} jr;

/* one member of an object: its field number and its bytes in out */
typedef struct jseg {
    uint32_t num;
    size_t off, len;
} jseg;

/* one map entry: its key (for sorting) and its bytes in out */
typedef struct jmk {
    uint64_t u;               /* integer/bool key, two's complement */
    size_t koff, kn;          /* string key: its bytes in out */
    size_t off, len;
    int neg, str;
} jmk;

static int parse_msg(jr *r, const dp_msg *m);
static int skip_value(jr *r, int depth);

/* ---- errors */

/* [-0, +1] pushes the error message naming the field path and the byte
   offset of at (NULL: the current position); returns 0 */
static int failat(jr *r, const unsigned char *at, const char *fmt, ...) {
    lua_State *L = r->L;
    va_list ap;
    if (!at) at = r->p;
    /* the fields along the way: path[1..depth], levels without a field
       (well-known types, an Any's payload) left out; the path is not used
       after a failure, so it is compacted in place */
    int np = 0;
    for (int i = 1; i <= r->depth; i++)
        if (r->path[i].f) r->path[1 + np++] = r->path[i];
    dp_push_path(L, r->path + 1, np);
    const char *path = lua_tostring(L, -1);
    va_start(ap, fmt);
    const char *rule = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    char pos[48];
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)(at - r->base));
    if (*path)
        lua_pushfstring(L, "dynpb: from_json %s: field '%s': %s at byte %s", r->tname, path,
                        rule, pos);
    else
        lua_pushfstring(L, "dynpb: from_json %s: %s at byte %s", r->tname, rule, pos);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 0;
}
#define fail(r, ...) failat((r), NULL, __VA_ARGS__)

/* ---- output */

static inline unsigned char *room(jr *r, size_t n) {
    return dp_jbuf_room(r->L, r->sc, r->out, n);
}
static inline void put_varint(jr *r, uint64_t v) {
    unsigned char *d = room(r, 10), *d0 = d;
    while (v >= 0x80) { *d++ = (unsigned char)(v | 0x80); v >>= 7; }
    *d++ = (unsigned char)v;
    r->out->len += (size_t)(d - d0);
}
static inline void put_bytes(jr *r, const void *s, size_t n) {
    memcpy(room(r, n), s, n);
    r->out->len += n;
}
static inline void put_tag(jr *r, uint32_t num, int wt) {
    put_varint(r, (uint64_t)num << 3 | (uint64_t)wt);
}
static inline void put_ftag(jr *r, const dp_field *f) { put_bytes(r, f->tag, f->taglen); }
static void put_le(jr *r, uint64_t v, int n) {
    unsigned char *d = room(r, 8);
    for (int i = 0; i < n; i++) d[i] = (unsigned char)(v >> (8 * i));
    r->out->len += (size_t)n;
}
static size_t begin_len(jr *r) {
    room(r, 1);
    return r->out->len++;
}
static void end_len(jr *r, size_t mark) {
    size_t n = r->out->len - mark - 1;
    if (n < 0x80) {
        r->out->p[mark] = (unsigned char)n;
        return;
    }
    int k = 1;
    for (size_t x = n; x >= 0x80; x >>= 7) k++;
    room(r, (size_t)k - 1);
    unsigned char *b = r->out->p;
    memmove(b + mark + k, b + mark + 1, n);
    r->out->len += (size_t)k - 1;
    size_t v = n;
    unsigned char *d = b + mark;
    while (v >= 0x80) { *d++ = (unsigned char)(v | 0x80); v >>= 7; }
    *d = (unsigned char)v;
}

/* ---- the lexer */

static inline void ws(jr *r) {
    const unsigned char *p = r->p, *e = r->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    r->p = p;
}

/* what the value at the current position is, for messages */
static const char *what(jr *r) {
    if (r->p >= r->end) return "end of input";
    switch (*r->p) {
    case '{': return "object";
    case '[': return "array";
    case '"': return "string";
    case 't': case 'f': return "boolean";
    case 'n': return "null";
    case '/': return "a comment (not JSON)";
    case '}': return "'}'";
    case ']': return "']'";
    case ',': return "','";
    case ':': return "':'";
    default: return (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) ? "number" : "invalid JSON";
    }
}

static int expect_ch(jr *r, char ch) {
    ws(r);
    if (r->p >= r->end || *r->p != (unsigned char)ch)
        return fail(r, "expected '%c', got %s", ch, what(r));
    r->p++;
    return 1;
}

static int lit(jr *r, const char *s, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, s, n) != 0)
        return fail(r, "invalid JSON literal");
    r->p += n;
    return 1;
}

static inline int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(jr *r, const unsigned char *q, uint32_t *cp) {
    if (r->end - q < 4) return failat(r, q, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0) return failat(r, q, "invalid \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    *cp = v;
    return 1;
}

/* Reads the string at r->p (a '"'): *s, *n are its bytes (into the input
   when it has no escapes, else into r->str, valid until the next string). */
static int read_string(jr *r, const unsigned char **s, size_t *n) {
    const unsigned char *p = r->p + 1, *e = r->end, *start = p;
    while (p < e && *p != '"' && *p != '\\' && *p >= 0x20) p++;
    if (p < e && *p == '"') {                          /* no escapes */
        if (!dp_utf8_valid(start, (size_t)(p - start)))
            return failat(r, start, "invalid UTF-8 in string");
        *s = start;
        *n = (size_t)(p - start);
        r->p = p + 1;
        return 1;
    }
    dp_jbuf *b = r->str;
    b->len = 0;
    size_t run = (size_t)(p - start);
    memcpy(dp_jbuf_room(r->L, r->sc, b, run + 8), start, run);
    b->len = run;
    for (;;) {
        if (p >= e) return failat(r, r->p, "unterminated string");
        unsigned char c = *p;
        if (c == '"') break;
        if (c < 0x20) return failat(r, p, "control character in string (escape it)");
        unsigned char *d = dp_jbuf_room(r->L, r->sc, b, 8);
        if (c != '\\') {
            const unsigned char *q = p;
            while (q < e && *q != '"' && *q != '\\' && *q >= 0x20) q++;
            size_t k = (size_t)(q - p);
            memcpy(dp_jbuf_room(r->L, r->sc, b, k), p, k);
            b->len += k;
            p = q;
            continue;
        }
        if (e - p < 2) return failat(r, p, "unterminated string");
        c = p[1];
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            static const char rep[] = "\"\\/\b\f\n\r\t";
            d[0] = (unsigned char)rep[simple - "\"\\/bfnrt"];
            b->len++;
            p += 2;
            continue;
        }
        if (c != 'u') return failat(r, p, "invalid escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
        uint32_t cp;
        if (!hex4(r, p + 2, &cp)) return 0;
        const unsigned char *at = p;
        p += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (e - p < 6 || p[0] != '\\' || p[1] != 'u')
                return failat(r, at, "unpaired surrogate in \\u escape");
            if (!hex4(r, p + 2, &lo)) return 0;
            if (lo < 0xdc00 || lo > 0xdfff) return failat(r, at, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return failat(r, at, "unpaired surrogate in \\u escape");
        }
        if (cp < 0x80) d[0] = (unsigned char)cp, b->len += 1;
        else if (cp < 0x800) {
            d[0] = (unsigned char)(0xc0 | cp >> 6);
            d[1] = (unsigned char)(0x80 | (cp & 0x3f));
            b->len += 2;
        } else if (cp < 0x10000) {
            d[0] = (unsigned char)(0xe0 | cp >> 12);
            d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
            d[2] = (unsigned char)(0x80 | (cp & 0x3f));
            b->len += 3;
        } else {
            d[0] = (unsigned char)(0xf0 | cp >> 18);
            d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
            d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
            d[3] = (unsigned char)(0x80 | (cp & 0x3f));
            b->len += 4;
        }
    }
    if (!dp_utf8_valid(b->p, b->len)) return failat(r, start, "invalid UTF-8 in string");
    *s = b->p;
    *n = b->len;
    r->p = p + 1;
    return 1;
}

/* Checks the JSON number grammar on s[0..n) (the whole of it) and says
   whether it has a fraction or exponent. Returns the length matched. */
static size_t number_len(const unsigned char *s, size_t n, int *isint) {
    size_t i = 0;
    *isint = 1;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return 0;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return 0;
    if (i < n && s[i] == '.') {
        i++;
        *isint = 0;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        *isint = 0;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return 0;
    }
    return i;
}

/* Reads a number token at r->p: *s, *n. */
static int read_number(jr *r, const unsigned char **s, size_t *n, int *isint) {
    size_t k = number_len(r->p, (size_t)(r->end - r->p), isint);
    if (!k) return fail(r, "invalid number");
    const unsigned char *q = r->p + k;
    if (q < r->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' ||
                       *q == '+' || *q == '-'))
        return fail(r, "invalid number (leading zero?)");
    *s = r->p;
    *n = k;
    r->p = q;
    return 1;
}

/* strtod of s[0..n) (a checked JSON number); long texts go through the
   scratch TMP buffer (free while a value is read) */
static double to_double(jr *r, const unsigned char *s, size_t n) {
    /* fast path (Clinger): at most 15 significant digits and a power of ten
       up to 22 are both exact doubles, and one IEEE multiply or divide of
       exact operands rounds correctly, so the result is what strtod gives */
    static const double p10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                   1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                   1e20, 1e21, 1e22};
    {
        size_t i = 0;
        int neg = 0, nd = 0, e10 = 0;
        uint64_t m = 0;
        if (s[0] == '-') { neg = 1; i = 1; }
        while (i < n && s[i] == '0') i++;                /* leading zeros */
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++) m = m * 10 + (uint64_t)(s[i] - '0');
        if (i < n && s[i] == '.') {
            i++;
            if (!nd) while (i < n && s[i] == '0') { i++; e10--; }
            for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++, e10--)
                m = m * 10 + (uint64_t)(s[i] - '0');
        }
        if (i == n && nd <= 15 && e10 >= -22) {
            double d = (double)m;
            d = e10 < 0 ? d / p10[-e10] : d;
            return neg ? -d : d;
        }
    }
    char buf[128];
    char *t = buf;
    if (n >= sizeof buf) {
        dp_jbuf *b = &r->sc->b[DP_JB_TMP];
        b->len = 0;
        t = (char *)dp_jbuf_room(r->L, r->sc, b, n + 1);
    }
    memcpy(t, s, n);
    t[n] = 0;
    return strtod(t, NULL);
}

/* ---- skipping a value (ignore_unknown_fields) */

static int skip_value(jr *r, int depth) {
    ws(r);
    if (r->p >= r->end) return fail(r, "unexpected end of input");
    const unsigned char *s;
    size_t n;
    int isint;
    switch (*r->p) {
    case '"': return read_string(r, &s, &n);
    case 't': return lit(r, "true", 4);
    case 'f': return lit(r, "false", 5);
    case 'n': return lit(r, "null", 4);
    case '{': case '[': {
        char close = *r->p == '{' ? '}' : ']';
        if (depth >= r->o.max_depth) return fail(r, "nesting deeper than max_depth (%d)", r->o.max_depth);
        r->p++;
        ws(r);
        if (r->p < r->end && *r->p == (unsigned char)close) { r->p++; return 1; }
        for (;;) {
            if (close == '}') {
                ws(r);
                if (r->p >= r->end || *r->p != '"') return fail(r, "expected a member name, got %s", what(r));
                if (!read_string(r, &s, &n) || !expect_ch(r, ':')) return 0;
            }
            if (!skip_value(r, depth + 1)) return 0;
            ws(r);
            if (r->p < r->end && *r->p == ',') { r->p++; continue; }
            return expect_ch(r, close);
        }
    }
    default:
        return read_number(r, &s, &n, &isint);
    }
}

/* ---- scalars */

enum { R_FAIL = 0, R_OK = 1, R_SKIP = 2 };

/* integer types: 64 bits? unsigned? */
static int is64(int t) {
    return t == DP_T_INT64 || t == DP_T_UINT64 || t == DP_T_SINT64 || t == DP_T_FIXED64 ||
           t == DP_T_SFIXED64;
}
static int isuns(int t) {
    return t == DP_T_UINT32 || t == DP_T_UINT64 || t == DP_T_FIXED32 || t == DP_T_FIXED64;
}

/* Converts number text s[0..n) (checked grammar) to an integer of type t. */
static int text_int(jr *r, const unsigned char *at, const unsigned char *s, size_t n, int isint,
                    int t, uint64_t *out) {
    int neg = s[0] == '-';
    uint64_t mag = 0;
    if (isint) {
        for (size_t i = (size_t)neg; i < n; i++) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (mag > (UINT64_MAX - d) / 10) goto range;
            mag = mag * 10 + d;
        }
    } else {
        double d = to_double(r, s, n);
        if (d != floor(d) || isinf(d))
            return failat(r, at, "%s is not an integer", dp_jpushl(r->L, (const char *)s, n));
        if (!(d > -18446744073709551616.0 && d < 18446744073709551616.0)) goto range;
        mag = (uint64_t)fabs(d);
        neg = d < 0;
    }
    if (neg && mag == 0) neg = 0;
    if (isuns(t)) {
        uint64_t max = is64(t) ? UINT64_MAX : UINT32_MAX;
        if (neg || mag > max) goto range;
        *out = mag;
    } else {
        uint64_t max = is64(t) ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
        if (neg ? mag > max + 1 : mag > max) goto range;
        *out = neg ? (uint64_t)0 - mag : mag;
    }
    return 1;
range:
    return failat(r, at, "%s is out of range for %s", dp_jpushl(r->L, (const char *)s, n),
                  dp_type_str(t));
}

/* Reads an integer of type t: a number, or a string holding one. */
static int read_int(jr *r, int t, uint64_t *out) {
    const unsigned char *at = r->p, *s;
    size_t n;
    int isint;
    if (r->p < r->end && *r->p == '"') {
        if (!read_string(r, &s, &n)) return 0;
        if (!n || number_len(s, n, &isint) != n)
            return failat(r, at, "string '%s' is not an integer",
                          dp_jpushl(r->L, (const char *)s, n > 40 ? 40 : n));
        return text_int(r, at, s, n, isint, t, out);
    }
    if (r->p >= r->end || !(*r->p == '-' || (*r->p >= '0' && *r->p <= '9')))
        return fail(r, "expected an integer, got %s", what(r));
    if (!read_number(r, &s, &n, &isint)) return 0;
    return text_int(r, at, s, n, isint, t, out);
}

/* Reads a float/double: a number, or "NaN", "Infinity", "-Infinity", or a
   string holding a number. */
static int read_real(jr *r, int single, double *out) {
    const unsigned char *at = r->p, *s;
    size_t n;
    int isint;
    if (r->p < r->end && *r->p == '"') {
        if (!read_string(r, &s, &n)) return 0;
        if (n == 3 && memcmp(s, "NaN", 3) == 0) { *out = NAN; return 1; }
        if (n == 8 && memcmp(s, "Infinity", 8) == 0) { *out = HUGE_VAL; return 1; }
        if (n == 9 && memcmp(s, "-Infinity", 9) == 0) { *out = -HUGE_VAL; return 1; }
        if (!n || number_len(s, n, &isint) != n)
            return failat(r, at, "string '%s' is not a number",
                          dp_jpushl(r->L, (const char *)s, n > 40 ? 40 : n));
    } else {
        if (r->p >= r->end || !(*r->p == '-' || (*r->p >= '0' && *r->p <= '9')))
            return fail(r, "expected a number, got %s", what(r));
        if (!read_number(r, &s, &n, &isint)) return 0;
    }
    double d = to_double(r, s, n);
    if (isinf(d) || (single && isinf((float)d)))
        return failat(r, at, "%s is out of range for %s", dp_jpushl(r->L, (const char *)s, n),
                      single ? "float" : "double");
    *out = d;
    return 1;
}

/* base64 (standard or URL-safe, padding optional) s[0..n) -> out as a
   length-delimited value */
static int put_base64(jr *r, const unsigned char *at, const unsigned char *s, size_t n) {
    if (n && s[n - 1] == '=') n--;
    if (n && s[n - 1] == '=') n--;
    if (n % 4 == 1) return failat(r, at, "invalid base64 (length)");
    size_t out = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    put_varint(r, out);
    unsigned char *d = room(r, out + 3);
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int v = dp_b64_value[s[i]];
        if (v < 0) return failat(r, at, "invalid base64 character");
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[k++] = (unsigned char)(acc >> bits);
        }
    }
    r->out->len += k;
    return 1;
}

/* Reads one value of scalar field f (not message) and writes it (no tag).
   *zero: the value is its type's zero. R_SKIP: an unknown enum name that
   ignore_unknown_fields skips (nothing written). */
static int put_scalar(jr *r, const dp_field *f, int *zero) {
    ws(r);
    uint64_t u;
    *zero = 0;
    switch (f->type) {
    case DP_T_INT32: case DP_T_INT64: case DP_T_UINT32: case DP_T_UINT64:
        if (!read_int(r, f->type, &u)) return R_FAIL;
        put_varint(r, f->type == DP_T_INT32 ? (uint64_t)(int64_t)(int32_t)u : u);
        *zero = u == 0;
        return R_OK;
    case DP_T_SINT32:
        if (!read_int(r, f->type, &u)) return R_FAIL;
        put_varint(r, (uint32_t)(((uint32_t)u << 1) ^ (uint32_t)((int32_t)u >> 31)));
        *zero = u == 0;
        return R_OK;
    case DP_T_SINT64:
        if (!read_int(r, f->type, &u)) return R_FAIL;
        put_varint(r, (u << 1) ^ (uint64_t)((int64_t)u >> 63));
        *zero = u == 0;
        return R_OK;
    case DP_T_FIXED32: case DP_T_SFIXED32:
        if (!read_int(r, f->type, &u)) return R_FAIL;
        put_le(r, u, 4);
        *zero = (uint32_t)u == 0;
        return R_OK;
    case DP_T_FIXED64: case DP_T_SFIXED64:
        if (!read_int(r, f->type, &u)) return R_FAIL;
        put_le(r, u, 8);
        *zero = u == 0;
        return R_OK;
    case DP_T_BOOL:
        if (r->p < r->end && *r->p == 't') {
            if (!lit(r, "true", 4)) return R_FAIL;
            put_varint(r, 1);
            return R_OK;
        }
        if (r->p < r->end && *r->p == 'f') {
            if (!lit(r, "false", 5)) return R_FAIL;
            put_varint(r, 0);
            *zero = 1;
            return R_OK;
        }
        return fail(r, "expected a boolean, got %s", what(r));
    case DP_T_FLOAT: case DP_T_DOUBLE: {
        double d;
        if (!read_real(r, f->type == DP_T_FLOAT, &d)) return R_FAIL;
        if (f->type == DP_T_FLOAT) {
            float x = (float)d;
            uint32_t b = UINT32_C(0x7fc00000);
            if (d == d) memcpy(&b, &x, 4);
            put_le(r, b, 4);
            *zero = b == 0;
        } else {
            uint64_t b = UINT64_C(0x7ff8000000000000);
            if (d == d) memcpy(&b, &d, 8);
            put_le(r, b, 8);
            *zero = b == 0;
        }
        return R_OK;
    }
    case DP_T_STRING: case DP_T_BYTES: {
        const unsigned char *at = r->p, *s;
        size_t n;
        if (r->p >= r->end || *r->p != '"') return fail(r, "expected a string, got %s", what(r));
        if (!read_string(r, &s, &n)) return R_FAIL;
        *zero = n == 0;
        if (f->type == DP_T_BYTES) return put_base64(r, at, s, n);
        put_varint(r, n);
        put_bytes(r, s, n);
        return R_OK;
    }
    case DP_T_ENUM: {
        const dp_enum *e = &r->S->enums[f->sub];
        const unsigned char *at = r->p;
        if (r->p < r->end && *r->p == '"') {
            const unsigned char *s;
            size_t n;
            if (!read_string(r, &s, &n)) return R_FAIL;
            int i = dp_enum_find_name(e, (const char *)s, n);
            if (i < 0) {
                if (r->o.ignore_unknown) return R_SKIP;
                return failat(r, at, "unknown value '%s' for enum %s",
                              dp_jpushl(r->L, (const char *)s, n > 60 ? 60 : n), e->name);
            }
            put_varint(r, (uint64_t)(int64_t)e->values[i].number);
            *zero = e->values[i].number == 0;
            return R_OK;
        }
        if (r->p < r->end && *r->p == 'n' && dp_is_null_enum(e)) {
            if (!lit(r, "null", 4)) return R_FAIL;
            put_varint(r, 0);
            *zero = 1;
            return R_OK;
        }
        if (r->p >= r->end || !(*r->p == '-' || (*r->p >= '0' && *r->p <= '9')))
            return fail(r, "expected an enum name or number, got %s", what(r));
        if (!read_int(r, DP_T_INT32, &u)) return R_FAIL;
        if (e->closed && dp_enum_find(e, (int32_t)u) < 0) {
            if (r->o.ignore_unknown) return R_SKIP;
            return failat(r, at, "unknown value %d for closed enum %s", (int)(int32_t)u, e->name);
        }
        put_varint(r, (uint64_t)(int64_t)(int32_t)u);
        *zero = u == 0;
        return R_OK;
    }
    }
    return fail(r, "unsupported field type");
}

/* ---- fields */

static int is_value_msg(const jr *r, const dp_field *f) {
    return f->type == DP_T_MESSAGE && r->S->msgs[f->sub].wkt == DP_WKT_VALUE;
}

/* Writes one element of field f (tag included unless packed), read from
   the input. Returns R_OK, R_SKIP (nothing kept) or R_FAIL. omit_zero: drop
   an implicit-presence zero. */
static int put_elem(jr *r, const dp_field *f, int packed, int omit_zero) {
    size_t start = r->out->len;
    if (f->type == DP_T_MESSAGE || f->type == DP_T_GROUP) {
        ws(r);
        if (r->p < r->end && *r->p == 'n' && !is_value_msg(r, f))
            return fail(r, "null is not a message here");
        if (f->type == DP_T_GROUP) {
            put_tag(r, f->number, DP_WT_SGROUP);
            if (!parse_msg(r, &r->S->msgs[f->sub])) return R_FAIL;
            put_tag(r, f->number, DP_WT_EGROUP);
            return R_OK;
        }
        put_ftag(r, f);
        size_t mark = begin_len(r);
        if (!parse_msg(r, &r->S->msgs[f->sub])) return R_FAIL;
        end_len(r, mark);
        return R_OK;
    }
    if (!packed) put_ftag(r, f);
    int zero;
    int rc = put_scalar(r, f, &zero);
    if (rc == R_SKIP || (rc == R_OK && omit_zero && zero)) r->out->len = start;
    return rc;
}

/* Reads the array for repeated field f. */
static int put_array(jr *r, const dp_field *f) {
    dp_pathel *pe = &r->path[r->depth];
    if (!expect_ch(r, '[')) return 0;
    ws(r);
    if (r->p < r->end && *r->p == ']') { r->p++; return 1; }
    int packed = (f->flags & DPF_PACKED) != 0;
    size_t mark = 0, start = r->out->len;
    if (packed) {
        put_tag(r, f->number, DP_WT_LEN);
        mark = begin_len(r);
    }
    for (int64_t i = 1;; i++) {
        pe->kind = DP_PK_INDEX;
        pe->i = i;
        ws(r);
        if (r->p < r->end && *r->p == 'n' && !is_value_msg(r, f))
            return fail(r, "null is not allowed in a repeated field");
        if (!put_elem(r, f, packed, 0)) return 0;
        ws(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (!expect_ch(r, ']')) return 0;
        break;
    }
    pe->kind = DP_PK_NONE;
    if (packed) {
        if (r->out->len == mark + 1) r->out->len = start;   /* every element skipped */
        else end_len(r, mark);
    }
    return 1;
}

static int jmk_cmp(const void *a, const void *b, const unsigned char *base) {
    const jmk *x = a, *y = b;
    if (x->str) {
        size_t n = x->kn < y->kn ? x->kn : y->kn;
        int c = memcmp(base + x->koff, base + y->koff, n);
        if (c) return c;
        return x->kn < y->kn ? -1 : x->kn > y->kn;
    }
    if (x->neg != y->neg) return x->neg ? -1 : 1;
    return x->u < y->u ? -1 : x->u > y->u;
}

/* sorts n entries at k by key (insertion sort for few, else a merge sort
   through tmp); returns 0 when two keys are equal */
static int sort_keys(jmk *k, size_t n, jmk *tmp, const unsigned char *base) {
    if (n < 2) return 1;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            jmk x = k[i];
            size_t j = i;
            while (j > 0 && jmk_cmp(&k[j - 1], &x, base) > 0) { k[j] = k[j - 1]; j--; }
            k[j] = x;
        }
    } else {
        size_t h = n / 2;
        sort_keys(k, h, tmp, base);
        sort_keys(k + h, n - h, tmp, base);
        size_t i = 0, j = h, o = 0;
        while (i < h && j < n) tmp[o++] = jmk_cmp(&k[i], &k[j], base) <= 0 ? k[i++] : k[j++];
        while (i < h) tmp[o++] = k[i++];
        while (j < n) tmp[o++] = k[j++];
        memcpy(k, tmp, n * sizeof(jmk));
    }
    for (size_t i = 1; i < n; i++)
        if (jmk_cmp(&k[i - 1], &k[i], base) == 0) return 0;
    return 1;
}

/* Puts the regions [off, off+len) of the n items (stride bytes apart,
   offsets at member offoff) of out[start..end) in their array order: the
   region is copied to tmp and written back. */
static void reorder(jr *r, size_t start, const unsigned char *items, size_t n, size_t stride,
                    size_t offoff) {
    size_t total = r->out->len - start;
    dp_jbuf *t = &r->sc->b[DP_JB_TMP];
    t->len = 0;
    unsigned char *tp = dp_jbuf_room(r->L, r->sc, t, total);
    memcpy(tp, r->out->p + start, total);
    size_t o = start;
    for (size_t i = 0; i < n; i++) {
        const size_t *ol = (const size_t *)(const void *)(items + i * stride + offoff);
        memcpy(r->out->p + o, tp + (ol[0] - start), ol[1]);
        o += ol[1];
    }
}

/* Reads a map key of type kf from s[0..n) into k. */
static int map_key(jr *r, const unsigned char *at, const dp_field *kf, const unsigned char *s,
                   size_t n, jmk *k) {
    k->str = kf->type == DP_T_STRING;
    k->neg = 0;
    k->u = 0;
    if (k->str) return 1;
    if (kf->type == DP_T_BOOL) {
        if (n == 4 && memcmp(s, "true", 4) == 0) k->u = 1;
        else if (!(n == 5 && memcmp(s, "false", 5) == 0))
            return failat(r, at, "map key '%s' is not a boolean",
                          dp_jpushl(r->L, (const char *)s, n > 40 ? 40 : n));
        return 1;
    }
    int isint;
    if (!n || number_len(s, n, &isint) != n || !isint)
        return failat(r, at, "map key '%s' is not an integer",
                      dp_jpushl(r->L, (const char *)s, n > 40 ? 40 : n));
    if (!text_int(r, at, s, n, 1, kf->type, &k->u)) return 0;
    k->neg = !isuns(kf->type) && (int64_t)k->u < 0;
    return 1;
}

/* Reads the object for map field f: entries sorted by key. */
static int put_map(jr *r, const dp_field *f) {
    lua_State *L = r->L;
    const dp_msg *em = &r->S->msgs[f->sub];
    const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
    dp_pathel *pe = &r->path[r->depth];
    if (!expect_ch(r, '{')) return 0;
    ws(r);
    if (r->p < r->end && *r->p == '}') { r->p++; return 1; }
    size_t start = r->out->len, stk0 = r->stk->len;
    size_t kbase = (r->stk->len + sizeof(jmk) - 1) / sizeof(jmk) * sizeof(jmk);
    dp_jbuf_room(L, r->sc, r->stk, kbase - r->stk->len + sizeof(jmk));
    r->stk->len = kbase;
    size_t cnt = 0;
    int sorted = 1;
    for (;;) {
        ws(r);
        const unsigned char *at = r->p, *s;
        size_t n;
        if (r->p >= r->end || *r->p != '"') return fail(r, "expected a map key, got %s", what(r));
        if (!read_string(r, &s, &n)) return 0;
        jmk k;
        if (!map_key(r, at, kf, s, n, &k)) return 0;
        int pushed = 0;
        if (kf->type == DP_T_STRING) {
            if (s == r->str->p) {                      /* keep an unescaped copy */
                s = (const unsigned char *)dp_jpushl(L, (const char *)s, n);   /* +1 */
                pushed = 1;
            }
            pe->kind = DP_PK_SKEY;
            pe->s = (const char *)s;
            pe->n = n;
        } else if (kf->type == DP_T_BOOL) {
            pe->kind = DP_PK_BKEY;
            pe->i = (int64_t)k.u;
        } else {
            pe->kind = DP_PK_IKEY;
            pe->i = (int64_t)k.u;
        }
        if (!expect_ch(r, ':')) return 0;
        k.off = r->out->len;
        put_ftag(r, f);
        size_t mark = begin_len(r);
        put_ftag(r, kf);
        if (k.str) {
            put_varint(r, n);
            k.koff = r->out->len;
            k.kn = n;
            put_bytes(r, s, n);
        } else if (kf->type == DP_T_SINT32 || kf->type == DP_T_SINT64) {
            uint64_t u = k.u;
            put_varint(r, kf->type == DP_T_SINT32
                              ? (uint32_t)(((uint32_t)u << 1) ^ (uint32_t)((int32_t)u >> 31))
                              : (u << 1) ^ (uint64_t)((int64_t)u >> 63));
        } else if (kf->type == DP_T_FIXED32 || kf->type == DP_T_SFIXED32) {
            put_le(r, k.u, 4);
        } else if (kf->type == DP_T_FIXED64 || kf->type == DP_T_SFIXED64) {
            put_le(r, k.u, 8);
        } else {
            put_varint(r, kf->type == DP_T_INT32 ? (uint64_t)(int64_t)(int32_t)k.u : k.u);
        }
        ws(r);
        if (r->p < r->end && *r->p == 'n' && !is_value_msg(r, vf) &&
            !(vf->type == DP_T_ENUM && dp_is_null_enum(&r->S->enums[vf->sub])))
            return fail(r, "a map value cannot be null");
        int rc = put_elem(r, vf, 0, 0);
        if (!rc) return 0;
        if (rc == R_SKIP) {
            r->out->len = k.off;
        } else {
            size_t before = r->out->len;
            end_len(r, mark);
            k.koff += r->out->len - before;           /* the body moved with a long length */
            k.len = r->out->len - k.off;
            unsigned char *d = dp_jbuf_room(L, r->sc, r->stk, sizeof(jmk));
            memcpy(d, &k, sizeof k);
            r->stk->len += sizeof(jmk);
            if (cnt && sorted) {
                const jmk *prev = (const jmk *)(const void *)(r->stk->p + kbase) + cnt - 1;
                if (jmk_cmp(prev, &k, r->out->p) >= 0) sorted = 0;
            }
            cnt++;
        }
        if (pushed) lua_pop(L, 1);
        ws(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (!expect_ch(r, '}')) return 0;
        break;
    }
    pe->kind = DP_PK_NONE;
    if (!sorted) {
        dp_jbuf_room(L, r->sc, r->stk, cnt * sizeof(jmk));
        jmk *keys = (jmk *)(void *)(r->stk->p + kbase);
        if (!sort_keys(keys, cnt, keys + cnt, r->out->p))
            return fail(r, "a map key appears twice");
        reorder(r, start, (const unsigned char *)keys, cnt, sizeof(jmk), offsetof(jmk, off));
    }
    r->stk->len = stk0;                                /* the caller's extents end there */
    return 1;
}

/* Reads the value of field f (the member's value, after ':'). */
static int put_member(jr *r, const dp_field *f) {
    ws(r);
    if (r->p < r->end && *r->p == 'n') {
        /* null: absent, except for Value and NullValue */
        if (!(f->flags & DPF_REPEATED) && is_value_msg(r, f)) return put_elem(r, f, 0, 0) != R_FAIL;
        if (!(f->flags & DPF_REPEATED) && f->type == DP_T_ENUM &&
            dp_is_null_enum(&r->S->enums[f->sub]))
            return put_elem(r, f, 0, !(f->flags & DPF_PRESENCE)) != R_FAIL;
        return lit(r, "null", 4);
    }
    if (f->flags & DPF_MAP) return put_map(r, f);
    if (f->flags & DPF_REPEATED) return put_array(r, f);
    return put_elem(r, f, 0, !(f->flags & DPF_PRESENCE)) != R_FAIL;
}

/* the field of m named s[0..n): JSON name first, then the proto name */
static const dp_field *find_json_field(const dp_msg *m, const unsigned char *s, size_t n) {
    for (uint32_t i = dp_name_hash((const char *)s, n) & m->hmask;; i = (i + 1) & m->hmask) {
        uint16_t k = m->byjson[i];
        if (!k) break;
        const dp_field *f = &m->fields[k - 1];
        if (f->jnamelen == n && memcmp(f->jname, s, n) == 0) return f;
    }
    return dp_find_field_by_name(m, (const char *)s, n);
}

static int seg_cmp(const void *a, const void *b) {
    uint32_t x = ((const jseg *)a)->num, y = ((const jseg *)b)->num;
    return x < y ? -1 : x > y;
}

/* Reads the members of an object for message m up to and including '}'
   (the '{' is read). skip_type: an Any's "@type" member is skipped. */
static int parse_members(jr *r, const dp_msg *m, int skip_type) {
    lua_State *L = r->L;
    if (m->jconf[0] >= 0)
        return fail(r, "fields '%s' and '%s' of %s have the same JSON name '%s'",
                    m->fields[m->jconf[0]].cname, m->fields[m->jconf[1]].cname, m->name,
                    m->fields[m->jconf[0]].jname);
    size_t start = r->out->len;
    /* seen fields and oneofs, then the member extents */
    size_t nbits = m->nfields + m->noneofs;
    size_t sbase = r->stk->len;
    size_t seen_bytes = (nbits + 8) / 8;
    size_t segbase = (sbase + seen_bytes + sizeof(jseg) - 1) / sizeof(jseg) * sizeof(jseg);
    dp_jbuf_room(L, r->sc, r->stk, segbase - sbase + sizeof(jseg));
    memset(r->stk->p + sbase, 0, seen_bytes);
    r->stk->len = segbase;
    size_t cnt = 0;
    int sorted = 1;
    uint32_t prevnum = 0;
    dp_pathel *pe = &r->path[r->depth];
    ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        r->stk->len = sbase;
        return 1;
    }
    for (;;) {
        ws(r);
        const unsigned char *at = r->p, *s;
        size_t n;
        if (r->p >= r->end || *r->p != '"') return fail(r, "expected a member name, got %s", what(r));
        if (!read_string(r, &s, &n)) return 0;
        if (!expect_ch(r, ':')) return 0;
        const dp_field *f = find_json_field(m, s, n);
        if (!f) {
            if ((skip_type && n == 5 && memcmp(s, "@type", 5) == 0) || r->o.ignore_unknown) {
                if (!skip_value(r, r->nest)) return 0;
                goto next;
            }
            return failat(r, at, "no field named '%s' in %s",
                          dp_jpushl(L, (const char *)s, n > 60 ? 60 : n), m->name);
        }
        {
            uint32_t fi = (uint32_t)(f - m->fields);
            unsigned char *seen = r->stk->p + sbase;
            if (seen[fi / 8] & (1u << (fi % 8)))
                return failat(r, at, "field '%s' appears twice", f->cname);
            seen[fi / 8] |= (unsigned char)(1u << (fi % 8));
            ws(r);
            /* a oneof member set to null is absent: it sets nothing */
            int null = r->p < r->end && *r->p == 'n' && !is_value_msg(r, f) &&
                       !(f->type == DP_T_ENUM && dp_is_null_enum(&r->S->enums[f->sub]));
            if (f->oneof >= 0 && !null) {
                uint32_t ob = m->nfields + (uint32_t)f->oneof;
                if (seen[ob / 8] & (1u << (ob % 8)))
                    return failat(r, at, "a second member of oneof '%s' ('%s')",
                                  m->oneof_names[f->oneof], f->cname);
                seen[ob / 8] |= (unsigned char)(1u << (ob % 8));
            }
            size_t off = r->out->len;
            pe->f = f;
            pe->kind = DP_PK_NONE;
            if (!put_member(r, f)) return 0;
            pe->f = NULL;
            if (r->out->len > off) {
                jseg g = {f->number, off, r->out->len - off};
                memcpy(dp_jbuf_room(L, r->sc, r->stk, sizeof g), &g, sizeof g);
                r->stk->len += sizeof g;
                if (cnt && f->number < prevnum) sorted = 0;
                prevnum = f->number;
                cnt++;
            }
        }
    next:
        ws(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (!expect_ch(r, '}')) return 0;
        break;
    }
    if (!sorted) {
        jseg *segs = (jseg *)(void *)(r->stk->p + segbase);
        qsort(segs, cnt, sizeof(jseg), seg_cmp);
        reorder(r, start, (const unsigned char *)segs, cnt, sizeof(jseg), offsetof(jseg, off));
    }
    r->stk->len = sbase;
    return 1;
}

/* ---- well-known types */

static int digits(const unsigned char *s, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* writes int64 field 1 and int32 field 2 (zeros omitted) */
static void put_secs_nanos(jr *r, int64_t secs, int32_t nanos) {
    if (secs) { put_tag(r, 1, DP_WT_VARINT); put_varint(r, (uint64_t)secs); }
    if (nanos) { put_tag(r, 2, DP_WT_VARINT); put_varint(r, (uint64_t)(int64_t)nanos); }
}

/* fraction digits at s (after '.'): up to 9, as nanos; returns count */
static int frac_nanos(const unsigned char *s, const unsigned char *e, int32_t *nanos) {
    int k = 0;
    int32_t v = 0;
    while (s + k < e && s[k] >= '0' && s[k] <= '9' && k < 9) v = v * 10 + (s[k++] - '0');
    if (s + k < e && s[k] >= '0' && s[k] <= '9') return -1;     /* more than 9 */
    for (int i = k; i < 9; i++) v *= 10;
    *nanos = v;
    return k;
}

static int parse_timestamp(jr *r) {
    const unsigned char *at = r->p, *s;
    size_t n;
    if (r->p >= r->end || *r->p != '"') return fail(r, "expected a Timestamp string, got %s", what(r));
    if (!read_string(r, &s, &n)) return 0;
    const unsigned char *e = s + n;
    int Y, M, D, h, mi, sec;
    if (n < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        goto bad;
    const unsigned char *q = s + 19;
    int32_t nanos = 0;
    if (q < e && *q == '.') {
        int k = frac_nanos(q + 1, e, &nanos);
        if (k <= 0) goto bad;
        q += 1 + k;
    }
    int64_t off = 0;
    if (q < e && *q == 'Z') {
        q++;
    } else if (q < e && (*q == '+' || *q == '-') && e - q >= 6) {
        int oh, om;
        if (!digits(q + 1, 2, &oh) || q[3] != ':' || !digits(q + 4, 2, &om) || oh > 23 || om > 59)
            goto bad;
        off = (int64_t)(oh * 3600 + om * 60) * (*q == '-' ? -1 : 1);
        q += 6;
    } else {
        goto bad;
    }
    if (q != e || Y < 1 || M < 1 || M > 12 || D < 1 || h > 23 || mi > 59 || sec > 59) goto bad;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap)) goto bad;
    int64_t secs = dp_days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 +
                   sec - off;
    if (secs < DP_TS_MIN || secs > DP_TS_MAX)
        return failat(r, at, "Timestamp out of range (years 1 to 9999)");
    put_secs_nanos(r, secs, nanos);
    return 1;
bad:
    return failat(r, at, "'%s' is not an RFC 3339 timestamp",
                  dp_jpushl(r->L, (const char *)s, n > 60 ? 60 : n));
}

static int parse_duration(jr *r) {
    const unsigned char *at = r->p, *s;
    size_t n;
    if (r->p >= r->end || *r->p != '"') return fail(r, "expected a Duration string, got %s", what(r));
    if (!read_string(r, &s, &n)) return 0;
    const unsigned char *q = s, *e = s + n;
    int neg = 0;
    if (q < e && *q == '-') { neg = 1; q++; }
    if (q >= e || *q < '0' || *q > '9') goto bad;
    int64_t secs = 0;
    while (q < e && *q >= '0' && *q <= '9') {
        if (secs > DP_DUR_MAX) goto range;
        secs = secs * 10 + (*q++ - '0');
    }
    int32_t nanos = 0;
    if (q < e && *q == '.') {
        int k = frac_nanos(q + 1, e, &nanos);
        if (k <= 0) goto bad;
        q += 1 + k;
    }
    if (q + 1 != e || *q != 's') goto bad;
    if (secs > DP_DUR_MAX) goto range;
    if (neg) { secs = -secs; nanos = -nanos; }
    put_secs_nanos(r, secs, nanos);
    return 1;
range:
    return failat(r, at, "Duration out of range (at most 315576000000 seconds)");
bad:
    return failat(r, at, "'%s' is not a Duration (like \"1.5s\")",
                  dp_jpushl(r->L, (const char *)s, n > 60 ? 60 : n));
}

static int parse_fieldmask(jr *r) {
    const unsigned char *at = r->p, *s;
    size_t n;
    if (r->p >= r->end || *r->p != '"') return fail(r, "expected a FieldMask string, got %s", what(r));
    if (!read_string(r, &s, &n)) return 0;
    const unsigned char *q = s, *e = s + n;
    /* "" has no paths; otherwise every ','-separated piece is one, empty or not */
    while (n) {
        const unsigned char *c = q;
        while (c < e && *c != ',') c++;
        put_tag(r, 1, DP_WT_LEN);
        size_t mark = begin_len(r);
        for (const unsigned char *x = q; x < c; x++) {
            if (*x == '_')
                return failat(r, at, "FieldMask path '%s' contains '_' (paths are lowerCamel)",
                              dp_jpushl(r->L, (const char *)q, (size_t)(c - q)));
            if (*x >= 'A' && *x <= 'Z') {
                unsigned char two[2] = {'_', (unsigned char)(*x - 'A' + 'a')};
                put_bytes(r, two, 2);
            } else {
                put_bytes(r, x, 1);
            }
        }
        end_len(r, mark);
        if (c == e) break;
        q = c + 1;
    }
    return 1;
}

/* Value: any JSON value */
static int parse_value(jr *r, const dp_msg *m) {
    ws(r);
    if (r->p >= r->end) return fail(r, "unexpected end of input");
    const dp_field *f;
    switch (*r->p) {
    case 'n':
        if (!lit(r, "null", 4)) return 0;
        put_tag(r, 1, DP_WT_VARINT);
        put_varint(r, 0);
        return 1;
    case 't': case 'f':
        put_tag(r, 4, DP_WT_VARINT);
        put_varint(r, *r->p == 't');
        return *r->p == 't' ? lit(r, "true", 4) : lit(r, "false", 5);
    case '"': {
        const unsigned char *s;
        size_t n;
        if (!read_string(r, &s, &n)) return 0;
        put_tag(r, 3, DP_WT_LEN);
        put_varint(r, n);
        put_bytes(r, s, n);
        return 1;
    }
    case '{': f = dp_find_field(m, 5); break;
    case '[': f = dp_find_field(m, 6); break;
    default: {
        double d;
        if (!read_real(r, 0, &d)) return 0;
        put_tag(r, 2, DP_WT_I64);
        uint64_t b;
        memcpy(&b, &d, 8);
        put_le(r, b, 8);
        return 1;
    }
    }
    if (!f) return fail(r, "malformed google.protobuf.Value in the schema");
    r->path[r->depth].f = f;
        r->path[r->depth].kind = DP_PK_NONE;
    int rc = put_elem(r, f, 0, 0);
    r->path[r->depth].f = NULL;
    r->path[r->depth].kind = DP_PK_NONE;
    return rc == R_OK;
}

/* Any: finds "@type" first, then reads the object as that type */
static int parse_any(jr *r) {
    lua_State *L = r->L;
    const unsigned char *obj = r->p, *s, *url = NULL, *at = r->p;
    size_t n, urln = 0;
    if (!expect_ch(r, '{')) return 0;
    ws(r);
    if (r->p < r->end && *r->p == '}') { r->p++; return 1; }
    /* pass 1: the "@type" member */
    int pushed = 0;
    for (;;) {
        ws(r);
        if (r->p >= r->end || *r->p != '"') return fail(r, "expected a member name, got %s", what(r));
        if (!read_string(r, &s, &n) || !expect_ch(r, ':')) return 0;
        if (n == 5 && memcmp(s, "@type", 5) == 0) {
            ws(r);
            if (url) return fail(r, "\"@type\" appears twice");
            at = r->p;
            if (r->p >= r->end || *r->p != '"') return fail(r, "\"@type\" must be a string");
            if (!read_string(r, &url, &urln)) return 0;
            url = (const unsigned char *)dp_jpushl(L, (const char *)url, urln);   /* +1 */
            pushed = 1;
        } else if (!skip_value(r, r->nest)) {
            return 0;
        }
        ws(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (!expect_ch(r, '}')) return 0;
        break;
    }
    const unsigned char *after = r->p;
    if (!url) return failat(r, obj, "an Any needs \"@type\"");
    const unsigned char *nm = url + urln;
    while (nm > url && nm[-1] != '/') nm--;
    if (nm == url || nm == url + urln)
        return failat(r, at, "Any type URL '%s' has no type name after '/'", (const char *)url);
    int32_t mi = dp_find_msg(r->S, (const char *)nm, (size_t)(url + urln - nm));
    if (mi < 0) return failat(r, at, "type '%s' of an Any is not in the schema", (const char *)nm);
    const dp_msg *am = &r->S->msgs[mi];
    put_tag(r, 1, DP_WT_LEN);
    put_varint(r, urln);
    put_bytes(r, url, urln);
    size_t vstart = r->out->len;
    put_tag(r, 2, DP_WT_LEN);
    size_t mark = begin_len(r);
    /* pass 2: the fields */
    r->p = obj;
    if (!expect_ch(r, '{')) return 0;
    if (am->wkt != DP_WKT_NONE && am->wkt != DP_WKT_EMPTY) {
        int got = 0;
        for (;;) {
            ws(r);
            if (!read_string(r, &s, &n) || !expect_ch(r, ':')) return 0;
            if (n == 5 && memcmp(s, "@type", 5) == 0) {
                if (!skip_value(r, r->nest)) return 0;
            } else if (n == 5 && memcmp(s, "value", 5) == 0) {
                got = 1;
                if (!parse_msg(r, am)) return 0;
            } else if (r->o.ignore_unknown) {
                if (!skip_value(r, r->nest)) return 0;
            } else {
                return fail(r, "an Any of %s holds only \"@type\" and \"value\"", am->name);
            }
            ws(r);
            if (r->p < r->end && *r->p == ',') { r->p++; continue; }
            if (!expect_ch(r, '}')) return 0;
            break;
        }
        (void)got;
    } else {
        r->depth++;
        r->path[r->depth].f = NULL;
    r->path[r->depth].kind = DP_PK_NONE;
        if (!parse_members(r, am, 1)) return 0;
        r->depth--;
    }
    if (r->out->len == mark + 1) r->out->len = vstart;      /* empty value: omitted */
    else end_len(r, mark);
    r->p = after;
    if (pushed) lua_pop(L, 1);
    return 1;
}

/* Reads the JSON value for message m (an object, or a well-known type's
   form) and writes its fields. */
static int parse_msg(jr *r, const dp_msg *m) {
    int counts = m->wkt != DP_WKT_VALUE;
    if (counts && r->nest >= r->o.max_depth)
        return fail(r, "nesting deeper than max_depth (%d)", r->o.max_depth);
    r->nest += counts;
    r->depth++;
    r->path[r->depth].f = NULL;
    r->path[r->depth].kind = DP_PK_NONE;
    ws(r);
    int ok;
    switch (m->wkt) {
    case DP_WKT_ANY: ok = parse_any(r); break;
    case DP_WKT_TIMESTAMP: ok = parse_timestamp(r); break;
    case DP_WKT_DURATION: ok = parse_duration(r); break;
    case DP_WKT_FIELDMASK: ok = parse_fieldmask(r); break;
    case DP_WKT_VALUE: ok = parse_value(r, m); break;
    case DP_WKT_STRUCT: {
        const dp_field *f = dp_find_field(m, 1);
        r->path[r->depth].f = f;
        r->path[r->depth].kind = DP_PK_NONE;
        ok = f && (f->flags & DPF_MAP) ? put_map(r, f) : fail(r, "malformed Struct in the schema");
        r->path[r->depth].f = NULL;
    r->path[r->depth].kind = DP_PK_NONE;
        break;
    }
    case DP_WKT_LISTVALUE: {
        const dp_field *f = dp_find_field(m, 1);
        r->path[r->depth].f = f;
        r->path[r->depth].kind = DP_PK_NONE;
        ok = f ? put_array(r, f) : fail(r, "malformed ListValue in the schema");
        r->path[r->depth].f = NULL;
    r->path[r->depth].kind = DP_PK_NONE;
        break;
    }
    case DP_WKT_WRAPPER: {
        const dp_field *f = dp_find_field(m, 1);
        if (!f) { ok = fail(r, "malformed wrapper in the schema"); break; }
        ok = put_elem(r, f, 0, 1) == R_OK;   /* an unknown enum cannot occur */
        break;
    }
    default:
        if (r->p >= r->end || *r->p != '{') {
            ok = fail(r, "expected an object for %s, got %s", m->name, what(r));
            break;
        }
        r->p++;
        ok = parse_members(r, m, 0);
    }
    if (!ok) return 0;
    r->depth--;
    r->nest -= counts;
    return 1;
}

/* ---- Lua methods */

static int from_json_call(lua_State *L, dp_schema *S, const dp_msg *m, int jidx,
                          int oidx) {
    if (lua_type(L, jidx) != LUA_TSTRING)
        luaL_error(L, "dynpb: from_json %s: JSON text expected, got %s", m->name,
                   luaL_typename(L, jidx));
    jr r;
    dp_json_opts(L, oidx, 0, &r.o);
    size_t len;
    const unsigned char *data = (const unsigned char *)lua_tolstring(L, jidx, &len);
    r.sc = dp_json_begin(L, "dynpb: from_json");          /* +1 scratch */
    r.L = L;
    r.S = S;
    r.out = &r.sc->b[DP_JB_OUT];
    r.stk = &r.sc->b[DP_JB_STK];
    r.str = &r.sc->b[DP_JB_STR];
    r.tname = m->name;
    r.base = r.p = data;
    r.end = data + len;
    r.depth = r.nest = 0;
    r.path[0].f = NULL;
    r.path[0].kind = DP_PK_NONE;
    int ok = parse_msg(&r, m);
    if (ok) {
        ws(&r);
        if (r.p < r.end) ok = fail(&r, "trailing characters after the JSON value");
    }
    return dp_json_end(L, ok, r.out);
}

int dp_l_schema_from_json(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    const dp_msg *m = dp_lookup_msg(L, S, 1, 2);
    lua_settop(L, 4);
    return from_json_call(L, S, m, 3, 4);
}

int dp_l_handle_from_json(lua_State *L) {
    const dp_msg *m;
    dp_schema *S = dp_check_handle(L, 1, &m);
    lua_settop(L, 3);
    return from_json_call(L, S, m, 2, 3);
}
