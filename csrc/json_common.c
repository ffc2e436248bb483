/*
 * json_common.c -- what both JSON directions share: the call options, the
 * per-state scratch buffers, JSON names and well-known-type kinds computed
 * at compile time, base64 tables and civil-date arithmetic.
 */
#include <string.h>

#include "json.h"

/* ---- options */

static int jopt_bool(lua_State *L, int idx, const char *fn, const char *name) {
    lua_getfield(L, idx, name);                       /* +1 */
    int r = 0;
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1))
            luaL_error(L, "dynpb.%s: option '%s' must be a boolean", fn, name);
        r = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);                                    /* -1 */
    return r;
}

/* [-0, +0, e] option name at idx as an integer in [lo, hi], or dflt */
static int jopt_int(lua_State *L, int idx, const char *fn, const char *name, int lo, int hi,
                    int dflt) {
    lua_getfield(L, idx, name);
    int r = dflt;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= lo && n <= hi) || n != (lua_Number)(int)n)
            luaL_error(L, "dynpb.%s: option '%s' must be an integer from %d to %d", fn, name, lo,
                       hi);
        r = (int)n;
    }
    lua_pop(L, 1);
    return r;
}

/* [-0, +0, e] option name at idx as one of two strings: 0, 1, or dflt */
static int jopt_choice(lua_State *L, int idx, const char *fn, const char *name, const char *a,
                       const char *b, int dflt) {
    lua_getfield(L, idx, name);
    int r = dflt;
    if (!lua_isnil(L, -1)) {
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (v && strcmp(v, a) == 0) r = 0;
        else if (v && strcmp(v, b) == 0) r = 1;
        else luaL_error(L, "dynpb.%s: option '%s' must be \"%s\" or \"%s\"", fn, name, a, b);
    }
    lua_pop(L, 1);
    return r;
}

void dp_json_opts(lua_State *L, int idx, int tojson, dp_jopts *o) {
    static const char *const out_known[] = {"emit_defaults", "proto_names", "enums", "indent",
                                            "max_depth", "unresolved_any", NULL};
    static const char *const in_known[] = {"ignore_unknown_fields", "max_depth", NULL};
    const char *fn = tojson ? "to_json" : "from_json";
    memset(o, 0, sizeof *o);
    o->max_depth = DP_DEFAULT_MAX_DEPTH;
    if (lua_isnoneornil(L, idx)) return;
    dp_check_options(L, idx, fn, tojson ? out_known : in_known);
    idx = dp_absindex(L, idx);
    o->max_depth = jopt_int(L, idx, fn, "max_depth", 1, DP_MAX_MAX_DEPTH, DP_DEFAULT_MAX_DEPTH);
    if (tojson) {
        o->emit_defaults = (uint8_t)jopt_bool(L, idx, fn, "emit_defaults");
        o->proto_names = (uint8_t)jopt_bool(L, idx, fn, "proto_names");
        o->enums_number = (uint8_t)jopt_choice(L, idx, fn, "enums", "name", "number", 0);
        o->any_raw = (uint8_t)jopt_choice(L, idx, fn, "unresolved_any", "error", "raw", 0);
        o->indent = jopt_int(L, idx, fn, "indent", 0, 16, 0);
    } else {
        o->ignore_unknown = (uint8_t)jopt_bool(L, idx, fn, "ignore_unknown_fields");
    }
}

/* ---- scratch buffers */

static int jscratch_gc(lua_State *L) {
    dp_jscratch *sc = lua_touserdata(L, 1);
    for (int i = 0; i < DP_JB_N; i++) {
        if (sc->b[i].p) sc->alloc(sc->alloc_ud, sc->b[i].p, sc->b[i].cap, 0);
        sc->b[i].p = NULL;
        sc->b[i].cap = sc->b[i].len = 0;
    }
    return 0;
}

/* [-0, +1, e] a new scratch userdata with its __gc metatable */
static dp_jscratch *new_scratch(lua_State *L) {
    dp_jscratch *sc = dp_newudata(L, sizeof *sc);    /* +1 */
    memset(sc, 0, sizeof *sc);
    sc->alloc = lua_getallocf(L, &sc->alloc_ud);
    if (luaL_newmetatable(L, "dynpb.jscratch")) {     /* +1 */
        lua_pushcfunction(L, jscratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                          /* -1 */
    return sc;
}

/* The scratch is leased, as encode.c leases its buffer: the call takes it
   out of DP_SU_JSON (the slot holds false meanwhile) and dp_json_end puts
   it back. A call that finds the slot empty (another call holds it, or a
   raise dropped it) makes a new one, kept by dp_json_end; a raise leaves
   the leased scratch unreferenced, and the GC frees its buffers. */
dp_jscratch *dp_json_begin(lua_State *L, const char *fn) {
    luaL_checkstack(L, 16, fn);
    dp_getuv(L, lua_upvalueindex(DP_UP_STATE));        /* +1 state uv */
    lua_rawgeti(L, -1, DP_SU_JSON);                    /* +1 free scratch, or false/nil */
    dp_jscratch *sc = lua_touserdata(L, -1);
    if (sc) {
        lua_pushboolean(L, 0);                         /* +1 */
        lua_rawseti(L, -3, DP_SU_JSON);                /* -1 leased */
    } else {
        lua_pop(L, 1);                                 /* -1 */
        sc = new_scratch(L);                           /* +1 */
    }
    lua_replace(L, -2);                                /* -1: the scratch only */
    for (int i = 0; i < DP_JB_N; i++) sc->b[i].len = 0;
    return sc;
}

int dp_json_end(lua_State *L, int ok, const dp_jbuf *out) {
    int scidx = ok ? lua_gettop(L) : lua_gettop(L) - 1;
    if (ok) dp_jpushl(L, out->p ? (const char *)out->p : "", out->len); /* +1 result */
    else lua_pushnil(L);                               /* +1 */
    dp_getuv(L, lua_upvalueindex(DP_UP_STATE));        /* +1 state uv */
    lua_pushvalue(L, scidx);                           /* +1 */
    lua_rawseti(L, -2, DP_SU_JSON);                    /* -1 given back */
    lua_pop(L, 1);                                     /* -1 */
    if (ok) return 1;
    lua_insert(L, -2);                                 /* nil, message */
    return 2;
}

unsigned char *dp_jbuf_grow(lua_State *L, dp_jscratch *sc, dp_jbuf *b, size_t need) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < need) {
        if (cap > ((size_t)-1) / 4) {
            luaL_error(L, "dynpb: JSON: output too large");
        }
        cap *= 2;
    }
    unsigned char *nb = sc->alloc(sc->alloc_ud, b->p, b->cap, cap);
    if (!nb) luaL_error(L, "dynpb: not enough memory");
    b->p = nb;
    b->cap = cap;
    return b->p + b->len;
}

/* ---- compile time: JSON names and well-known types */

static const char *const wkt_names[] = {
    "Any", "Timestamp", "Duration", "FieldMask", "Struct", "Value", "ListValue", NULL};

static int wkt_kind(const char *name) {
    if (strncmp(name, "google.protobuf.", 16) != 0) return DP_WKT_NONE;
    name += 16;
    for (int i = 0; wkt_names[i]; i++)
        if (strcmp(name, wkt_names[i]) == 0) return DP_WKT_ANY + i;
    static const char *const wrappers[] = {"DoubleValue", "FloatValue", "Int64Value",
                                           "UInt64Value", "Int32Value", "UInt32Value",
                                           "BoolValue", "StringValue", "BytesValue", NULL};
    for (int i = 0; wrappers[i]; i++)
        if (strcmp(name, wrappers[i]) == 0) return DP_WKT_WRAPPER;
    if (strcmp(name, "Empty") == 0) return DP_WKT_EMPTY;
    return DP_WKT_NONE;
}

void dp_json_prepare(lua_State *L, dp_schema *S, dp_msg *m) {
    m->jconf[0] = m->jconf[1] = -1;
    for (uint32_t i = 0; i < m->nfields; i++) {
        dp_field *f = &m->fields[i];
        if (f->jname) continue;
        if (f->flags & DPF_EXTENSION) {   /* "[full.name]" as it is */
            f->jname = f->cname;
            f->jnamelen = f->namelen;
            continue;
        }
        /* protoc's rule: drop each '_' and upper-case the letter after it */
        int changed = 0;
        for (uint32_t k = 0; k < f->namelen; k++) changed |= f->cname[k] == '_';
        if (!changed) {
            f->jname = f->cname;
            f->jnamelen = f->namelen;
            continue;
        }
        char *j = dp_schema_alloc(L, S, f->namelen + 1);
        uint32_t n = 0;
        int up = 0;
        for (uint32_t k = 0; k < f->namelen; k++) {
            char ch = f->cname[k];
            if (ch == '_') { up = 1; continue; }
            if (up && ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
            up = 0;
            j[n++] = ch;
        }
        j[n] = 0;
        f->jname = j;
        f->jnamelen = n;
    }
    m->byjson = dp_schema_alloc(L, S, sizeof(uint16_t) * (m->hmask + 1));
    memset(m->byjson, 0, sizeof(uint16_t) * (m->hmask + 1));
    for (uint32_t i = 0; i < m->nfields; i++) {
        const dp_field *f = &m->fields[i];
        uint32_t h = dp_name_hash(f->jname, f->jnamelen) & m->hmask;
        for (; m->byjson[h]; h = (h + 1) & m->hmask) {
            const dp_field *g = &m->fields[m->byjson[h] - 1];
            if (m->jconf[0] < 0 && g->jnamelen == f->jnamelen &&
                memcmp(g->jname, f->jname, f->jnamelen) == 0) {
                m->jconf[0] = (int32_t)(m->byjson[h] - 1);
                m->jconf[1] = (int32_t)i;
            }
        }
        m->byjson[h] = (uint16_t)(i + 1);
    }
    m->wkt = (uint8_t)wkt_kind(m->name);
}

/* ---- base64 */

const char dp_b64_chars[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define B64_ROW(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
const signed char dp_b64_value[256] = {
    B64_ROW(-1), B64_ROW(-1),
    /* 0x20 */ -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, 62, -1, 63,
    /* 0x30 */ 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    /* 0x40 */ -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    /* 0x50 */ 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    /* 0x60 */ -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    /* 0x70 */ 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    B64_ROW(-1), B64_ROW(-1), B64_ROW(-1), B64_ROW(-1),
    B64_ROW(-1), B64_ROW(-1), B64_ROW(-1), B64_ROW(-1)};

/* ---- civil dates (proleptic Gregorian; H. Hinnant's algorithms) */

int64_t dp_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void dp_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}
