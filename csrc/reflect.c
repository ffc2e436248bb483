/*
 * reflect.c -- what a compiled schema shows to Lua: type lists, enum
 * constant tables, message handles and field reflection.
 *
 * Enum constant tables are read-only proxies: an empty table whose
 * metatable's __index is the data table (NAME -> number and number ->
 * first declared NAME) and whose __newindex raises. One proxy per enum is
 * made on first use and kept in the schema's uservalue (DP_UV_ENUMTABS).
 */
#include <stdio.h>
#include <string.h>

#include "dynpb.h"

static const char *const type_names[19] = {
    NULL, "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool",
    "string", "group", "message", "bytes", "uint32", "enum", "sfixed32", "sfixed64",
    "sint32", "sint64"};

const char *dp_type_str(int type) {
    return type >= 1 && type <= 18 ? type_names[type] : "?";
}

/* [-0, +0] index of the message (kind 1) or enum (kind 2) named at
   nameidx, with or without a leading dot, in the schema object at 1; -1 */
static int find_type(lua_State *L, int kind, int nameidx) {
    dp_schema *S = dp_check_schema(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, nameidx, &n);
    if (n && s[0] == '.') { s++; n--; }
    return kind == 1 ? dp_find_msg(S, s, n) : dp_find_enum(S, s, n);
}

static int not_found(lua_State *L, const char *what, int nameidx) {
    dp_schema *S = dp_check_schema(L, 1);
    char fp[13];                          /* 12 hex digits name it well enough */
    memcpy(fp, S->fingerprint, 12);
    fp[12] = 0;
    lua_pushnil(L);
    lua_pushfstring(L, "dynpb: no %s named '%s' in schema %s", what, lua_tostring(L, nameidx), fp);
    return 2;
}

int dp_l_types(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    lua_createtable(L, (int)S->nmsgs, 0);
    int n = 0;
    for (uint32_t i = 0; i < S->nmsgs; i++) {
        if (S->msgs[i].map_entry) continue;   /* synthesized by protoc */
        lua_pushstring(L, S->msgs[i].name);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

int dp_l_enums(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    lua_createtable(L, (int)S->nenums, 0);
    for (uint32_t i = 0; i < S->nenums; i++) {
        lua_pushstring(L, S->enums[i].name);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int enum_newindex(lua_State *L) {
    return luaL_error(L, "dynpb: enum constants are read-only (assigning '%s')",
                      dp_keyname(L, 2));
}

/* __pairs: iterate the data table (Lua 5.2+; 5.1 and LuaJIT ignore it) */
static int enum_pairs(lua_State *L) {
    lua_getmetatable(L, 1);
    lua_getglobal(L, "next");
    lua_getfield(L, -2, "__index");
    lua_pushnil(L);
    return 3;
}

int dp_l_enum(lua_State *L) {
    int idx = find_type(L, 2, 2);
    if (idx < 0) return not_found(L, "enum", 2);
    dp_schema *S = dp_check_schema(L, 1);
    lua_rawgeti(L, 1, 1);                       /* +1 core */
    dp_getuv(L, -1);                            /* +1 uv */
    lua_rawgeti(L, -1, DP_UV_ENUMTABS);         /* +1 enumtabs */
    lua_rawgeti(L, -1, idx + 1);                /* +1 proxy or nil */
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    const dp_enum *e = &S->enums[idx];
    lua_newtable(L);                            /* +1 proxy */
    lua_createtable(L, 0, 5);                   /* +1 metatable */
    lua_createtable(L, 0, (int)(e->nvalues + e->nunique));   /* +1 data */
    for (uint32_t i = 0; i < e->nvalues; i++) {
        lua_pushstring(L, e->values[i].cname);
        lua_pushinteger(L, e->values[i].number);
        lua_rawset(L, -3);
    }
    for (uint32_t i = 0; i < e->nunique; i++) {
        const dp_enumval *v = &e->values[e->by_number[i]];
        lua_pushinteger(L, v->number);
        lua_pushstring(L, v->cname);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "__index");             /* -1 data */
    lua_pushcfunction(L, enum_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, enum_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushstring(L, e->name);
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");         /* getmetatable gives false */
    lua_setmetatable(L, -2);                    /* -1 metatable */
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, idx + 1);                /* enumtabs[idx+1] = proxy */
    return 1;
}

int dp_l_enum_values(lua_State *L) {
    int idx = find_type(L, 2, 2);
    if (idx < 0) return not_found(L, "enum", 2);
    dp_schema *S = dp_check_schema(L, 1);
    const dp_enum *e = &S->enums[idx];
    /* R.enum[name].values (options.c): options by declaration index */
    dp_push_refl(L, 1);
    lua_getfield(L, -1, "enum");
    lua_getfield(L, -1, e->name);
    if (lua_istable(L, -1)) lua_getfield(L, -1, "values");
    else lua_pushnil(L);
    int vopts = lua_gettop(L);
    lua_createtable(L, (int)e->nvalues, 0);
    for (uint32_t i = 0; i < e->nvalues; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, e->values[i].cname);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, e->values[i].number);
        lua_setfield(L, -2, "number");
        if (lua_istable(L, vopts)) lua_rawgeti(L, vopts, (int)i + 1);
        else lua_pushnil(L);
        if (lua_istable(L, -1)) dp_push_copy(L, -1);
        else lua_newtable(L);
        lua_setfield(L, -3, "options");
        lua_pop(L, 1);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

int dp_l_message(lua_State *L) {
    int idx = find_type(L, 1, 2);
    if (idx < 0) return not_found(L, "message type", 2);
    dp_schema *S = dp_check_schema(L, 1);
    lua_rawgeti(L, 1, 1);                       /* +1 core */
    int core = lua_gettop(L);
    dp_getuv(L, core);                          /* +1 uv */
    lua_rawgeti(L, -1, DP_UV_HANDLES);          /* +1 handles or nil */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, DP_UV_HANDLES);
    }
    lua_rawgeti(L, -1, idx + 1);                /* +1 handle or nil */
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    lua_createtable(L, 2, 2);                   /* +1 handle */
    lua_pushvalue(L, core);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, idx);
    lua_rawseti(L, -2, 2);
    lua_pushstring(L, S->msgs[idx].name);
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "schema");              /* keeps the schema alive */
    /* decode/encode closures bound to this message (DP_HU_* upvalues) */
    static const lua_CFunction codec[2] = {dp_l_handle_decode, dp_l_handle_encode};
    static const char *const codec_names[2] = {"decode", "encode"};
    for (int i = 0; i < 2; i++) {
        lua_pushvalue(L, core);                             /* DP_HU_CORE */
        dp_getuv(L, core);
        lua_rawgeti(L, -1, DP_UV_NAMES);
        lua_replace(L, -2);                                 /* DP_HU_NAMES */
        lua_pushinteger(L, idx);                            /* DP_HU_INDEX */
        lua_pushvalue(L, lua_upvalueindex(DP_UP_STATE));    /* DP_HU_STATE */
        lua_pushcclosure(L, codec[i], DP_HU_N);
        lua_setfield(L, -2, codec_names[i]);
    }
    lua_pushvalue(L, lua_upvalueindex(DP_UP_HANDLEMT));
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, idx + 1);                /* handles[idx+1] = handle */
    return 1;
}

/* [-0, +1] pushes a typed default value of field fd */
static void push_default(lua_State *L, const dp_schema *S, const dp_field *fd) {
    switch (fd->type) {
    case DP_T_DOUBLE: case DP_T_FLOAT: lua_pushnumber(L, fd->def.d); break;
    case DP_T_BOOL: lua_pushboolean(L, (int)fd->def.i); break;
    case DP_T_STRING: case DP_T_BYTES: lua_pushlstring(L, fd->def.s.p, fd->def.s.n); break;
    case DP_T_ENUM: {
        int v = dp_enum_find(&S->enums[fd->sub], (int32_t)fd->def.i);
        lua_pushstring(L, S->enums[fd->sub].values[v].cname);
        break;
    }
    case DP_T_UINT32: case DP_T_FIXED32: case DP_T_UINT64: case DP_T_FIXED64:
        dp_push_u64(L, fd->def.u);
        break;
    default:
        dp_push_i64(L, fd->def.i);
    }
}

/* [-0, +1, e] pushes the reflection row of field fd of m; opts is the
   index of R.msg[m].fields (options.c) or 0 */
static void push_field_row(lua_State *L, const dp_schema *S, const dp_msg *m,
                           const dp_field *fd, int opts) {
    lua_createtable(L, 0, 12);
    if (fd->flags & DPF_EXTENSION) {
        /* "[pkg.ext]": name is the full name, key the bracketed one */
        lua_pushlstring(L, fd->cname + 1, fd->namelen - 2);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, fd->cname);
        lua_setfield(L, -2, "key");
        lua_pushstring(L, m->name);
        lua_setfield(L, -2, "extendee");
    } else {
        lua_pushstring(L, fd->cname);
        lua_setfield(L, -2, "name");
    }
    lua_pushinteger(L, (lua_Integer)fd->number);
    lua_setfield(L, -2, "number");
    lua_pushstring(L, dp_type_str(fd->type));
    lua_setfield(L, -2, "type");
    lua_pushstring(L, fd->flags & DPF_REPEATED ? "repeated"
                      : fd->flags & DPF_REQUIRED ? "required" : "optional");
    lua_setfield(L, -2, "label");
    if (fd->type_name) {
        lua_pushstring(L, fd->type_name);
        lua_setfield(L, -2, "type_name");
    }
    if (fd->oneof >= 0) {
        lua_pushstring(L, m->oneof_names[fd->oneof]);
        lua_setfield(L, -2, "oneof");
    }
    lua_pushboolean(L, (fd->flags & DPF_PACKED) != 0);
    lua_setfield(L, -2, "packed");
    if (!(fd->flags & DPF_REPEATED)) {   /* resolved presence (issue 14) */
        lua_pushstring(L, fd->flags & DPF_PRESENCE ? "explicit" : "implicit");
        lua_setfield(L, -2, "presence");
    }
    if (fd->flags & DPF_MAP) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "map");
    }
    if (fd->flags & DPF_HAS_DEFAULT) {
        push_default(L, S, fd);
        lua_setfield(L, -2, "default");
    }
    if (opts) {
        lua_rawgeti(L, opts, (int)fd->number);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
        } else {
            dp_push_copy(L, -1);
            lua_remove(L, -2);
        }
        lua_setfield(L, -2, "options");
    }
}

/* [-0, +1, e] pushes R.msg[m->name].fields for the handle at 1 (an empty
   table when the message has no entry) */
static int push_field_opts(lua_State *L, const dp_msg *m) {
    lua_getfield(L, 1, "schema");
    dp_push_refl(L, -1);
    lua_getfield(L, -1, "msg");
    lua_getfield(L, -1, m->name);
    if (lua_istable(L, -1)) lua_getfield(L, -1, "fields");
    else lua_pushnil(L);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_replace(L, -5);
    lua_pop(L, 3);
    return lua_gettop(L);
}

/* handle:fields() lists the normal fields, handle:extensions() the
   extensions (ext != 0) */
static int list_fields(lua_State *L, int ext) {
    const dp_msg *m;
    dp_schema *S = dp_check_handle(L, 1, &m);
    int opts = push_field_opts(L, m);
    lua_createtable(L, (int)m->nfields, 0);
    int n = 0;
    for (uint32_t i = 0; i < m->nfields; i++) {
        const dp_field *fd = &m->fields[i];
        if (((fd->flags & DPF_EXTENSION) != 0) != ext) continue;
        push_field_row(L, S, m, fd, opts);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

int dp_l_fields(lua_State *L) {
    return list_fields(L, 0);
}

int dp_l_extensions(lua_State *L) {
    return list_fields(L, 1);
}
