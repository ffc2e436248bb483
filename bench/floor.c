/*
 * bench/floor.c -- floor 1 of the dynpb benchmark (issue 6): what building
 * the decoded Lua table costs when done from C with everything known in
 * advance, so "decode time / copy time" says how much of a decode is spent
 * beyond the unavoidable table building.
 *
 *   local floor = require "bench_floor"
 *   local shape = floor.shape(t)      -- table sizes of t, once (not timed)
 *   local u = floor.copy(t, shape)    -- deep copy: lua_createtable presized
 *                                     -- from shape, lua_next over t, lua_rawset
 *   local plan = floor.plan(t, shape) -- t's keys and values as a flat array
 *   local u = floor.build(plan, shape) -- the tight floor: the same tables built
 *                                     -- from the flat array (no lua_next, so no
 *                                     -- cost of reading a source table), string
 *                                     -- values re-made with lua_pushlstring as a
 *                                     -- decoder must
 *   floor.walk(t)                     -- reads every value of t (lua_next,
 *                                     -- lua_tolstring/lua_tonumber), builds
 *                                     -- nothing: the table-reading floor of encode
 *
 * Keys are pushed as the existing values (a decoder holds its field names as
 * pre-made Lua strings too). The shape lists (array size, hash size) of every
 * table of t in the order copy visits them, so copy does no counting pass.
 */
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define lua_rawlen lua_objlen
#endif

typedef struct { uint32_t narr, nrec, count; } size_pair;

typedef struct {
    size_t n;        /* tables recorded */
    size_pair t[1];  /* n entries, preorder */
} shape_t;

/* number of tables in the table at idx (an absolute index), itself included */
static size_t count_tables(lua_State *L, int idx) {
    size_t n = 1;
    luaL_checkstack(L, 4, "bench_floor: too deep");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TTABLE) n += count_tables(L, lua_gettop(L));
        lua_pop(L, 1);
    }
    return n;
}

static void fill_shape(lua_State *L, int idx, shape_t *s, size_t *pos) {
    size_t me = (*pos)++;
    size_t len = lua_rawlen(L, idx);
    uint32_t narr = 0, nrec = 0;
    luaL_checkstack(L, 4, "bench_floor: too deep");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int isarr = 0;
        if (lua_type(L, -2) == LUA_TNUMBER) {
            lua_Number k = lua_tonumber(L, -2);
            isarr = k >= 1 && k <= (lua_Number)len && k == (lua_Number)(size_t)k;
        }
        if (isarr) narr++; else nrec++;
        if (lua_type(L, -1) == LUA_TTABLE) fill_shape(L, lua_gettop(L), s, pos);
        lua_pop(L, 1);
    }
    s->t[me].narr = narr;
    s->t[me].nrec = nrec;
    s->t[me].count = narr + nrec;
}

static int l_shape(lua_State *L) {
    size_t n, pos = 0;
    shape_t *s;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    n = count_tables(L, 1);
    s = (shape_t *)lua_newuserdata(L, sizeof(shape_t) + (n - 1) * sizeof(size_pair));
    s->n = n;
    fill_shape(L, 1, s, &pos);
    return 1;
}

/* pushes a copy of the table at src (an absolute index) */
static void copy_table(lua_State *L, int src, const shape_t *s, size_t *pos, int strings) {
    int dst;
    const size_pair *sz;
    if (*pos >= s->n) luaL_error(L, "bench_floor: shape does not match the table");
    sz = &s->t[(*pos)++];
    luaL_checkstack(L, 6, "bench_floor: too deep");
    lua_createtable(L, (int)sz->narr, (int)sz->nrec);
    dst = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, src)) {                        /* key value */
        int t = lua_type(L, -1);
        lua_pushvalue(L, -2);                         /* key value key */
        if (t == LUA_TTABLE) {
            copy_table(L, dst + 2, s, pos, strings);  /* key value key copy */
        } else if (t == LUA_TSTRING && strings) {
            size_t len;
            const char *p = lua_tolstring(L, -2, &len);
            lua_pushlstring(L, p, len);
        } else {
            lua_pushvalue(L, -2);
        }
        lua_rawset(L, dst);                           /* key value */
        lua_pop(L, 1);                                /* key */
    }
}

static int l_copy(lua_State *L) {
    const shape_t *s;
    size_t pos = 0;
    int strings;
    luaL_checktype(L, 1, LUA_TTABLE);
    s = (const shape_t *)lua_touserdata(L, 2);
    if (!s) luaL_argerror(L, 2, "shape expected");
    strings = lua_toboolean(L, 3);
    lua_settop(L, 3);
    copy_table(L, 1, s, &pos, strings);
    return 1;
}

/* the value standing for "a nested table follows" in a plan */
static const char nested_mark = 0;

/* appends the keys and values of the table at src to the plan at plan */
static void plan_table(lua_State *L, int src, int plan, int *n) {
    luaL_checkstack(L, 4, "bench_floor: too deep");
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, plan, ++*n);
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_pushlightuserdata(L, (void *)&nested_mark);
            lua_rawseti(L, plan, ++*n);
            plan_table(L, lua_gettop(L), plan, n);
        } else {
            lua_pushvalue(L, -1);
            lua_rawseti(L, plan, ++*n);
        }
        lua_pop(L, 1);
    }
}

static int l_plan(lua_State *L) {
    int n = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L);
    plan_table(L, 1, 2, &n);
    return 1;
}

/* pushes the table described by plan[*i..] and shape->t[*pos] */
static void build_table(lua_State *L, int plan, const shape_t *s, size_t *pos, int *i) {
    const size_pair *sz;
    int dst;
    uint32_t k;
    if (*pos >= s->n) luaL_error(L, "bench_floor: shape does not match the plan");
    sz = &s->t[(*pos)++];
    luaL_checkstack(L, 6, "bench_floor: too deep");
    lua_createtable(L, (int)sz->narr, (int)sz->nrec);
    dst = lua_gettop(L);
    for (k = 0; k < sz->count; k++) {
        lua_rawgeti(L, plan, ++*i);                       /* key */
        lua_rawgeti(L, plan, ++*i);                       /* key value */
        switch (lua_type(L, -1)) {
        case LUA_TLIGHTUSERDATA:
            lua_pop(L, 1);
            build_table(L, plan, s, pos, i);              /* key table */
            break;
        case LUA_TSTRING: {
            size_t len;
            const char *p = lua_tolstring(L, -1, &len);
            lua_pushlstring(L, p, len);                   /* key value copy */
            lua_remove(L, -2);
            break;
        }
        default: break;
        }
        lua_rawset(L, dst);
    }
}

static int l_build(lua_State *L) {
    const shape_t *s;
    size_t pos = 0;
    int i = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    s = (const shape_t *)lua_touserdata(L, 2);
    if (!s) luaL_argerror(L, 2, "shape expected");
    lua_settop(L, 2);
    build_table(L, 1, s, &pos, &i);
    return 1;
}

static double walk_table(lua_State *L, int idx) {
    double acc = 0;
    luaL_checkstack(L, 4, "bench_floor: too deep");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        switch (lua_type(L, -1)) {
        case LUA_TTABLE: acc += walk_table(L, lua_gettop(L)); break;
        case LUA_TSTRING: { size_t n; lua_tolstring(L, -1, &n); acc += (double)n; break; }
        case LUA_TNUMBER: acc += lua_tonumber(L, -1); break;
        case LUA_TBOOLEAN: acc += lua_toboolean(L, -1); break;
        default: break;
        }
        lua_pop(L, 1);
    }
    return acc;
}

static int l_walk(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushnumber(L, walk_table(L, 1));
    return 1;
}

int luaopen_bench_floor(lua_State *L);
int luaopen_bench_floor(lua_State *L) {
    lua_createtable(L, 0, 5);
    lua_pushcfunction(L, l_plan); lua_setfield(L, -2, "plan");
    lua_pushcfunction(L, l_build); lua_setfield(L, -2, "build");
    lua_pushcfunction(L, l_shape); lua_setfield(L, -2, "shape");
    lua_pushcfunction(L, l_copy); lua_setfield(L, -2, "copy");
    lua_pushcfunction(L, l_walk); lua_setfield(L, -2, "walk");
    return 1;
}
