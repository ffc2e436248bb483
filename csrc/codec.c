/*
 * codec.c -- what the decoder and the encoder share: call options, error
 * paths ("items[3].price") and UTF-8 validation.
 */
#include <stdio.h>
#include <string.h>

#include "dynpb.h"

/* [-0, +0, e] reads option `name` of the table at idx as one of the strings
   in choices (NULL-terminated); returns its index, or dflt when absent. */
static int opt_choice(lua_State *L, int idx, const char *fn, const char *name,
                      const char *const choices[], int dflt) {
    lua_getfield(L, idx, name);                       /* +1 */
    int r = dflt;
    if (!lua_isnil(L, -1)) {
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        for (r = 0; v && choices[r]; r++)
            if (strcmp(choices[r], v) == 0) break;
        if (!v || !choices[r])
            luaL_error(L, "dynpb: %s: option '%s' must be \"%s\" or \"%s\"", fn, name, choices[0],
                       choices[1]);
    }
    lua_pop(L, 1);                                    /* -1 */
    return r;
}

static int opt_bool(lua_State *L, int idx, const char *fn, const char *name, int dflt) {
    lua_getfield(L, idx, name);
    int r = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "dynpb: %s: option '%s' must be a boolean", fn, name);
        r = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return r;
}

/* parse_opts' names, in this order: decode also takes the last */
enum { OPT_MAX_DEPTH, OPT_INT64, OPT_ENUMS, OPT_DEFAULTS, OPT_UNKNOWN, OPT_IGNORE_UNKNOWN_KEYS,
       OPT_ARRAY_MT, OPT_FIELDS, OPT_COUNT };
static const char *const opt_names[OPT_COUNT + 1] = {"max_depth", "int64", "enums", "defaults",
                                                     "unknown", "ignore_unknown_keys", "array_mt",
                                                     "fields", NULL};

/* 0 or 1 when v is a or b, else -1 (v NULL: not a string) */
static int choice2(const char *v, const char *a, const char *b) {
    if (!v) return -1;
    return strcmp(v, a) == 0 ? 0 : strcmp(v, b) == 0 ? 1 : -1;
}

/* [-0, +0] reads option k's value at the top of the stack into o; 0 when
   the value is not one the option takes (parse_opts then reports it) */
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
        int r = k == OPT_INT64 ? choice2(v, "auto", "string")
              : k == OPT_ENUMS ? choice2(v, "name", "number") : choice2(v, "keep", "drop");
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

static void parse_opts_checked(lua_State *L, int idx, const char *fn, dp_opts *o);

/* Reads the call options table at idx (nil: none) into o. One lua_next
   pass reads each option it holds; a key that is no option, or a value an
   option does not take, sends the table to parse_opts_checked, which
   raises the error naming it (unknown keys first, as it always has). */
void dp_parse_opts(lua_State *L, int idx, const char *fn, dp_opts *o) {
    o->max_depth = DP_DEFAULT_MAX_DEPTH;
    o->int64_string = o->enums_number = o->defaults = o->drop_unknown = 0;
    o->ignore_unknown_keys = o->array_mt = 0;
    if (lua_isnoneornil(L, idx)) return;
    if (!lua_istable(L, idx)) parse_opts_checked(L, idx, fn, o);   /* raises */
    int nopts = strcmp(fn, "decode") == 0 ? OPT_COUNT : OPT_FIELDS;
    int top = lua_gettop(L), ok = 1;
    idx = dp_absindex(L, idx);
    lua_pushnil(L);                                   /* +1 first key */
    while (ok && lua_next(L, idx)) {                  /* -1 +2 key, value */
        size_t kn;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
        int i = 0;
        while (k && i < nopts && !(strlen(opt_names[i]) == kn && memcmp(opt_names[i], k, kn) == 0)) i++;
        ok = k && i < nopts && opt_read(L, i, o);
        lua_pop(L, 1);                                /* -1 value */
    }
    lua_settop(L, top);
    if (!ok) parse_opts_checked(L, idx, fn, o);       /* raises */
}

static void parse_opts_checked(lua_State *L, int idx, const char *fn, dp_opts *o) {
    static const char *const known[] = {"max_depth", "int64", "enums", "defaults", "unknown",
                                        "ignore_unknown_keys", "array_mt", NULL};
    /* decode also takes `fields` (a partial decode, read by decode.c) */
    static const char *const known_decode[] = {"max_depth", "int64", "enums", "defaults",
                                               "unknown", "ignore_unknown_keys", "array_mt",
                                               "fields", NULL};
    static const char *const int64s[] = {"auto", "string", NULL};
    static const char *const enums[] = {"name", "number", NULL};
    static const char *const unknowns[] = {"keep", "drop", NULL};
    o->max_depth = DP_DEFAULT_MAX_DEPTH;
    o->int64_string = o->enums_number = o->defaults = o->drop_unknown = 0;
    o->ignore_unknown_keys = o->array_mt = 0;
    if (lua_isnoneornil(L, idx)) return;
    dp_check_options(L, idx, fn, strcmp(fn, "decode") == 0 ? known_decode : known);
    idx = dp_absindex(L, idx);
    lua_getfield(L, idx, "max_depth");
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= DP_MAX_MAX_DEPTH) ||
            n != (lua_Number)(int)n)
            luaL_error(L, "dynpb: %s: option 'max_depth' must be an integer from 1 to %d", fn,
                       DP_MAX_MAX_DEPTH);
        o->max_depth = (int)n;
    }
    lua_pop(L, 1);
    o->int64_string = (uint8_t)opt_choice(L, idx, fn, "int64", int64s, 0);
    o->enums_number = (uint8_t)opt_choice(L, idx, fn, "enums", enums, 0);
    o->drop_unknown = (uint8_t)opt_choice(L, idx, fn, "unknown", unknowns, 0);
    lua_getfield(L, idx, "defaults");                 /* true, false or "all" */
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "all") == 0) o->defaults = 2;
    else if (lua_isboolean(L, -1)) o->defaults = (uint8_t)lua_toboolean(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "dynpb: %s: option 'defaults' must be a boolean or \"all\"", fn);
    lua_pop(L, 1);
    lua_getfield(L, idx, "array_mt");
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
        luaL_error(L, "dynpb: %s: option 'array_mt' must be a table (a metatable), got %s", fn,
                   luaL_typename(L, -1));
    o->array_mt = (uint8_t)lua_istable(L, -1);
    lua_pop(L, 1);
    o->ignore_unknown_keys = (uint8_t)opt_bool(L, idx, fn, "ignore_unknown_keys", 0);
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
