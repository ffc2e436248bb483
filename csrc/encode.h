/*
 * encode.h -- what encode.c (the fast paths, the walk of a table) and
 * encode_check.c (the checked path and its errors) share: the encode
 * context, the output buffer's writers, and the functions each calls in
 * the other. Internal to the encoder.
 */
#ifndef DP_ENCODE_H
#define DP_ENCODE_H

#include "dynpb.h"

/* for the functions compiled into their hot callers (put_scalar_inline
   into encode_msg's loop, through put_member, and into put_repeated's), so
   that a value costs no C call; other callers use put_scalar */
#define DP_INLINE inline __attribute__((always_inline))

typedef struct ectx {
    lua_State *L;
    const dp_schema *S;
    dp_state *st;                    /* the buffer's holder (encode_call) */
    unsigned char *buf;              /* st->buf, cached (enc_grow updates both) */
    size_t cap;                      /* st->bufcap, cached */
    size_t len;                      /* bytes written to buf */
    int names;                       /* stack index of the NAMES array */
    const char *tname;               /* top message name, for errors */
    dp_opts o;
    int depth;
    int room;                        /* the stack has room up to this index */
    int top0;                        /* the stack top when the encode began */
    dp_pathel path[DP_MAX_MAX_DEPTH + 2];
    int tables[DP_MAX_MAX_DEPTH + 2];   /* stack index of each ancestor table */
} ectx;

/* encode.c: ensure's slow half (raises on overflow or out of memory; the
   buffer stays owned by st, so nothing leaks) */
DP_HIDDEN void enc_grow(ectx *c, size_t need);

/* Makes sure the stack has n free slots above index top (the current
   top): lua_checkstack only when the reserve made before does not reach.
   A reserve holds for the whole call: Lua 5.1-5.4 keep the C function's
   ci->top, which lua_checkstack raised, when the GC shrinks a stack, and
   LuaJIT's pushes grow its stack themselves. Asks for twice n first, so
   that sibling messages a few slots apart check once. Returns 0 when the
   stack cannot grow. */
static inline int room(ectx *c, int top, int n) {
    if (top + n <= c->room) return 1;
    if (lua_checkstack(c->L, 2 * n)) c->room = top + 2 * n;
    else if (lua_checkstack(c->L, n)) c->room = top + n;
    else return 0;
    return 1;
}

/* ---- the output buffer */

/* Makes room for n more bytes. */
static inline void ensure(ectx *c, size_t n) {
    if (c->cap - c->len < n) enc_grow(c, n);
}

/* Writes v as a varint at p (room for 10 bytes); returns the end. */
static inline unsigned char *wvarint(unsigned char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static inline unsigned char *wle32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
    return p + 4;
}

static inline unsigned char *wle64(unsigned char *p, uint64_t v) {
    return wle32(wle32(p, (uint32_t)v), (uint32_t)(v >> 32));
}

/* Writes f's precomputed tag at p (room for 8 bytes); returns the end. */
static inline unsigned char *wtag(unsigned char *p, const dp_field *f) {
    memcpy(p, f->tag, sizeof f->tag);
    return p + f->taglen;
}

/* Appends f's precomputed tag. */
static inline void put_ftag(ectx *c, const dp_field *f) {
    ensure(c, sizeof f->tag);
    c->len = (size_t)(wtag(c->buf + c->len, f) - c->buf);
}

/* Copies n bytes from s to p, as memcpy; up to 32 without a call: two
   blocks that overlap (16, 8 or 4 bytes), or the bytes one by one below 4. */
static inline void copy_bytes(unsigned char *p, const char *s, size_t n) {
    if (n > 32) {
        memcpy(p, s, n);
    } else if (n >= 16) {
        unsigned char a[16], b[16];
        memcpy(a, s, 16);
        memcpy(b, s + n - 16, 16);
        memcpy(p, a, 16);
        memcpy(p + n - 16, b, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(p, &a, 8);
        memcpy(p + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(p, &a, 4);
        memcpy(p + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) p[i] = (unsigned char)s[i];
    }
}

/* Appends f's tag, the length n and the n bytes at s. */
static inline void put_lenbytes(ectx *c, const dp_field *f, const char *s, size_t n) {
    ensure(c, sizeof f->tag + 10 + n);
    unsigned char *p = wvarint(wtag(c->buf + c->len, f), n);
    copy_bytes(p, s, n);
    c->len = (size_t)(p + n - c->buf);
}

static inline void put_varint(ectx *c, uint64_t v) {
    ensure(c, 10);
    c->len = (size_t)(wvarint(c->buf + c->len, v) - c->buf);
}

static inline void put_bytes(ectx *c, const void *s, size_t n) {
    ensure(c, n);
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

static inline void put_le32(ectx *c, uint32_t v) {
    ensure(c, 4);
    c->len = (size_t)(wle32(c->buf + c->len, v) - c->buf);
}

static inline void put_le64(ectx *c, uint64_t v) {
    ensure(c, 8);
    c->len = (size_t)(wle64(c->buf + c->len, v) - c->buf);
}

static inline void put_tag(ectx *c, uint32_t number, int wt) {
    put_varint(c, ((uint64_t)number << 3) | (uint64_t)wt);
}

static inline int varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}

/* Starts a length-delimited body: reserves one byte; returns its offset. */
static inline size_t begin_len(ectx *c) {
    ensure(c, 1);
    return c->len++;
}

/* encode.c */
DP_HIDDEN void enc_end_len(ectx *c, size_t mark);   /* ends a body begin_len began */
/* Writes the body of message (or group) field f from the table at absolute
   index t (the tag is the caller's); top, left: see encode.c. */
DP_HIDDEN int enc_put_body(ectx *c, const dp_field *f, int t, int top, int *left);

/* encode_check.c: the checked path, and every error message */
#define lua_kind(L, idx) luaL_typename((L), (idx))
DP_HIDDEN int enc_fail(ectx *c, const char *fmt, ...);    /* [-0, +1] pushes it; returns 0 */
DP_HIDDEN const char *enc_value_desc(lua_State *L, int idx, char *buf, size_t size);
DP_HIDDEN int enc_get_int(ectx *c, const dp_field *f, int idx, uint64_t *out);
DP_HIDDEN int enc_put_value(ectx *c, const dp_field *f, int idx, int *zero);
DP_HIDDEN int enc_put_field(ectx *c, const dp_field *f, int idx, int omit_zero);

#endif
