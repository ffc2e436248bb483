/*
 * json.h -- what json_encode.c (bytes -> JSON text) and json_decode.c
 * (JSON text -> canonical protobuf bytes) share with json_common.c: the
 * call options, the per-state scratch buffers and the well-known types.
 *
 * Memory: every buffer a JSON call writes into belongs to a scratch
 * userdata (dp_jscratch) with a __gc; the state keeps one in its uservalue
 * (DP_SU_JSON) and leases it to each call, so a call allocates nothing but
 * its result string once the buffers have grown. A call made while another
 * holds the scratch (a finalizer running during a call) gets a scratch of
 * its own. An error raised half way (out of memory) leaks nothing and holds
 * nothing busy: the leased scratch is then garbage, freed by its __gc, and
 * the next call makes a new one.
 */
#ifndef DYNPB_JSON_H
#define DYNPB_JSON_H

#include "dynpb.h"

/* well-known types with a JSON form of their own (dp_msg.wkt) */
enum {
    DP_WKT_NONE = 0, DP_WKT_ANY, DP_WKT_TIMESTAMP, DP_WKT_DURATION, DP_WKT_FIELDMASK,
    DP_WKT_STRUCT, DP_WKT_VALUE, DP_WKT_LISTVALUE, DP_WKT_WRAPPER, DP_WKT_EMPTY
};

/* options of one to_json/from_json call */
typedef struct dp_jopts {
    int max_depth;            /* nesting limit (default DP_DEFAULT_MAX_DEPTH) */
    int indent;               /* to_json: spaces per level, 0 = compact */
    uint8_t emit_defaults;    /* to_json: print fields without presence when unset */
    uint8_t proto_names;      /* to_json: field names as declared, not json_name */
    uint8_t enums_number;     /* to_json: enum values as numbers */
    uint8_t any_raw;          /* to_json: unresolved Any as {"@type", "@value"} */
    uint8_t ignore_unknown;   /* from_json: skip unknown fields and enum names */
} dp_jopts;

/* [-0, +0, e] fills o from the options table at idx (nil/none = defaults);
   raises on an unknown option name or a bad value. tojson: the direction. */
DP_HIDDEN void dp_json_opts(lua_State *L, int idx, int tojson, dp_jopts *o);

typedef struct dp_jbuf {
    unsigned char *p;
    size_t len, cap;
} dp_jbuf;

/* scratch buffers of one JSON call (a userdata; __gc frees the buffers) */
enum { DP_JB_OUT, DP_JB_TMP, DP_JB_STK, DP_JB_STR, DP_JB_N };
typedef struct dp_jscratch {
    lua_Alloc alloc;
    void *alloc_ud;
    dp_jbuf b[DP_JB_N];
} dp_jscratch;

/* [-0, +1, e] the start of a JSON call (fn names the call in a stack
   overflow): pushes the call's scratch, leased from the state (the calling
   function's DP_UP_STATE upvalue), and returns it. */
DP_HIDDEN dp_jscratch *dp_json_begin(lua_State *L, const char *fn);
/* [-0, +1|2, e] the end of a JSON call, the scratch on top (ok) or below
   the error message (!ok): gives the scratch back and pushes the bytes of
   out (ok: returns 1), or nil under the message (returns 2). */
DP_HIDDEN int dp_json_end(lua_State *L, int ok, const dp_jbuf *out);
/* [-0, +0, e] makes room for need more bytes in b (raises on out of memory
   or overflow) and returns b->p + b->len */
DP_HIDDEN unsigned char *dp_jbuf_grow(lua_State *L, dp_jscratch *sc, dp_jbuf *b, size_t need);
static inline unsigned char *dp_jbuf_room(lua_State *L, dp_jscratch *sc, dp_jbuf *b,
                                          size_t need) {
    if (b->cap - b->len < need) return dp_jbuf_grow(L, sc, b, need);
    return b->p + b->len;
}

/* [-0, +1, m] lua_pushlstring that returns the string (5.1 returns nothing) */
static inline const char *dp_jpushl(lua_State *L, const void *s, size_t n) {
    lua_pushlstring(L, (const char *)s, n);
    return lua_tostring(L, -1);
}

/* is the enum google.protobuf.NullValue (printed and read as null)? */
static inline int dp_is_null_enum(const dp_enum *e) {
    return e->name[0] == 'g' && strcmp(e->name, "google.protobuf.NullValue") == 0;
}

/* base64: the standard alphabet; the decoding table takes both alphabets
   (-1 for other bytes) */
DP_HIDDEN extern const char dp_b64_chars[65];
DP_HIDDEN extern const signed char dp_b64_value[256];

/* Timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
#define DP_TS_MIN INT64_C(-62135596800)
#define DP_TS_MAX INT64_C(253402300799)
#define DP_DUR_MAX INT64_C(315576000000)

/* days since 1970-01-01 of a civil date, and back */
DP_HIDDEN int64_t dp_days_from_civil(int64_t y, unsigned m, unsigned d);
DP_HIDDEN void dp_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
