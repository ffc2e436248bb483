/*
 * json_encode.c -- protobuf bytes -> proto3 JSON text, straight from the
 * wire bytes with the compiled dp_msg tables (no Lua tables are built).
 *
 * One message is written in two steps: scan() lists its fields' values
 * (entries: field index, wire value or the extent of a length-delimited
 * body) on the scratch stack, checking the wire structure; the entries are
 * put in field order (stable: a stable sort only when the bytes were not
 * already in order), and then written field by field. This gives protobuf's
 * semantics for any valid input: the last value of a singular field wins,
 * several occurrences of a singular message merge, the last member of a
 * oneof wins, packed and unpacked repeated elements mix, a map's last entry
 * for a key wins. Fields are printed in field-number order, map entries in
 * key order. Unknown fields are not printed.
 *
 * Errors: the first failure pushes its message and every function returns 0
 * up to the method, which returns nil and that message.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* one value of a field, as scan() found it */
typedef struct jent {
    const unsigned char *p;   /* LEN/group: the body */
    uint64_t v;               /* varint/fixed: the value */
    uint32_t n;               /* LEN/group: body length */
    uint32_t fi;              /* field index in its message */
    uint32_t seq;             /* position in the bytes (stable order) */
    uint8_t wt;               /* wire type as read (LEN for a packed block) */
} jent;

/* one map entry, parsed */
typedef struct jmap {
    jent val;                 /* the value (wt 0xff: absent) */
    uint64_t ku;              /* integer/bool key (two's complement) */
    const unsigned char *ks;  /* string key */
    uint32_t kn;
    uint32_t seq;
    int kneg;                 /* signed key below zero */
} jmap;

typedef struct jw {
    lua_State *L;
    const dp_schema *S;
    dp_jscratch *sc;
    dp_jbuf *out;
    dp_jbuf *stk;             /* jent and jmap arrays, stacked by level */
    dp_jopts o;
    const char *tname;
    const unsigned char *base, *bend;   /* the input (byte offsets) */
    int depth;                /* message levels (the path) */
    int nest;                 /* nesting counted against max_depth: message
                                 levels but google.protobuf.Value's */
    int lvl;                  /* output nesting (indent) */
    dp_pathel path[2 * DP_MAX_MAX_DEPTH + 4];
} jw;

static int write_msg(jw *w, const dp_msg *m, const unsigned char *p, size_t n);
static int write_value(jw *w, const dp_field *f, const jent *e);

/* ---- errors */

/* [-0, +1] pushes the error message (at: where in the input, or NULL);
   returns 0 */
static int fail(jw *w, const unsigned char *at, const char *fmt, ...) {
    lua_State *L = w->L;
    va_list ap;
    /* the fields along the way: path[1..depth], levels without a field
       (well-known types, an Any's payload) left out; the path is not used
       after a failure, so it is compacted in place */
    int np = 0;
    for (int i = 1; i <= w->depth; i++)
        if (w->path[i].f) w->path[1 + np++] = w->path[i];
    dp_push_path(L, w->path + 1, np);
    const char *path = lua_tostring(L, -1);
    va_start(ap, fmt);
    const char *rule = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    char pos[48] = "";
    if (at && at >= w->base && at <= w->bend)
        snprintf(pos, sizeof pos, " at byte %llu", (unsigned long long)(at - w->base));
    if (*path)
        lua_pushfstring(L, "dynpb: to_json %s: field '%s': %s%s", w->tname, path, rule, pos);
    else
        lua_pushfstring(L, "dynpb: to_json %s: %s%s", w->tname, rule, pos);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 0;
}

/* ---- output */

static inline void out_put(jw *w, const void *s, size_t n) {
    unsigned char *d = dp_jbuf_room(w->L, w->sc, w->out, n);
    memcpy(d, s, n);
    w->out->len += n;
}
static inline void out_ch(jw *w, char ch) {
    unsigned char *d = dp_jbuf_room(w->L, w->sc, w->out, 1);
    *d = (unsigned char)ch;
    w->out->len++;
}
#define out_lit(w, s) out_put((w), (s), sizeof(s) - 1)

static void out_newline(jw *w, int lvl) {
    size_t n = 1 + (size_t)(w->o.indent * lvl);
    unsigned char *d = dp_jbuf_room(w->L, w->sc, w->out, n);
    d[0] = '\n';
    memset(d + 1, ' ', n - 1);
    w->out->len += n;
}

/* before an element of an object or array: the comma and indentation */
static inline void out_sep(jw *w, int *first) {
    if (!*first) out_ch(w, ',');
    *first = 0;
    if (w->o.indent) out_newline(w, w->lvl);
}
/* closes an object/array opened one level up */
static inline void out_close(jw *w, int first, char ch) {
    w->lvl--;
    if (w->o.indent && !first) out_newline(w, w->lvl);
    out_ch(w, ch);
}

/* writes s[0..n) as a JSON string; 0 if it is not valid UTF-8 */
static int out_string(jw *w, const unsigned char *s, size_t n) {
    if (!dp_utf8_valid(s, n)) return 0;
    /* worst case 6 bytes per byte */
    unsigned char *d = dp_jbuf_room(w->L, w->sc, w->out, 6 * n + 2);
    unsigned char *d0 = d;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') { *d++ = ch; continue; }
        *d++ = '\\';
        switch (ch) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        default:
            *d++ = 'u'; *d++ = '0'; *d++ = '0';
            *d++ = "0123456789abcdef"[ch >> 4];
            *d++ = "0123456789abcdef"[ch & 15];
        }
    }
    *d++ = '"';
    w->out->len += (size_t)(d - d0);
    return 1;
}

/* writes a member name (plain ASCII/UTF-8 from the schema) and ':' */
static void out_key(jw *w, int *first, const char *s, size_t n) {
    out_sep(w, first);
    unsigned char *d = dp_jbuf_room(w->L, w->sc, w->out, n + 4);
    *d++ = '"';
    memcpy(d, s, n);
    d += n;
    *d++ = '"';
    *d++ = ':';
    w->out->len += n + 3;
    if (w->o.indent) out_ch(w, ' ');
}

static void out_field_key(jw *w, int *first, const dp_field *f) {
    if (w->o.proto_names) out_key(w, first, f->cname, f->namelen);
    else out_key(w, first, f->jname, f->jnamelen);
}

static void out_base64(jw *w, const unsigned char *s, size_t n) {
    unsigned char *d = dp_jbuf_room(w->L, w->sc, w->out, (n + 2) / 3 * 4 + 2);
    unsigned char *d0 = d;
    *d++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *d++ = (unsigned char)dp_b64_chars[v >> 18];
        *d++ = (unsigned char)dp_b64_chars[(v >> 12) & 63];
        *d++ = (unsigned char)dp_b64_chars[(v >> 6) & 63];
        *d++ = (unsigned char)dp_b64_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *d++ = (unsigned char)dp_b64_chars[v >> 18];
        *d++ = (unsigned char)dp_b64_chars[(v >> 12) & 63];
        *d++ = '=';
        *d++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *d++ = (unsigned char)dp_b64_chars[v >> 18];
        *d++ = (unsigned char)dp_b64_chars[(v >> 12) & 63];
        *d++ = (unsigned char)dp_b64_chars[(v >> 6) & 63];
        *d++ = '=';
    }
    *d++ = '"';
    w->out->len += (size_t)(d - d0);
}

static void out_u64(jw *w, uint64_t v, int neg, int quote) {
    char b[24], *e = b + sizeof b, *q = e;
    do { *--q = (char)('0' + v % 10); v /= 10; } while (v);
    if (neg) *--q = '-';
    if (quote) out_ch(w, '"');
    out_put(w, q, (size_t)(e - q));
    if (quote) out_ch(w, '"');
}
static void out_i64(jw *w, int64_t v, int quote) {
    out_u64(w, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0, quote);
}

/* shortest text that reads back as the same double (or, single, float):
   %.{15,16,17}g (%.{6..9}g), the first that round-trips. For a normal
   double, %.15g is the shortest text whenever that has at most 15 digits
   (15-digit spacing is wider than the ulp); subnormal doubles search from
   one digit. Floats always start at 6 digits, as protobuf's runtimes print
   them (python's json_format included). -0 is written "-0.0" (a JSON
   reader taking "-0" as the integer 0 would lose the sign). */

/* fmt_real's common case without printf: d, of magnitude in [1e-4, 1e15)
   (1e6 when single), is the nearest double (float) to a decimal D = m /
   10^k of at most 15 (6) significant digits. Then the %.15g (%.6g) text
   of d is D itself, in fixed notation: d lies within half an ulp of D,
   and an ulp is under half the spacing of 15 (6) digit decimals; and that
   text reads back as d, so fmt_real's search stops there. Writes D (the
   fewest fraction digits: k is tried from 0 up, m is the nearest integer
   to d * 10^k) and returns its length; 0 when d is not such a number
   (fmt_real then prints it). The check: m / 10^k is one correctly
   rounded division of two exact doubles (k <= 19, m < 10^15), as strtod
   rounds D; single rounds that to float as fmt_real's check does. */
static const double dp_p10[20] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                  1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
static int fmt_short(char *b, double d, int single) {
    double a = fabs(d), top = single ? 1e6 : 1e15;
    if (!(a >= 1e-4 && a < top)) return 0;
    for (int k = 0; k < 20; k++) {
        double s = a * dp_p10[k];
        if (s >= top) return 0;                   /* more digits than the precision */
        uint64_t m = (uint64_t)(s + 0.5);         /* the nearest m, checked below */
        if ((double)m >= top) return 0;
        double q = (double)m / dp_p10[k];
        if (single ? (float)q != (float)a : q != a) continue;
        char t[48], *e = t + sizeof t, *p = e;
        if (k) {                                  /* k fraction digits, then the point */
            for (int i = 0; i < k; i++, m /= 10) *--p = (char)('0' + m % 10);
            *--p = '.';
        }
        do *--p = (char)('0' + m % 10); while (m /= 10);
        if (d < 0) *--p = '-';
        memcpy(b, p, (size_t)(e - p));
        return (int)(e - p);
    }
    return 0;
}

static int fmt_real(char *b, double d, int single) {
    int lo = single ? 6 : 15, hi = single ? 9 : 17;
    if (d == 0) {
        if (!signbit(d)) { b[0] = '0'; return 1; }
        memcpy(b, "-0.0", 4);
        return 4;
    }
    int fast = fmt_short(b, d, single);
    if (fast) return fast;
    if (!single && fabs(d) < DBL_MIN) lo = 1;
    int n = 0;
    for (int prec = lo; prec <= hi; prec++) {
        n = snprintf(b, 40, "%.*g", prec, d);
        double r = strtod(b, NULL);
        if (single ? (float)r == (float)d : r == d) break;
    }
    return n;
}

static void out_real(jw *w, double d, int single) {
    if (d != d) { out_lit(w, "\"NaN\""); return; }
    if (isinf(d)) {
        if (d > 0) out_lit(w, "\"Infinity\"");
        else out_lit(w, "\"-Infinity\"");
        return;
    }
    char b[40];
    int n = fmt_real(b, d, single);
    out_put(w, b, (size_t)n);
}

/* ---- scanning a message's bytes */

static inline jent *ents(jw *w) { return (jent *)(void *)w->stk->p; }

static jent *push_ent(jw *w) {
    dp_jbuf_room(w->L, w->sc, w->stk, sizeof(jent));
    jent *e = (jent *)(void *)(w->stk->p + w->stk->len);
    w->stk->len += sizeof(jent);
    return e;
}

static int ent_cmp(const void *a, const void *b) {
    const jent *x = a, *y = b;
    if (x->fi != y->fi) return x->fi < y->fi ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int wire_fail(jw *w, const unsigned char *at, dp_status st) {
    if (st == DP_ERR_DEPTH) return fail(w, at, "nesting deeper than max_depth (%d)", w->o.max_depth);
    return fail(w, at, "%s", dp_status_str(st));
}

/* Lists the fields of message m in p[0..n) on the stack (from entry index
   *first to *last), sorted by field, stable. Checks the wire structure. */
static int scan(jw *w, const dp_msg *m, const unsigned char *p, size_t n, size_t *first,
                size_t *last) {
    const unsigned char *end = p + n;
    /* entries start at a multiple of sizeof(jent) (a map's jmaps may lie below) */
    dp_jbuf_room(w->L, w->sc, w->stk, sizeof(jent));
    size_t b0 = (w->stk->len + sizeof(jent) - 1) / sizeof(jent);
    w->stk->len = b0 * sizeof(jent);
    uint32_t seq = 0, prev = 0;
    int sorted = 1;
    dp_status st;
    while (p < end) {
        const unsigned char *at = p;
        uint64_t tag, v = 0;
        if ((st = dp_read_varint(&p, end, &tag)) != DP_OK) return wire_fail(w, at, st);
        uint64_t num = tag >> 3;
        int wt = (int)(tag & 7);
        if (num == 0 || num > 536870911) return wire_fail(w, at, DP_ERR_FIELD_ZERO);
        if (wt == DP_WT_EGROUP) return wire_fail(w, at, DP_ERR_GROUP);
        const dp_field *f = dp_find_field(m, (uint32_t)num);
        if (!f) {                                     /* unknown: checked, not printed */
            if ((st = dp_skip_field(&p, end, (uint32_t)num, wt,
                                    w->o.max_depth - w->nest)) != DP_OK)
                return wire_fail(w, at, st);
            continue;
        }
        const unsigned char *body = NULL;
        uint32_t blen = 0;
        if (wt == f->wiretype) {
            switch (wt) {
            case DP_WT_VARINT:
                if ((st = dp_read_varint(&p, end, &v)) != DP_OK) return wire_fail(w, at, st);
                break;
            case DP_WT_I64:
                if (end - p < 8) return wire_fail(w, at, DP_ERR_TRUNCATED);
                for (int k = 7; k >= 0; k--) v = v << 8 | p[k];
                p += 8;
                break;
            case DP_WT_I32:
                if (end - p < 4) return wire_fail(w, at, DP_ERR_TRUNCATED);
                v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                    (uint64_t)p[3] << 24;
                p += 4;
                break;
            case DP_WT_LEN:
                goto len;
            case DP_WT_SGROUP: {
                const unsigned char *q = p;
                if ((st = dp_skip_field(&q, end, (uint32_t)num, wt,
                                        w->o.max_depth - w->nest)) != DP_OK)
                    return wire_fail(w, at, st);
                /* the body ends before the END_GROUP tag */
                uint64_t et = num << 3 | DP_WT_EGROUP;
                int k = 1;
                while (et >= 0x80) { et >>= 7; k++; }
                body = p;
                blen = (uint32_t)(q - p - k);
                p = q;
                break;
            }
            }
        } else if (wt == DP_WT_LEN && (f->flags & DPF_PACKABLE) && (f->flags & DPF_REPEATED)) {
        len:
            if ((st = dp_read_varint(&p, end, &v)) != DP_OK) return wire_fail(w, at, st);
            if (v > (uint64_t)(end - p)) return wire_fail(w, at, DP_ERR_LENGTH);
            if (v > UINT32_MAX) return wire_fail(w, at, DP_ERR_LENGTH);
            body = p;
            blen = (uint32_t)v;
            p += v;
            v = 0;
        } else {
            return wire_fail(w, at, DP_ERR_WIRETYPE);
        }
        uint32_t fi = (uint32_t)(f - m->fields);
        jent *e = push_ent(w);
        e->p = body;
        e->n = blen;
        e->v = v;
        e->fi = fi;
        e->seq = seq++;
        e->wt = (uint8_t)wt;
        if (fi < prev) sorted = 0;
        prev = fi;
    }
    size_t b1 = w->stk->len / sizeof(jent);
    if (!sorted) qsort(ents(w) + b0, b1 - b0, sizeof(jent), ent_cmp);
    *first = b0;
    *last = b1;
    return 1;
}

/* the last entry of field number num in [a, b), or NULL */
static const jent *last_of(jw *w, const dp_msg *m, size_t a, size_t b, uint32_t num) {
    const jent *r = NULL;
    for (size_t i = a; i < b; i++)
        if (m->fields[ents(w)[i].fi].number == num) r = &ents(w)[i];
    return r;
}

/* ---- scalars */

static int64_t zz64(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Writes one scalar value of field f (type not message/group). */
static int write_scalar(jw *w, const dp_field *f, uint64_t v, const unsigned char *p,
                        size_t n) {
    switch (f->type) {
    case DP_T_INT32: case DP_T_SFIXED32: out_i64(w, (int32_t)(uint32_t)v, 0); return 1;
    case DP_T_SINT32: out_i64(w, (int32_t)zz64((uint32_t)v), 0); return 1;
    case DP_T_UINT32: case DP_T_FIXED32: out_u64(w, (uint32_t)v, 0, 0); return 1;
    case DP_T_INT64: case DP_T_SFIXED64: out_i64(w, (int64_t)v, 1); return 1;
    case DP_T_SINT64: out_i64(w, zz64(v), 1); return 1;
    case DP_T_UINT64: case DP_T_FIXED64: out_u64(w, v, 0, 1); return 1;
    case DP_T_BOOL:
        if (v) out_lit(w, "true");
        else out_lit(w, "false");
        return 1;
    case DP_T_FLOAT: {
        float x;
        uint32_t b = (uint32_t)v;
        memcpy(&x, &b, 4);
        out_real(w, x, 1);
        return 1;
    }
    case DP_T_DOUBLE: {
        double x;
        memcpy(&x, &v, 8);
        out_real(w, x, 0);
        return 1;
    }
    case DP_T_ENUM: {
        const dp_enum *e = &w->S->enums[f->sub];
        int32_t x = (int32_t)(uint32_t)v;
        if (dp_is_null_enum(e)) { out_lit(w, "null"); return 1; }
        int i = w->o.enums_number ? -1 : dp_enum_find(e, x);
        if (i < 0) { out_i64(w, x, 0); return 1; }
        out_ch(w, '"');
        out_put(w, e->values[i].cname, strlen(e->values[i].cname));
        out_ch(w, '"');
        return 1;
    }
    case DP_T_STRING:
        if (!out_string(w, p, n)) return fail(w, p, "invalid UTF-8 in string");
        return 1;
    case DP_T_BYTES:
        out_base64(w, p, n);
        return 1;
    }
    return fail(w, NULL, "unsupported field type");
}

/* a value of a closed (proto2) enum field that the enum lacks: protobuf
   keeps it with the unknown fields, so JSON does not print it */
static inline int closed_unknown(const jw *w, const dp_field *f, uint64_t v) {
    return (f->flags & DPF_CLOSED_ENUM) && dp_enum_find(&w->S->enums[f->sub], (int32_t)v) < 0;
}

/* reads one packed element of f at *pp (< end) */
static int packed_elem(jw *w, const dp_field *f, const unsigned char **pp,
                       const unsigned char *end, uint64_t *v) {
    const unsigned char *p = *pp;
    dp_status st;
    *v = 0;
    switch (f->wiretype) {
    case DP_WT_VARINT:
        if ((st = dp_read_varint(&p, end, v)) != DP_OK) return wire_fail(w, p, st);
        break;
    case DP_WT_I64:
        if (end - p < 8) return wire_fail(w, p, DP_ERR_TRUNCATED);
        for (int k = 7; k >= 0; k--) *v = *v << 8 | p[k];
        p += 8;
        break;
    default:
        if (end - p < 4) return wire_fail(w, p, DP_ERR_TRUNCATED);
        *v = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
        p += 4;
    }
    *pp = p;
    return 1;
}

/* Writes the value of entry e of field f (one element). */
static int write_value(jw *w, const dp_field *f, const jent *e) {
    if (f->type == DP_T_MESSAGE || f->type == DP_T_GROUP)
        return write_msg(w, &w->S->msgs[f->sub], e->p, e->n);
    return write_scalar(w, f, e->v, e->p, e->n);
}

/* Writes a singular message field from entries [a, b) (more than one:
   protobuf merges them, as their bodies concatenated). */
static int write_merged(jw *w, const dp_field *f, size_t a, size_t b) {
    if (b - a == 1) {
        jent e = ents(w)[a];
        return write_value(w, f, &e);
    }
    lua_State *L = w->L;
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (size_t i = a; i < b; i++) luaL_addlstring(&lb, (const char *)ents(w)[i].p, ents(w)[i].n);
    luaL_pushresult(&lb);                              /* +1 body (kept on error) */
    size_t n;
    const unsigned char *s = (const unsigned char *)lua_tolstring(L, -1, &n);
    if (!write_msg(w, &w->S->msgs[f->sub], s, n)) return 0;
    lua_pop(L, 1);
    return 1;
}

/* ---- maps */

static int jmap_cmp(const void *a, const void *b) {
    const jmap *x = a, *y = b;
    if (x->ks || y->ks) {
        size_t n = x->kn < y->kn ? x->kn : y->kn;
        int r = memcmp(x->ks, y->ks, n);
        if (r) return r;
        if (x->kn != y->kn) return x->kn < y->kn ? -1 : 1;
    } else if (x->kneg != y->kneg) {
        return x->kneg ? -1 : 1;
    } else if (x->ku != y->ku) {
        return x->ku < y->ku ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* the key of a map entry as a comparable integer */
static void map_key_int(const dp_field *kf, uint64_t v, jmap *k) {
    k->kneg = 0;
    switch (kf->type) {
    case DP_T_INT32: case DP_T_SFIXED32:
        k->ku = (uint64_t)(int64_t)(int32_t)(uint32_t)v; k->kneg = (int32_t)(uint32_t)v < 0; break;
    case DP_T_SINT32: {
        int64_t x = (int32_t)zz64((uint32_t)v);
        k->ku = (uint64_t)x; k->kneg = x < 0; break;
    }
    case DP_T_INT64: case DP_T_SFIXED64: k->ku = v; k->kneg = (int64_t)v < 0; break;
    case DP_T_SINT64: k->ku = (uint64_t)zz64(v); k->kneg = zz64(v) < 0; break;
    case DP_T_UINT32: case DP_T_FIXED32: k->ku = (uint32_t)v; break;
    case DP_T_BOOL: k->ku = v != 0; break;
    default: k->ku = v;
    }
    /* signed negatives sort by their two's complement among negatives */
}

/* Writes map field f from its entries [a, b) as an object (sorted by key,
   the last entry of a key wins). */
static int write_map(jw *w, const dp_field *f, size_t a, size_t b, size_t *count) {
    const dp_msg *em = &w->S->msgs[f->sub];
    const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
    dp_pathel *pe = &w->path[w->depth];
    size_t cnt = b - a;
    /* parse every entry into a jmap on the stack, above the entries */
    size_t stk0 = w->stk->len, mbase = w->stk->len;
    dp_jbuf_room(w->L, w->sc, w->stk, cnt * sizeof(jmap) + sizeof(jmap));
    mbase = (mbase + sizeof(jmap) - 1) / sizeof(jmap) * sizeof(jmap);
    w->stk->len = mbase + cnt * sizeof(jmap);          /* the jmaps; scans go above */
    for (size_t i = 0; i < cnt; i++) {
        jent e = ents(w)[a + i];
        size_t x0, x1;
        size_t save = w->stk->len;
        w->depth++;
        w->path[w->depth].f = NULL;
    w->path[w->depth].kind = DP_PK_NONE;
        if (!scan(w, em, e.p, e.n, &x0, &x1)) return 0;
        w->depth--;
        jmap k;
        memset(&k, 0, sizeof k);
        k.seq = (uint32_t)i;
        k.val.wt = 0xff;
        for (size_t j = x0; j < x1; j++) {
            const jent *se = &ents(w)[j];
            if (em->fields[se->fi].number == 1) {
                if (kf->type == DP_T_STRING) {
                    k.ks = se->p;
                    k.kn = se->n;
                } else {
                    map_key_int(kf, se->v, &k);
                }
            } else {
                k.val = *se;
            }
        }
        if (kf->type == DP_T_STRING && !k.ks) k.ks = (const unsigned char *)"";
        w->stk->len = save;
        memcpy(w->stk->p + mbase + i * sizeof(jmap), &k, sizeof k);
    }
    jmap *mp = (jmap *)(void *)(w->stk->p + mbase);
    qsort(mp, cnt, sizeof(jmap), jmap_cmp);
    out_ch(w, '{');
    w->lvl++;
    int first = 1;
    size_t printed = 0;
    for (size_t i = 0; i < cnt; i++) {
        mp = (jmap *)(void *)(w->stk->p + mbase);
        jmap k = mp[i];
        if (i + 1 < cnt) {          /* a later entry of the same key wins */
            jmap nx = mp[i + 1];
            if (kf->type == DP_T_STRING ? (nx.kn == k.kn && memcmp(nx.ks, k.ks, k.kn) == 0)
                                        : (nx.ku == k.ku && nx.kneg == k.kneg))
                continue;
        }
        /* an entry whose value a closed enum lacks is an unknown field */
        if (k.val.wt != 0xff && k.val.wt != DP_WT_LEN && closed_unknown(w, vf, k.val.v)) continue;
        out_sep(w, &first);
        printed++;
        if (kf->type == DP_T_STRING) {
            pe->kind = DP_PK_SKEY;
            pe->s = (const char *)k.ks;
            pe->n = k.kn;
            if (!out_string(w, k.ks, k.kn)) return fail(w, k.ks, "invalid UTF-8 in map key");
        } else if (kf->type == DP_T_BOOL) {
            pe->kind = DP_PK_BKEY;
            pe->i = (int64_t)k.ku;
            if (k.ku) out_lit(w, "\"true\"");
            else out_lit(w, "\"false\"");
        } else {
            pe->kind = DP_PK_IKEY;
            pe->i = (int64_t)k.ku;
            if (k.kneg) out_i64(w, (int64_t)k.ku, 1);
            else out_u64(w, k.ku, 0, 1);
        }
        out_ch(w, ':');
        if (w->o.indent) out_ch(w, ' ');
        if (k.val.wt == 0xff) {                       /* absent value: its default */
            k.val.wt = vf->wiretype;
            k.val.p = (const unsigned char *)"";
            k.val.n = 0;
            k.val.v = vf->type == DP_T_ENUM ? (uint64_t)vf->def.i : 0;
        } else if (k.val.wt == DP_WT_LEN && (vf->flags & DPF_PACKABLE)) {
            return fail(w, k.val.p, "%s", dp_status_str(DP_ERR_WIRETYPE));
        }
        if (!write_value(w, vf, &k.val)) return 0;
    }
    pe->kind = DP_PK_NONE;
    out_close(w, first, '}');
    w->stk->len = stk0;
    if (count) *count = printed;
    return 1;
}

/* ---- fields of a message */

/* Writes repeated field f from entries [a, b) as an array. */
static int write_repeated(jw *w, const dp_field *f, size_t a, size_t b, size_t *count) {
    dp_pathel *pe = &w->path[w->depth];
    int first = 1;
    size_t cnt = 0;
    int64_t idx = 0;
    out_ch(w, '[');
    w->lvl++;
    for (size_t i = a; i < b; i++) {
        jent e = ents(w)[i];
        if (e.wt == DP_WT_LEN && f->wiretype != DP_WT_LEN) {     /* a packed block */
            const unsigned char *p = e.p, *end = e.p + e.n;
            while (p < end) {
                uint64_t v;
                pe->kind = DP_PK_INDEX;
                pe->i = ++idx;
                if (!packed_elem(w, f, &p, end, &v)) return 0;
                if (closed_unknown(w, f, v)) continue;
                out_sep(w, &first);
                cnt++;
                if (!write_scalar(w, f, v, NULL, 0)) return 0;
            }
            continue;
        }
        pe->kind = DP_PK_INDEX;
        pe->i = ++idx;
        if (closed_unknown(w, f, e.v)) continue;
        out_sep(w, &first);
        cnt++;
        if (!write_value(w, f, &e)) return 0;
    }
    pe->kind = DP_PK_NONE;
    out_close(w, first, ']');
    if (count) *count = cnt;
    return 1;
}

/* a field's value when absent, for emit_defaults */
static int write_default(jw *w, const dp_field *f) {
    if (f->flags & DPF_MAP) { out_lit(w, "{}"); return 1; }
    if (f->flags & DPF_REPEATED) { out_lit(w, "[]"); return 1; }
    jent e;
    memset(&e, 0, sizeof e);
    e.p = (const unsigned char *)"";
    if (f->type == DP_T_ENUM) e.v = (uint64_t)f->def.i;
    return write_scalar(w, f, e.v, e.p, 0);
}

/* the winning member of each oneof: the one whose last value came last */
#define DP_JW_ONEOFS 32

/* Writes the fields of m listed in entries [a, b) as members of an open
   object (*first: no member written yet). */
static int write_fields(jw *w, const dp_msg *m, size_t a, size_t b, int *first) {
    if (m->jconf[0] >= 0 && !w->o.proto_names)
        return fail(w, NULL, "fields '%s' and '%s' of %s have the same JSON name '%s'",
                    m->fields[m->jconf[0]].cname, m->fields[m->jconf[1]].cname, m->name,
                    m->fields[m->jconf[0]].jname);
    int32_t win[DP_JW_ONEOFS];
    uint32_t winseq[DP_JW_ONEOFS];
    if (m->noneofs) {
        for (uint32_t o = 0; o < m->noneofs && o < DP_JW_ONEOFS; o++) win[o] = -1;
        for (size_t i = a; i < b; i++) {
            const jent *e = &ents(w)[i];
            int32_t o = m->fields[e->fi].oneof;
            if (o >= 0 && o < DP_JW_ONEOFS && (win[o] < 0 || e->seq > winseq[o])) {
                win[o] = (int32_t)e->fi;
                winseq[o] = e->seq;
            }
        }
    }
    dp_pathel *pe = &w->path[w->depth];
    size_t k = a;
    for (uint32_t fi = 0; fi < m->nfields; fi++) {
        const dp_field *f = &m->fields[fi];
        size_t s = k;
        while (k < b && ents(w)[k].fi == fi) k++;
        /* a field without presence holding its zero (0, false, "", +0.0
           bitwise) is unset, whatever the bytes said */
        if (s < k && !(f->flags & (DPF_PRESENCE | DPF_REPEATED)) && f->type != DP_T_MESSAGE &&
            f->type != DP_T_GROUP) {
            const jent *e = &ents(w)[k - 1];
            if (e->wt == DP_WT_LEN ? e->n == 0 : e->v == 0) s = k;
        }
        if (s == k) {
            if (w->o.emit_defaults && !(f->flags & DPF_PRESENCE)) {
                out_field_key(w, first, f);
                if (!write_default(w, f)) return 0;
            }
            continue;
        }
        if (f->oneof >= 0) {
            int32_t o = f->oneof;
            if (o < DP_JW_ONEOFS) {
                if (win[o] != (int32_t)fi) continue;
            } else {                   /* many oneofs: look for a later member */
                uint32_t mine = ents(w)[k - 1].seq;
                int later = 0;
                for (size_t i = a; i < b && !later; i++)
                    later = m->fields[ents(w)[i].fi].oneof == o && ents(w)[i].fi != fi &&
                            ents(w)[i].seq > mine;
                if (later) continue;
            }
        }
        /* a singular scalar: the last value (of a closed enum: that it has) */
        size_t last = k;
        if (!(f->flags & DPF_REPEATED) && f->type != DP_T_MESSAGE && f->type != DP_T_GROUP) {
            while (last > s && closed_unknown(w, f, ents(w)[last - 1].v)) last--;
            if (last == s) continue;
        }
        pe->f = f;
        pe->kind = DP_PK_NONE;
        size_t mark = w->out->len;
        int was_first = *first;
        out_field_key(w, first, f);
        int ok;
        size_t count = 1;
        if (f->flags & DPF_MAP) ok = write_map(w, f, s, k, &count);
        else if (f->flags & DPF_REPEATED) ok = write_repeated(w, f, s, k, &count);
        else if (f->type == DP_T_MESSAGE || f->type == DP_T_GROUP) ok = write_merged(w, f, s, k);
        else {
            jent e = ents(w)[last - 1];
            ok = write_value(w, f, &e);
        }
        if (!ok) return 0;
        if (count == 0 && !w->o.emit_defaults) {   /* nothing in it after all: unset */
            w->out->len = mark;
            *first = was_first;
        }
    }
    pe->f = NULL;
    return 1;
}

/* ---- well-known types */

/* [-0, +1] pushes v's decimal text (for messages) */
static const char *i64str(jw *w, int64_t v) {
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return dp_jpushl(w->L, b, strlen(b));
}

static int write_timestamp(jw *w, int64_t secs, int64_t nanos) {
    if (secs < DP_TS_MIN || secs > DP_TS_MAX)
        return fail(w, NULL, "Timestamp seconds %s out of range (years 1 to 9999)",
                    i64str(w, secs));
    if (nanos < 0 || nanos > 999999999)
        return fail(w, NULL, "Timestamp nanos %s out of range", i64str(w, nanos));
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned mo, d;
    dp_civil_from_days(days, &y, &mo, &d);
    char b[64];
    int n = snprintf(b, sizeof b, "\"%04d-%02u-%02uT%02d:%02d:%02d", (int)y, mo, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    if (nanos) {
        if (nanos % 1000000 == 0) n += snprintf(b + n, sizeof b - (size_t)n, ".%03d", (int)(nanos / 1000000));
        else if (nanos % 1000 == 0) n += snprintf(b + n, sizeof b - (size_t)n, ".%06d", (int)(nanos / 1000));
        else n += snprintf(b + n, sizeof b - (size_t)n, ".%09d", (int)nanos);
    }
    n += snprintf(b + n, sizeof b - (size_t)n, "Z\"");
    out_put(w, b, (size_t)n);
    return 1;
}

static int write_duration(jw *w, int64_t secs, int64_t nanos) {
    if (secs < -DP_DUR_MAX || secs > DP_DUR_MAX)
        return fail(w, NULL, "Duration seconds %s out of range", i64str(w, secs));
    if (nanos < -999999999 || nanos > 999999999 || (secs > 0 && nanos < 0) ||
        (secs < 0 && nanos > 0))
        return fail(w, NULL, "Duration nanos %s out of range or of the wrong sign",
                    i64str(w, nanos));
    char b[64];
    int neg = secs < 0 || nanos < 0;
    if (secs < 0) secs = -secs;
    if (nanos < 0) nanos = -nanos;
    int n = snprintf(b, sizeof b, "\"%s%lld", neg ? "-" : "", (long long)secs);
    if (nanos) {
        if (nanos % 1000000 == 0) n += snprintf(b + n, sizeof b - (size_t)n, ".%03d", (int)(nanos / 1000000));
        else if (nanos % 1000 == 0) n += snprintf(b + n, sizeof b - (size_t)n, ".%06d", (int)(nanos / 1000));
        else n += snprintf(b + n, sizeof b - (size_t)n, ".%09d", (int)nanos);
    }
    n += snprintf(b + n, sizeof b - (size_t)n, "s\"");
    out_put(w, b, (size_t)n);
    return 1;
}

/* FieldMask: paths from snake_case to lowerCamel, joined by ',' */
static int write_fieldmask(jw *w, const dp_msg *m, size_t a, size_t b) {
    dp_jbuf *t = &w->sc->b[DP_JB_TMP];
    t->len = 0;
    int nth = 0;
    for (size_t i = a; i < b; i++) {
        const jent *e = &ents(w)[i];
        if (m->fields[e->fi].number != 1) continue;
        const unsigned char *s = e->p;
        unsigned char *d = dp_jbuf_room(w->L, w->sc, t, e->n + 1);
        size_t n = 0;
        if (nth++) d[n++] = ',';
        int up = 0;
        for (uint32_t j = 0; j < e->n; j++) {
            unsigned char ch = s[j];
            if (ch >= 'A' && ch <= 'Z')
                return fail(w, s, "FieldMask path '%s' has an upper-case letter",
                            dp_jpushl(w->L, (const char *)s, e->n));
            if (up) {
                if (!(ch >= 'a' && ch <= 'z'))
                    return fail(w, s, "FieldMask path '%s': '_' not followed by a lower-case "
                                      "letter", dp_jpushl(w->L, (const char *)s, e->n));
                d[n++] = (unsigned char)(ch - 'a' + 'A');
                up = 0;
            } else if (ch == '_') {
                up = 1;
            } else {
                d[n++] = ch;
            }
        }
        if (up)
            return fail(w, s, "FieldMask path '%s' ends with '_'",
                        dp_jpushl(w->L, (const char *)s, e->n));
        t->len += n;
    }
    if (!out_string(w, t->p ? t->p : (const unsigned char *)"", t->len))
        return fail(w, NULL, "invalid UTF-8 in FieldMask");
    return 1;
}

/* Any: {"@type": url, fields...} or {"@type": url, "value": <WKT JSON>} */
static int write_any(jw *w, const dp_msg *m, size_t a, size_t b) {
    const jent *te = last_of(w, m, a, b, 1), *ve = last_of(w, m, a, b, 2);
    jent t = te ? *te : (jent){0}, v = ve ? *ve : (jent){0};
    if (!te) t.p = (const unsigned char *)"";
    if (!ve) v.p = (const unsigned char *)"";      /* an empty payload */
    if (!te && !ve) { out_lit(w, "{}"); return 1; }
    if (!te || t.n == 0) return fail(w, v.p, "Any without a type URL");
    const unsigned char *nm = t.p + t.n;
    while (nm > t.p && nm[-1] != '/') nm--;
    lua_State *L = w->L;
    int32_t mi = dp_find_msg(w->S, (const char *)nm, (size_t)(t.p + t.n - nm));
    int found = mi >= 0;
    int first = 1;
    if (!found) {
        if (!w->o.any_raw)
            return fail(w, t.p, "type '%s' of an Any is not in the schema",
                        dp_jpushl(L, (const char *)t.p, t.n));
        out_ch(w, '{');
        w->lvl++;
        out_key(w, &first, "@type", 5);
        if (!out_string(w, t.p, t.n)) return fail(w, t.p, "invalid UTF-8 in Any type URL");
        out_key(w, &first, "@value", 6);
        out_base64(w, v.p, v.n);
        out_close(w, first, '}');
        return 1;
    }
    const dp_msg *am = &w->S->msgs[mi];
    out_ch(w, '{');
    w->lvl++;
    out_key(w, &first, "@type", 5);
    if (!out_string(w, t.p, t.n)) return fail(w, t.p, "invalid UTF-8 in Any type URL");
    if (am->wkt != DP_WKT_NONE && am->wkt != DP_WKT_EMPTY) {
        out_key(w, &first, "value", 5);
        if (!write_msg(w, am, v.p, v.n)) return 0;
    } else {
        if (w->nest >= w->o.max_depth)
            return fail(w, v.p, "nesting deeper than max_depth (%d)", w->o.max_depth);
        size_t x0, x1, save = w->stk->len;
        w->depth++;
        w->nest++;
        w->path[w->depth].f = NULL;
    w->path[w->depth].kind = DP_PK_NONE;
        if (!scan(w, am, v.p, v.n, &x0, &x1) || !write_fields(w, am, x0, x1, &first)) return 0;
        w->depth--;
        w->nest--;
        w->stk->len = save;
    }
    out_close(w, first, '}');
    return 1;
}

/* Value: the last member of its kind oneof */
static int write_wkt_value(jw *w, const dp_msg *m, size_t a, size_t b) {
    const jent *best = NULL;
    for (size_t i = a; i < b; i++) {
        const jent *e = &ents(w)[i];
        uint32_t num = m->fields[e->fi].number;
        if (num >= 1 && num <= 6 && (!best || e->seq > best->seq)) best = e;
    }
    if (!best) { out_lit(w, "null"); return 1; }
    jent e = *best;
    const dp_field *f = &m->fields[e.fi];
    w->path[w->depth].f = f;
        w->path[w->depth].kind = DP_PK_NONE;
    switch (f->number) {
    case 1: out_lit(w, "null"); break;
    case 2: {
        double x;
        memcpy(&x, &e.v, 8);
        if (x != x || isinf(x)) return fail(w, NULL, "a Value cannot hold NaN or Infinity in JSON");
        out_real(w, x, 0);
        break;
    }
    default:
        if (!write_value(w, f, &e)) return 0;
    }
    w->path[w->depth].f = NULL;
    w->path[w->depth].kind = DP_PK_NONE;
    return 1;
}

/* Writes message m from p[0..n): an object, or a well-known type's form. */
static int write_msg(jw *w, const dp_msg *m, const unsigned char *p, size_t n) {
    int counts = m->wkt != DP_WKT_VALUE;
    if (counts && w->nest >= w->o.max_depth)
        return fail(w, p, "nesting deeper than max_depth (%d)", w->o.max_depth);
    size_t save = w->stk->len, a, b;
    w->nest += counts;
    w->depth++;
    w->path[w->depth].f = NULL;
    w->path[w->depth].kind = DP_PK_NONE;
    if (!scan(w, m, p, n, &a, &b)) return 0;
    int ok = 1, first = 1;
    switch (m->wkt) {
    case DP_WKT_ANY: ok = write_any(w, m, a, b); break;
    case DP_WKT_TIMESTAMP: case DP_WKT_DURATION: {
        const jent *s = last_of(w, m, a, b, 1), *ns = last_of(w, m, a, b, 2);
        int64_t secs = s ? (int64_t)s->v : 0;
        int64_t nanos = ns ? (int64_t)(int32_t)(uint32_t)ns->v : 0;
        ok = m->wkt == DP_WKT_TIMESTAMP ? write_timestamp(w, secs, nanos)
                                        : write_duration(w, secs, nanos);
        break;
    }
    case DP_WKT_FIELDMASK: ok = write_fieldmask(w, m, a, b); break;
    case DP_WKT_STRUCT: {
        const dp_field *f = dp_find_field(m, 1);
        w->path[w->depth].f = f;
        w->path[w->depth].kind = DP_PK_NONE;
        ok = write_map(w, f, a, b, NULL);
        w->path[w->depth].f = NULL;
    w->path[w->depth].kind = DP_PK_NONE;
        break;
    }
    case DP_WKT_LISTVALUE: {
        const dp_field *f = dp_find_field(m, 1);
        w->path[w->depth].f = f;
        w->path[w->depth].kind = DP_PK_NONE;
        ok = write_repeated(w, f, a, b, NULL);
        w->path[w->depth].f = NULL;
    w->path[w->depth].kind = DP_PK_NONE;
        break;
    }
    case DP_WKT_VALUE: ok = write_wkt_value(w, m, a, b); break;
    case DP_WKT_WRAPPER: {
        const dp_field *f = dp_find_field(m, 1);
        const jent *e = last_of(w, m, a, b, 1);
        if (e) {
            jent c = *e;
            ok = write_value(w, f, &c);
        } else {
            ok = write_default(w, f);
        }
        break;
    }
    default:
        out_ch(w, '{');
        w->lvl++;
        ok = write_fields(w, m, a, b, &first);
        if (ok) out_close(w, first, '}');
    }
    if (!ok) return 0;
    w->depth--;
    w->nest -= counts;
    w->stk->len = save;
    return 1;
}

/* ---- Lua methods */

/* [-0, +1|2] the body of both to_json methods: pushes the text, or nil and
   the error message. bidx: the bytes, oidx: the options. */
static int to_json_call(lua_State *L, dp_schema *S, const dp_msg *m, int bidx,
                        int oidx) {
    if (lua_type(L, bidx) != LUA_TSTRING)
        luaL_error(L, "dynpb: to_json %s: bytes expected, got %s", m->name,
                   luaL_typename(L, bidx));
    jw w;
    dp_json_opts(L, oidx, 1, &w.o);
    size_t len;
    const unsigned char *data = (const unsigned char *)lua_tolstring(L, bidx, &len);
    w.sc = dp_json_begin(L, "dynpb: to_json");          /* +1 scratch */
    w.L = L;
    w.S = S;
    w.out = &w.sc->b[DP_JB_OUT];
    w.stk = &w.sc->b[DP_JB_STK];
    w.tname = m->name;
    w.base = data;
    w.bend = data + len;
    w.depth = w.nest = 0;
    w.lvl = 0;
    w.path[0].f = NULL;
    w.path[0].kind = DP_PK_NONE;
    return dp_json_end(L, write_msg(&w, m, data, len), w.out);
}

int dp_l_schema_to_json(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    const dp_msg *m = dp_lookup_msg(L, S, 1, 2);
    lua_settop(L, 4);
    return to_json_call(L, S, m, 3, 4);
}

int dp_l_handle_to_json(lua_State *L) {
    const dp_msg *m;
    dp_schema *S = dp_check_handle(L, 1, &m);
    lua_settop(L, 3);
    return to_json_call(L, S, m, 2, 3);
}
