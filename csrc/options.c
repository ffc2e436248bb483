/*
 * options.c -- what a schema knows beyond its messages and enums: files,
 * services, methods and the options of every declaration, decoded once per
 * schema on first use (issue 11).
 *
 * How: the compiled tables (schema.c) keep only what decode and encode need,
 * so on first use the schema's own descriptor-set bytes (kept as a Lua string
 * in uservalue slot DP_UV_SOURCE by cache.c) are decoded again, by dynpb
 * itself, with a schema of the newer descriptor.proto embedded in the module
 * (csrc/gen/descriptor_set.c, one per lua_State in the state's uservalue
 * slot DP_SU_DESC, not in the cache and not counted by dynpb.stats()). That
 * gives every standard option by name, those protoc 3.21 does not know
 * included. The bytes each *Options message holds besides (its extensions:
 * the custom options) come out under dynpb.UNKNOWN byte-exact; they are then
 * decoded with the user's own google.protobuf.XOptions type, whose extensions
 * schema.c compiled as fields named "[full.name]" -- so custom options get
 * their declared types. What neither knows stays raw under dynpb.UNKNOWN.
 *
 * The result, one Lua table R in uservalue slot DP_UV_REFL, never changes
 * after it is built; callers get copies (dp_push_copy):
 *   R.files    array of { name, package, syntax, edition?, dependencies, options }
 *   R.services array of { name, file, methods = {...}, options }
 *   R.svc      service full name -> service table
 *   R.methods  "pkg.Svc.M", "pkg.Svc/M" and "/pkg.Svc/M" -> method table
 *   R.msg      message full name -> { options, fields = {[number] = opts
 *              or nil when none},
 *              oneofs = array of { name, options } }  (extensions: under
 *              the extended message, by number)
 *   R.enum     enum full name -> { options, values = {[i] = opts or nil} }
 * A method table: { name, full_name, path, service, input_type, output_type,
 * input = handle, output = handle, client_streaming, server_streaming,
 * options }.
 */
#include <string.h>

#include "dynpb.h"

/* ---- the embedded descriptor.proto schema, one per lua_State */

/* [-0, +1, e] pushes a schema object for the embedded descriptor set,
   compiling it on first use. Must run in a closure with the module's
   DP_NUPVALUES upvalues. */
static void push_desc_schema(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(DP_UP_STATE));    /* +1 state */
    dp_getuv(L, -1);                                    /* +1 state uv */
    lua_rawgeti(L, -1, DP_SU_DESC);                     /* +1 schema or nil */
    if (!lua_isnil(L, -1)) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    dp_schema *S = dp_newudata(L, sizeof *S);           /* +1 core */
    memset(S, 0, sizeof *S);
    S->alloc = lua_getallocf(L, &S->alloc_ud);
    S->state = lua_touserdata(L, lua_upvalueindex(DP_UP_STATE));
    dp_sha256_hex(dp_descriptor_set, dp_descriptor_set_len, S->fingerprint, S->state->sha_fast);
    int core = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(DP_UP_COREMT));
    lua_setmetatable(L, core);
    lua_createtable(L, 8, 0);                           /* +1 uservalue */
    lua_pushvalue(L, lua_upvalueindex(DP_UP_STATE));
    lua_rawseti(L, -2, DP_UV_STATE);
    lua_pushvalue(L, -1);
    dp_setuv(L, core);
    if (!dp_compile(L, S, -1, dp_descriptor_set, dp_descriptor_set_len))
        luaL_error(L, "dynpb: the embedded descriptor.proto does not compile: %s",
                   lua_tostring(L, -1));
    lua_pop(L, 1);                                      /* -1 uservalue */
    dp_push_schema_object(L, core);                     /* +1 object */
    lua_remove(L, core);                                /* -1 core */
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, DP_SU_DESC);                     /* state uv[DESC] = object */
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* ---- helpers */

/* [-0, +1, e] pushes schema:message(name) (a handle, or nil) for the
   schema object at sidx; name may start with a dot */
static void push_handle(lua_State *L, int sidx, const char *name) {
    if (name[0] == '.') name++;
    for (int i = 1; i <= DP_NUPVALUES; i++) lua_pushvalue(L, lua_upvalueindex(i));
    lua_pushcclosure(L, dp_l_message, DP_NUPVALUES);
    lua_pushvalue(L, sidx);
    lua_pushstring(L, name);
    lua_call(L, 2, 1);
}

/* [-0, +1, e] decodes the string at bidx with the handle at hidx (whole
   sets nest deeply: max_depth is the largest allowed). Pushes the table,
   or nil when the bytes do not decode. */
static void decode_with(lua_State *L, int hidx, int bidx) {
    lua_getfield(L, hidx, "decode");
    lua_pushvalue(L, hidx);
    lua_pushvalue(L, bidx);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, DP_MAX_MAX_DEPTH);
    lua_setfield(L, -2, "max_depth");
    lua_call(L, 3, 2);
    lua_pop(L, 1);                                      /* the error, if any */
}

/* [-0, +1] pushes t[k] for the table at t (nil when t is not a table) */
static int getf(lua_State *L, int t, const char *k) {
    if (!lua_istable(L, t)) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_getfield(L, t, k);
    return lua_type(L, -1);
}

static const char *strf(lua_State *L, int t, const char *k, const char *def) {
    getf(L, t, k);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : def;
    lua_pop(L, 1);   /* the string stays anchored in t */
    return s;
}

void dp_push_copy(lua_State *L, int idx) {
    idx = dp_absindex(L, idx);
    if (!lua_istable(L, idx) || lua_getmetatable(L, idx)) {
        if (lua_istable(L, idx)) lua_pop(L, 1);         /* the metatable */
        lua_pushvalue(L, idx);                          /* objects: by reference */
        return;
    }
    luaL_checkstack(L, 6, "dynpb: copy");
    lua_createtable(L, (int)dp_rawlen(L, idx), 0);
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        dp_push_copy(L, -2);
        lua_rawset(L, t);
        lua_pop(L, 1);
    }
}

/* ---- building R */

typedef struct bctx {
    lua_State *L;
    int user;        /* the user's schema object */
    int R, msg, enm, methods;
} bctx;

/* [-0, +1, e] pushes the options of the descriptor table at d (its
   "options" entry, field ...Options of kind `kind`) with the custom options
   resolved; when there are none an empty table, or nil if sparse (the
   per-field and per-value maps leave those out: a set of 100,000 fields
   keeps no 100,000 empty tables; the readers show {} for a missing one). */
static void push_options_(bctx *b, int d, const char *kind, int sparse) {
    lua_State *L = b->L;
    luaL_checkstack(L, 12, "dynpb: options");
    if (getf(L, d, "options") != LUA_TTABLE) {
        lua_pop(L, 1);
        if (sparse) lua_pushnil(L);
        else lua_newtable(L);
        return;
    }
    int o = lua_gettop(L);
    lua_pushliteral(L, DP_UNKNOWN_KEY);
    lua_rawget(L, o);                                   /* +1 raw bytes or nil */
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return;
    }
    int raw = lua_gettop(L);
    lua_pushfstring(L, "google.protobuf.%s", kind);
    push_handle(L, b->user, lua_tostring(L, -1));       /* +1 handle or nil */
    if (lua_isnil(L, -1)) {
        lua_settop(L, o);
        return;
    }
    int h = lua_gettop(L);
    decode_with(L, h, raw);                             /* +1 ext table or nil */
    if (lua_istable(L, -1)) {
        int x = lua_gettop(L);
        lua_pushliteral(L, DP_UNKNOWN_KEY);
        lua_pushnil(L);
        lua_rawset(L, o);                               /* what x has left replaces it */
        lua_pushnil(L);
        while (lua_next(L, x)) {
            lua_pushvalue(L, -2);
            lua_rawget(L, o);
            int present = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (!present) {
                lua_pushvalue(L, -2);
                lua_pushvalue(L, -2);
                lua_rawset(L, o);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, o);
}

static void push_options(bctx *b, int d, const char *kind) {
    push_options_(b, d, kind, 0);
}

/* [-0, +0, e] sets t[k] = the options of descriptor d */
static void set_options(bctx *b, int t, int d, const char *kind) {
    push_options(b, d, kind);
    lua_setfield(b->L, t, "options");
}

/* [-0, +0, e] records the options of the extensions in the array at list
   (FieldDescriptorProto tables) under R.msg[extendee].fields[number] */
static void add_extensions(bctx *b, int list) {
    lua_State *L = b->L;
    if (!lua_istable(L, list)) return;
    for (int i = 1;; i++) {
        lua_rawgeti(L, list, i);                        /* +1 field */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
        int f = lua_gettop(L);
        const char *to = strf(L, f, "extendee", "");
        getf(L, f, "number");
        lua_Integer num = lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, b->msg, to[0] == '.' ? to + 1 : to);   /* +1 entry or nil */
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "fields");
            lua_pushinteger(L, num);
            push_options_(b, f, "FieldOptions", 1);
            lua_rawset(L, -3);
            lua_pop(L, 1);
        }
        lua_settop(L, f - 1);
    }
}

/* [-0, +0, e] R.enum entries for the enums in the array at list, declared
   in scope (a package or message name, maybe empty) */
static void add_enums(bctx *b, int list, const char *scope) {
    lua_State *L = b->L;
    if (!lua_istable(L, list)) return;
    for (int i = 1;; i++) {
        lua_rawgeti(L, list, i);                        /* +1 enum */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
        int e = lua_gettop(L);
        lua_createtable(L, 0, 2);                       /* +1 entry */
        int ent = e + 1;
        set_options(b, ent, e, "EnumOptions");
        lua_newtable(L);                                /* +1 values */
        getf(L, e, "value");                            /* +1 */
        for (int j = 1; lua_istable(L, -1); j++) {
            lua_rawgeti(L, -1, j);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            push_options_(b, lua_gettop(L), "EnumValueOptions", 1);
            lua_rawseti(L, ent + 1, j);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_setfield(L, ent, "values");                 /* -1 values */
        const char *name = strf(L, e, "name", "");
        if (*scope) lua_pushfstring(L, "%s.%s", scope, name);
        else lua_pushstring(L, name);
        lua_pushvalue(L, ent);
        lua_rawset(L, b->enm);
        lua_settop(L, e - 1);
    }
}

/* [-0, +0, e] R.msg entries for the messages in the array at list (and
   their nested types), declared in scope */
static void add_messages(bctx *b, int list, const char *scope, int depth) {
    lua_State *L = b->L;
    if (!lua_istable(L, list) || depth > DP_MAX_TYPE_DEPTH + 1) return;
    luaL_checkstack(L, 16, "dynpb: options");
    for (int i = 1;; i++) {
        lua_rawgeti(L, list, i);                        /* +1 message */
        if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
        int m = lua_gettop(L);
        const char *name = strf(L, m, "name", "");
        if (*scope) lua_pushfstring(L, "%s.%s", scope, name);
        else lua_pushstring(L, name);
        int full = m + 1;
        lua_createtable(L, 0, 3);                       /* +1 entry */
        int ent = m + 2;
        set_options(b, ent, m, "MessageOptions");
        lua_newtable(L);                                /* +1 fields by number */
        getf(L, m, "field");
        for (int j = 1; lua_istable(L, -1); j++) {
            lua_rawgeti(L, -1, j);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            int f = lua_gettop(L);
            getf(L, f, "number");
            push_options_(b, f, "FieldOptions", 1);
            lua_rawset(L, ent + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_setfield(L, ent, "fields");
        lua_newtable(L);                                /* +1 oneofs */
        getf(L, m, "oneof_decl");
        for (int j = 1; lua_istable(L, -1); j++) {
            lua_rawgeti(L, -1, j);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            int od = lua_gettop(L);
            lua_createtable(L, 0, 2);
            lua_pushstring(L, strf(L, od, "name", ""));
            lua_setfield(L, -2, "name");
            set_options(b, od + 1, od, "OneofOptions");
            lua_rawseti(L, ent + 1, j);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_setfield(L, ent, "oneofs");
        lua_pushvalue(L, full);
        lua_pushvalue(L, ent);
        lua_rawset(L, b->msg);
        getf(L, m, "enum_type");
        add_enums(b, lua_gettop(L), lua_tostring(L, full));
        lua_pop(L, 1);
        getf(L, m, "nested_type");
        add_messages(b, lua_gettop(L), lua_tostring(L, full), depth + 1);
        lua_settop(L, m - 1);
    }
}

/* [-0, +0, e] extensions of the messages in the array at list, nested */
static void add_message_extensions(bctx *b, int list, int depth) {
    lua_State *L = b->L;
    if (!lua_istable(L, list) || depth > DP_MAX_TYPE_DEPTH + 1) return;
    luaL_checkstack(L, 8, "dynpb: options");
    for (int i = 1;; i++) {
        lua_rawgeti(L, list, i);
        if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
        int m = lua_gettop(L);
        getf(L, m, "extension");
        add_extensions(b, lua_gettop(L));
        lua_pop(L, 1);
        getf(L, m, "nested_type");
        add_message_extensions(b, lua_gettop(L), depth + 1);
        lua_settop(L, m - 1);
    }
}

/* [-0, +0, e] the services of the file table at fd into R */
static void add_services(bctx *b, int fd, const char *fname, const char *pkg) {
    lua_State *L = b->L;
    getf(L, fd, "service");
    int list = lua_gettop(L);
    lua_getfield(L, b->R, "services");
    int svcs = list + 1;
    lua_getfield(L, b->R, "svc");
    int svcmap = list + 2;
    for (int i = 1; lua_istable(L, list); i++) {
        lua_rawgeti(L, list, i);                        /* +1 service */
        if (lua_isnil(L, -1)) break;
        int sd = lua_gettop(L);
        const char *sname = strf(L, sd, "name", "");
        const char *full = *pkg ? lua_pushfstring(L, "%s.%s", pkg, sname)
                                : (lua_pushstring(L, sname), lua_tostring(L, -1));
        int fullidx = lua_gettop(L);
        lua_createtable(L, 0, 4);                       /* +1 service table */
        int st = lua_gettop(L);
        lua_pushvalue(L, fullidx);
        lua_setfield(L, st, "name");
        lua_pushstring(L, fname);
        lua_setfield(L, st, "file");
        set_options(b, st, sd, "ServiceOptions");
        lua_newtable(L);                                /* +1 methods */
        int ms = lua_gettop(L);
        getf(L, sd, "method");
        int mlist = lua_gettop(L);
        for (int j = 1; lua_istable(L, mlist); j++) {
            lua_rawgeti(L, mlist, j);                   /* +1 method descriptor */
            if (lua_isnil(L, -1)) break;
            int md = lua_gettop(L);
            const char *mname = strf(L, md, "name", "");
            lua_createtable(L, 0, 11);                  /* +1 method table */
            int mt = md + 1;
            lua_pushstring(L, mname);
            lua_setfield(L, mt, "name");
            lua_pushfstring(L, "%s.%s", full, mname);
            lua_setfield(L, mt, "full_name");
            lua_pushfstring(L, "/%s/%s", full, mname);
            lua_setfield(L, mt, "path");
            lua_pushvalue(L, fullidx);
            lua_setfield(L, mt, "service");
            static const char *const io[2] = {"input", "output"};
            for (int k = 0; k < 2; k++) {
                lua_pushfstring(L, "%s_type", io[k]);
                const char *tn = strf(L, md, lua_tostring(L, -1), "");
                lua_pop(L, 1);
                lua_pushstring(L, tn[0] == '.' ? tn + 1 : tn);
                lua_pushfstring(L, "%s_type", io[k]);
                lua_pushvalue(L, -2);
                lua_rawset(L, mt);                      /* input_type = "pkg.Req" */
                push_handle(L, b->user, lua_tostring(L, -1));
                lua_setfield(L, mt, io[k]);             /* nil when not in the set */
                lua_pop(L, 1);
            }
            getf(L, md, "client_streaming");
            lua_pushboolean(L, lua_toboolean(L, -1));
            lua_setfield(L, mt, "client_streaming");
            lua_pop(L, 1);
            getf(L, md, "server_streaming");
            lua_pushboolean(L, lua_toboolean(L, -1));
            lua_setfield(L, mt, "server_streaming");
            lua_pop(L, 1);
            set_options(b, mt, md, "MethodOptions");
            lua_pushvalue(L, mt);
            lua_rawseti(L, ms, j);
            /* the three spellings */
            lua_pushfstring(L, "%s.%s", full, mname);
            lua_pushvalue(L, mt);
            lua_rawset(L, b->methods);
            lua_pushfstring(L, "%s/%s", full, mname);
            lua_pushvalue(L, mt);
            lua_rawset(L, b->methods);
            lua_pushfstring(L, "/%s/%s", full, mname);
            lua_pushvalue(L, mt);
            lua_rawset(L, b->methods);
            lua_settop(L, md - 1);
        }
        lua_settop(L, ms);
        lua_setfield(L, st, "methods");
        lua_pushvalue(L, st);
        lua_rawseti(L, svcs, (int)dp_rawlen(L, svcs) + 1);
        lua_pushvalue(L, fullidx);
        lua_pushvalue(L, st);
        lua_rawset(L, svcmap);
        lua_settop(L, sd - 1);
    }
    lua_settop(L, list - 1);
}

/* [-0, +1, e] decodes the set and builds R for the schema object at sidx */
static void build(lua_State *L, int sidx) {
    luaL_checkstack(L, 24, "dynpb: options");
    int top = lua_gettop(L);
    bctx b;
    b.L = L;
    b.user = sidx;
    push_desc_schema(L);                                /* +1 desc schema */
    int desc = lua_gettop(L);
    push_handle(L, desc, "google.protobuf.FileDescriptorSet");
    int h = lua_gettop(L);
    lua_rawgeti(L, sidx, 1);
    dp_getuv(L, -1);
    lua_rawgeti(L, -1, DP_UV_SOURCE);                   /* +1 bytes */
    int src = lua_gettop(L);
    if (lua_type(L, src) != LUA_TSTRING)
        luaL_error(L, "dynpb: this schema has no descriptor-set bytes to read options from");
    decode_with(L, h, src);                             /* +1 set table */
    int set = lua_gettop(L);
    if (!lua_istable(L, set))
        luaL_error(L, "dynpb: the set does not decode as the embedded descriptor.proto");
    lua_createtable(L, 0, 6);                           /* +1 R */
    b.R = lua_gettop(L);
    lua_newtable(L); lua_setfield(L, b.R, "files");
    lua_newtable(L); lua_setfield(L, b.R, "services");
    lua_newtable(L); lua_setfield(L, b.R, "svc");
    lua_newtable(L); lua_pushvalue(L, -1); lua_setfield(L, b.R, "methods");
    b.methods = lua_gettop(L);
    lua_newtable(L); lua_pushvalue(L, -1); lua_setfield(L, b.R, "msg");
    b.msg = lua_gettop(L);
    lua_newtable(L); lua_pushvalue(L, -1); lua_setfield(L, b.R, "enum");
    b.enm = lua_gettop(L);
    lua_getfield(L, b.R, "files");
    int files = lua_gettop(L);
    getf(L, set, "file");
    int flist = lua_gettop(L);
    /* pass 1: files, types, services; pass 2: extensions (their extendee
       may be declared in a later file) */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 1; lua_istable(L, flist); i++) {
            lua_rawgeti(L, flist, i);                   /* +1 file */
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            int fd = lua_gettop(L);
            const char *pkg = strf(L, fd, "package", "");
            if (pass == 1) {
                getf(L, fd, "extension");
                add_extensions(&b, lua_gettop(L));
                lua_pop(L, 1);
                getf(L, fd, "message_type");
                add_message_extensions(&b, lua_gettop(L), 0);
                lua_settop(L, fd - 1);
                continue;
            }
            const char *fname = strf(L, fd, "name", "");
            lua_createtable(L, 0, 6);                   /* +1 file table */
            int ft = fd + 1;
            lua_pushstring(L, fname);
            lua_setfield(L, ft, "name");
            lua_pushstring(L, pkg);
            lua_setfield(L, ft, "package");
            const char *syn = strf(L, fd, "syntax", "");
            lua_pushstring(L, *syn ? syn : "proto2");
            lua_setfield(L, ft, "syntax");
            if (getf(L, fd, "edition") != LUA_TNIL) lua_setfield(L, ft, "edition");
            else lua_pop(L, 1);
            getf(L, fd, "dependency");
            if (!lua_istable(L, -1)) { lua_pop(L, 1); lua_newtable(L); }
            lua_setfield(L, ft, "dependencies");
            set_options(&b, ft, fd, "FileOptions");
            lua_rawseti(L, files, i);
            getf(L, fd, "enum_type");
            add_enums(&b, lua_gettop(L), pkg);
            lua_pop(L, 1);
            getf(L, fd, "message_type");
            add_messages(&b, lua_gettop(L), pkg, 0);
            lua_pop(L, 1);
            add_services(&b, fd, fname, pkg);
            lua_settop(L, fd - 1);
        }
    lua_pushvalue(L, b.R);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

void dp_push_refl(lua_State *L, int sidx) {
    sidx = dp_absindex(L, sidx);
    dp_check_schema(L, sidx);
    lua_rawgeti(L, sidx, 1);                            /* +1 core */
    dp_getuv(L, -1);                                    /* +1 uv */
    lua_rawgeti(L, -1, DP_UV_REFL);                     /* +1 R or nil */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        build(L, sidx);                                 /* +1 R */
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, DP_UV_REFL);
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
}
