/*
 * codec.c -- what the decoder and the encoder share: call options, error
 * paths ("items[3].price") and UTF-8 validation.
 */
#include <stdio.h>
#include <string.h>

#include "dynpb.h"

/* parse_opts' names, in this order: decode also takes the last */
enum { OPT_MAX_DEPTH, OPT_INT64, OPT_ENUMS, OPT_DEFAULTS, OPT_UNKNOWN, OPT_IGNORE_UNKNOWN_KEYS,
       OPT_ARRAY_MT, OPT_FIELDS, OPT_COUNT };
static const char *const opt_names[OPT_COUNT + 1] = {"max_depth", "int64", "enums", "defaults",
                                                     "unknown", "ignore_unknown_keys", "array_mt",
                                                     "fields", NULL};

/* the two strings each two-way option takes */
static const char *const opt_pairs[][2] = {[OPT_INT64] = {"auto", "string"},
                                           [OPT_ENUMS] = {"name", "number"},
                                           [OPT_UNKNOWN] = {"keep", "drop"}};

/* 0 or 1 when v is a or b, else -1 (v NULL: not a string) */
static int choice2(const char *v, const char *a, const char *b) {
    if (!v) return -1;
    return strcmp(v, a) == 0 ? 0 : strcmp(v, b) == 0 ? 1 : -1;
}

/* [-0, +0] reads option k's value at the top of the stack into o; 0 when
   the value is not one the option takes (dp_parse_opts then reports it) */
static int opt_read(lua_State *L, int k, dp_opts *o) {
    int t = lua_type(L, -1);
    const char *v = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    switch (k) {
    case OPT_MAX_DEPTH: {
        lua_Number n = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || !(n >= 1 && n <= DP_MAX_MAX_DEPTH) || n != (lua_Number)(int)n) return 0;
        o->max_depth = (int)n;
        return 1;
    }
    case OPT_INT64: case OPT_ENUMS: case OPT_UNKNOWN: {
        int r = choice2(v, opt_pairs[k][0], opt_pairs[k][1]);
        if (r < 0) return 0;
        if (k == OPT_INT64) o->int64_string = (uint8_t)r;
        else if (k == OPT_ENUMS) o->enums_number = (uint8_t)r;
        else o->drop_unknown = (uint8_t)r;
        return 1;
    }
    case OPT_DEFAULTS:
        if (v && strcmp(v, "all") == 0) o->defaults = 2;
        else if (t == LUA_TBOOLEAN) o->defaults = (uint8_t)lua_toboolean(L, -1);
        else return 0;
        return 1;
    case OPT_ARRAY_MT:
        o->array_mt = 1;
        return t == LUA_TTABLE;
    case OPT_IGNORE_UNKNOWN_KEYS:
        o->ignore_unknown_keys = (uint8_t)lua_toboolean(L, -1);
        return t == LUA_TBOOLEAN;
    default:                                          /* fields: decode.c reads it */
        return 1;
    }
}

/* [-0, +0, e] raises the error for option k (its value in the table at
   idx is not one it takes) */
static void opt_error(lua_State *L, int idx, const char *fn, int k) {
    switch (k) {
    case OPT_MAX_DEPTH:
        luaL_error(L, "dynpb: %s: option 'max_depth' must be an integer from 1 to %d", fn,
                   DP_MAX_MAX_DEPTH);
        break;
    case OPT_INT64: case OPT_ENUMS: case OPT_UNKNOWN:
        luaL_error(L, "dynpb: %s: option '%s' must be \"%s\" or \"%s\"", fn, opt_names[k],
                   opt_pairs[k][0], opt_pairs[k][1]);
        break;
    case OPT_DEFAULTS:
        luaL_error(L, "dynpb: %s: option 'defaults' must be a boolean or \"all\"", fn);
        break;
    case OPT_ARRAY_MT:
        lua_getfield(L, idx, "array_mt");             /* +1 (raising) */
        luaL_error(L, "dynpb: %s: option 'array_mt' must be a table (a metatable), got %s", fn,
                   luaL_typename(L, -1));
        break;
    default:
        luaL_error(L, "dynpb: %s: option '%s' must be a boolean", fn, opt_names[k]);
    }
}

/* Reads the call options table at idx (nil: none) into o, in one lua_next
   pass. A key that is no option raises at once; a value an option does not
   take raises after the pass, so that an unknown key is the one reported
   (as the keys were always checked first), and of bad values the first in
   this order: max_depth, int64, enums, unknown, defaults, array_mt,
   ignore_unknown_keys. */
void dp_parse_opts(lua_State *L, int idx, const char *fn, dp_opts *o) {
    static const int order[] = {OPT_MAX_DEPTH, OPT_INT64, OPT_ENUMS, OPT_UNKNOWN, OPT_DEFAULTS,
                                OPT_ARRAY_MT, OPT_IGNORE_UNKNOWN_KEYS};
    o->max_depth = DP_DEFAULT_MAX_DEPTH;
    o->int64_string = o->enums_number = o->defaults = o->drop_unknown = 0;
    o->ignore_unknown_keys = o->array_mt = 0;
    if (lua_isnoneornil(L, idx)) return;
    if (!lua_istable(L, idx))
        luaL_error(L, "dynpb: %s: options must be a table, got %s", fn, luaL_typename(L, idx));
    int nopts = strcmp(fn, "decode") == 0 ? OPT_COUNT : OPT_FIELDS;
    unsigned bad = 0;                                 /* bit k: option k's value is not taken */
    idx = dp_absindex(L, idx);
    lua_pushnil(L);                                   /* +1 first key */
    while (lua_next(L, idx)) {                        /* -1 +2 key, value */
        size_t kn;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
        int i = 0;
        while (k && i < nopts && !(strlen(opt_names[i]) == kn && memcmp(opt_names[i], k, kn) == 0)) i++;
        if (!k || i == nopts) luaL_error(L, "dynpb: %s: unknown option '%s'", fn, dp_keyname(L, -2));
        if (!opt_read(L, i, o)) bad |= 1u << i;
        lua_pop(L, 1);                                /* -1 value */
    }
    for (size_t i = 0; bad && i < sizeof order / sizeof order[0]; i++)
        if (bad & (1u << order[i])) opt_error(L, idx, fn, order[i]);
}

void dp_push_path(lua_State *L, const dp_pathel *path, int n) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < n; i++) {
        const dp_pathel *e = &path[i];
        if (i) luaL_addchar(&b, '.');
        luaL_addstring(&b, e->f ? e->f->cname : "?");
        switch (e->kind) {
        case DP_PK_INDEX:
        case DP_PK_IKEY: {
            char num[32];
            snprintf(num, sizeof num, "[%lld]", (long long)e->i);
            luaL_addstring(&b, num);
            break;
        }
        case DP_PK_SKEY: {
            luaL_addchar(&b, '[');
            luaL_addchar(&b, '"');
            luaL_addlstring(&b, e->s, e->n > 40 ? 40 : e->n);
            if (e->n > 40) luaL_addstring(&b, "...");
            luaL_addchar(&b, '"');
            luaL_addchar(&b, ']');
            break;
        }
        case DP_PK_BKEY:
            luaL_addstring(&b, e->i ? "[true]" : "[false]");
            break;
        }
    }
    luaL_pushresult(&b);
}

int dp_utf8_valid(const unsigned char *s, size_t n) {
    const unsigned char *end = s + n;
    /* all ASCII (the common case): OR the bytes together, 8 at a time, the
       last 8 overlapping; a high bit anywhere sends the string below */
    uint64_t acc = 0, word;
    if (n >= 8) {
        for (const unsigned char *q = s; end - q > 8; q += 8) {
            memcpy(&word, q, 8);
            acc |= word;
        }
        memcpy(&word, end - 8, 8);
        acc |= word;
    } else {
        for (size_t i = 0; i < n; i++) acc |= s[i];
    }
    if (!(acc & UINT64_C(0x8080808080808080))) return 1;
    while (s < end) {
        /* ASCII runs, 8 bytes at a time */
        while (end - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (w & UINT64_C(0x8080808080808080)) break;
            s += 8;
        }
        if (s >= end) break;
        unsigned c = *s;
        if (c < 0x80) { s++; continue; }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { need = 2; cp = c & 0x0f; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if ((size_t)(end - s) <= need) return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        s += need + 1;
    }
    return 1;
}
