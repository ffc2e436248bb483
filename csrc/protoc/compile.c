/*
 * compile.c -- dynpb.compile(opts) and dynpb.load_proto(opts [, load_opts]).
 *
 * A compile runs in a pc_ctx userdata (metatable with __gc in the
 * registry, per lua_State): all memory is in its arena, freed on return or,
 * if a Lua error (out of memory, a misuse) unwinds the call, by __gc. The
 * stages report errors by longjmp to the setjmp here (pc_fail), never
 * across a Lua call.
 *
 * Files are looked up by import name: opts.sources first, then each of
 * opts.paths in order (path .. "/" .. name), then the built-in well-known
 * types (csrc/gen/protoc_wkt.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc.h"
#include "dynpb.h"

#define CTX_MT "dynpb.protoc.ctx"

static void ctx_release(pc_ctx *C) {
    if (C->fp) fclose(C->fp);
    C->fp = NULL;
    pc_arena_free(C);
}

static int ctx_gc(lua_State *L) {
    pc_ctx *C = lua_touserdata(L, 1);
    ctx_release(C);
    return 0;
}

/* ---- file lookup */

static int read_path(pc_ctx *C, const char *dir, const char *name, const char **src, size_t *len) {
    char *path = pc_strcat3(C, dir, "/", name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    C->fp = fp;                 /* closed by the error path if a stage fails */
    pc_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (b.n + n > PC_MAX_SOURCE)
            pc_fail(C, name, -1, 0, "file is larger than the limit of %u bytes", (unsigned)PC_MAX_SOURCE);
        pc_buf_put(C, &b, chunk, n);
    }
    int err = ferror(fp);
    fclose(fp);
    C->fp = NULL;
    if (err) pc_fail(C, name, -1, 0, "read error in '%s'", path);
    pc_buf_byte(C, &b, 0);
    *src = (const char *)b.p;
    *len = b.n - 1;
    return 1;
}

/* protoc's rule for names looked up on disk: no backslash, no empty, "."
   or ".." component (so an import cannot leave the include directories) */
static int virtual_ok(const char *name) {
    if (strchr(name, '\\')) return 0;
    const char *p = name;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 0 && p != name) || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (!e) return 1;
        p = e + 1;
    }
}

/* ed: the importer is in an editions context (pc_file.edctx); *from_ed is set
   when the text is an editions-era built-in */
static int find_source(pc_ctx *C, const char *name, int ed, const char **src, size_t *len, int *from_ed) {
    *from_ed = 0;
    lua_State *L = C->L;
    if (C->srcidx) {
        lua_getfield(L, C->srcidx, name);
        if (lua_type(L, -1) == LUA_TSTRING) {
            /* the string stays referenced by opts.sources during the call */
            *src = lua_tolstring(L, -1, len);
            lua_pop(L, 1);
            return 1;
        }
        if (!lua_isnil(L, -1)) luaL_error(L, "dynpb: compile: sources['%s'] must be a string, got %s", name, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (C->pathsidx && virtual_ok(name)) {
        int n = (int)dp_rawlen(L, C->pathsidx);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, C->pathsidx, i);
            const char *dir = lua_tostring(L, -1);
            lua_pop(L, 1);
            if (dir && read_path(C, dir, name, src, len)) return 1;
        }
    }
    if ((ed || C->ed_mode) && pc_builtin_ed(name, src, len)) return *from_ed = 1;
    if (pc_builtin(name, src, len)) return C->used_deb = 1;
    return *from_ed = pc_builtin_ed(name, src, len);
}

static pc_file *find_loaded(pc_ctx *C, const char *name) {
    for (int i = 0; i < C->pool.files.n; i++) {
        pc_file *f = C->pool.files.v[i];
        if (strcmp(f->name, name) == 0) return f;
    }
    return NULL;
}

typedef struct {
    pc_vec loading;           /* pc_file* being loaded (the import chain) */
    int nextid;
} loader;

static pc_file *load(pc_ctx *C, loader *ld, const char *name, pc_file *from, const pc_pos *pos) {
    pc_file *f = find_loaded(C, name);
    if (f) return f;
    for (int i = 0; i < ld->loading.n; i++) {
        pc_file *g = ld->loading.v[i];
        if (strcmp(g->name, name) != 0) continue;
        pc_buf chain = {0};
        for (int j = i; j < ld->loading.n; j++) {
            const char *nm = ((pc_file *)ld->loading.v[j])->name;
            pc_buf_put(C, &chain, nm, strlen(nm));
            pc_buf_put(C, &chain, " -> ", 4);
        }
        pc_buf_put(C, &chain, name, strlen(name));
        pc_buf_byte(C, &chain, 0);
        /* protoc reports it at the first file's import of the next one */
        const char *next = i + 1 < ld->loading.n ? ((pc_file *)ld->loading.v[i + 1])->name : name;
        const pc_pos *at = pos;
        for (int k = 0; k < g->deps.n; k++)
            if (strcmp(g->deps.v[k], next) == 0) at = g->dep_pos.v[k];
        pc_fail(C, g->name, at->line, at->col, "File recursively imports itself: %s", (char *)chain.p);
    }
    if (ld->loading.n >= PC_MAX_DEPTH * 4)
        pc_fail(C, from->name, pos->line, pos->col, "imports nested too deep (more than %d files)", PC_MAX_DEPTH * 4);
    if (C->pool.files.n >= PC_MAX_FILES) pc_fail(C, name, -1, 0, "too many files (limit %d)", PC_MAX_FILES);
    const char *src;
    size_t len;
    int from_ed;
    if (!find_source(C, name, from && from->edctx, &src, &len, &from_ed)) {
        if (from)
            pc_fail(C, from->name, pos->line, pos->col, "Import \"%s\" was not found or had errors.", name);
        pc_fail(C, name, -1, 0, "File not found.");
    }
    const char *nm = pc_strndup(C, name, strlen(name));
    f = pc_parse(C, nm, src, len);
    if (f->edition && !C->ed_mode) {
        /* the first editions file: from now on the editions-era built-ins (as
           buf bundles them) serve every file; if a Debian one was used
           already, the compile starts again in that mode */
        if (C->used_deb) {
            C->restart = 1;
            longjmp(*C->jb, 1);
        }
        C->ed_mode = 1;
    }
    f->edctx = f->edition || from_ed || C->ed_mode || (from && from->edctx);
    f->id = ++ld->nextid;
    pc_vec_push(C, &ld->loading, f);
    for (int i = 0; i < f->deps.n; i++) {
        pc_file *d = load(C, ld, f->deps.v[i], f, f->dep_pos.v[i]);
        pc_vec_push(C, &f->depfiles, d);
    }
    for (int i = 0; i < f->opt_deps.n; i++) {
        pc_file *d = load(C, ld, f->opt_deps.v[i], f, f->opt_dep_pos.v[i]);
        pc_vec_push(C, &f->optfiles, d);
    }
    ld->loading.n--;
    f->pool = &C->pool;
    pc_resolve_file(C, &C->pool, f);
    pc_mark_option_imports(f);
    pc_interpret_options(C, f);
    pc_check_editions(C, f);
    pc_vec_push(C, &C->pool.files, f);
    return f;
}

pc_file *pc_load_std(pc_ctx *C, int ed) {
    ed = ed || C->ed_mode;
    if (!ed) C->used_deb = 1;
    pc_file **slot = ed ? &C->stdfile_ed : &C->stdfile;
    pc_pool *pool = ed ? &C->std_ed : &C->std;
    if (*slot) return *slot;
    const char *src;
    size_t len;
    if (!(ed ? pc_builtin_ed : pc_builtin)("google/protobuf/descriptor.proto", &src, &len))
        pc_fail(C, "google/protobuf/descriptor.proto", -1, 0, "built-in descriptor.proto missing");
    C->in_std = 1;
    pc_file *f = pc_parse(C, "google/protobuf/descriptor.proto", src, len);
    C->in_std = 0;
    f->id = ed ? -2 : -1;
    f->pool = pool;
    pc_resolve_file(C, pool, f);
    pc_vec_push(C, &pool->files, f);
    *slot = f;
    return f;
}

static void emit_tree(pc_ctx *C, pc_file *f, pc_buf *out) {
    if (f->emitted) return;
    f->emitted = 1;
    for (int i = 0; i < f->depfiles.n; i++) emit_tree(C, f->depfiles.v[i], out);
    for (int i = 0; i < f->optfiles.n; i++) emit_tree(C, f->optfiles.v[i], out);
    pc_emit_file(C, f, out);
}

static int opt_bool(lua_State *L, int idx, const char *k, int def) {
    lua_getfield(L, idx, k);
    int v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "dynpb: compile: option '%s' must be a boolean", k);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* [-0, +1|2, e] the body of compile: opts table at 1. Pushes the bytes,
   or nil and a message. */
static int compile(lua_State *L) {
    static const char *const known[] = {"files", "paths", "sources", "include_imports", "source_info", NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    dp_check_options(L, 1, "compile", known);
    int include_imports = opt_bool(L, 1, "include_imports", 1);
    int source_info = opt_bool(L, 1, "source_info", 0);
    lua_getfield(L, 1, "files");                        /* +1 files */
    int filesidx = lua_gettop(L);
    if (!lua_istable(L, filesidx))
        luaL_error(L, "dynpb: compile: option 'files' must be a list of file names, got %s", luaL_typename(L, -1));
    int nfiles = (int)dp_rawlen(L, filesidx);
    if (nfiles < 1) luaL_error(L, "dynpb: compile: option 'files' is empty");
    for (int i = 1; i <= nfiles; i++) {
        lua_rawgeti(L, filesidx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "dynpb: compile: files[%d] must be a string, got %s", i, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "paths");                        /* +1 paths */
    int pathsidx = lua_gettop(L);
    if (!lua_isnil(L, pathsidx)) {
        if (!lua_istable(L, pathsidx))
            luaL_error(L, "dynpb: compile: option 'paths' must be a list of directories, got %s", luaL_typename(L, -1));
        int n = (int)dp_rawlen(L, pathsidx);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, pathsidx, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "dynpb: compile: paths[%d] must be a string, got %s", i, luaL_typename(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_getfield(L, 1, "sources");                      /* +1 sources */
    int srcidx = lua_gettop(L);
    if (!lua_isnil(L, srcidx) && !lua_istable(L, srcidx))
        luaL_error(L, "dynpb: compile: option 'sources' must be a table of name = text, got %s", luaL_typename(L, -1));

    pc_ctx *C = lua_newuserdata(L, sizeof *C);          /* +1 ctx */
    memset(C, 0, sizeof *C);
    C->L = L;
    C->alloc = lua_getallocf(L, &C->alloc_ud);
    C->srcidx = lua_isnil(L, srcidx) ? 0 : srcidx;
    C->pathsidx = lua_isnil(L, pathsidx) ? 0 : pathsidx;
    C->source_info = source_info;
    if (luaL_newmetatable(L, CTX_MT)) {                 /* +1 mt */
        lua_pushcfunction(L, ctx_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                            /* -1 */
    jmp_buf jb;
    C->jb = &jb;
    loader ld;
    pc_buf out;
    int ed_mode = 0;
again:
    memset(&ld, 0, sizeof ld);
    memset(&out, 0, sizeof out);
    C->ed_mode = ed_mode;
    if (setjmp(jb)) {
        if (C->restart) {
            /* an editions file after a Debian built-in: everything again, in
               ed_mode (the arena holds every allocation of the first try) */
            ctx_release(C);
            memset(&C->pool, 0, sizeof C->pool);
            memset(&C->std, 0, sizeof C->std);
            memset(&C->std_ed, 0, sizeof C->std_ed);
            C->stdfile = C->stdfile_ed = NULL;
            C->restart = C->used_deb = 0;
            C->depth = 0;
            C->in_std = 0;
            ed_mode = 1;
            goto again;
        }
        if (C->oom) {
            ctx_release(C);
            return luaL_error(L, "dynpb: compile: not enough memory");
        }
        lua_pushnil(L);
        lua_pushfstring(L, "dynpb: compile: %s", C->err);
        ctx_release(C);
        return 2;
    }
    for (int i = 1; i <= nfiles; i++) {
        lua_rawgeti(L, filesidx, i);
        const char *name = lua_tostring(L, -1);
        lua_pop(L, 1);                                  /* still anchored in files */
        load(C, &ld, name, NULL, NULL);
    }
    for (int i = 1; i <= nfiles; i++) {
        lua_rawgeti(L, filesidx, i);
        pc_file *f = find_loaded(C, lua_tostring(L, -1));
        lua_pop(L, 1);
        if (include_imports) emit_tree(C, f, &out);
        else if (!f->emitted) {
            f->emitted = 1;
            pc_emit_file(C, f, &out);
        }
    }
    C->jb = NULL;
    lua_pushlstring(L, out.n ? (const char *)out.p : "", out.n);
    pc_arena_free(C);
    return 1;
}

int dp_l_compile(lua_State *L) {
    lua_settop(L, 1);
    return compile(L);
}

int dp_l_load_proto(lua_State *L) {
    lua_settop(L, 2);
    int n = compile(L);
    if (n == 2) return 2;
    /* [opts, load_opts, ..., bytes] -> [bytes, load_opts] */
    lua_replace(L, 1);
    lua_settop(L, 2);
    return dp_l_load(L);
}
