/*
 * dynpb.c -- luaopen_dynpb: the module table, the per-state dp_state, and
 * the layout of the objects Lua sees.
 *
 * Objects (all per lua_State; no C pointer is ever visible to Lua):
 *  - core:    a dp_schema userdata owning the compiled tables; __gc frees
 *             them and updates the counters. Its uservalue (DP_UV_*) holds
 *             the Lua side: interned names, name maps, enum tables, handles.
 *  - schema:  a table { fingerprint = hex, [1] = core } with metatable
 *             SCHEMAMT. This is what the cache holds weakly and pins.
 *  - handle:  a table { name = full name, schema = schema, [1] = core,
 *             [2] = message index, decode = f, encode = f } with metatable
 *             HANDLEMT. Its decode/encode are closures of their own whose
 *             upvalues (DP_HU_*) hold the core, the NAMES array and the
 *             message index, so a call checks nothing and looks up nothing.
 * Methods are C closures sharing the DP_NUPVALUES upvalues, so checking an
 * argument's class is a metatable comparison with an upvalue, never a
 * registry lookup.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynpb.h"

/* ---- helpers shared by the binding files */

void dp_push_i64_string(lua_State *L, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    lua_pushstring(L, buf);
}

void dp_push_u64_string(lua_State *L, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    lua_pushstring(L, buf);
}

const char *dp_keyname(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
    return luaL_typename(L, idx);
}

void dp_check_options(lua_State *L, int idx, const char *fn, const char *const known[]) {
    if (lua_isnoneornil(L, idx)) return;
    if (!lua_istable(L, idx))
        luaL_error(L, "dynpb: %s: options must be a table, got %s", fn, luaL_typename(L, idx));
    idx = dp_absindex(L, idx);
    lua_pushnil(L);                                   /* +1 first key */
    while (lua_next(L, idx)) {                        /* -1 +2 key, value */
        lua_pop(L, 1);                                /* -1 value */
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; known[i] && !ok; i++) ok = strcmp(known[i], lua_tostring(L, -1)) == 0;
        if (!ok) luaL_error(L, "dynpb: %s: unknown option '%s'", fn, dp_keyname(L, -1));
    }
}

static dp_schema *core_at(lua_State *L, int objidx) {
    lua_rawgeti(L, objidx, 1);                        /* +1 core? */
    dp_schema *S = lua_touserdata(L, -1);
    if (!S || !lua_getmetatable(L, -1)) S = NULL;     /* +1 mt (if any) */
    else {
        if (!lua_rawequal(L, -1, lua_upvalueindex(DP_UP_COREMT))) S = NULL;
        lua_pop(L, 1);                                /* -1 mt */
    }
    lua_pop(L, 1);                                    /* -1 core */
    return S;
}

/* [-0, +0] does the value at idx have metatable upvalue `up`? */
static int has_class(lua_State *L, int idx, int up) {
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
    int ok = lua_rawequal(L, -1, lua_upvalueindex(up));
    lua_pop(L, 1);
    return ok;
}

dp_schema *dp_check_schema(lua_State *L, int idx) {
    dp_schema *S = has_class(L, idx, DP_UP_SCHEMAMT) ? core_at(L, idx) : NULL;
    if (!S) luaL_error(L, "dynpb: a schema object expected (call it as schema:method(...)), got %s",
                       luaL_typename(L, idx));
    return S;
}

dp_schema *dp_check_handle(lua_State *L, int idx, const dp_msg **m) {
    dp_schema *S = has_class(L, idx, DP_UP_HANDLEMT) ? core_at(L, idx) : NULL;
    if (S) {
        lua_rawgeti(L, idx, 2);
        lua_Integer i = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (i >= 0 && (uint64_t)i < S->nmsgs) {
            *m = &S->msgs[i];
            return S;
        }
    }
    luaL_error(L, "dynpb: a message handle expected (call it as handle:method(...)), got %s",
               luaL_typename(L, idx));
    return NULL;
}

const dp_msg *dp_lookup_msg(lua_State *L, dp_schema *S, int sidx, int nameidx) {
    size_t n;
    if (lua_type(L, nameidx) != LUA_TSTRING)
        luaL_error(L, "dynpb: message type name expected, got %s", luaL_typename(L, nameidx));
    const char *s = lua_tolstring(L, nameidx, &n);
    int32_t i = n && s[0] == '.' ? dp_find_msg(S, s + 1, n - 1) : dp_find_msg(S, s, n);
    if (i < 0) {
        char fp[13];                                  /* 12 hex digits name it well enough */
        memcpy(fp, S->fingerprint, 12);
        fp[12] = 0;
        luaL_error(L, "dynpb: no message type named '%s' in schema %s", s, fp);
    }
    return &S->msgs[i];
}

void dp_push_names(lua_State *L, int idx) {
    lua_rawgeti(L, idx, 1);                           /* +1 core */
    dp_getuv(L, -1);                                  /* +1 uv */
    lua_rawgeti(L, -1, DP_UV_NAMES);                  /* +1 names */
    lua_replace(L, -3);                               /* -1 */
    lua_pop(L, 1);                                    /* -1 */
}

void dp_push_schema_object(lua_State *L, int udidx) {
    dp_schema *S = lua_touserdata(L, udidx);
    udidx = dp_absindex(L, udidx);
    lua_createtable(L, 1, 1);                         /* +1 object */
    lua_pushvalue(L, udidx);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, S->fingerprint, 64);
    lua_setfield(L, -2, "fingerprint");
    lua_pushvalue(L, lua_upvalueindex(DP_UP_SCHEMAMT));
    lua_setmetatable(L, -2);
}

/* ---- metamethods */

static int core_gc(lua_State *L) {
    dp_schema *S = lua_touserdata(L, 1);
    if (S->counted) {
        S->state->live--;
        S->state->bytes -= (int64_t)S->nbytes;
        S->counted = 0;
    }
    dp_schema_free(S);
    S->freed = 1;
    return 0;
}

static int state_gc(lua_State *L) {
    dp_state *st = lua_touserdata(L, 1);
    if (st->buf) {
        void *ud;
        lua_Alloc a = lua_getallocf(L, &ud);
        a(ud, st->buf, st->bufcap, 0);
        st->buf = NULL;
        st->bufcap = 0;
    }
    return 0;
}

static int object_newindex(lua_State *L) {
    return luaL_error(L, "dynpb: schema and handle objects are read-only (assigning '%s')",
                      dp_keyname(L, 2));
}

static int schema_tostring(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    lua_pushfstring(L, "dynpb.schema(%s)", S->fingerprint);
    return 1;
}

static int handle_tostring(lua_State *L) {
    const dp_msg *m;
    dp_check_handle(L, 1, &m);
    lua_pushfstring(L, "dynpb.message(%s)", m->name);
    return 1;
}

/* ---- calls into Lua modules (policy lives in the lua/dynpb modules) */

/* [-0, +r, e] replaces the call's arguments by the results of
   require(mod)[fn](args...) */
static int call_lua(lua_State *L, const char *mod, const char *fn) {
    int n = lua_gettop(L);
    luaL_checkstack(L, 4, "dynpb: call");
    lua_getglobal(L, "require");                      /* +1 require */
    lua_pushstring(L, mod);
    lua_call(L, 1, 1);                                /* -2 +1 module */
    if (!lua_istable(L, -1)) luaL_error(L, "dynpb: module %s is not a table", mod);
    lua_getfield(L, -1, fn);                          /* +1 function */
    lua_replace(L, -2);                               /* -1 module */
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* dynpb.http_router(schema) -> router | nil, err (lua/dynpb/router.lua) */
static int l_http_router(lua_State *L) { return call_lua(L, "dynpb.router", "http_router"); }
/* schema:http_rules() -> array of rules (lua/dynpb/router.lua) */
static int l_http_rules(lua_State *L) { return call_lua(L, "dynpb.router", "http_rules"); }

/* ---- registration */

static const luaL_Reg module_fns[] = {
    {"load", dp_l_load},
    {"load_file", dp_l_load_file},
    {"fingerprint", dp_l_fingerprint},
    {"stats", dp_l_stats},
    {"configure", dp_l_configure},
    {"write_durable", dp_l_write_durable},
    {"http_router", l_http_router},
    {"isatty", dp_l_isatty},
    {"compile", dp_l_compile},
    {"load_proto", dp_l_load_proto},
    {NULL, NULL}};

static const luaL_Reg schema_methods[] = {
    {"types", dp_l_types},
    {"enums", dp_l_enums},
    {"enum", dp_l_enum},
    {"enum_values", dp_l_enum_values},
    {"message", dp_l_message},
    {"decode", dp_l_schema_decode},
    {"encode", dp_l_schema_encode},
    {"to_json", dp_l_schema_to_json},
    {"from_json", dp_l_schema_from_json},
    /* issue 11: services, files, options */
    {"services", dp_l_services},
    {"service", dp_l_service},
    {"method", dp_l_method},
    {"files", dp_l_files},
    {"enum_options", dp_l_enum_options},
    {"http_rules", l_http_rules},
    {"to_text", dp_l_schema_to_text},
    {"from_text", dp_l_schema_from_text},
    {NULL, NULL}};

static const luaL_Reg handle_methods[] = {
    {"fields", dp_l_fields},
    {"to_json", dp_l_handle_to_json},
    {"from_json", dp_l_handle_from_json},
    {"extensions", dp_l_extensions},
    {"options", dp_l_handle_options},
    {"oneofs", dp_l_oneofs},
    {"to_text", dp_l_handle_to_text},
    {"from_text", dp_l_handle_from_text},
    {NULL, NULL}};

/* [-0, +0] registers l into the table at the top; every function gets the
   DP_NUPVALUES values just below that table as upvalues. */
static void setfuncs_up(lua_State *L, const luaL_Reg *l, int upbase) {
    for (; l->name; l++) {
        for (int i = 0; i < DP_NUPVALUES; i++) lua_pushvalue(L, upbase + i);
        lua_pushcclosure(L, l->func, DP_NUPVALUES);
        lua_setfield(L, -2, l->name);
    }
}

/* [-0, +0] fills the metatable at mt of an object class: methods as
   __index, read-only __newindex, __tostring, __name. Closures get the
   DP_NUPVALUES upvalues at base .. base+DP_NUPVALUES-1. */
static void init_class(lua_State *L, int mt, int base, const luaL_Reg *methods,
                       lua_CFunction tostring, const char *name) {
    lua_newtable(L);                                    /* +1 methods */
    setfuncs_up(L, methods, base);
    lua_setfield(L, mt, "__index");                     /* -1 */
    lua_pushcfunction(L, object_newindex);
    lua_setfield(L, mt, "__newindex");
    for (int i = 0; i < DP_NUPVALUES; i++) lua_pushvalue(L, base + i);
    lua_pushcclosure(L, tostring, DP_NUPVALUES);
    lua_setfield(L, mt, "__tostring");
    lua_pushstring(L, name);
    lua_setfield(L, mt, "__name");
}

DP_EXPORT int luaopen_dynpb(lua_State *L) {
    luaL_checkstack(L, 20, "dynpb: open");
    /* the four shared upvalues, at base .. base+3 */
    dp_state *st = dp_newudata(L, sizeof *st);          /* +1 state */
    int base = lua_gettop(L);
    memset(st, 0, sizeof *st);
    st->pin = DP_DEFAULT_PIN;
    st->sha_fast = dp_sha256_fast();
    lua_createtable(L, 0, 2);                           /* +1 state metatable */
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, base);                          /* -1 */
    lua_createtable(L, 4, 0);                           /* +1 state uservalue */
    lua_newtable(L);                                    /* +1 cache */
    lua_createtable(L, 0, 1);                           /* +1 weak-values metatable */
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);                            /* -1 */
    lua_rawseti(L, -2, DP_SU_CACHE);                    /* -1 cache */
    lua_newtable(L);
    lua_rawseti(L, -2, DP_SU_PINS);                     /* pins */
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, DP_SU_EBUF);                     /* encode's buffer: made on first use */
    dp_setuv(L, base);                                  /* -1 uservalue */
    lua_newtable(L);                                    /* +1 SCHEMAMT (base+1) */
    lua_newtable(L);                                    /* +1 HANDLEMT (base+2) */
    lua_newtable(L);                                    /* +1 COREMT (base+3) */
    lua_pushcfunction(L, core_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "dynpb.core");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");

    init_class(L, base + 1, base, schema_methods, schema_tostring, "dynpb.schema");
    init_class(L, base + 2, base, handle_methods, handle_tostring, "dynpb.message");

    /* the module table */
    lua_newtable(L);                                    /* +1 module */
    setfuncs_up(L, module_fns, base);
    lua_pushliteral(L, DP_UNKNOWN_KEY);
    lua_setfield(L, -2, "UNKNOWN");
    lua_pushliteral(L, "0.1.0");
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
