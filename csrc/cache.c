/*
 * cache.c -- the fingerprint-keyed schema cache of one lua_State.
 *
 * Key: lowercase hex SHA-256 of the descriptor-set bytes exactly as given.
 * Values: schema objects, held by a table with weak values, so a schema that
 * nothing references is collected and its C memory freed by the core
 * userdata's __gc. The `pin` most recently used schemas are also held in a
 * strong array (least recent first), so a service that drops and reloads
 * the same schema does not recompile it after every collection.
 *
 * Everything lives per lua_State: the cache and pin tables are slots of the
 * dp_state userdata's uservalue table (DP_SU_*), reached through upvalue 1
 * of every module function.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dynpb.h"

/* [-0, +1] pushes slot k of the state's uservalue table */
static void push_slot(lua_State *L, int k) {
    dp_getuv(L, lua_upvalueindex(DP_UP_STATE));   /* +1 uv */
    lua_rawgeti(L, -1, k);                         /* +1 slot */
    lua_remove(L, -2);                             /* -1 uv */
}

static dp_state *state_of(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(DP_UP_STATE));
}

/* [-0, +0] drops the least recent entries of the pin list at pins until at
   most keep remain. */
static void pin_trim(lua_State *L, int pins, int keep) {
    int n = (int)dp_rawlen(L, pins);
    int drop = n - keep;
    if (drop <= 0) return;
    for (int i = 1; i <= n - drop; i++) {
        lua_rawgeti(L, pins, i + drop);
        lua_rawseti(L, pins, i);
    }
    for (int i = n - drop + 1; i <= n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, pins, i);
    }
}

/* [-0, +0] moves the schema object at idx to the most recent end of the pin
   list, then trims the list to the configured size. */
static void pin_touch(lua_State *L, int idx) {
    dp_state *st = state_of(L);
    idx = dp_absindex(L, idx);
    push_slot(L, DP_SU_PINS);                       /* +1 pins */
    int pins = lua_gettop(L);
    int n = (int)dp_rawlen(L, pins);
    int at = 0;
    for (int i = n; i >= 1 && !at; i--) {
        lua_rawgeti(L, pins, i);
        if (lua_rawequal(L, -1, idx)) at = i;
        lua_pop(L, 1);
    }
    if (at) {                                       /* shift the tail down */
        for (int i = at; i < n; i++) {
            lua_rawgeti(L, pins, i + 1);
            lua_rawseti(L, pins, i);
        }
        lua_pushnil(L);
        lua_rawseti(L, pins, n);
        n--;
    }
    if (st->pin > 0) {
        lua_pushvalue(L, idx);
        lua_rawseti(L, pins, ++n);
    }
    pin_trim(L, pins, st->pin);
    lua_pop(L, 1);                                  /* -1 pins */
}

/* [-0, +1|2] the shared body of load and load_file: data/len are anchored by
   the caller; srcidx is a stack index holding them as a Lua string, or 0.
   Pushes the schema object, or nil and a message. */
static int load_bytes(lua_State *L, const unsigned char *data, size_t len, int pin,
                      const char *what, int srcidx) {
    dp_state *st = state_of(L);
    char fp[65];
    dp_sha256_hex(data, len, fp, st->sha_fast);

    push_slot(L, DP_SU_CACHE);                      /* +1 cache */
    int cache = lua_gettop(L);
    lua_getfield(L, cache, fp);                     /* +1 cached object or nil */
    if (lua_istable(L, -1)) {
        /* Lua 5.1 and LuaJIT keep a weak value that only a finalized object
           reaches (the core's handles point back at the schema object): after
           the core's __gc the entry may still be there, with its C memory
           freed. Such an entry is a miss. */
        lua_rawgeti(L, -1, 1);                      /* +1 core */
        const dp_schema *old = lua_touserdata(L, -1);
        lua_pop(L, 1);                              /* -1 core */
        if (old && !old->freed) {
            st->hits++;
            if (pin) pin_touch(L, -1);
            return 1;
        }
    }
    lua_pop(L, 1);                                  /* -1 nil or dead object */
    st->misses++;

    dp_schema *S = dp_newudata(L, sizeof *S);       /* +1 core */
    memset(S, 0, sizeof *S);
    S->alloc = lua_getallocf(L, &S->alloc_ud);
    S->state = st;
    memcpy(S->fingerprint, fp, sizeof fp);
    int core = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(DP_UP_COREMT));
    lua_setmetatable(L, core);
    lua_createtable(L, 8, 0);                       /* +1 uservalue */
    lua_pushvalue(L, lua_upvalueindex(DP_UP_STATE));
    lua_rawseti(L, -2, DP_UV_STATE);
    lua_pushvalue(L, -1);
    dp_setuv(L, core);                              /* -1 */
    if (!dp_compile(L, S, -1, data, len)) {         /* +1 message */
        lua_pushnil(L);
        lua_pushfstring(L, "dynpb: %s: %s", what, lua_tostring(L, -2));
        return 2;                                   /* the core is garbage now */
    }
    /* the set's bytes, for options and services (options.c decodes them
       lazily): the caller's string, else a copy */
    if (srcidx) lua_pushvalue(L, srcidx);
    else lua_pushlstring(L, (const char *)data, len);
    lua_rawseti(L, -2, DP_UV_SOURCE);
    lua_pop(L, 1);                                  /* -1 uservalue */
    S->counted = 1;
    st->live++;
    st->bytes += (int64_t)S->nbytes;

    dp_push_schema_object(L, core);                 /* +1 object */
    lua_pushvalue(L, -1);
    lua_setfield(L, cache, fp);                     /* cache[fp] = object */
    if (pin) pin_touch(L, -1);
    return 1;
}

static int opt_pin(lua_State *L, int idx, const char *fn) {
    int pin = 1;
    if (lua_isnoneornil(L, idx)) return pin;
    static const char *const known[] = {"pin", NULL};
    dp_check_options(L, idx, fn, known);
    lua_getfield(L, idx, "pin");
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "dynpb: %s: option 'pin' must be a boolean", fn);
        pin = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return pin;
}

int dp_l_load(lua_State *L) {
    size_t len;
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_argerror(L, 1, lua_pushfstring(L, "descriptor set bytes expected, got %s",
                                            luaL_typename(L, 1)));
    const char *data = lua_tolstring(L, 1, &len);
    int pin = opt_pin(L, 2, "load");
    return load_bytes(L, (const unsigned char *)data, len, pin, "load", 1);
}

int dp_l_load_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int pin = opt_pin(L, 2, "load_file");
    struct stat sb;
    /* sb is only read when stat succeeded (it is uninitialized otherwise) */
    int serr = stat(path, &sb) != 0 ? errno : 0;
    if (serr || !S_ISREG(sb.st_mode)) {
        lua_pushnil(L);
        lua_pushfstring(L, "dynpb: load_file: cannot open '%s': %s", path,
                        serr ? strerror(serr) : "not a regular file");
        return 2;
    }
    size_t size = (size_t)sb.st_size;
    /* the buffer is a userdata: collected even if anything below raises */
    unsigned char *buf = lua_newuserdata(L, size ? size : 1);   /* +1 */
    FILE *f = fopen(path, "rb");        /* no Lua call until fclose */
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "dynpb: load_file: cannot open '%s': %s", path, strerror(errno));
        return 2;
    }
    size_t got = fread(buf, 1, size, f);
    int extra = fgetc(f) != EOF;
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size || extra) {
        lua_pushnil(L);
        lua_pushfstring(L, "dynpb: load_file: cannot read '%s': %s", path,
                        bad ? "read error" : "the file changed while it was read");
        return 2;
    }
    return load_bytes(L, buf, size, pin, "load_file", 0);
}

int dp_l_fingerprint(lua_State *L) {
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    char fp[65];
    dp_sha256_hex(data, len, fp, state_of(L)->sha_fast);
    lua_pushlstring(L, fp, 64);
    return 1;
}

int dp_l_stats(lua_State *L) {
    dp_state *st = state_of(L);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)st->hits);
    lua_setfield(L, -2, "hits");
    lua_pushinteger(L, (lua_Integer)st->misses);
    lua_setfield(L, -2, "misses");
    lua_pushinteger(L, (lua_Integer)st->live);
    lua_setfield(L, -2, "live");
    lua_pushinteger(L, (lua_Integer)st->bytes);
    lua_setfield(L, -2, "bytes");
    push_slot(L, DP_SU_PINS);
    lua_pushinteger(L, (lua_Integer)dp_rawlen(L, -1));
    lua_setfield(L, -3, "pinned");
    lua_pop(L, 1);
    return 1;
}

int dp_l_configure(lua_State *L) {
    dp_state *st = state_of(L);
    static const char *const known[] = {"pin", NULL};
    dp_check_options(L, 1, "configure", known);
    lua_getfield(L, 1, "pin");
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || n != n || n < 0 || n > 1e6 ||
            n != (lua_Number)(int)n)
            luaL_error(L, "dynpb: configure: 'pin' must be an integer from 0 to 1000000");
        st->pin = (int)n;
        push_slot(L, DP_SU_PINS);
        pin_trim(L, lua_gettop(L), st->pin);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushinteger(L, st->pin);
    return 1;
}
