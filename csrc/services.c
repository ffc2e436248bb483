/*
 * services.c -- the Lua methods over options.c's per-schema data R:
 * schema:services(), :service(name), :method(x), :files(),
 * :enum_options(name), handle:options(), handle:oneofs() (issue 11).
 *
 * Everything returned is a fresh copy of R's tables (message handles
 * excepted: they are shared objects), so one caller cannot change what
 * another sees. Data errors (no such service, method or enum) return
 * nil and a message; misuse raises.
 */
#include <string.h>

#include "dynpb.h"

/* [-0, +1, e] pushes R[slot] for the schema object at 1 */
static void push_slot(lua_State *L, const char *slot) {
    dp_push_refl(L, 1);
    lua_getfield(L, -1, slot);
    lua_remove(L, -2);
}

static int not_found(lua_State *L, const char *what, int nameidx) {
    dp_schema *S = dp_check_schema(L, 1);
    lua_pushnil(L);
    lua_pushfstring(L, "dynpb: no %s named '%s' in schema %s", what, lua_tostring(L, nameidx),
                    S->fingerprint);
    return 2;
}

/* [-0, +1, e] looks the string at nameidx up in map R[slot]: pushes a copy
   of the entry, or returns 2 with nil and a message pushed */
static int lookup(lua_State *L, const char *slot, int nameidx, const char *what, int strip_dot) {
    dp_check_schema(L, 1);
    if (lua_type(L, nameidx) != LUA_TSTRING)
        luaL_error(L, "dynpb: %s name expected, got %s", what, luaL_typename(L, nameidx));
    size_t n;
    const char *s = lua_tolstring(L, nameidx, &n);
    push_slot(L, slot);                                 /* +1 map */
    if (strip_dot && n && s[0] == '.') lua_pushlstring(L, s + 1, n - 1);
    else lua_pushvalue(L, nameidx);
    lua_rawget(L, -2);                                  /* -1 +1 entry or nil */
    if (lua_isnil(L, -1)) return not_found(L, what, nameidx);
    dp_push_copy(L, -1);
    return 1;
}

int dp_l_services(lua_State *L) {
    dp_check_schema(L, 1);
    push_slot(L, "services");
    int svcs = lua_gettop(L);
    int n = (int)dp_rawlen(L, svcs);
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, svcs, i);
        lua_getfield(L, -1, "name");
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
    }
    return 1;
}

int dp_l_service(lua_State *L) {
    return lookup(L, "svc", 2, "service", 1);
}

/* "pkg.Svc.M", "pkg.Svc/M" and "/pkg.Svc/M" are all keys of R.methods */
int dp_l_method(lua_State *L) {
    return lookup(L, "methods", 2, "method", 1);
}

int dp_l_files(lua_State *L) {
    dp_check_schema(L, 1);
    push_slot(L, "files");
    dp_push_copy(L, -1);
    return 1;
}

int dp_l_enum_options(lua_State *L) {
    int r = lookup(L, "enum", 2, "enum", 1);
    if (r == 2) return 2;
    lua_getfield(L, -1, "options");
    return 1;
}

/* [-0, +1, e] pushes (a copy of) R.msg[m].<key> for the handle at 1, or
   an empty table */
static int handle_entry(lua_State *L, const char *key) {
    const dp_msg *m;
    dp_check_handle(L, 1, &m);
    lua_getfield(L, 1, "schema");
    dp_push_refl(L, -1);
    lua_getfield(L, -1, "msg");
    lua_getfield(L, -1, m->name);
    if (lua_istable(L, -1)) lua_getfield(L, -1, key);
    else lua_pushnil(L);
    if (lua_istable(L, -1)) dp_push_copy(L, -1);
    else lua_newtable(L);
    return 1;
}

int dp_l_handle_options(lua_State *L) {
    return handle_entry(L, "options");
}

int dp_l_oneofs(lua_State *L) {
    return handle_entry(L, "oneofs");
}
