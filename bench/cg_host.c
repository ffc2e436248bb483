/*
 * bench/cg_host.c -- a minimal Lua 5.4 interpreter for `make bench-callgrind`:
 * linked with the static liblua5.4.a, whose symbol table names Lua's internal
 * functions (the Debian lua5.4 binary is stripped), so callgrind's per-function
 * profile names e.g. luaH_newkey instead of an address.
 *   cg_host script.lua [args...]     (arg[1..] as in lua5.4)
 * It also defines time() as a constant: Lua 5.4 seeds its string hashes with
 * time() (and addresses), and a seed that changes every second changes table
 * collisions and so instruction counts by about 1% from run to run.
 * (os.time() returns 0 here; the callgrind cases do not use it.)
 */
#include <stdio.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

time_t time(time_t *t) {
    if (t) *t = 0;
    return 0;
}

int main(int argc, char **argv) {
    lua_State *L;
    int i;
    if (argc < 2) {
        fprintf(stderr, "usage: cg_host script.lua [args...]\n");
        return 2;
    }
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_createtable(L, argc - 2, 1);
    for (i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    if (luaL_loadfile(L, argv[1]) != LUA_OK) goto fail;
    for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc - 2, 0, 0) != LUA_OK) goto fail;
    /* no lua_close: it would dlclose dynpb.so before callgrind writes its
       profile, and the profile would lose dynpb's line numbers */
    return 0;
fail:
    fprintf(stderr, "cg_host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
}
