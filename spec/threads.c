/*
 * spec/threads.c -- two (or more) lua_States in two threads use dynpb at
 * the same time. Each thread makes its own state, loads the module with
 * require, and loops: load (hits and misses, its own pin setting), enum
 * lookups, decode and encode, checking every result. Any shared mutable C
 * state in dynpb would show up here as a wrong result, a crash, or (built
 * with -fsanitize=thread) a data race report.
 *
 *   threads <dynpb cpath pattern> <schema.pb> [threads] [iterations]
 * Exit status 0 and "threads: N passed, 0 failed" when every thread passed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *script =
    "local cpath, setpath, id, iters = ...\n"
    "package.cpath = cpath .. ';' .. package.cpath\n"
    "local dynpb = require 'dynpb'\n"
    "dynpb.configure{ pin = id % 3 }\n"
    "local f = assert(io.open(setpath, 'rb')); local set = f:read('*a'); f:close()\n"
    "local base = assert(dynpb.load(set))\n"
    "local Order = base:message('shop.v1.Order')\n"
    "local t = { id = id, user_name = 'thread ' .. id, tags = { 1, 2, id },\n"
    "            attrs = { a = 'x', b = tostring(id) }, items = { { id = 7, name = 'n' } } }\n"
    "for i = 1, iters do\n"
    "  local s = assert(dynpb.load(set))\n"
    "  assert(rawequal(s, base), 'same bytes, same object')\n"
    "  -- a distinct set per iteration: a miss, compiled in this thread\n"
    "  local name = ('t%02d_%02d.proto'):format(id, i % 50)\n"
    "  local file = '\\10' .. string.char(#name) .. name\n"
    "  local extra = set .. '\\10' .. string.char(#file) .. file\n"
    "  local x = assert(dynpb.load(extra))\n"
    "  assert(x:enum('shop.v1.Color').BLUE == -3)\n"
    "  local bytes = assert(Order:encode(t))\n"
    "  local back = assert(Order:decode(bytes))\n"
    "  assert(back.id == id and back.user_name == t.user_name and back.tags[3] == id)\n"
    "  assert(back.attrs.b == tostring(id) and back.items[1].name == 'n')\n"
    "  if i % 100 == 0 then collectgarbage() end\n"
    "end\n"
    "return dynpb.stats().hits\n";

typedef struct job {
    const char *cpath, *set;
    int id, iters, ok;
    char err[512];
} job;

static void *run(void *arg) {
    job *j = arg;
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(j->err, sizeof j->err, "no state");
        return NULL;
    }
    luaL_openlibs(L);
    if (luaL_loadstring(L, script) != 0) goto fail;
    lua_pushstring(L, j->cpath);
    lua_pushstring(L, j->set);
    lua_pushinteger(L, j->id);
    lua_pushinteger(L, j->iters);
    if (lua_pcall(L, 4, 1, 0) != 0) goto fail;
    j->ok = lua_tointeger(L, -1) >= j->iters;
    if (!j->ok) snprintf(j->err, sizeof j->err, "too few cache hits");
    lua_close(L);
    return NULL;
fail:
    snprintf(j->err, sizeof j->err, "%s", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: threads CPATH SET.pb [threads] [iterations]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 4, iters = argc > 4 ? atoi(argv[4]) : 2000;
    if (n < 1 || n > 64 || iters < 1) return 2;
    pthread_t th[64];
    job jobs[64];
    for (int i = 0; i < n; i++) {
        jobs[i] = (job){argv[1], argv[2], i + 1, iters, 0, ""};
        if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) return 2;
    }
    int passed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].ok) passed++;
        else fprintf(stderr, "thread %d: %s\n", jobs[i].id, jobs[i].err);
    }
    printf("threads: %d passed, %d failed\n", passed, n - passed);
    return passed == n ? 0 : 1;
}
