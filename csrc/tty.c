/*
 * tty.c -- dynpb.isatty(file): is a Lua file handle a terminal? The
 * `dynpb` command (bin/dynpb) refuses to write binary output to one; plain
 * Lua cannot tell (issue 19).
 */
#include <stdio.h>
#include <unistd.h>

#include "dynpb.h"
#include <lualib.h>   /* LUA_FILEHANDLE (LuaJIT defines it there only) */

/* dynpb.isatty(file) -> boolean. [-0, +1, e] raises unless file is an open
   io file handle. Lua 5.1's handle is a FILE **, 5.2+'s a luaL_Stream whose
   first member is the FILE *: both start with the FILE pointer. */
int dp_l_isatty(lua_State *L) {
    FILE **fp = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    if (!fp || !*fp) return luaL_error(L, "dynpb: isatty: the file is closed");
    lua_pushboolean(L, isatty(fileno(*fp)) == 1);
    return 1;
}
