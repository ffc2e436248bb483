/*
 * text_encode.c -- protobuf bytes -> protobuf text format, as protoc
 * --decode and Google's C++ TextFormat::Printer write it.
 *
 * The bytes are first decoded by the schema's own decoder (schema:decode
 * with int64 = "string", enums = "number"), so the wire rules (last value
 * wins, merged messages, packed and unpacked repeated) are the decoder's;
 * this file then prints that table in field-number order:
 *   - `name: value` per scalar, `name {` ... `}` per message, repeated
 *     fields as one entry per element, maps as entries sorted by key;
 *   - proto3 implicit-presence fields at their zero value are left out
 *     (a -0.0 is not zero: its bits are not);
 *   - groups are printed by their type name, enums by value name (a number
 *     without one stays a number);
 *   - strings and bytes C-escaped like protobuf's CEscape (\n \r \t \" \'
 *     \\, octal \ooo for every other byte outside 0x20..0x7e);
 *   - float/double as protobuf's SimpleFtoa/SimpleDtoa (%.6g / %.15g, or
 *     %.9g / %.17g when that does not read back), inf, -inf, nan;
 *   - google.protobuf.Any with a type.googleapis.com/ (or googleprod) URL
 *     naming a type of the schema whose value decodes: `[url] { ... }`
 *     (unless expand_any = false: protoc --decode does not expand);
 *   - extensions as [pkg.ext], MessageSet items as [pkg.Type];
 *   - print_unknown = true: unknown fields by number after the known ones
 *     (varint decimal, fixed32 0x%08x, fixed64 0x%016x, a length-delimited
 *     value as `N { ... }` when it parses as fields, else a quoted string).
 *
 * Output goes to a dp_tbuf (C memory in a userdata with __gc, so an error
 * raised half way leaks nothing).
 */
#include <errno.h>
#include <math.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynpb.h"

/* ---- the growable output buffer */

static int tbuf_gc(lua_State *L) {
    dp_tbuf *b = lua_touserdata(L, 1);
    if (b->p) b->alloc(b->ud, b->p, b->cap, 0);
    b->p = NULL;
    b->cap = b->n = 0;
    return 0;
}

dp_tbuf *dp_tbuf_new(lua_State *L) {
    dp_tbuf *b = dp_newudata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    b->alloc = lua_getallocf(L, &b->ud);
    if (luaL_newmetatable(L, "dynpb.tbuf")) {         /* +1 metatable */
        lua_pushcfunction(L, tbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                          /* -1 */
    return b;
}

void dp_tbuf_add(lua_State *L, dp_tbuf *b, const void *s, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) {
            if (cap > ((size_t)-1) / 2) luaL_error(L, "dynpb: text too large");
            cap *= 2;
        }
        char *p = b->alloc(b->ud, b->p, b->cap, cap);
        if (!p) luaL_error(L, "dynpb: not enough memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void add_str(lua_State *L, dp_tbuf *b, const char *s) { dp_tbuf_add(L, b, s, strlen(s)); }

/* ---- shared formatting */

void dp_text_escape(lua_State *L, dp_tbuf *b, const char *s, size_t n) {
    char tmp[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (k > sizeof tmp - 5) {
            dp_tbuf_add(L, b, tmp, k);
            k = 0;
        }
        switch (ch) {
        case '\n': tmp[k++] = '\\'; tmp[k++] = 'n'; break;
        case '\r': tmp[k++] = '\\'; tmp[k++] = 'r'; break;
        case '\t': tmp[k++] = '\\'; tmp[k++] = 't'; break;
        case '"': tmp[k++] = '\\'; tmp[k++] = '"'; break;
        case '\'': tmp[k++] = '\\'; tmp[k++] = '\''; break;
        case '\\': tmp[k++] = '\\'; tmp[k++] = '\\'; break;
        default:
            if (ch < 0x20 || ch >= 0x7f) {
                tmp[k++] = '\\';
                tmp[k++] = (char)('0' + (ch >> 6));
                tmp[k++] = (char)('0' + ((ch >> 3) & 7));
                tmp[k++] = (char)('0' + (ch & 7));
            } else {
                tmp[k++] = (char)ch;
            }
        }
    }
    dp_tbuf_add(L, b, tmp, k);
}

void dp_text_double(char out[40], double v) {
    if (isnan(v)) { strcpy(out, "nan"); return; }
    if (isinf(v)) { strcpy(out, v > 0 ? "inf" : "-inf"); return; }
    snprintf(out, 40, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, 40, "%.17g", v);
}

void dp_text_float(char out[40], float v) {
    if (isnan(v)) { strcpy(out, "nan"); return; }
    if (isinf(v)) { strcpy(out, v > 0 ? "inf" : "-inf"); return; }
    snprintf(out, 40, "%.6g", (double)v);
    /* protobuf's safe_strtof fails on a range error (subnormals): then 9 digits too */
    errno = 0;
    float r = strtof(out, NULL);
    if (r != v || errno == ERANGE) snprintf(out, 40, "%.9g", (double)v);
}

/* ---- printer */

typedef struct tctx {
    lua_State *L;
    dp_schema *S;
    int schema;           /* stack index of the schema object */
    int names;            /* stack index of NAMES */
    int dopts;            /* stack index of the decode options table */
    dp_tbuf *b;
    int indent;           /* spaces before every line */
    int one_line;
    int print_unknown;
    int expand_any;
    int depth, max_depth;
} tctx;

static void line_start(tctx *c, int level) {
    if (c->one_line) return;
    char sp[64];
    int n = c->indent + 2 * level;
    memset(sp, ' ', sizeof sp);
    while (n > 0) {
        int k = n > (int)sizeof sp ? (int)sizeof sp : n;
        dp_tbuf_add(c->L, c->b, sp, (size_t)k);
        n -= k;
    }
}

static void line_end(tctx *c) {
    dp_tbuf_add(c->L, c->b, c->one_line ? " " : "\n", 1);
}

static void open_block(tctx *c) {
    add_str(c->L, c->b, c->one_line ? " { " : " {\n");
}

static void print_msg(tctx *c, const dp_msg *m, int t, int level);

/* ---- unknown fields */

/* does data[0..n) parse as a field set (groups matched, no field 0)? */
static int unknown_parses(const unsigned char *p, const unsigned char *end, int depth,
                          uint32_t group) {
    while (p < end) {
        uint64_t tag;
        if (dp_read_varint(&p, end, &tag) != DP_OK) return 0;
        uint32_t num = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (tag >> 32 || num == 0) return 0;
        if (wt == DP_WT_EGROUP) return group == num ? 2 : 0;
        if (wt == DP_WT_SGROUP) {
            if (depth <= 0) return 0;
            /* find the group's end: parse recursively */
            const unsigned char *q = p;
            if (dp_skip_field(&q, end, num, wt, depth) != DP_OK) return 0;
            p = q;
            continue;
        }
        if (dp_skip_field(&p, end, num, wt, depth) != DP_OK) return 0;
    }
    return group == 0;
}

/* prints the fields in data[0..n); returns the end of a group when group != 0 */
static const unsigned char *print_unknown(tctx *c, const unsigned char *p, const unsigned char *end,
                                          int level, int budget, uint32_t group) {
    lua_State *L = c->L;
    char num[64];
    while (p < end) {
        uint64_t tag, v;
        if (dp_read_varint(&p, end, &tag) != DP_OK) return end;
        uint32_t n = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (wt == DP_WT_EGROUP) return p;
        line_start(c, level);
        snprintf(num, sizeof num, "%u", (unsigned)n);
        add_str(L, c->b, num);
        switch (wt) {
        case DP_WT_VARINT:
            if (dp_read_varint(&p, end, &v) != DP_OK) return end;
            snprintf(num, sizeof num, ": %llu", (unsigned long long)v);
            add_str(L, c->b, num);
            break;
        case DP_WT_I32:
            if (end - p < 4) return end;
            v = (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24);
            p += 4;
            snprintf(num, sizeof num, ": 0x%08llx", (unsigned long long)v);
            add_str(L, c->b, num);
            break;
        case DP_WT_I64:
            if (end - p < 8) return end;
            v = 0;
            for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
            p += 8;
            snprintf(num, sizeof num, ": 0x%016llx", (unsigned long long)v);
            add_str(L, c->b, num);
            break;
        case DP_WT_LEN: {
            if (dp_read_varint(&p, end, &v) != DP_OK || v > (uint64_t)(end - p)) return end;
            const unsigned char *q = p + v;
            if (v > 0 && budget > 0 && unknown_parses(p, q, 64, 0)) {
                open_block(c);
                print_unknown(c, p, q, level + 1, budget - 1, 0);
                line_start(c, level);
                dp_tbuf_add(L, c->b, "}", 1);
            } else {
                add_str(L, c->b, ": \"");
                dp_text_escape(L, c->b, (const char *)p, (size_t)v);
                dp_tbuf_add(L, c->b, "\"", 1);
            }
            p = q;
            break;
        }
        case DP_WT_SGROUP:
            open_block(c);
            p = print_unknown(c, p, end, level + 1, budget - 1, n);
            line_start(c, level);
            dp_tbuf_add(L, c->b, "}", 1);
            break;
        default:
            return end;
        }
        line_end(c);
    }
    return p;
}

/* ---- scalars */

static void print_int(tctx *c, int idx) {
    char num[48];
    lua_State *L = c->L;
    if (lua_type(L, idx) == LUA_TSTRING) {            /* a 64-bit value (int64 = "string") */
        add_str(L, c->b, lua_tostring(L, idx));
        return;
    }
#if DP_HAVE_INT64
    snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
#else
    snprintf(num, sizeof num, "%.0f", (double)lua_tonumber(L, idx));
#endif
    add_str(L, c->b, num);
}

/* [-0, +0] prints the scalar value at idx of field f (type type, enum sub) */
static void print_scalar(tctx *c, const dp_field *f, int type, int32_t sub, int idx) {
    lua_State *L = c->L;
    char num[40];
    switch (type) {
    case DP_T_BOOL:
        add_str(L, c->b, lua_toboolean(L, idx) ? "true" : "false");
        break;
    case DP_T_DOUBLE:
        dp_text_double(num, (double)lua_tonumber(L, idx));
        add_str(L, c->b, num);
        break;
    case DP_T_FLOAT:
        dp_text_float(num, (float)lua_tonumber(L, idx));
        add_str(L, c->b, num);
        break;
    case DP_T_STRING:
    case DP_T_BYTES: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        dp_tbuf_add(L, c->b, "\"", 1);
        dp_text_escape(L, c->b, s, n);
        dp_tbuf_add(L, c->b, "\"", 1);
        break;
    }
    case DP_T_ENUM: {
        const dp_enum *e = &c->S->enums[sub];
        int i = lua_type(L, idx) == LUA_TNUMBER ? dp_enum_find(e, (int32_t)lua_tointeger(L, idx)) : -1;
        if (i >= 0) add_str(L, c->b, e->values[i].cname);
        else if (lua_type(L, idx) == LUA_TSTRING) add_str(L, c->b, lua_tostring(L, idx));
        else print_int(c, idx);
        break;
    }
    default:
        print_int(c, idx);
    }
    (void)f;
}

/* is the value at idx the zero value of a scalar of this type? */
static int is_zero(lua_State *L, int type, int idx) {
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return !lua_toboolean(L, idx);
    case LUA_TSTRING:
        if (type == DP_T_STRING || type == DP_T_BYTES) return dp_rawlen(L, idx) == 0;
        return strcmp(lua_tostring(L, idx), "0") == 0;
    case LUA_TNUMBER: {
        lua_Number n = lua_tonumber(L, idx);
        return n == 0 && !signbit(n);
    }
    default: return 0;
    }
}

static const char *short_name(const char *full) {
    const char *d = strrchr(full, '.');
    return d ? d + 1 : full;
}

/* is f a MessageSet item extension named after its type (protobuf's
   PrintableNameForExtension: "[pkg.Type]" rather than "[pkg.Type.ext]")? */
int dp_text_mset_item(const dp_msg *m, const dp_field *f) {
    if (!m->message_set || !(f->flags & DPF_EXTENSION) || f->type != DP_T_MESSAGE ||
        (f->flags & DPF_REPEATED) || !f->type_name)
        return 0;
    size_t tn = strlen(f->type_name);
    /* cname is "[" scope "." name "]": the scope must be the type */
    return f->namelen > tn + 3 && memcmp(f->cname + 1, f->type_name, tn) == 0 &&
           f->cname[tn + 1] == '.' && !memchr(f->cname + tn + 2, '.', f->namelen - tn - 3);
}

/* is field f of m group-like (protobuf's IsGroupLike): a group (DELIMITED
   under editions) whose name is its type's name in lowercase and whose type
   is declared in m itself? Such a field goes by its type name in text
   format; any other delimited field by its field name. */
int dp_text_group_like(const dp_msg *m, const dp_field *f) {
    if (f->type != DP_T_GROUP || (f->flags & DPF_EXTENSION)) return 0;
    const char *sn = short_name(f->type_name);
    size_t k = strlen(sn), mn = strlen(m->name);
    if (k != f->namelen) return 0;
    for (size_t j = 0; j < k; j++)
        if ((char)tolower((unsigned char)sn[j]) != f->cname[j]) return 0;
    return (size_t)(sn - f->type_name) == mn + 1 && memcmp(f->type_name, m->name, mn) == 0;
}

static void print_name(tctx *c, const dp_msg *m, const dp_field *f) {
    lua_State *L = c->L;
    if (f->flags & DPF_EXTENSION) {
        if (dp_text_mset_item(m, f)) {
            dp_tbuf_add(L, c->b, "[", 1);
            add_str(L, c->b, f->type_name);
            dp_tbuf_add(L, c->b, "]", 1);
        } else {
            add_str(L, c->b, f->cname);
        }
    } else {
        add_str(L, c->b, dp_text_group_like(m, f) ? short_name(f->type_name) : f->cname);
    }
}

/* [-0, +0, e] message index of a full type name in the schema, or -1 */
static int find_msg(tctx *c, const char *name, size_t n) {
    return (int)dp_find_msg(dp_check_schema(c->L, c->schema), name, n);
}

/* [-0, +0, e] the Any at t as `[url] { ... }` when its type is in the
   schema and its value decodes; returns 0 (nothing printed) otherwise */
static int print_any(tctx *c, const dp_msg *m, int t, int level) {
    lua_State *L = c->L;
    const dp_field *fu = dp_find_field(m, 1), *fv = dp_find_field(m, 2);
    if (!fu || !fv || fu->type != DP_T_STRING || fv->type != DP_T_BYTES) return 0;
    lua_rawgeti(L, c->names, fu->name);
    lua_rawget(L, t);                                 /* +1 url */
    lua_rawgeti(L, c->names, fv->name);
    lua_rawget(L, t);                                 /* +1 value */
    size_t un;
    const char *url = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &un) : NULL;
    const char *slash = url ? strrchr(url, '/') : NULL;
    int ok = 0;
    if (slash && slash[1] &&
        (((size_t)(slash - url) == 19 && memcmp(url, "type.googleapis.com", 19) == 0) ||
         ((size_t)(slash - url) == 19 && memcmp(url, "type.googleprod.com", 19) == 0))) {
        int mi = find_msg(c, slash + 1, un - (size_t)(slash + 1 - url));
        if (mi >= 0 && c->depth < c->max_depth) {
            lua_getfield(L, c->schema, "decode");     /* +1 decode */
            lua_pushvalue(L, c->schema);
            lua_pushstring(L, c->S->msgs[mi].name);
            if (lua_type(L, -4) == LUA_TSTRING) lua_pushvalue(L, -4);
            else lua_pushliteral(L, "");
            /* what is left of max_depth below this Any (c->depth counts it) */
            lua_createtable(L, 0, 3);
            lua_pushliteral(L, "string");
            lua_setfield(L, -2, "int64");
            lua_pushliteral(L, "number");
            lua_setfield(L, -2, "enums");
            lua_pushinteger(L, c->max_depth - c->depth);
            lua_setfield(L, -2, "max_depth");
            lua_call(L, 4, 1);                        /* -5 +1 table or nil */
            if (lua_istable(L, -1)) {
                line_start(c, level);
                dp_tbuf_add(L, c->b, "[", 1);
                dp_tbuf_add(L, c->b, url, un);
                dp_tbuf_add(L, c->b, "]", 1);
                open_block(c);
                print_msg(c, &c->S->msgs[mi], lua_gettop(L), level + 1);
                line_start(c, level);
                dp_tbuf_add(L, c->b, "}", 1);
                line_end(c);
                ok = 1;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    return ok;
}

/* [-0, +0, e] one value of field f (the value at idx) */
static void print_value(tctx *c, const dp_msg *pm, const dp_field *f, int idx, int level) {
    lua_State *L = c->L;
    line_start(c, level);
    print_name(c, pm, f);
    if (f->type == DP_T_MESSAGE || f->type == DP_T_GROUP) {
        open_block(c);
        print_msg(c, &c->S->msgs[f->sub], dp_absindex(L, idx), level + 1);
        line_start(c, level);
        dp_tbuf_add(L, c->b, "}", 1);
    } else {
        add_str(L, c->b, ": ");
        print_scalar(c, f, f->type, f->sub, idx);
    }
    line_end(c);
}

/* a map key for sorting */
typedef struct mkey {
    int kind;             /* 0 signed, 1 unsigned, 2 string/bool */
    int64_t i;
    uint64_t u;
    const char *s;
    size_t n;
    int slot;             /* index in the keys array */
} mkey;

static int mkey_cmp(const void *a, const void *b) {
    const mkey *x = a, *y = b;
    if (x->kind == 0) return x->i < y->i ? -1 : x->i > y->i;
    if (x->kind == 1) return x->u < y->u ? -1 : x->u > y->u;
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->s, y->s, n);
    if (r) return r;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* [-0, +0, e] a map (table at idx) as entries sorted by key */
static void print_map(tctx *c, const dp_msg *pm, const dp_field *f, int idx, int level) {
    lua_State *L = c->L;
    const dp_msg *em = &c->S->msgs[f->sub];
    const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
    if (!kf || !vf) return;
    idx = dp_absindex(L, idx);
    int n = 0;
    lua_newtable(L);                                  /* +1 keys */
    int keys = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++n);
    }
    mkey *ks = lua_newuserdata(L, sizeof(mkey) * (size_t)(n ? n : 1));   /* +1 */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, keys, i + 1);
        mkey *k = &ks[i];
        memset(k, 0, sizeof *k);
        k->slot = i + 1;
        int kt = kf->type;
        if (kt == DP_T_STRING || kt == DP_T_BOOL) {
            k->kind = 2;
            if (kt == DP_T_BOOL) { k->s = lua_toboolean(L, -1) ? "1" : "0"; k->n = 1; }
            else k->s = lua_tolstring(L, -1, &k->n);  /* anchored in keys */
        } else if (kt == DP_T_UINT32 || kt == DP_T_UINT64 || kt == DP_T_FIXED32 || kt == DP_T_FIXED64) {
            k->kind = 1;
            if (lua_type(L, -1) == LUA_TSTRING) k->u = strtoull(lua_tostring(L, -1), NULL, 10);
            else k->u = (uint64_t)lua_tonumber(L, -1);
        } else {
            if (lua_type(L, -1) == LUA_TSTRING) k->i = strtoll(lua_tostring(L, -1), NULL, 10);
            else k->i = (int64_t)lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
    qsort(ks, (size_t)n, sizeof(mkey), mkey_cmp);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, keys, ks[i].slot);             /* +1 key */
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);                           /* +1 value */
        line_start(c, level);
        print_name(c, pm, f);
        open_block(c);
        line_start(c, level + 1);
        add_str(L, c->b, "key: ");
        print_scalar(c, kf, kf->type, kf->sub, -2);
        line_end(c);
        print_value(c, em, vf, -1, level + 1);
        line_start(c, level);
        dp_tbuf_add(L, c->b, "}", 1);
        line_end(c);
        lua_pop(L, 2);
    }
    lua_pop(L, 2);                                    /* keys, ks */
}

/* [-0, +0, e] the fields of message m (table at t), then its unknown fields */
static void print_msg(tctx *c, const dp_msg *m, int t, int level) {
    lua_State *L = c->L;
    /* decode bounded the nesting (an Any's value gets what is left), so this
       only guards the C stack */
    if (++c->depth > c->max_depth + 1) luaL_error(L, "dynpb: to_text: nesting deeper than %d", c->max_depth);
    luaL_checkstack(L, 10, "dynpb: to_text");
    if (c->expand_any && strcmp(m->name, "google.protobuf.Any") == 0 && print_any(c, m, t, level)) {
        c->depth--;
        return;
    }
    for (uint32_t i = 0; i < m->nfields; i++) {
        const dp_field *f = &m->fields[i];
        lua_rawgeti(L, c->names, f->name);
        lua_rawget(L, t);                             /* +1 value */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        if (f->flags & DPF_MAP) {
            print_map(c, m, f, -1, level);
        } else if (f->flags & DPF_REPEATED) {
            size_t n = dp_rawlen(L, -1);
            for (size_t k = 1; k <= n; k++) {
                lua_rawgeti(L, -1, (int)k);
                print_value(c, m, f, -1, level);
                lua_pop(L, 1);
            }
        } else if ((f->flags & DPF_PRESENCE) || f->type == DP_T_MESSAGE || f->type == DP_T_GROUP ||
                   !is_zero(L, f->type, -1)) {
            print_value(c, m, f, -1, level);
        }
        lua_pop(L, 1);
    }
    if (c->print_unknown) {
        lua_pushliteral(L, DP_UNKNOWN_KEY);
        lua_rawget(L, t);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t n;
            const unsigned char *p = (const unsigned char *)lua_tolstring(L, -1, &n);
            print_unknown(c, p, p + n, level, 10, 0);
        }
        lua_pop(L, 1);
    }
    c->depth--;
}

/* [-0, +2|+1, e] the text of message m for the bytes at bidx, options at oidx */
static int to_text(lua_State *L, int schema, const dp_msg *m, int bidx, int oidx, const char *fn) {
    static const char *const known[] = {"indent", "one_line", "print_unknown", "expand_any",
                                        "max_depth", NULL};
    tctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.schema = schema;
    c.max_depth = DP_DEFAULT_MAX_DEPTH;
    c.expand_any = 1;
    if (lua_type(L, bidx) != LUA_TSTRING)
        luaL_error(L, "dynpb.%s: bytes must be a string, got %s", fn, luaL_typename(L, bidx));
    dp_check_options(L, oidx, fn, known);
    if (lua_istable(L, oidx)) {
        lua_getfield(L, oidx, "indent");
        if (!lua_isnil(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 0 && n <= 1000) || n != (lua_Number)(int)n)
                luaL_error(L, "dynpb.%s: option 'indent' must be an integer from 0 to 1000", fn);
            c.indent = (int)n;
        }
        lua_pop(L, 1);
        lua_getfield(L, oidx, "max_depth");
        if (!lua_isnil(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= DP_MAX_MAX_DEPTH) || n != (lua_Number)(int)n)
                luaL_error(L, "dynpb.%s: option 'max_depth' must be an integer from 1 to %d", fn,
                           DP_MAX_MAX_DEPTH);
            c.max_depth = (int)n;
        }
        lua_pop(L, 1);
        const char *bools[] = {"one_line", "print_unknown", "expand_any"};
        int *dst[] = {&c.one_line, &c.print_unknown, &c.expand_any};
        for (int i = 0; i < 3; i++) {
            lua_getfield(L, oidx, bools[i]);
            if (!lua_isnil(L, -1)) {
                if (!lua_isboolean(L, -1))
                    luaL_error(L, "dynpb.%s: option '%s' must be a boolean", fn, bools[i]);
                *dst[i] = lua_toboolean(L, -1);
            }
            lua_pop(L, 1);
        }
    }
    c.S = dp_check_schema(L, schema);
    dp_push_names(L, schema);                         /* +1 names */
    c.names = lua_gettop(L);
    lua_createtable(L, 0, 3);                         /* +1 decode options */
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "int64");
    lua_pushliteral(L, "number");
    lua_setfield(L, -2, "enums");
    lua_pushinteger(L, c.max_depth);
    lua_setfield(L, -2, "max_depth");
    c.dopts = lua_gettop(L);
    c.b = dp_tbuf_new(L);                             /* +1 buffer */
    lua_getfield(L, schema, "decode");                /* +1 decode */
    lua_pushvalue(L, schema);
    lua_pushstring(L, m->name);
    lua_pushvalue(L, bidx);
    lua_pushvalue(L, c.dopts);
    lua_call(L, 4, 2);                                /* -5 +2 t, err */
    if (!lua_istable(L, -2)) {
        /* "dynpb: decode T: ..." -> "dynpb: to_text T: ..." */
        const char *e = lua_tostring(L, -1);
        if (e && strncmp(e, "dynpb: decode ", 14) == 0) {
            lua_pushfstring(L, "dynpb: to_text %s", e + 14);
            lua_replace(L, -2);
        }
        lua_pushnil(L);
        lua_replace(L, -3);
        return 2;
    }
    lua_pop(L, 1);
    print_msg(&c, m, lua_gettop(L), 0);
    size_t n = c.b->n;
    if (c.one_line && n > 0 && c.b->p[n - 1] == ' ') n--;
    lua_pushlstring(L, c.b->p ? c.b->p : "", n);
    return 1;
}

int dp_l_schema_to_text(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    const dp_msg *m = dp_lookup_msg(L, S, 1, 2);
    return to_text(L, 1, m, 3, 4, "to_text");
}

int dp_l_handle_to_text(lua_State *L) {
    const dp_msg *m;
    dp_check_handle(L, 1, &m);
    lua_settop(L, 3);
    lua_getfield(L, 1, "schema");                     /* +1 schema object at 4 */
    return to_text(L, 4, m, 2, 3, "to_text");
}
