/*
 * encode.c -- Lua tables -> protobuf bytes, canonical and strict.
 *
 * Output: fields in field-number order, proto3 implicit-presence zero
 * values omitted, repeated scalars packed where the schema says so,
 * shortest varints, map entries sorted by key, unknown fields (the
 * dynpb.UNKNOWN string) appended after the known ones. Equal tables give
 * equal bytes on every Lua version.
 *
 * The output buffer belongs to the per-state dp_state (reused across calls;
 * freed by its __gc), so a memory error raised half way leaks nothing.
 * A nested message's length is written after its body: one byte is
 * reserved, and the body is moved when the length needs more.
 *
 * Errors: the first failure pushes its message, and every encode function
 * returns 0 up to the method, which returns nil and that message. The
 * checked path and the messages are encode_check.c's; encode.h holds what
 * the two share.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"

/* ---- the output buffer */

/* Makes room for need more bytes (raises on overflow or out of memory; the
   buffer stays owned by st, so nothing leaks). */
void enc_grow(ectx *c, size_t need) {
    dp_state *st = c->st;
    size_t cap = st->bufcap ? st->bufcap : 256;
    while (cap - c->len < need) {
        if (cap > ((size_t)-1) / 2) luaL_error(c->L, "dynpb: encode: output too large");
        cap *= 2;
    }
    void *ud;
    lua_Alloc a = lua_getallocf(c->L, &ud);
    unsigned char *nb = a(ud, st->buf, st->bufcap, cap);
    if (!nb) luaL_error(c->L, "dynpb: not enough memory");
    st->buf = c->buf = nb;
    st->bufcap = c->cap = cap;
}

/* Ends the body begun at mark: writes its length, moving it if needed. */
void enc_end_len(ectx *c, size_t mark) {
    size_t n = c->len - mark - 1;
    if (n < 0x80) {                           /* the common case: one byte */
        c->buf[mark] = (unsigned char)n;
        return;
    }
    int k = varint_size(n);
    ensure(c, (size_t)k - 1);
    memmove(c->buf + mark + k, c->buf + mark + 1, n);
    c->len += (size_t)k - 1;
    wvarint(c->buf + mark, n);
}

static int encode_msg(ectx *c, const dp_msg *m, int t, int top, int *left);
static void enc_prepare(ectx *c, const dp_msg *m);

/* Cycles are not looked for on the way down (that costs a lua_topointer
   per message): a table that contains itself nests until max_depth, or
   until the stack cannot grow, and then the first table on the path that
   repeats an ancestor is reported, at the field that reached it, as a check
   on every level would have reported it (the fields before that one were
   encoded the same way, without error, the first time round). */

/* [-0, +1|0] Looks for a repeat among c->tables[0..n-1]; if there is one,
   reports it (pushes the message) and returns 1, else returns 0. */
static int report_cycle(ectx *c, int n) {
    lua_State *L = c->L;
    const void *p[DP_MAX_MAX_DEPTH + 2];
    for (int i = 0; i < n; i++) p[i] = lua_topointer(L, c->tables[i]);
    for (int j = 1; j < n; j++)
        for (int i = 0; i < j; i++)
            if (p[i] == p[j]) {
                c->depth = j - 1;        /* the level whose field reached it */
                enc_fail(c, "the table contains itself (a cycle)");
                return 1;
            }
    return 0;
}

/* Reports nesting past max_depth, on entering table t one level below
   c->depth (or the cycle that caused it); returns 0. */
static int too_deep(ectx *c, int t) {
    c->tables[c->depth + 1] = t;
    if (report_cycle(c, c->depth + 2)) return 0;
    return enc_fail(c, "nesting deeper than max_depth (%d)", c->o.max_depth);
}

/* Writes the body of message (or group) field f from the table at absolute
   index t: a length-delimited body, or a group's fields and END_GROUP tag
   (the tag before it is the caller's). Checks depth and cycles. top: the
   stack top, when the caller knows it (no lua_gettop), else -1; left: as
   encode_msg's (NULL: the stack is as it was). */
int enc_put_body(ectx *c, const dp_field *f, int t, int top, int *left) {
    if (c->depth >= c->o.max_depth) return too_deep(c, t);
    c->depth++;
    c->tables[c->depth] = t;
    c->path[c->depth].f = NULL;
    c->path[c->depth].kind = DP_PK_NONE;
    int ok;
    if (f->type == DP_T_GROUP) {
        ok = encode_msg(c, &c->S->msgs[f->sub], t, top, left);
        if (ok) put_tag(c, f->number, DP_WT_EGROUP);
    } else {
        size_t mark = begin_len(c);
        ok = encode_msg(c, &c->S->msgs[f->sub], t, top, left);
        if (ok) enc_end_len(c, mark);
    }
    if (ok) c->depth--;
    return ok;
}

/* dp_utf8_valid with its common case inline: an all-ASCII string needs no
   call (8 bytes at a time, the last 8 overlapping; below 8, two 4-byte
   loads that overlap, or the bytes one by one). */
static inline int utf8_ok(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    uint64_t acc = 0, w;
    if (n >= 8) {
        const unsigned char *last = s + n - 8;
        for (const unsigned char *q = s; q < last; q += 8) {
            memcpy(&w, q, 8);
            acc |= w;
        }
        memcpy(&w, last, 8);
        acc |= w;
    } else if (n >= 4) {                                      /* two loads that overlap */
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        acc = a | b;
    } else if (n) {                                           /* 1-3: first, middle, last */
        acc = (uint64_t)(s[0] | s[n >> 1] | s[n - 1]);
    }
    return !(acc & UINT64_C(0x8080808080808080)) || dp_utf8_valid(s, n);
}

/* the range of a Lua integer written by put_scalar's fast path, by type;
   anything outside it (and every other value) takes the checked path */
#if LUA_VERSION_NUM >= 503
static const struct { int64_t min, max; } int_lim[19] = {
    [DP_T_INT32] = {INT32_MIN, INT32_MAX},   [DP_T_SINT32] = {INT32_MIN, INT32_MAX},
    [DP_T_SFIXED32] = {INT32_MIN, INT32_MAX}, [DP_T_UINT32] = {0, UINT32_MAX},
    [DP_T_FIXED32] = {0, UINT32_MAX},         [DP_T_INT64] = {INT64_MIN, INT64_MAX},
    [DP_T_SINT64] = {INT64_MIN, INT64_MAX},   [DP_T_SFIXED64] = {INT64_MIN, INT64_MAX},
    [DP_T_UINT64] = {0, INT64_MAX},           [DP_T_FIXED64] = {0, INT64_MAX}};
#else
/* int_lim in doubles, 64-bit types cut to +-2^53 (Lua 5.1 and LuaJIT) */
#define DP_2P53 9007199254740992.0
static const struct { double min, max; } int_dlim[19] = {
    [DP_T_INT32] = {INT32_MIN, INT32_MAX},   [DP_T_SINT32] = {INT32_MIN, INT32_MAX},
    [DP_T_SFIXED32] = {INT32_MIN, INT32_MAX}, [DP_T_UINT32] = {0, UINT32_MAX},
    [DP_T_FIXED32] = {0, UINT32_MAX},         [DP_T_INT64] = {-DP_2P53, DP_2P53},
    [DP_T_SINT64] = {-DP_2P53, DP_2P53},      [DP_T_SFIXED64] = {-DP_2P53, DP_2P53},
    [DP_T_UINT64] = {0, DP_2P53},             [DP_T_FIXED64] = {0, DP_2P53}};
#endif

/* Reads the value at v, of Lua type vt, into *out when it is an integral
   number within int_lim of f's type; returns 0 for anything else (nothing
   pushed, nothing failed). Integral floats are read as get_int reads them. */
static inline int fast_int(lua_State *L, const dp_field *f, int v, int vt, int64_t *out) {
    if (vt != LUA_TNUMBER) return 0;
#if LUA_VERSION_NUM >= 503
    int isint;
    int64_t i = (int64_t)lua_tointegerx(L, v, &isint);      /* a number: no string */
    if (!isint || i < int_lim[f->type].min || i > int_lim[f->type].max) return 0;
#else
    /* one range test in doubles (64-bit types: within 2^53, where every
       double is exact; NaN fails it) and one test that x is integral */
    lua_Number x = lua_tonumber(L, v);
    if (!(x >= int_dlim[f->type].min && x <= int_dlim[f->type].max)) return 0;
    int64_t i = (int64_t)x;
    if ((lua_Number)i != x) return 0;
#endif
    *out = i;
    return 1;
}

/* how put_scalar writes: with the tag (zero values kept or omitted, as
   proto3 implicit presence asks), or a bare packed element; a field's
   emode is PS_KEEP or PS_OMIT for a singular field outside any oneof
   (written by put_scalar, with that mode), else EM_OTHER (a repeated
   field, a map, an extension, a oneof member: put_member_other) */
enum { PS_KEEP, PS_OMIT, PS_PACKED, EM_OTHER };

/* Writes one value of field f from stack index v, whose Lua type is vt
   (the caller's lua_type or lua_rawgeti result), in mode PS_*, when it is
   one of the common values: an in-range integer, a boolean, an enum name,
   a finite number, a string (valid UTF-8 where the schema asks), or a
   table for a message field. Each is read with one API call and written
   straight into the buffer. Returns 1 when written; 0 with nothing written
   and nothing pushed for any other value (numbers given as strings or
   floats, NaN, every error), which the checked path (put_field /
   put_value) then writes the same way or reports; -1 when a message body
   failed (the error is pushed). top: the stack top, or -1 (put_body).
   member: f is a member of the message being written (put_member), so its
   path element is set before a body is entered (put_member sets it
   lazily); else the caller has set it. */
static DP_INLINE int put_scalar_fast(ectx *c, const dp_field *f, int v, int vt, int mode,
                                     int member, int top) {
    lua_State *L = c->L;
    int64_t i;
    uint64_t u;
    unsigned char *p;
    switch (f->type) {
    case DP_T_INT32: case DP_T_INT64: case DP_T_UINT32: case DP_T_UINT64:
        if (!fast_int(L, f, v, vt, &i)) return 0;
        u = (uint64_t)i;
        goto varint;
    case DP_T_SINT32:
        if (!fast_int(L, f, v, vt, &i)) return 0;
        u = (uint32_t)(((uint32_t)i << 1) ^ (uint32_t)((int32_t)i >> 31));
        goto varint;
    case DP_T_SINT64:
        if (!fast_int(L, f, v, vt, &i)) return 0;
        u = ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
        goto varint;
    case DP_T_BOOL:
        if (vt != LUA_TBOOLEAN) return 0;
        u = (uint64_t)lua_toboolean(L, v);
        goto varint;
    case DP_T_ENUM: {
        if (vt != LUA_TSTRING) return 0;
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        const dp_enum *e = &c->S->enums[f->sub];
        int k = dp_enum_find_name(e, s, n);
        if (k < 0) return 0;
        u = (uint64_t)(int64_t)e->values[k].number;
        goto varint;
    }
    case DP_T_FIXED32: case DP_T_SFIXED32: case DP_T_FIXED64: case DP_T_SFIXED64:
        if (!fast_int(L, f, v, vt, &i)) return 0;
        if (mode == PS_OMIT && i == 0) return 1;
        ensure(c, 16);
        p = c->buf + c->len;
        if (mode != PS_PACKED) p = wtag(p, f);
        p = (f->type == DP_T_FIXED32 || f->type == DP_T_SFIXED32) ? wle32(p, (uint32_t)i)
                                                                  : wle64(p, (uint64_t)i);
        c->len = (size_t)(p - c->buf);
        return 1;
    case DP_T_DOUBLE: case DP_T_FLOAT: {
        if (vt != LUA_TNUMBER) return 0;
        double x = (double)lua_tonumber(L, v);
        if (x != x) return 0;                                 /* NaN: canonical form */
        ensure(c, 16);
        p = c->buf + c->len;
        if (f->type == DP_T_DOUBLE) {
            memcpy(&u, &x, 8);
            if (mode == PS_OMIT && u == 0) return 1;          /* +0.0 only */
            if (mode != PS_PACKED) p = wtag(p, f);
            p = wle64(p, u);
        } else {
            if (x > FLT_MAX || x < -FLT_MAX) {
                if (!isinf(x)) return 0;                      /* out of range: error */
            }
            float fx = (float)x;
            uint32_t b;
            memcpy(&b, &fx, 4);
            if (mode == PS_OMIT && b == 0) return 1;
            if (mode != PS_PACKED) p = wtag(p, f);
            p = wle32(p, b);
        }
        c->len = (size_t)(p - c->buf);
        return 1;
    }
    case DP_T_STRING: case DP_T_BYTES: {
        if (vt != LUA_TSTRING) return 0;
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        if ((f->flags & DPF_UTF8) && !utf8_ok(s, n)) return 0;
        if (mode == PS_OMIT && n == 0) return 1;
        put_lenbytes(c, f, s, n);
        return 1;
    }
    case DP_T_MESSAGE:
        if (vt != LUA_TTABLE) return 0;
        if (member) c->path[c->depth].f = f;                  /* the path below names it */
        put_ftag(c, f);
        return enc_put_body(c, f, v < 0 ? dp_absindex(L, v) : v, top, NULL) ? 1 : -1;   /* v: a stack slot */
    default:
        return 0;
    }
varint:
    if (mode == PS_OMIT && u == 0) return 1;
    ensure(c, 24);
    p = c->buf + c->len;
    if (mode != PS_PACKED) p = wtag(p, f);
    c->len = (size_t)(wvarint(p, u) - c->buf);
    return 1;
}

/* Writes one value of field f from stack index v (Lua type vt) in mode
   PS_*: put_scalar_fast, else the checked path. Returns 0 on error (the
   message pushed). */
static DP_INLINE int put_scalar_inline(ectx *c, const dp_field *f, int v, int vt, int mode,
                                       int top) {
    int r = put_scalar_fast(c, f, v, vt, mode, 0, top);
    if (r) return r > 0;
    if (mode == PS_PACKED) {
        int zero;
        return enc_put_value(c, f, v, &zero);
    }
    return enc_put_field(c, f, v, mode == PS_OMIT);
}

/* put_scalar_inline as a function, for the callers that are not hot */
static int put_scalar(ectx *c, const dp_field *f, int v, int vt, int mode) {
    return put_scalar_inline(c, f, v, vt, mode, -1);
}

/* Counts the keys of the table at t. */
static size_t count_keys(lua_State *L, int t) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* A sortable map key and the key's index in the scratch table. */
typedef struct mkey {
    int kind;            /* 0 integer, 1 string, 2 bool */
    int neg;
    uint64_t u;          /* integer value as two's complement; bool 0/1 */
    const char *s;
    size_t n;
    int slot;            /* scratch[2*slot-1] = key, scratch[2*slot] = value */
} mkey;

static int mkey_cmp(const void *a, const void *b) {
    const mkey *x = a, *y = b;
    if (x->kind == 1) {
        size_t n = x->n < y->n ? x->n : y->n;
        int r = memcmp(x->s, y->s, n);
        if (r) return r;
        return x->n < y->n ? -1 : x->n > y->n;
    }
    if (x->neg != y->neg) return x->neg ? -1 : 1;
    return x->u < y->u ? -1 : x->u > y->u;
}

/* Writes map key k and value at slot v as one entry of map field f. */
static int put_entry(ectx *c, const dp_field *f, const dp_field *kf, const dp_field *vf,
                     const mkey *k, int kslot, int vslot) {
    dp_pathel *pe = &c->path[c->depth];
    if (k->kind == 1) { pe->kind = DP_PK_SKEY; pe->s = k->s; pe->n = k->n; }
    else if (k->kind == 2) { pe->kind = DP_PK_BKEY; pe->i = (int64_t)k->u; }
    else { pe->kind = DP_PK_IKEY; pe->i = (int64_t)k->u; }
    put_ftag(c, f);
    size_t mark = begin_len(c);
    if (k->kind == 1) {                       /* a string key read_key checked */
        put_lenbytes(c, kf, k->s, k->n);
    } else if (!put_scalar(c, kf, kslot, lua_type(c->L, kslot), PS_KEEP)) {
        return 0;
    }
    if (!put_scalar(c, vf, vslot, lua_type(c->L, vslot), PS_KEEP)) return 0;
    enc_end_len(c, mark);
    return 1;
}

/* Reads the map key at idx into k (type and range checked). */
static int read_key(ectx *c, const dp_field *kf, int idx, mkey *k) {
    lua_State *L = c->L;
    k->s = NULL;
    k->neg = 0;
    c->path[c->depth].kind = DP_PK_NONE;
    if (kf->type == DP_T_STRING) {
        if (lua_type(L, idx) != LUA_TSTRING)
            return enc_fail(c, "map key must be a string, got %s", lua_kind(L, idx));
        k->kind = 1;
        k->s = lua_tolstring(L, idx, &k->n);
        if ((kf->flags & DPF_UTF8) && !dp_utf8_valid((const unsigned char *)k->s, k->n))
            return enc_fail(c, "invalid UTF-8 in map key");
    } else if (kf->type == DP_T_BOOL) {
        if (lua_type(L, idx) != LUA_TBOOLEAN)
            return enc_fail(c, "map key must be a boolean, got %s", lua_kind(L, idx));
        k->kind = 2;
        k->u = (uint64_t)lua_toboolean(L, idx);
    } else {
        k->kind = 0;
        if (!enc_get_int(c, kf, idx, &k->u)) return 0;
        int is_unsigned = kf->type == DP_T_UINT32 || kf->type == DP_T_UINT64 ||
                          kf->type == DP_T_FIXED32 || kf->type == DP_T_FIXED64;
        k->neg = !is_unsigned && (int64_t)k->u < 0;
    }
    return 1;
}

/* Encodes the map table at idx as sorted entries of field f: the keys and
   values are copied into a scratch table, the keys sorted in a userdata.
   Any size. */
static int put_map_general(ectx *c, const dp_field *f, int idx) {
    lua_State *L = c->L;
    const dp_msg *em = &c->S->msgs[f->sub];
    const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
    size_t n = count_keys(L, idx);
    if (n == 0) return 1;
    luaL_checkstack(L, 8, "dynpb: encode");
    /* the keys, in a userdata (collected even if anything raises) */
    mkey *keys = lua_newuserdata(L, sizeof(mkey) * n);        /* +1 */
    lua_createtable(L, (int)(2 * n), 0);                      /* +1 scratch */
    int scratch = lua_gettop(L);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {                                /* +2 key, value */
        mkey *k = &keys[i];
        k->slot = (int)++i;
        if (!read_key(c, kf, -2, k)) return 0;
        lua_pushvalue(L, -2);
        lua_rawseti(L, scratch, 2 * k->slot - 1);             /* key */
        lua_rawseti(L, scratch, 2 * k->slot);                 /* -1 value */
    }
    qsort(keys, n, sizeof(mkey), mkey_cmp);
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, scratch, 2 * keys[i].slot - 1);        /* +1 key */
        lua_rawgeti(L, scratch, 2 * keys[i].slot);            /* +1 value */
        if (!put_entry(c, f, kf, vf, &keys[i], -2, -1)) return 0;
        lua_pop(L, 2);
    }
    lua_pop(L, 2);                                            /* keys, scratch */
    c->path[c->depth].kind = DP_PK_NONE;
    return 1;
}

/* Encodes the array at idx as the elements of repeated field f, by index
   1..#t after checking that the table has no other key. */
static int put_repeated_general(ectx *c, const dp_field *f, int idx) {
    lua_State *L = c->L;
    size_t n = dp_rawlen(L, idx);
    if (count_keys(L, idx) != n)
        return enc_fail(c, "expected an array (keys 1..n), got a table with other keys");
    if (n == 0) return 1;
    dp_pathel *pe = &c->path[c->depth];
    if (f->flags & DPF_PACKED) {
        put_tag(c, f->number, DP_WT_LEN);
        size_t mark = begin_len(c);
        for (size_t i = 1; i <= n; i++) {
            int zero;
            pe->kind = DP_PK_INDEX;
            pe->i = (int64_t)i;
            lua_rawgeti(L, idx, (int)i);
            if (!enc_put_value(c, f, -1, &zero)) return 0;
            lua_pop(L, 1);
        }
        enc_end_len(c, mark);
    } else {
        for (size_t i = 1; i <= n; i++) {
            pe->kind = DP_PK_INDEX;
            pe->i = (int64_t)i;
            lua_rawgeti(L, idx, (int)i);
            if (!enc_put_field(c, f, -1, 0)) return 0;
            lua_pop(L, 1);
        }
    }
    pe->kind = DP_PK_NONE;
    return 1;
}

#define DP_FAST_ENTRIES 32

/* one entry of a string map (put_map_strings) */
typedef struct sentry {
    uint64_t pre;        /* the key's first 8 bytes, big-endian, zero-padded */
    const char *k, *v;
    size_t kn, vn;
} sentry;

/* Does key a sort before key b (bytewise, a prefix first)? */
static inline int sentry_less(const sentry *a, const sentry *b) {
    if (a->pre != b->pre) return a->pre < b->pre;
    size_t n = a->kn < b->kn ? a->kn : b->kn;
    int r = memcmp(a->k, b->k, n);
    return r ? r < 0 : a->kn < b->kn;
}

/* Fast path of put_map for map<string, string|bytes> fields (kf, vf the
   entry's key and value fields): up to DP_FAST_ENTRIES entries, every key
   and value a string, valid UTF-8 where the schema asks. Keys and values
   stay on the Lua stack above base while the keys are sorted (by an 8-byte
   prefix first); each entry's size is known before it is written, so no
   length is backpatched. Returns 1 when the map is written; 0 with nothing
   written and the stack back at base for anything else (a bigger map, a
   non-string, bad UTF-8): put_map then runs its checked loop. */
static int put_map_strings(ectx *c, const dp_field *f, const dp_field *kf, const dp_field *vf,
                           int idx, int base) {
    lua_State *L = c->L;
    sentry e[DP_FAST_ENTRIES];
    uint8_t order[DP_FAST_ENTRIES];
    int n = 0;
    lua_pushnil(L);                                           /* +1 first key */
    while (lua_next(L, idx)) {                                /* -1 +2 key, value */
        if (n == DP_FAST_ENTRIES || lua_type(L, -2) != LUA_TSTRING ||
            lua_type(L, -1) != LUA_TSTRING)
            goto checked;
        sentry *x = &e[n];
        x->k = lua_tolstring(L, -2, &x->kn);
        x->v = lua_tolstring(L, -1, &x->vn);
        if (((kf->flags & DPF_UTF8) && !utf8_ok(x->k, x->kn)) ||
            ((vf->flags & DPF_UTF8) && !utf8_ok(x->v, x->vn)))
            goto checked;
        unsigned char b[8] = {0};
        memcpy(b, x->k, x->kn < 8 ? x->kn : 8);
        uint64_t pre;
        memcpy(&pre, b, 8);
        x->pre = __builtin_bswap64(pre);
        int j = n;                                            /* insertion sort */
        while (j > 0 && sentry_less(x, &e[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)n++;
        lua_pushvalue(L, -2);                                 /* +1 key to continue */
    }
    for (int i = 0; i < n; i++) {
        const sentry *x = &e[order[i]];
        size_t body = kf->taglen + varint_size(x->kn) + x->kn + vf->taglen +
                      varint_size(x->vn) + x->vn;
        ensure(c, sizeof f->tag + 10 + body);
        unsigned char *p = wvarint(wtag(c->buf + c->len, f), body);
        p = wvarint(wtag(p, kf), x->kn);
        copy_bytes(p, x->k, x->kn);
        p = wvarint(wtag(p + x->kn, vf), x->vn);
        copy_bytes(p, x->v, x->vn);
        c->len = (size_t)(p + x->vn - c->buf);
    }
    lua_settop(L, base);
    return 1;
checked:
    lua_settop(L, base);
    return 0;
}

/* Encodes the map table at idx. Up to DP_FAST_ENTRIES entries: keys and
   values stay on the Lua stack and are sorted in a C array; larger maps
   take put_map_general. String maps try put_map_strings first. top: the
   stack top, or -1. */
static int put_map(ectx *c, const dp_field *f, int idx, int top) {
    lua_State *L = c->L;
    const dp_msg *em = &c->S->msgs[f->sub];
    const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
    mkey keys[DP_FAST_ENTRIES];
    int n = 0, base = top >= 0 ? top : lua_gettop(L);
    if (!room(c, base, 2 * DP_FAST_ENTRIES + 8)) luaL_checkstack(L, 2 * DP_FAST_ENTRIES + 8, "dynpb: encode");
    if (kf->type == DP_T_STRING && (vf->type == DP_T_STRING || vf->type == DP_T_BYTES) &&
        put_map_strings(c, f, kf, vf, idx, base))
        return 1;
    lua_pushnil(L);                                           /* +1 first key */
    while (lua_next(L, idx)) {                                /* -1 +2 key, value */
        if (n == DP_FAST_ENTRIES) {
            lua_settop(L, base);
            return put_map_general(c, f, idx);
        }
        mkey *k = &keys[n];
        k->slot = base + 1 + 2 * n;                           /* key; value at slot + 1 */
        if (!read_key(c, kf, -2, k)) return 0;
        lua_pushvalue(L, -2);                                 /* +1 key to continue */
        n++;
    }
    uint8_t order[DP_FAST_ENTRIES];
    for (int i = 0; i < n; i++) {             /* insertion sort: n is small */
        int j = i;
        while (j > 0 && mkey_cmp(&keys[order[j - 1]], &keys[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    for (int i = 0; i < n; i++) {
        const mkey *k = &keys[order[i]];
        if (!put_entry(c, f, kf, vf, k, k->slot, k->slot + 1)) return 0;
    }
    c->path[c->depth].kind = DP_PK_NONE;
    lua_settop(L, base);
    return 1;
}

#define REP_BATCH 16
#define REP_HELD 256             /* stack slots a batch of messages may leave */
#define REP_LEFT 1024            /* ... and all batches of an encode (beyond: none,
                                    so that deep messages need no more stack than
                                    a stack of pairs per level) */

/* Encodes the array at idx as repeated field f: elements 1..#t by index,
   then one lua_next from #t to check that no other key follows. A hole, or
   a key past the border, rewinds and takes put_repeated_general, which
   sorts out what the table is (and reports it). stacktop: the stack top,
   or -1. */
static int put_repeated(ectx *c, const dp_field *f, int idx, int stacktop) {
    lua_State *L = c->L;
    size_t n = dp_rawlen(L, idx), start = c->len, mark = 0;
    dp_pathel *pe = &c->path[c->depth];
    int mode = (f->flags & DPF_PACKED) ? PS_PACKED : PS_KEEP;
    int top = (stacktop >= 0 ? stacktop : lua_gettop(L)) + 1;   /* where an element sits */
    if (n > (size_t)INT32_MAX) return put_repeated_general(c, f, idx);
    if (n && mode == PS_PACKED) {
        put_tag(c, f->number, DP_WT_LEN);
        mark = begin_len(c);
    }
    pe->kind = DP_PK_INDEX;
    /* the elements stay on the stack, REP_BATCH at a time: one lua_settop
       per batch instead of a pop per element */
    if (!room(c, top - 1, REP_BATCH + 2)) return put_repeated_general(c, f, idx);
    /* a message element's key, value pairs stay above it (encode_msg's
       left), dropped with the batch, or when they pass REP_HELD slots
       (REP_LEFT in the whole encode) */
    int held = 0, cur = top - 1;                              /* cur: the stack top */
    int hold = top + REP_HELD < c->top0 + REP_LEFT ? top + REP_HELD : c->top0 + REP_LEFT;
    for (size_t i = 1; i <= n; i++) {
        pe->i = (int64_t)i;
        int vt = dp_rawgeti_t(L, idx, (lua_Integer)i);          /* +1 element */
        if (vt == LUA_TNIL) {
            lua_settop(L, top - 1);
            goto general;
        }
        cur++;
        if (vt == LUA_TTABLE && f->type == DP_T_MESSAGE) {
            put_ftag(c, f);
            if (!enc_put_body(c, f, cur, cur, &cur)) return 0;
        } else if (!put_scalar_inline(c, f, cur, vt, mode, cur)) {
            return 0;
        }
        if (++held == REP_BATCH || cur > hold) {               /* past REP_HELD or REP_LEFT */
            lua_settop(L, top - 1);                           /* -the batch */
            cur = top - 1;
            held = 0;
        }
    }
    if (held) lua_settop(L, top - 1);                         /* -held */
#if LUA_VERSION_NUM < 502
    /* LuaJIT keeps t[0] in its array part, where lua_next meets it before
       t[1]: a next from #t would never see it */
    if (n && dp_rawgeti_t(L, idx, 0) != LUA_TNIL) {           /* +1 */
        lua_pop(L, 1);
        goto general;
    }
    if (n) lua_pop(L, 1);                                     /* -1 */
#endif
    if (n) lua_pushinteger(L, (lua_Integer)n);                /* +1 the last key */
    else lua_pushnil(L);
    if (lua_next(L, idx)) {                                   /* -1 (+2 if a key follows) */
        lua_pop(L, 2);
        goto general;
    }
    if (n && mode == PS_PACKED) enc_end_len(c, mark);
    pe->kind = DP_PK_NONE;
    return 1;
general:
    c->len = start;
    pe->kind = DP_PK_NONE;
    return put_repeated_general(c, f, idx);
}

/* [-0, +0] on success. Finds and reports a key of t that is not a field. */
static int report_unknown_key(ectx *c, const dp_msg *m, int t) {
    lua_State *L = c->L;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            if (strcmp(k, DP_UNKNOWN_KEY) == 0) continue;
            uint32_t i;
            for (i = 0; i < m->nfields; i++)
                if (strcmp(m->fields[i].cname, k) == 0) break;
            if (i < m->nfields) continue;
            return enc_fail(c, "'%s' is not a field of %s", k, m->name);
        }
        return enc_fail(c, "a %s key is not a field of %s", lua_kind(L, -1), m->name);
    }
    return enc_fail(c, "a key that is not a field of %s", m->name);
}

/* the oneof members seen in one message (the first 64 oneofs) */
typedef struct oneofs {
    uint32_t n;                /* oneofs tracked (at most 64) */
    uint64_t seen;             /* bit i: oneof i has a member set, set[i] */
    int32_t set[64];           /* valid where seen has the bit */
} oneofs;

/* Reports two members f and g of one oneof set. */
static int oneof_conflict(ectx *c, const dp_msg *m, const dp_field *f, const dp_field *g) {
    /* named in field order, whatever order the table gave them */
    const dp_field *a = g, *b = f;
    if (a->number > b->number) { a = f; b = g; }
    c->path[c->depth].f = b;
    return enc_fail(c, "oneof '%s' has two members set: '%s' and '%s'", m->oneof_names[f->oneof],
                a->cname, b->cname);
}

/* [-0, +1|0] 1 when the value of field f (or of dynpb.UNKNOWN, f NULL) in
   the table at t is not nil, with the value pushed; 0 with nothing pushed. */
static int get_member(ectx *c, const dp_field *f, int t) {
    lua_State *L = c->L;
    if (f) lua_rawgeti(L, c->names, f->name);                 /* +1 name */
    else lua_pushliteral(L, DP_UNKNOWN_KEY);                  /* +1 */
    lua_rawget(L, t);                                         /* -1 +1 value */
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    return 0;
}

/* Records that oneof member f of m is set; reports a second member. */
static int track_oneof(ectx *c, const dp_msg *m, const dp_field *f, int t, oneofs *oo) {
    lua_State *L = c->L;
    if ((uint32_t)f->oneof < oo->n) {
        uint64_t bit = UINT64_C(1) << f->oneof;
        if (oo->seen & bit) return oneof_conflict(c, m, f, &m->fields[oo->set[f->oneof]]);
        oo->seen |= bit;
        oo->set[f->oneof] = (int32_t)(f - m->fields);
    } else {
        /* past the 64 tracked oneofs: look for another member in the table */
        for (uint32_t i = 0; i < m->nfields; i++) {
            const dp_field *g = &m->fields[i];
            if (g->oneof != f->oneof || g == f) continue;
            if (get_member(c, g, t)) {                        /* +1 */
                lua_pop(L, 1);
                return oneof_conflict(c, m, f, g);
            }
        }
    }
    return 1;
}

/* Writes message extension f of a MessageSet (message_set_wire_format) from
   the table at v as one item: group 1 { type_id = 2: number, message = 3:
   bytes }. */
static int put_item(ectx *c, const dp_field *f, int v) {
    lua_State *L = c->L;
    if (lua_type(L, v) != LUA_TTABLE) return enc_fail(c, "expected table, got %s", lua_kind(L, v));
    put_tag(c, 1, DP_WT_SGROUP);
    put_tag(c, 2, DP_WT_VARINT);
    put_varint(c, f->number);
    put_tag(c, 3, DP_WT_LEN);
    if (!enc_put_body(c, f, v < 0 ? dp_absindex(L, v) : v, -1, NULL)) return 0;
    put_tag(c, 1, DP_WT_EGROUP);
    return 1;
}

/* put_member for the fields whose emode is EM_OTHER: oneof members,
   repeated fields, maps and extensions (a MessageSet's message extensions
   are items); vt: the value's Lua type; top: the stack top, or -1 */
static int put_member_other(ectx *c, const dp_msg *m, const dp_field *f, int t, int v, int vt,
                            oneofs *oo, int top) {
    lua_State *L = c->L;
    c->path[c->depth].f = f;
    if (f->oneof >= 0 && !track_oneof(c, m, f, t, oo)) return 0;
    if (m->message_set && (f->flags & DPF_EXTENSION) && f->type == DP_T_MESSAGE &&
        !(f->flags & DPF_REPEATED))
        return put_item(c, f, v);
    if (f->flags & DPF_REPEATED) {
        if (vt != LUA_TTABLE) return enc_fail(c, "expected table, got %s", lua_kind(L, v));
        return (f->flags & DPF_MAP) ? put_map(c, f, v, top) : put_repeated(c, f, v, top);
    }
    return put_scalar(c, f, v, vt, (f->flags & DPF_PRESENCE) ? PS_KEEP : PS_OMIT);
}

/* Encodes field f of m from the value at v (not nil); t is the table.
   Singular fields outside oneofs (the common case) take put_scalar_fast
   (inline: this is compiled into encode_msg's loop), which needs no path
   element; only the checked path, which may fail, sets it (c->path[depth]
   .kind is DP_PK_NONE between members: put_body sets it, and whatever
   changes it puts it back on success). vt: the value's Lua type; top: the
   stack top. */
static DP_INLINE int put_member(ectx *c, const dp_msg *m, const dp_field *f, int t, int v,
                                int vt, oneofs *oo, int top) {
    if (f->emode == EM_OTHER) return put_member_other(c, m, f, t, v, vt, oo, top);
    int r = put_scalar_fast(c, f, v, vt, f->emode, 1, top);
    if (r) return r > 0;
    c->path[c->depth].f = f;
    return enc_put_field(c, f, v, f->emode == PS_OMIT);
}

/* put_member as a function, for encode_msg_lookup: the value at v is the
   top of the stack */
static int put_member_call(ectx *c, const dp_msg *m, const dp_field *f, int t, int v,
                           oneofs *oo) {
    return put_member(c, m, f, t, v, lua_type(c->L, v), oo, v);
}

/* Appends the raw unknown fields held at v (the dynpb.UNKNOWN value). */
static int put_unknown(ectx *c, int v) {
    lua_State *L = c->L;
    c->path[c->depth].f = NULL;
    c->path[c->depth].kind = DP_PK_NONE;
    if (lua_type(L, v) != LUA_TSTRING)
        return enc_fail(c, "dynpb.UNKNOWN must hold a string of raw fields, got %s", lua_kind(L, v));
    if (!c->o.drop_unknown) {
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        put_bytes(c, s, n);
    }
    return 1;
}

static void oneofs_init(oneofs *oo, const dp_msg *m) {
    oo->n = m->noneofs < 64 ? m->noneofs : 64;
    oo->seen = 0;
}

/* The general path (tables with more than DP_FAST_KEYS fields set): each
   declared field is looked up by name. First the keys are counted against
   the fields found, so that a key that is not a field is reported before
   anything else, as on the fast path; then the fields are written in order. */
static int encode_msg_lookup(ectx *c, const dp_msg *m, int t) {
    lua_State *L = c->L;
    if (!m->ekeys) enc_prepare(c, m);                         /* emode */
    luaL_checkstack(L, 10, "dynpb: encode");
    if (!c->o.ignore_unknown_keys) {
        size_t found = 0;
        for (uint32_t i = 0; i <= m->nfields; i++) {
            if (get_member(c, i < m->nfields ? &m->fields[i] : NULL, t)) {
                found++;
                lua_pop(L, 1);
            }
        }
        if (count_keys(L, t) != found) return report_unknown_key(c, m, t);
    }
    oneofs oo;
    oneofs_init(&oo, m);
    for (uint32_t i = 0; i < m->nfields; i++) {
        const dp_field *f = &m->fields[i];
        if (get_member(c, f, t)) {                            /* +1 value */
            if (!put_member_call(c, m, f, t, lua_gettop(L), &oo)) return 0;
            lua_pop(L, 1);                                    /* -1 */
        }
    }
    if (get_member(c, NULL, t)) {                             /* +1 unknown */
        if (!put_unknown(c, lua_gettop(L))) return 0;
        lua_pop(L, 1);                                        /* -1 */
    }
    c->path[c->depth].f = NULL;
    return 1;
}

#define DP_FAST_KEYS 64

/* the fields the first pass of encode_msg found in a message table, in the
   order of their key, value pairs on the stack */
typedef struct found {
    int n;                      /* pairs */
    uint16_t fi[DP_FAST_KEYS];  /* field index of the i-th pair */
    uint64_t present;           /* bit k: field k found (k < 64) */
    uint8_t at[64];             /* field k's pair, when present */
} found;

static inline void found_init(found *fs) {
    fs->n = 0;
    fs->present = 0;
}

static inline void found_add(found *fs, int k) {
    fs->fi[fs->n] = (uint16_t)k;
    if (k < 64) {
        fs->present |= UINT64_C(1) << k;
        fs->at[k] = (uint8_t)fs->n;
    }
    fs->n++;
}

/* the slot of key pointer p in m's encode key table: the top bits of a
   multiplicative hash (aligned addresses differ in their high bits there) */
static inline uint32_t ekey_slot(const dp_msg *m, const char *p) {
    return (uint32_t)(((uint64_t)(uintptr_t)p * m->ekmul) >> m->ekshift);
}

/* the multipliers encode_prepare tries: odd, from a fixed splitmix64
   sequence (no random seed: the i-th try is the same in every process) */
static uint64_t ekey_mul(int i) {
    uint64_t z = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(i + 1);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return (z ^ (z >> 31)) | 1;
}

enum { EK_TRIES = 32, EK_MAX_SLOTS = 1024 };

/* [-0, +0, m] Builds m->ekeys, the table encode finds a key's field in by
   the key's address (the interned name, m->fields[i].lname), so that a
   lookup is one load and one compare: tables of 2, 4 and 8 slots per
   field, each with EK_TRIES multipliers, are tried in turn, and the first
   in which no two names share a slot is kept (else the one with the
   fewest shared: they are probed linearly, as any open-addressing table).
   Messages of over EK_MAX_SLOTS / 4 fields take the first multiplier and
   2 slots per field. Sets each field's emode too. */
static void encode_prepare(lua_State *L, dp_schema *S, dp_msg *m) {
    uint32_t n = m->nfields, bits = 2, best_bits = 0, best_hits = UINT32_MAX;
    uint64_t best_mul = ekey_mul(0);
    while ((UINT32_C(1) << bits) < 2 * n) bits++;
    if ((UINT32_C(1) << bits) <= EK_MAX_SLOTS / 2) {
        uint8_t used[EK_MAX_SLOTS];
        for (uint32_t b = bits; b <= bits + 2 && (UINT32_C(1) << b) <= EK_MAX_SLOTS && best_hits; b++)
            for (int t = 0; t < EK_TRIES && best_hits; t++) {
                uint64_t mul = ekey_mul(t);
                uint32_t hits = 0;
                memset(used, 0, (size_t)1 << b);
                for (uint32_t i = 0; i < n; i++) {
                    uint32_t h = (uint32_t)(((uint64_t)(uintptr_t)m->fields[i].lname * mul) >> (64 - b));
                    hits += used[h];
                    used[h] = 1;
                }
                if (hits < best_hits) {
                    best_hits = hits;
                    best_bits = b;
                    best_mul = mul;
                }
            }
        bits = best_bits;
    }
    m->ekmul = best_mul;
    m->ekshift = (uint8_t)(64 - bits);
    m->ekmask = (UINT32_C(1) << bits) - 1;
    m->ekeys = dp_schema_alloc(L, S, sizeof(dp_ekey) * ((size_t)m->ekmask + 1));
    memset(m->ekeys, 0, sizeof(dp_ekey) * ((size_t)m->ekmask + 1));
    for (uint32_t i = 0; i < n; i++) {
        dp_field *f = &m->fields[i];
        f->emode = (f->oneof >= 0 || (f->flags & (DPF_REPEATED | DPF_EXTENSION))) ? EM_OTHER
                   : (f->flags & DPF_PRESENCE) ? PS_KEEP : PS_OMIT;
        if (strcmp(f->cname, "inf") == 0) continue;           /* see collect_fields */
        uint32_t h = ekey_slot(m, m->fields[i].lname);
        while (m->ekeys[h].key) h = (h + 1) & m->ekmask;
        m->ekeys[h].key = m->fields[i].lname;
        m->ekeys[h].index = i;
    }
}

/* [-0, +0, m] Prepares m for encode on its first encode (encode_msg and
   encode_msg_lookup call it while m->ekeys is NULL): a load compiles no key
   tables, so a big set whose messages are mostly never encoded here pays
   neither their time nor their memory (googleapis: 7.9 MB, a sixth of
   the schema). The bytes are counted in stats() as a load's are; the
   schema is the state's own (no other state or thread sees it). */
static void enc_prepare(ectx *c, const dp_msg *m) {
    dp_schema *S = (dp_schema *)c->S;          /* c->S is const for the walk only */
    size_t before = S->nbytes;
    encode_prepare(c->L, S, (dp_msg *)m);      /* m is in S->msgs */
    if (S->counted) S->state->bytes += (int64_t)(S->nbytes - before);
}

/* the index of the field whose interned name is the string s (-1: none
   found by address: a key that is not a field name, a number key's text, a
   name not interned, e.g. a long string on Lua 5.4, or "inf", which
   encode_prepare leaves out) */
static inline int field_index_by_key(const dp_msg *m, const char *s) {
    for (uint32_t i = ekey_slot(m, s);; i = (i + 1) & m->ekmask) {
        const dp_ekey *e = &m->ekeys[i];
        if (e->key == s) return (int)e->index;
        if (!e->key) return -1;
    }
}

/* The first pass of encode_msg when every key of the table at t is the
   name of a field of m or dynpb.UNKNOWN (the common case): one lua_next
   pass that reads each key with lua_tolstring alone and finds it in the
   message's pointer hash, leaving key, value pairs at base+1, base+2, ...
   (the key is pushed again for the next step) and the fields in fs;
   *unknown is set when dynpb.UNKNOWN is a key (its value is written last).
   lua_tolstring turns a number key into its text in place (on the stack
   only: the table is not changed), and such a text is never a field name
   (names start with a letter or '_'; the text of an infinity, "inf", is
   the one exception: that name is not in the pointer hash, and goes to the
   checked pass). A name found by content (not interned) is taken too. So
   any other key, or more than DP_FAST_KEYS fields, gives -1 with the stack
   back at base, and encode_msg runs collect_fields_checked, which tells
   what the key is. Returns 1 otherwise.
   small: m has at most 64 fields, and fs gets present and at only (each
   field is found once at most: a table has one key of each content, and a
   number's text is no name in the hash, so there are at most 64 pairs);
   else fi only, and the count is checked. */
static DP_INLINE int collect_fields_as(ectx *c, const dp_msg *m, int t, int base, found *fs,
                                       int *unknown, int small) {
    lua_State *L = c->L;
    lua_pushnil(L);                                           /* +1 first key */
    while (lua_next(L, t)) {                                  /* -1 +2 key, value */
        const char *k = lua_tolstring(L, -2, NULL);          /* the length: below */
        int fk = k ? field_index_by_key(m, k) : -1;
        if (fk < 0) {                                         /* rare: see above */
            size_t kn = 0;
            if (k) lua_tolstring(L, -2, &kn);                 /* the same text */
            if (k && kn == sizeof(DP_UNKNOWN_KEY) - 1 && memcmp(k, DP_UNKNOWN_KEY, kn) == 0) {
                *unknown = 1;
                lua_pop(L, 1);                                /* -1 value */
                continue;
            }
            const dp_field *f = k ? dp_find_field_by_name(m, k, kn) : NULL;
            if (!f || (kn == 3 && memcmp(k, "inf", 3) == 0)) {
                lua_settop(L, base);
                return -1;
            }
            fk = (int)(f - m->fields);
        }
        if (small) {
            fs->present |= UINT64_C(1) << fk;
            fs->at[fk] = (uint8_t)fs->n;
        } else {
            if (fs->n == DP_FAST_KEYS) {
                lua_settop(L, base);
                return -1;
            }
            fs->fi[fs->n] = (uint16_t)fk;
        }
        fs->n++;
        lua_pushvalue(L, -2);                                 /* +1 the key, to go on */
    }
    return 1;
}

static int collect_fields(ectx *c, const dp_msg *m, int t, int base, found *fs, int *unknown) {
    if (m->nfields <= 64) return collect_fields_as(c, m, t, base, fs, unknown, 1);
    return collect_fields_as(c, m, t, base, fs, unknown, 0);
}

enum { CF_FAILED = -1, CF_TOO_MANY = -2 };

/* The first pass of encode_msg for any table: as collect_fields, with each
   key's type tested first; a key that is not a field is reported (or
   skipped, with ignore_unknown_keys). Returns 1, CF_FAILED with the error
   pushed, or CF_TOO_MANY (more than DP_FAST_KEYS fields) with the stack
   back at base. */
static int collect_fields_checked(ectx *c, const dp_msg *m, int t, int base, found *fs,
                                  int *unknown) {
    lua_State *L = c->L;
    lua_pushnil(L);                                           /* +1 first key */
    while (lua_next(L, t)) {                                  /* -1 +2 key, value */
        const dp_field *f = NULL;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kn;
            const char *k = lua_tolstring(L, -2, &kn);
            f = dp_find_field_by_key(m, k, kn);
            if (!f && kn == sizeof(DP_UNKNOWN_KEY) - 1 && memcmp(k, DP_UNKNOWN_KEY, kn) == 0) {
                *unknown = 1;                                 /* written last */
                lua_pop(L, 1);                                /* -1 value */
                continue;
            }
        }
        if (!f) {
            if (c->o.ignore_unknown_keys) {
                lua_pop(L, 1);                                /* -1 value */
                continue;
            }
            c->path[c->depth].f = NULL;
            if (lua_type(L, -2) == LUA_TSTRING)
                enc_fail(c, "'%s' is not a field of %s", lua_tostring(L, -2), m->name);
            else
                enc_fail(c, "a %s key is not a field of %s", lua_kind(L, -2), m->name);
            return CF_FAILED;
        }
        if (fs->n == DP_FAST_KEYS) {                          /* too many: general path */
            lua_settop(L, base);
            return CF_TOO_MANY;
        }
        found_add(fs, (int)(f - m->fields));
        lua_pushvalue(L, -2);                                 /* +1 the key, to go on */
    }
    return 1;
}

/* Encodes the table at absolute index t as message m.
   Fast path (tables of up to DP_FAST_KEYS fields): one lua_next pass finds
   each key in the message's pointer hash (no Lua call) and leaves its value
   on the stack (the key is pushed again for the next step), so the stack
   holds key, value pairs at base+1, base+2, ... (collect_fields; or
   collect_fields_checked, when a key is not a field name). Then the fields
   are written in field-number order straight from those slots: canonical
   output with no sort of the bytes. Unknown keys are found before anything
   is written. Larger tables, or a stack that cannot grow, take
   encode_msg_lookup. top: the stack top, when the caller knows it (the
   fast paths do: no lua_gettop per message), else -1. left NULL: the
   pairs are dropped before it returns; else they stay (a caller that drops
   many messages' at once saves a lua_settop per message) and *left is the
   stack top it leaves. */
static int encode_msg(ectx *c, const dp_msg *m, int t, int top, int *left) {
    lua_State *L = c->L;
    found fs;
    int unknown = 0;
    int base = top >= 0 ? top : lua_gettop(L);
    if (__builtin_expect(!m->ekeys, 0)) enc_prepare(c, m);    /* the first encode of m */
#ifdef DP_CHECK_TOP
    /* the sanitizer builds check what the callers say */
    if (base != lua_gettop(L)) luaL_error(L, "dynpb: encode: stack top %d, not %d", lua_gettop(L), base);
#endif
    if (!room(c, base, 2 * DP_FAST_KEYS + 8)) {
        if (report_cycle(c, c->depth + 1)) return 0;             /* the likely cause */
        if (left) *left = base;
        return encode_msg_lookup(c, m, t);
    }
    found_init(&fs);
    if (collect_fields(c, m, t, base, &fs, &unknown) < 0) {
        unknown = 0;
        found_init(&fs);
        int r = collect_fields_checked(c, m, t, base, &fs, &unknown);
        if (r == CF_TOO_MANY) {
            if (left) *left = base;
            return encode_msg_lookup(c, m, t);
        }
        if (r == CF_FAILED) return 0;
    }
    /* stack: base+1 .. base+2n = key, value of the i-th field found; in
       field-number order they are the bits of fs.present (messages of at
       most 64 fields), else sorted */
    int small = m->nfields <= 64;
    uint8_t order[DP_FAST_KEYS];
    if (!small) {
        for (int i = 0; i < fs.n; i++) {      /* insertion sort: n is small */
            int j = i;
            while (j > 0 && fs.fi[order[j - 1]] > fs.fi[i]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = (uint8_t)i;
        }
    }
    oneofs oo;
    oneofs_init(&oo, m);
    uint64_t present = fs.present;
    for (int i = 0; i < fs.n; i++) {
        int k, pair;
        if (small) {
            k = __builtin_ctzll(present);
            present &= present - 1;
            pair = fs.at[k];
        } else {
            pair = order[i];
            k = fs.fi[pair];
        }
        if (!put_member(c, m, &m->fields[k], t, base + 2 + 2 * pair, lua_type(L, base + 2 + 2 * pair), &oo,
                        base + 2 * fs.n))
            return 0;
    }
    int end = base + 2 * fs.n;
    if (unknown && get_member(c, NULL, t) && !put_unknown(c, ++end)) return 0;
    if (left) *left = end;
    else lua_settop(L, base);                                 /* drop the pairs */
    c->path[c->depth].f = NULL;
    return 1;
}

/* [-0, +1|2, e] encodes the table at tidx into the buffer of b (a buffer
   holder, below); pushes the bytes, or nil and the message */
static int encode_run(lua_State *L, dp_state *b, const dp_schema *S, const dp_msg *m,
                      int names, int tidx, const dp_opts *o) {
    ectx c;
    c.L = L;
    c.S = S;
    c.st = b;
    c.buf = b->buf;
    c.cap = b->bufcap;
    c.len = 0;
    c.tname = m->name;
    c.depth = 0;
    c.path[0].f = NULL;
    c.path[0].kind = DP_PK_NONE;
    c.o = *o;
    c.tables[0] = tidx;
    c.room = 0;
    c.top0 = lua_gettop(L);
    c.names = names;
    ensure(&c, 64);
    if (!encode_msg(&c, m, tidx, -1, NULL)) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushlstring(L, (const char *)c.buf, c.len);
    /* a buffer grown by one huge message is not kept */
    if (b->bufcap > (4u << 20)) {
        void *ud;
        lua_Alloc a = lua_getallocf(L, &ud);
        a(ud, b->buf, b->bufcap, 0);
        b->buf = NULL;
        b->bufcap = 0;
    }
    return 1;
}

/* [-0, +2|3, e] the body of both encode methods.
 *
 * The common case costs no Lua API call: when no encode of this lua_State
 * is running, the call writes into the buffer of the module state itself
 * (st->buf, freed by the state's __gc), marked busy (st->ebusy) for the
 * call. Otherwise (an encode inside an encode, or after an error raised
 * out of an encode left the mark set: only out of memory or an error in a
 * finalizer can) it takes a leased buffer as below: slower, never wrong.
 *
 * A leased buffer lives in a holder (a dp_state userdata
 * with the state's metatable, whose __gc frees the buffer) kept in the
 * state's uservalue at DP_SU_EBUF. A call takes it out (the slot becomes
 * false) and keeps it on its own Lua stack while it encodes, then puts it
 * back. So
 *  - an encode inside an encode (a finalizer run by the GC in the middle of
 *    one) finds no buffer and makes a holder of its own;
 *  - an error raised inside an encode (out of memory, a stack that cannot
 *    grow) leaves the slot empty: the leased holder is then unreferenced
 *    and collected, and the next call makes a new one, which is kept again.
 * Nothing is held busy by a call that no longer runs, and no call runs
 * protected (lua_pcall cost more than the encode of a small message). */
static int encode_call(lua_State *L, int stidx, dp_schema *S, const dp_msg *m, int names,
                       int tidx, int oidx) {
    if (!lua_istable(L, tidx))
        luaL_error(L, "dynpb: encode %s: table expected, got %s", m->name, luaL_typename(L, tidx));
    tidx = dp_absindex(L, tidx);
    stidx = dp_absindex(L, stidx);
    dp_opts o;
    dp_parse_opts(L, oidx, "encode", &o);   /* before anything is pushed */
    dp_state *st = lua_touserdata(L, stidx);
    if (!st->ebusy) {
        st->ebusy = 1;
        int n = encode_run(L, st, S, m, names, tidx, &o);      /* +1|2 */
        st->ebusy = 0;
        return n;
    }
    dp_getuv(L, stidx);                               /* +1 state uservalue */
    int uv = lua_gettop(L);
    lua_rawgeti(L, uv, DP_SU_EBUF);                   /* +1 the free holder, or false */
    dp_state *b = lua_touserdata(L, -1);
    if (b) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, uv, DP_SU_EBUF);               /* leased */
    } else {
        lua_pop(L, 1);                                /* -1 */
        b = dp_newudata(L, sizeof *b);                /* +1 a new holder */
        memset(b, 0, sizeof *b);
        lua_getmetatable(L, stidx);
        lua_setmetatable(L, -2);
    }
    int bidx = lua_gettop(L);
    int n = encode_run(L, b, S, m, names, tidx, &o);  /* +1|2 */
    lua_pushvalue(L, bidx);
    lua_rawseti(L, uv, DP_SU_EBUF);                   /* given back (a nested call's
                                                         holder, if any, is dropped) */
    return n;
}

int dp_l_schema_encode(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    const dp_msg *m = dp_lookup_msg(L, S, 1, 2);
    lua_settop(L, 4);                                 /* names go above the arguments */
    dp_push_names(L, 1);                              /* +1 names */
    return encode_call(L, lua_upvalueindex(DP_UP_STATE), S, m, lua_gettop(L), 3, 4);
}

/* a handle's own closure: its upvalues (DP_HU_*) say what to encode */
int dp_l_handle_encode(lua_State *L) {
    dp_schema *S = lua_touserdata(L, lua_upvalueindex(DP_HU_CORE));
    const dp_msg *m = &S->msgs[lua_tointeger(L, lua_upvalueindex(DP_HU_INDEX))];
    return encode_call(L, lua_upvalueindex(DP_HU_STATE), S, m, lua_upvalueindex(DP_HU_NAMES),
                       2, 3);
}
