/*
 * compat.h -- the few Lua C API differences between Lua 5.1 (and LuaJIT),
 * 5.2, 5.3 and 5.4 that dynpb touches, behind one set of names.
 *
 * Everything here is a macro or a static inline function: nothing is
 * exported and nothing holds state.
 */
#ifndef DYNPB_COMPAT_H
#define DYNPB_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* dp_rawgeti_t: lua_rawgeti that returns the type of the value pushed */
#if LUA_VERSION_NUM >= 503
#define dp_rawgeti_t(L, i, n) lua_rawgeti((L), (i), (n))
#else
#define dp_rawgeti_t(L, i, n) (lua_rawgeti((L), (i), (n)), lua_type((L), -1))
#endif

#if LUA_VERSION_NUM >= 503
#define DP_HAVE_INT64 1     /* lua_Integer is 64 bits: native integers */
#else
#define DP_HAVE_INT64 0     /* numbers are doubles: exact up to 2^53 */
#endif

#if LUA_VERSION_NUM < 502
#define dp_rawlen(L, i) lua_objlen((L), (i))
/* [-0, +0] registers functions l into the table at the top, with no upvalues */
#define dp_setfuncs(L, l) luaL_register((L), NULL, (l))
#else
#define dp_rawlen(L, i) lua_rawlen((L), (i))
#define dp_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#endif

/*
 * dp_getuv: [-0, +1] pushes the Lua value attached to userdata at idx.
 * dp_setuv: [-1, +0] pops a table and attaches it to userdata at idx.
 * On 5.1 the "environment" of a userdata must be a table, so dynpb only
 * ever attaches tables.
 */
#if LUA_VERSION_NUM < 502
#define dp_getuv(L, i) lua_getfenv((L), (i))
#define dp_setuv(L, i) ((void)lua_setfenv((L), (i)))
#define dp_newudata(L, sz) lua_newuserdata((L), (sz))
#elif LUA_VERSION_NUM < 504
#define dp_getuv(L, i) ((void)lua_getuservalue((L), (i)))
#define dp_setuv(L, i) lua_setuservalue((L), (i))
#define dp_newudata(L, sz) lua_newuserdata((L), (sz))
#else
#define dp_getuv(L, i) ((void)lua_getiuservalue((L), (i), 1))
#define dp_setuv(L, i) ((void)lua_setiuservalue((L), (i), 1))
#define dp_newudata(L, sz) lua_newuserdatauv((L), (sz), 1)
#endif

#if LUA_VERSION_NUM < 502
#define dp_absindex(L, i) \
    (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#else
#define dp_absindex(L, i) lua_absindex((L), (i))
#endif

#endif
