/*
 * schema.c -- compile a FileDescriptorSet into dynpb's immutable tables.
 *
 * Stages:
 *   1. dp_scan_descriptor_set (wire.c) bounds depth and lengths;
 *   2. protobuf-c parses the set into an arena (chunks from the lua_State's
 *      allocator) owned by a "holder" userdata: released as soon as the
 *      compile ends, and by its __gc if anything below raises;
 *   3. collect: every message and enum gets a full name and an index
 *      (duplicates rejected), recorded in the uservalue tables MSGS/ENUMS;
 *   4. enums, then messages, are compiled into blocks owned by the schema
 *      userdata (dp_schema_alloc); field names become Lua strings in the
 *      NAMES array so decode never builds or hashes a name.
 *
 * Contract of dp_compile: returns 1 with S filled, or 0 with one error
 * message pushed; it may raise only for memory errors. Either way the Lua
 * stack is as it was (plus the message on failure).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "dynpb.h"
#include "gen/google/protobuf/descriptor.pb-c.h"

typedef Google__Protobuf__FileDescriptorSet FDSet;
typedef Google__Protobuf__FileDescriptorProto FileProto;
typedef Google__Protobuf__DescriptorProto MsgProto;
typedef Google__Protobuf__FieldDescriptorProto FieldProto;
typedef Google__Protobuf__EnumDescriptorProto EnumProto;

/* ---- schema memory: bump allocation in blocks from the Lua allocator */

#define DP_ALIGN 16
#define DP_BLOCK 4096

void *dp_schema_alloc(lua_State *L, dp_schema *S, size_t n) {
    n = (n + (DP_ALIGN - 1)) & ~(size_t)(DP_ALIGN - 1);
    if (n > S->left) {
        size_t hdr = (sizeof(dp_block) + DP_ALIGN - 1) & ~(size_t)(DP_ALIGN - 1);
        size_t size = hdr + (n > DP_BLOCK ? n : DP_BLOCK);
        dp_block *b = S->alloc(S->alloc_ud, NULL, 0, size);
        if (!b) luaL_error(L, "dynpb: not enough memory");
        b->next = S->blocks;
        b->size = size;
        S->blocks = b;
        S->nbytes += size;
        S->cur = (char *)b + hdr;
        S->left = size - hdr;
    }
    void *p = S->cur;
    S->cur += n;
    S->left -= n;
    memset(p, 0, n);
    return p;
}

void dp_schema_free(dp_schema *S) {
    dp_block *b = S->blocks;
    while (b) {
        dp_block *next = b->next;
        S->alloc(S->alloc_ud, b, b->size, 0);
        b = next;
    }
    S->blocks = NULL;
    S->cur = NULL;
    S->left = 0;
}

static const char *sdup(lua_State *L, dp_schema *S, const char *s) {
    size_t n = strlen(s);
    char *d = dp_schema_alloc(L, S, n + 1);
    memcpy(d, s, n + 1);
    return d;
}

/* ---- protobuf-c allocator: an arena over lua_Alloc
 *
 * protobuf-c allocates every parsed message, string and array separately;
 * a large set (all of googleapis: 22 MB, millions of objects) made malloc
 * and free the largest part of a compile, and the freed fragments stayed in
 * the process (RSS). So its allocations are bump-allocated from big chunks
 * and freed all at once with the holder: pa_free frees nothing. protobuf-c
 * frees nothing it still needs during an unpack, so nothing is lost but the
 * few temporaries it drops (bounded by the input size).
 */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size;                  /* bytes of this chunk, header included */
} arena_chunk;

typedef struct holder {
    ProtobufCAllocator pa;   /* handed to protobuf-c; allocator_data = this */
    lua_Alloc alloc;
    void *alloc_ud;
    FDSet *set;              /* parsed set, in the arena; dropped by __gc */
    arena_chunk *chunks;     /* the arena, freed by __gc */
    char *cur;               /* bump pointer in the newest chunk */
    size_t left;             /* bytes left at cur */
    size_t chunk;            /* size of the next chunk */
    int oom;                 /* an allocation for protobuf-c failed */
} holder;

static void *pa_alloc(void *ud, size_t size) {
    holder *h = ud;
    size = (size + (DP_ALIGN - 1)) & ~(size_t)(DP_ALIGN - 1);
    if (size > h->left) {
        size_t hdr = (sizeof(arena_chunk) + DP_ALIGN - 1) & ~(size_t)(DP_ALIGN - 1);
        size_t want = size > h->chunk ? size : h->chunk;
        arena_chunk *c = want <= (size_t)-1 - hdr ? h->alloc(h->alloc_ud, NULL, 0, hdr + want) : NULL;
        if (!c) {
            h->oom = 1;
            return NULL;
        }
        c->next = h->chunks;
        c->size = hdr + want;
        h->chunks = c;
        h->cur = (char *)c + hdr;
        h->left = want;
        if (h->chunk < ((size_t)4 << 20)) h->chunk *= 2;   /* 64 KiB, 128 KiB, ... 4 MiB */
    }
    void *p = h->cur;
    h->cur += size;
    h->left -= size;
    return p;
}

static void pa_free(void *ud, void *ptr) {
    (void)ud;
    (void)ptr;   /* the arena is freed as a whole (holder_gc) */
}

/* frees the arena (and with it the parsed set) */
static void holder_release(holder *h) {
    arena_chunk *c = h->chunks;
    while (c) {
        arena_chunk *next = c->next;
        h->alloc(h->alloc_ud, c, c->size, 0);
        c = next;
    }
    h->chunks = NULL;
    h->cur = NULL;
    h->left = 0;
    h->set = NULL;
}

static int holder_gc(lua_State *L) {
    holder_release(lua_touserdata(L, 1));
    return 0;
}

/* [-0, +1, m] pushes a holder userdata with a __gc metatable */
static holder *push_holder(lua_State *L) {
    holder *h = dp_newudata(L, sizeof *h);
    memset(h, 0, sizeof *h);
    h->alloc = lua_getallocf(L, &h->alloc_ud);
    h->pa.alloc = pa_alloc;
    h->pa.free = pa_free;
    h->pa.allocator_data = h;
    h->chunk = (size_t)64 << 10;
    if (luaL_newmetatable(L, "dynpb.holder")) {   /* +1 metatable */
        lua_pushcfunction(L, holder_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                      /* -1 */
    return h;
}

/* ---- compile context */

typedef struct ctx {
    lua_State *L;
    dp_schema *S;
    int uv;                  /* absolute index of the uservalue table */
    int names;               /* absolute index of the NAMES array */
    int msgs, enums;         /* absolute indices of MSGS / ENUMS tables */
    int nnames;              /* entries in NAMES so far */
    /* per message/enum index: its proto, file and scope (temporary userdata) */
    const MsgProto **mproto;
    const FileProto **mfile;
    const EnumProto **eproto;
    const FileProto **efile;
    /* per message/enum index: its resolved features (issue 14) */
    dp_features *mfeat;
    dp_features *efeat;
    uint32_t nm, ne;
    /* extensions (collect_extensions): those of message i are
       ext[extstart[i] .. extstart[i+1]), declared in file extfile[] with
       scope extscope[] (the package, or the full name of the message the
       `extend` is nested in) */
    uint32_t *extstart;
    const FieldProto **ext;
    const FileProto **extfile;
    const char **extscope;
    /* the field being compiled, named by messages that begin with WHERE:
       "file 'f': field 'M.x'", or for an extension (w_scope set)
       "file 'f': extension 'scope.x' of 'M'" */
    const char *w_file, *w_msg, *w_field, *w_scope;
} ctx;

/* A message "%s: ..." given WHERE for %s is prefixed by fail() with
   "file 'f': field 'M.x'" for the field in ctx: the text is only built when
   a compile fails (building it per field was a tenth of a compile). */
static const char WHERE[] = "\001";

/* [-1, +1] replaces the string at the top, when it begins with WHERE, by
   the field's "file 'f': field 'M.x'" (or extension) and the rest */
static void expand_where(ctx *c) {
    const char *msg = lua_tostring(c->L, -1);
    if (!msg || msg[0] != WHERE[0]) return;
    if (c->w_scope)
        lua_pushfstring(c->L, "file '%s': extension '%s%s%s' of '%s'%s", c->w_file,
                        c->w_scope, *c->w_scope ? "." : "", c->w_field, c->w_msg,
                        msg + 1);                             /* +1 */
    else
        lua_pushfstring(c->L, "file '%s': field '%s.%s'%s", c->w_file, c->w_msg,
                        c->w_field, msg + 1);                 /* +1 */
    lua_remove(c->L, -2);                                     /* -1 */
}

/* [-0, +1] pushes an error message and returns 0 */
static int fail(ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(c->L, fmt, ap);                          /* +1 */
    va_end(ap);
    expand_where(c);
    return 0;
}

/* [-1, +0] pops a string into NAMES; returns its index */
static int32_t add_name(ctx *c) {
    lua_rawseti(c->L, c->names, ++c->nnames);
    return c->nnames;
}

static int is_ident(const char *s) {
    if (!s || !*s) return 0;
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* a dotted package name: identifiers separated by single dots, or empty */
static int is_package(const char *s) {
    if (!s || !*s) return 1;
    for (;;) {
        const char *d = strchr(s, '.');
        size_t n = d ? (size_t)(d - s) : strlen(s);
        if (n == 0 || n > 4096) return 0;
        char buf[4097];
        memcpy(buf, s, n);
        buf[n] = 0;
        if (!is_ident(buf)) return 0;
        if (!d) return 1;
        s = d + 1;
    }
}

/* [-0, +0|1] *out = the features of a scope: its parent's, overridden by
   its own `features` option fs (NULL: none). On an error (an unknown
   feature value) pushes "<where>: ..." with where made from fmt, returns 0. */
static int scope_features(ctx *c, const dp_features *parent,
                          const Google__Protobuf__FeatureSet *fs, dp_features *out,
                          const char *fmt, ...) {
    if (!fs) {
        *out = *parent;
        return 1;
    }
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(c->L, fmt, ap);                         /* +1 where */
    va_end(ap);
    expand_where(c);                                         /* a field's WHERE */
    const char *where = lua_tostring(c->L, -1);
    int ok = dp_features_merge(c->L, parent, fs, where, out);
    if (ok) lua_pop(c->L, 1);                                /* -1 */
    else lua_remove(c->L, -2);                               /* the message stays */
    return ok;
}

#define OPT_FEATURES(p) ((p)->options ? (p)->options->features : NULL)

/* ---- stage 3: collect names */

static void count_types(const MsgProto *m, uint32_t *nm, uint32_t *ne) {
    (*nm)++;
    *ne += (uint32_t)m->n_enum_type;
    for (size_t i = 0; i < m->n_nested_type; i++) count_types(m->nested_type[i], nm, ne);
}

/* [-0, +0] registers full name "scope.name" in table tidx, value idx.
   *out receives the full name, copied into schema memory. */
static int register_name(ctx *c, const FileProto *f, const char *scope,
                         const char *name, int tidx, uint32_t idx,
                         const char **out) {
    lua_State *L = c->L;
    if (!is_ident(name))
        return fail(c, "file '%s': invalid type name '%s' in scope '%s'",
                    f->name, name ? name : "(none)", scope);
    if (*scope) lua_pushfstring(L, "%s.%s", scope, name);    /* +1 full name */
    else lua_pushstring(L, name);
    lua_pushvalue(L, -1);                                    /* +1 copy */
    lua_rawget(L, c->msgs);                                  /* -1 +1 */
    int dup = !lua_isnil(L, -1);
    lua_pop(L, 1);                                           /* -1 */
    lua_pushvalue(L, -1);
    lua_rawget(L, c->enums);
    dup = dup || !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (dup) {
        const char *full = lua_tostring(L, -1);
        lua_pop(L, 1);
        return fail(c, "file '%s': duplicate type name '%s'", f->name, full);
    }
    *out = sdup(L, c->S, lua_tostring(L, -1));
    lua_pushvalue(L, -1);                                    /* +1 key */
    lua_pushinteger(L, (lua_Integer)idx);                    /* +1 */
    lua_rawset(L, tidx);                                     /* -2 */
    lua_pop(L, 1);                                           /* -1 full name */
    return 1;
}

/* parent: the features of the scope m is declared in (file or message) */
static int collect_msg(ctx *c, const FileProto *f, const char *scope,
                       const MsgProto *m, const dp_features *parent,
                       uint32_t *im, uint32_t *ie) {
    uint32_t idx = (*im)++;
    dp_msg *dm = &c->S->msgs[idx];
    c->mproto[idx] = m;
    c->mfile[idx] = f;
    if (!register_name(c, f, scope, m->name, c->msgs, idx, &dm->name))
        return 0;
    if (!scope_features(c, parent, OPT_FEATURES(m), &c->mfeat[idx], "file '%s': message '%s'",
                        f->name, dm->name))
        return 0;
    for (size_t i = 0; i < m->n_enum_type; i++) {
        uint32_t e = (*ie)++;
        c->eproto[e] = m->enum_type[i];
        c->efile[e] = f;
        if (!register_name(c, f, dm->name, m->enum_type[i]->name, c->enums, e,
                           &c->S->enums[e].name))
            return 0;
        if (!scope_features(c, &c->mfeat[idx], OPT_FEATURES(m->enum_type[i]), &c->efeat[e],
                            "file '%s': enum '%s'", f->name, c->S->enums[e].name))
            return 0;
    }
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!collect_msg(c, f, dm->name, m->nested_type[i], &c->mfeat[idx], im, ie)) return 0;
    return 1;
}

static int collect(ctx *c, const FDSet *set) {
    lua_State *L = c->L;
    uint32_t nm = 0, ne = 0;
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = set->file[i];
        ne += (uint32_t)f->n_enum_type;
        for (size_t j = 0; j < f->n_message_type; j++) count_types(f->message_type[j], &nm, &ne);
    }
    c->nm = nm;
    c->ne = ne;
    c->S->nmsgs = nm;
    c->S->nenums = ne;
    c->S->msgs = dp_schema_alloc(L, c->S, sizeof(dp_msg) * (nm ? nm : 1));
    c->S->enums = dp_schema_alloc(L, c->S, sizeof(dp_enum) * (ne ? ne : 1));
    c->S->hints = dp_schema_alloc(L, c->S, nm ? nm : 1);
    /* temporaries: one userdata, collected with the call's garbage */
    size_t tsz = sizeof(void *) * 2 * ((size_t)nm + ne + 1);
    const void **tmp = lua_newuserdata(L, tsz);               /* +1 (left on stack) */
    c->mproto = (const MsgProto **)tmp;
    c->mfile = (const FileProto **)(tmp + nm);
    c->eproto = (const EnumProto **)(tmp + 2 * nm);
    c->efile = (const FileProto **)(tmp + 2 * nm + ne);
    dp_features *feat = lua_newuserdata(L, sizeof(dp_features) * ((size_t)nm + ne + 1)); /* +1 */
    c->mfeat = feat;
    c->efeat = feat + nm;

    /* file names unique, dependencies present in the set */
    lua_newtable(L);                                          /* +1 file names */
    int files = lua_gettop(L);
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = set->file[i];
        dp_features ff;
        if (!f->name || !*f->name) return fail(c, "file #%d has no name", (int)i + 1);
        if (!dp_file_features(L, f, &ff)) return 0;
        lua_getfield(L, files, f->name);
        if (!lua_isnil(L, -1)) return fail(c, "duplicate file '%s' in the set", f->name);
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_setfield(L, files, f->name);
        if (!is_package(f->package))
            return fail(c, "file '%s': invalid package name '%s'", f->name, f->package);
    }
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = set->file[i];
        for (size_t j = 0; j < f->n_dependency; j++) {
            lua_getfield(L, files, f->dependency[j]);
            int found = !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (!found)
                return fail(c, "file '%s' imports '%s', which is not in the set "
                               "(make the set with protoc --include_imports)",
                            f->name, f->dependency[j]);
        }
    }
    lua_pop(L, 1);                                            /* -1 file names */

    uint32_t im = 0, ie = 0;
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = set->file[i];
        const char *pkg = f->package ? f->package : "";
        dp_features ff;
        dp_file_features(L, f, &ff);                          /* checked above */
        for (size_t j = 0; j < f->n_enum_type; j++) {
            uint32_t e = ie++;
            c->eproto[e] = f->enum_type[j];
            c->efile[e] = f;
            if (!register_name(c, f, pkg, f->enum_type[j]->name, c->enums, e,
                               &c->S->enums[e].name))
                return 0;
            if (!scope_features(c, &ff, OPT_FEATURES(f->enum_type[j]), &c->efeat[e],
                                "file '%s': enum '%s'", f->name, c->S->enums[e].name))
                return 0;
        }
        for (size_t j = 0; j < f->n_message_type; j++)
            if (!collect_msg(c, f, pkg, f->message_type[j], &ff, &im, &ie)) return 0;
    }
    return 1;
}

/* ---- stage 3b: extensions (issue 11)
 * Every `extend` in the set (top level or nested in a message) is listed
 * under the message it extends, so compile_msg compiles each extension as
 * one more field of that message, named "[full.name]". The lists live in a
 * scratch userdata left on the stack (dropped by dp_compile's settop). */

static int resolve(ctx *c, const char *scope, const char *tn, int *kind, int32_t *idx);

/* [-0, +0] the message an extension extends; -1 with an error pushed */
static int32_t extendee_of(ctx *c, const FileProto *f, const char *scope, const FieldProto *fp) {
    int kind;
    int32_t sub;
    if (!fp->extendee || !*fp->extendee)
        return fail(c, "file '%s': extension '%s' has no extendee", f->name,
                    fp->name ? fp->name : "(none)"), -1;
    if (!resolve(c, scope, fp->extendee, &kind, &sub) || kind != 1)
        return fail(c, "file '%s': extension '%s%s%s' extends '%s', which is not a message in "
                       "the set (make the set with protoc --include_imports)",
                    f->name, scope, *scope ? "." : "", fp->name ? fp->name : "(none)",
                    fp->extendee), -1;
    return sub;
}

/* visits every extension declaration: pass 0 counts per extendee (into
   extstart[i + 1]), pass 1 fills ext/extfile/extscope (cursor: fill[]) */
static int visit_extensions(ctx *c, const FDSet *set, int pass, uint32_t *fill) {
    for (size_t i = 0; i < set->n_file + c->nm; i++) {
        const FileProto *f;
        const char *scope;
        FieldProto *const *list;
        size_t n;
        if (i < set->n_file) {
            f = set->file[i];
            scope = f->package ? f->package : "";
            list = f->extension;
            n = f->n_extension;
        } else {
            uint32_t mi = (uint32_t)(i - set->n_file);
            f = c->mfile[mi];
            scope = c->S->msgs[mi].name;
            list = c->mproto[mi]->extension;
            n = c->mproto[mi]->n_extension;
        }
        for (size_t j = 0; j < n; j++) {
            int32_t to = extendee_of(c, f, scope, list[j]);
            if (to < 0) return 0;
            if (pass == 0) {
                c->extstart[to + 1]++;
            } else {
                uint32_t k = fill[to]++;
                c->ext[k] = list[j];
                c->extfile[k] = f;
                c->extscope[k] = scope;
            }
        }
    }
    return 1;
}

static int collect_extensions(ctx *c, const FDSet *set) {
    lua_State *L = c->L;
    uint32_t nm = c->nm;
    size_t next = 0;
    for (size_t i = 0; i < set->n_file; i++) next += set->file[i]->n_extension;
    for (uint32_t i = 0; i < nm; i++) next += c->mproto[i]->n_extension;
    /* one scratch block: extstart[nm + 1], fill[nm], then 3 pointer arrays */
    size_t words = 2 * (size_t)nm + 1;
    size_t sz = sizeof(uint32_t) * words + sizeof(void *) * (3 * next + 1) + sizeof(void *);
    char *blk = lua_newuserdata(L, sz);                       /* +1 (left on stack) */
    memset(blk, 0, sz);
    c->extstart = (uint32_t *)blk;
    uint32_t *fill = c->extstart + nm + 1;
    void **ptrs = (void **)(blk + ((sizeof(uint32_t) * words + sizeof(void *) - 1) /
                                   sizeof(void *)) * sizeof(void *));
    c->ext = (const FieldProto **)ptrs;
    c->extfile = (const FileProto **)(ptrs + next);
    c->extscope = (const char **)(ptrs + 2 * next);
    if (next == 0) return 1;
    if (!visit_extensions(c, set, 0, NULL)) return 0;
    for (uint32_t i = 0; i < nm; i++) c->extstart[i + 1] += c->extstart[i];
    for (uint32_t i = 0; i < nm; i++) fill[i] = c->extstart[i];
    return visit_extensions(c, set, 1, fill);
}

/* ---- stage 4a: enums */

typedef struct enum_slot { int32_t number, index; } enum_slot;

static int enum_slot_cmp(const void *a, const void *b) {
    const enum_slot *x = a, *y = b;
    if (x->number != y->number) return x->number < y->number ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int compile_enum(ctx *c, uint32_t idx) {
    lua_State *L = c->L;
    const EnumProto *ep = c->eproto[idx];
    const FileProto *f = c->efile[idx];
    dp_enum *e = &c->S->enums[idx];
    const dp_features *ef = &c->efeat[idx];
    e->closed = ef->enum_type == DP_ENUM_CLOSED;
    e->json_format = ef->json_format;
    if (ep->n_value == 0) return fail(c, "file '%s': enum '%s' has no values", f->name, e->name);
    e->nvalues = (uint32_t)ep->n_value;
    e->values = dp_schema_alloc(L, c->S, sizeof(dp_enumval) * ep->n_value);
    /* value names seen so far: a scratch table, so the check is linear (an
       enum of 100,000 values must not take minutes); popped at the end,
       dropped with the rest of the stack by dp_compile on failure */
    lua_createtable(L, 0, ep->n_value > 1024 ? 1024 : (int)ep->n_value);   /* +1 seen */
    int seen = lua_gettop(L);
    for (size_t i = 0; i < ep->n_value; i++) {
        const Google__Protobuf__EnumValueDescriptorProto *v = ep->value[i];
        if (!is_ident(v->name))
            return fail(c, "file '%s': enum '%s': invalid value name '%s'", f->name, e->name,
                        v->name ? v->name : "(none)");
        if (!v->has_number)
            return fail(c, "file '%s': enum '%s': value '%s' has no number", f->name, e->name,
                        v->name);
        dp_features vf;   /* checked only: no feature of a value has a run-time effect */
        if (!scope_features(c, ef, OPT_FEATURES(v), &vf, "file '%s': enum value '%s.%s'",
                            f->name, e->name, v->name))
            return 0;
        lua_pushstring(L, v->name);
        lua_rawget(L, seen);
        int dup = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (dup)
            return fail(c, "file '%s': enum '%s': duplicate value name '%s'", f->name,
                        e->name, v->name);
        lua_pushstring(L, v->name);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
        e->values[i].cname = sdup(L, c->S, v->name);
        e->values[i].number = v->number;
        lua_pushstring(L, v->name);
        e->values[i].name = add_name(c);
        lua_rawgeti(L, c->names, e->values[i].name);   /* anchored: stable */
        e->values[i].lname = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    if (!e->closed && e->values[0].number != 0)
        return fail(c, "file '%s': enum '%s': the first value of %s must be 0", f->name,
                    e->name, ef->edition == DP_EDITION_PROTO3 ? "a proto3 enum"
                                                              : "an open enum");
    lua_pop(L, 1);                                                          /* -1 seen */
    /* by_number: indices sorted by number; the first declared of aliases kept.
       Sorted by (number, declaration index) in a scratch userdata, so equal
       numbers keep declaration order; O(n log n) for any input order. */
    int32_t *bn = dp_schema_alloc(L, c->S, sizeof(int32_t) * e->nvalues);
    enum_slot *tmp = lua_newuserdata(L, sizeof(enum_slot) * e->nvalues);   /* +1 */
    for (uint32_t i = 0; i < e->nvalues; i++) {
        tmp[i].number = e->values[i].number;
        tmp[i].index = (int32_t)i;
    }
    qsort(tmp, e->nvalues, sizeof(enum_slot), enum_slot_cmp);
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->nvalues; i++) {
        if (i > 0 && tmp[i].number == tmp[i - 1].number) continue;          /* alias */
        bn[n++] = tmp[i].index;
    }
    lua_pop(L, 1);                                                          /* -1 tmp */
    e->by_number = bn;
    /* name hashes (content and interned address), at most half full */
    uint32_t slots = 4;
    while (slots < 2 * e->nvalues) slots *= 2;
    e->hmask = slots - 1;
    e->byname = dp_schema_alloc(L, c->S, sizeof(uint32_t) * slots);
    e->byptr = dp_schema_alloc(L, c->S, sizeof(uint32_t) * slots);
    for (uint32_t i = 0; i < e->nvalues; i++) {
        uint32_t h = dp_name_hash(e->values[i].cname, strlen(e->values[i].cname)) & e->hmask;
        while (e->byname[h]) h = (h + 1) & e->hmask;
        e->byname[h] = i + 1;
        h = dp_ptr_hash(e->values[i].lname) & e->hmask;
        while (e->byptr[h]) h = (h + 1) & e->hmask;
        e->byptr[h] = i + 1;
    }
    e->nunique = n;
    return 1;
}

int dp_enum_find(const dp_enum *e, int32_t number) {
    uint32_t lo = 0, hi = e->nunique;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int32_t n = e->values[e->by_number[mid]].number;
        if (n == number) return e->by_number[mid];
        if (n < number) lo = mid + 1; else hi = mid;
    }
    return -1;
}

/* ---- stage 4b: messages */

/* [-0, +0] resolves type_name seen in message scope; returns 1 and sets
   *kind (1 message, 2 enum) and *idx, or 0 if not found. Relative names are
   searched from the innermost scope outwards. */
static int resolve(ctx *c, const char *scope, const char *tn, int *kind, int32_t *idx) {
    lua_State *L = c->L;
    if (tn[0] == '.') {
        lua_pushstring(L, tn + 1);
    } else {
        /* try scope prefixes, longest first */
        size_t n = strlen(scope);
        for (;;) {
            if (n) {
                lua_pushlstring(L, scope, n);                         /* +1 prefix */
                lua_pushfstring(L, "%s.%s", lua_tostring(L, -1), tn); /* +1 name */
                lua_remove(L, -2);                                    /* -1 prefix */
            } else {
                lua_pushstring(L, tn);                                /* +1 name */
            }
            lua_pushvalue(L, -1);
            lua_rawget(L, c->msgs);
            int hit = !lua_isnil(L, -1);
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, c->enums);
            hit = hit || !lua_isnil(L, -1);
            lua_pop(L, 1);
            if (hit || n == 0) break;
            lua_pop(L, 1);
            while (n > 0 && scope[n - 1] != '.') n--;
            if (n > 0) n--;   /* drop the dot */
        }
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, c->msgs);
    if (!lua_isnil(L, -1)) {
        *kind = 1;
        *idx = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 2);
        return 1;
    }
    lua_pop(L, 1);
    lua_rawget(L, c->enums);
    if (!lua_isnil(L, -1)) {
        *kind = 2;
        *idx = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

static int wiretype_of(int type) {
    switch (type) {
    case DP_T_DOUBLE: case DP_T_FIXED64: case DP_T_SFIXED64: return DP_WT_I64;
    case DP_T_FLOAT: case DP_T_FIXED32: case DP_T_SFIXED32: return DP_WT_I32;
    case DP_T_STRING: case DP_T_BYTES: case DP_T_MESSAGE: return DP_WT_LEN;
    case DP_T_GROUP: return DP_WT_SGROUP;
    default: return DP_WT_VARINT;
    }
}

/* Decodes a C-escaped default for bytes (as protoc writes it). */
static size_t unescape(char *out, const char *s) {
    size_t n = 0;
    while (*s) {
        if (*s != '\\') { out[n++] = *s++; continue; }
        s++;
        switch (*s) {
        case 'a': out[n++] = '\a'; s++; break;
        case 'b': out[n++] = '\b'; s++; break;
        case 'f': out[n++] = '\f'; s++; break;
        case 'n': out[n++] = '\n'; s++; break;
        case 'r': out[n++] = '\r'; s++; break;
        case 't': out[n++] = '\t'; s++; break;
        case 'v': out[n++] = '\v'; s++; break;
        case 'x': case 'X': {
            int v = 0, k = 0;
            s++;
            while (k < 2 && ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
                             (*s >= 'A' && *s <= 'F'))) {
                v = v * 16 + (*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
                s++; k++;
            }
            out[n++] = (char)v;
            break;
        }
        default:
            if (*s >= '0' && *s <= '7') {
                int v = 0, k = 0;
                while (k < 3 && *s >= '0' && *s <= '7') { v = v * 8 + (*s - '0'); s++; k++; }
                out[n++] = (char)v;
            } else if (*s) {
                out[n++] = *s++;
            }
        }
    }
    return n;
}

static int parse_default(ctx *c, const char *where, dp_field *fd, const char *text) {
    dp_value *v = &fd->def;
    char *endp = NULL;
    errno = 0;
    switch (fd->type) {
    case DP_T_INT32: case DP_T_SINT32: case DP_T_SFIXED32:
    case DP_T_INT64: case DP_T_SINT64: case DP_T_SFIXED64: {
        long long x = strtoll(text, &endp, 10);
        if (errno || *endp || endp == text) goto bad;
        if ((fd->type == DP_T_INT32 || fd->type == DP_T_SINT32 || fd->type == DP_T_SFIXED32) &&
            (x < INT32_MIN || x > INT32_MAX))
            goto bad;
        v->i = x;
        break;
    }
    case DP_T_UINT32: case DP_T_FIXED32: case DP_T_UINT64: case DP_T_FIXED64: {
        if (text[0] == '-') goto bad;
        unsigned long long x = strtoull(text, &endp, 10);
        if (errno || *endp || endp == text) goto bad;
        if ((fd->type == DP_T_UINT32 || fd->type == DP_T_FIXED32) && x > UINT32_MAX) goto bad;
        v->u = x;
        break;
    }
    case DP_T_DOUBLE: case DP_T_FLOAT: {
        double x = strtod(text, &endp);
        if (*endp || endp == text) goto bad;
        if (fd->type == DP_T_FLOAT) x = (double)(float)x;
        v->d = x;
        break;
    }
    case DP_T_BOOL:
        if (strcmp(text, "true") == 0) v->i = 1;
        else if (strcmp(text, "false") == 0) v->i = 0;
        else goto bad;
        break;
    case DP_T_STRING:
        v->s.p = sdup(c->L, c->S, text);
        v->s.n = strlen(text);
        break;
    case DP_T_BYTES: {
        char *out = dp_schema_alloc(c->L, c->S, strlen(text) + 1);
        v->s.n = unescape(out, text);
        v->s.p = out;
        break;
    }
    case DP_T_ENUM: {
        const dp_enum *e = &c->S->enums[fd->sub];
        uint32_t i;
        for (i = 0; i < e->nvalues; i++)
            if (strcmp(e->values[i].cname, text) == 0) break;
        if (i == e->nvalues) goto bad;
        v->i = e->values[i].number;
        break;
    }
    default:
        return fail(c, "%s: a %s field cannot have a default", where, dp_type_str(fd->type));
    }
    fd->flags |= DPF_HAS_DEFAULT;
    return 1;
bad:
    return fail(c, "%s: invalid default value '%s' for a %s field", where, text,
                dp_type_str(fd->type));
}

static int field_cmp(const void *a, const void *b) {
    uint32_t x = ((const dp_field *)a)->number, y = ((const dp_field *)b)->number;
    return x < y ? -1 : x > y;
}

static int is_map_entry(const MsgProto *m) {
    return m->options && m->options->has_map_entry && m->options->map_entry;
}

/* [-0, +0|1] the features of the scope an extension is declared in: file
   ef's (scope is its package), or those of the message named scope */
static int ext_scope_features(ctx *c, const FileProto *ef, const char *scope,
                              dp_features *out) {
    if (ef->package ? scope == ef->package : !*scope) return dp_file_features(c->L, ef, out);
    lua_getfield(c->L, c->msgs, scope);
    int32_t mi = lua_isnumber(c->L, -1) ? (int32_t)lua_tointeger(c->L, -1) : -1;
    lua_pop(c->L, 1);
    if (mi < 0) return dp_file_features(c->L, ef, out);   /* not reached: scope is a message */
    *out = c->mfeat[mi];
    return 1;
}

static int compile_msg(ctx *c, uint32_t idx) {
    lua_State *L = c->L;
    dp_schema *S = c->S;
    const MsgProto *mp = c->mproto[idx];
    const FileProto *f = c->mfile[idx];
    dp_msg *m = &S->msgs[idx];
    const dp_features *mf = &c->mfeat[idx];
    int p3 = mf->edition == DP_EDITION_PROTO3;
    m->proto3 = (uint8_t)p3;
    m->json_format = mf->json_format;
    m->map_entry = (uint8_t)is_map_entry(mp);
    m->message_set = (uint8_t)(mp->options && mp->options->has_message_set_wire_format &&
                               mp->options->message_set_wire_format);
    uint32_t e0 = c->extstart[idx], ne = c->extstart[idx + 1] - e0;
    size_t nall = mp->n_field + ne;
    m->nfields = (uint32_t)nall;
    if (nall > 65535)
        return fail(c, "file '%s': message '%s' has more than 65535 fields (extensions "
                       "included)", f->name, m->name);
    m->fields = dp_schema_alloc(L, S, sizeof(dp_field) * (nall ? nall : 1));
    m->noneofs = (uint32_t)mp->n_oneof_decl;
    m->oneof_names = dp_schema_alloc(L, S, sizeof(char *) * (mp->n_oneof_decl + 1));
    for (size_t i = 0; i < mp->n_oneof_decl; i++) {
        const char *on = mp->oneof_decl[i]->name;
        if (!is_ident(on))
            return fail(c, "file '%s': message '%s': invalid oneof name '%s'", f->name, m->name,
                        on ? on : "(none)");
        m->oneof_names[i] = sdup(L, S, on);
    }

    /* field numbers and names seen so far, and the oneofs that have a
       member: scratch objects, so these checks are linear in the number of
       fields (65,535 fields must not take seconds); popped after the loop,
       dropped with the rest of the stack by dp_compile on failure */
    lua_createtable(L, 0, nall > 1024 ? 2048 : 2 * (int)nall);   /* +1 seen */
    int seen = lua_gettop(L);
    unsigned char *has_member = lua_newuserdata(L, mp->n_oneof_decl + 1);      /* +1 */
    memset(has_member, 0, mp->n_oneof_decl + 1);
    for (size_t i = 0; i < nall; i++) {
        /* normal fields first, then the extensions of this message: an
           extension is compiled as one more field, named "[full.name]",
           with the rules of the file that declares it */
        int is_ext = i >= mp->n_field;
        const FieldProto *fp = is_ext ? c->ext[e0 + (i - mp->n_field)] : mp->field[i];
        const FileProto *xf = is_ext ? c->extfile[e0 + (i - mp->n_field)] : f;
        const char *scope = is_ext ? c->extscope[e0 + (i - mp->n_field)] : m->name;
        dp_field *fd = &m->fields[i];
        /* the features of the field's scope: its message, or for an
           extension the file or message its `extend` is declared in */
        dp_features extf;
        const dp_features *basef = mf;
        if (is_ext) {
            if (!ext_scope_features(c, xf, scope, &extf)) return 0;
            basef = &extf;
        }
        p3 = basef->edition == DP_EDITION_PROTO3;
        int editions = basef->edition >= DP_EDITION_2023;
        if (!is_ident(fp->name))
            return fail(c, "file '%s': %s '%s': invalid field name '%s'", xf->name,
                        is_ext ? "extensions of" : "message", is_ext ? scope : m->name,
                        fp->name ? fp->name : "(none)");
        /* "file 'f': field 'M.x'" (or the extension's), built by fail() */
        const char *where = WHERE;
        c->w_file = is_ext ? xf->name : f->name;
        c->w_msg = m->name;
        c->w_field = fp->name;
        c->w_scope = is_ext ? scope : NULL;
        if (is_ext) {
            /* the key "[full.name]", interned like a field name */
            lua_pushfstring(L, "[%s%s%s]", scope, *scope ? "." : "", fp->name);
            fd->flags |= DPF_EXTENSION;
        } else {
            lua_pushstring(L, fp->name);
        }
        int name_idx = lua_gettop(L);
        const char *fname = lua_tostring(L, name_idx);
        if (!fp->has_number || fp->number <= 0 || fp->number > 536870911)
            return fail(c, "%s: invalid field number %d", where, fp->has_number ? fp->number : 0);
        if (fp->number >= 19000 && fp->number <= 19999)
            return fail(c, "%s: field number %d is reserved for the protobuf implementation",
                        where, fp->number);
        if (is_ext) {
            size_t r;
            for (r = 0; r < mp->n_extension_range; r++) {
                const Google__Protobuf__DescriptorProto__ExtensionRange *er = mp->extension_range[r];
                if (fp->number >= er->start && fp->number < er->end) break;
            }
            if (r == mp->n_extension_range)
                return fail(c, "%s: number %d is not in an extension range of '%s'", where,
                            fp->number, m->name);
            if (fp->has_oneof_index) return fail(c, "%s: an extension cannot be in a oneof", where);
        }
        lua_pushinteger(L, fp->number);
        lua_rawget(L, seen);
        int dup = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (dup)
            return fail(c, "%s: duplicate field number %d%s", where, fp->number,
                        is_ext ? " (a field or another extension of the message has it)" : "");
        lua_pushvalue(L, name_idx);
        lua_rawget(L, seen);
        dup = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (dup) return fail(c, "%s: duplicate field name", where);
        lua_pushinteger(L, fp->number);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
        lua_pushvalue(L, name_idx);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
        fd->number = (uint32_t)fp->number;
        fd->gidx = S->nfields_total++;
        fd->cname = sdup(L, S, fname);
        fd->namelen = (uint32_t)strlen(fname);
        fd->oneof = -1;
        fd->sub = -1;
        fd->jname = fp->json_name && *fp->json_name && strcmp(fp->json_name, fname) &&
                            fname[0] != '['
                        ? sdup(L, S, fp->json_name) : NULL;   /* NULL: dp_json_prepare */
        fd->jnamelen = fd->jname ? (uint32_t)strlen(fd->jname) : 0;
        lua_pushvalue(L, name_idx);
        fd->name = add_name(c);
        lua_rawgeti(L, c->names, fd->name);        /* anchored in NAMES: stable */
        fd->lname = lua_tostring(L, -1);
        lua_pop(L, 1);

        int label = fp->has_label ? (int)fp->label : 1;
        if (label < 1 || label > 3) return fail(c, "%s: invalid label %d", where, label);
        if (fp->has_oneof_index &&
            (fp->oneof_index < 0 || (size_t)fp->oneof_index >= mp->n_oneof_decl))
            return fail(c, "%s: oneof index %d out of range", where, fp->oneof_index);
        /* resolved features: scope -> (oneof ->) field */
        dp_features fx;
        {
            const dp_features *pf = basef;
            dp_features of;
            if (fp->has_oneof_index) {
                const Google__Protobuf__OneofDescriptorProto *od = mp->oneof_decl[fp->oneof_index];
                if (!scope_features(c, mf, OPT_FEATURES(od), &of, "file '%s': oneof '%s.%s'",
                                    f->name, m->name, od->name))
                    return 0;
                pf = &of;
            }
            if (!scope_features(c, pf, OPT_FEATURES(fp), &fx, "%s", where)) return 0;
        }
        if (label == 3) fd->flags |= DPF_REPEATED;
        if (label == 2) {
            if (p3) return fail(c, "%s: required fields are not allowed in proto3", where);
            if (editions)
                return fail(c, "%s: label 'required' is not allowed under editions (use "
                               "features.field_presence = LEGACY_REQUIRED)", where);
            fd->flags |= DPF_REQUIRED;
        }
        if (label == 1 && fx.field_presence == DP_FP_LEGACY_REQUIRED && !fp->has_oneof_index &&
            !is_ext)
            fd->flags |= DPF_REQUIRED;

        int type = fp->has_type ? (int)fp->type : 0;
        if (fp->type_name && *fp->type_name) {
            int kind;
            int32_t sub;
            if (!resolve(c, scope, fp->type_name, &kind, &sub))
                return fail(c, "%s: type '%s' not found in the set (is an import missing? "
                               "make the set with protoc --include_imports)",
                            where, fp->type_name);
            if (type == 0) type = kind == 1 ? DP_T_MESSAGE : DP_T_ENUM;
            if ((kind == 1 && type != DP_T_MESSAGE && type != DP_T_GROUP) ||
                (kind == 2 && type != DP_T_ENUM))
                return fail(c, "%s: type '%s' is not a%s", where, fp->type_name,
                            type == DP_T_ENUM ? "n enum" : " message");
            fd->sub = sub;
            fd->type_name = kind == 1 ? S->msgs[sub].name : S->enums[sub].name;
        } else if (type == DP_T_MESSAGE || type == DP_T_GROUP || type == DP_T_ENUM || type == 0) {
            return fail(c, "%s: missing type name", where);
        }
        if (type < 1 || type > 18) return fail(c, "%s: invalid type %d", where, type);
        /* features.message_encoding = DELIMITED: a group on the wire (never
           for a map field, nor for the value of a map entry) */
        if (type == DP_T_MESSAGE && fx.message_encoding == DP_MSG_DELIMITED &&
            !is_map_entry(c->mproto[fd->sub]) && !is_map_entry(mp))
            type = DP_T_GROUP;
        fd->type = (uint8_t)type;
        fd->wiretype = (uint8_t)wiretype_of(type);
        {
            uint64_t tag = ((uint64_t)fd->number << 3) | fd->wiretype;
            do {
                fd->tag[fd->taglen++] = (uint8_t)((tag & 0x7f) | (tag > 0x7f ? 0x80 : 0));
                tag >>= 7;
            } while (tag);
        }

        int scalar_num = type != DP_T_STRING && type != DP_T_BYTES && type != DP_T_MESSAGE &&
                         type != DP_T_GROUP;
        if (scalar_num) fd->flags |= DPF_PACKABLE;
        if (label == 3 && scalar_num) {
            const Google__Protobuf__FieldOptions *o = fp->options;
            if (o && o->has_packed) {
                if (editions)
                    return fail(c, "%s: [packed] is not allowed under editions (use "
                                   "features.repeated_field_encoding)", where);
                if (o->packed) fd->flags |= DPF_PACKED;
            } else if (fx.repeated_field_encoding == DP_REP_PACKED) {
                fd->flags |= DPF_PACKED;
            }
        } else if (fp->options && fp->options->has_packed && fp->options->packed &&
                   label == 3) {
            return fail(c, "%s: [packed = true] on a %s field", where, dp_type_str(type));
        }

        if (fp->has_oneof_index) {
            if (label == 3) return fail(c, "%s: a repeated field cannot be in a oneof", where);
            if (!(fp->has_proto3_optional && fp->proto3_optional)) fd->oneof = fp->oneof_index;
            has_member[fp->oneof_index] = 1;
            fd->flags |= DPF_PRESENCE;
        }
        /* presence: explicit unless features.field_presence is IMPLICIT (the
           proto3 default); message fields, extensions and proto3 `optional`
           always */
        if (label != 3 && (fx.field_presence != DP_FP_IMPLICIT || is_ext || type == DP_T_MESSAGE ||
                           type == DP_T_GROUP ||
                           (fp->has_proto3_optional && fp->proto3_optional)))
            fd->flags |= DPF_PRESENCE;
        if (type == DP_T_STRING && fx.utf8_validation == DP_UTF8_VERIFY) fd->flags |= DPF_UTF8;
        if (type == DP_T_ENUM && S->enums[fd->sub].closed) {
            fd->flags |= DPF_CLOSED_ENUM;
            if (label == 3) m->closed_enum_rep = 1;
        }
        if (type == DP_T_GROUP && p3) return fail(c, "%s: groups are not allowed in proto3", where);

        if (fp->default_value) {
            if (p3) return fail(c, "%s: default values are not allowed in proto3", where);
            if (!(fd->flags & DPF_PRESENCE) && label != 3)
                return fail(c, "%s: a default value needs explicit presence "
                               "(features.field_presence is IMPLICIT)", where);
            if (label == 3) return fail(c, "%s: a repeated field cannot have a default", where);
            if (!parse_default(c, where, fd, fp->default_value)) return 0;
        } else if (type == DP_T_ENUM) {
            fd->def.i = S->enums[fd->sub].values[0].number;
        }
        lua_settop(L, name_idx - 1);    /* -1 name */
    }
    /* oneof members of each oneof must exist */
    for (uint32_t o = 0; o < m->noneofs; o++)
        if (!has_member[o])
            return fail(c, "file '%s': message '%s': oneof '%s' has no fields", f->name, m->name,
                        m->oneof_names[o]);
    lua_pop(L, 2);                                      /* -2 seen, has_member */

    qsort(m->fields, m->nfields, sizeof(dp_field), field_cmp);
    /* dense index over small numbers */
    uint32_t maxn = 0;
    for (uint32_t i = 0; i < m->nfields; i++)
        if (m->fields[i].number < 1024 && m->fields[i].number > maxn) maxn = m->fields[i].number;
    m->ndense = m->nfields ? maxn + 1 : 0;
    m->dense = dp_schema_alloc(L, S, sizeof(uint16_t) * (m->ndense ? m->ndense : 1));
    for (uint32_t i = 0; i < m->nfields; i++)
        if (m->fields[i].number < m->ndense) m->dense[m->fields[i].number] = (uint16_t)(i + 1);
    /* name hash: at least twice as many slots as fields, so probes end */
    uint32_t slots = 4;
    while (slots < 2 * m->nfields) slots *= 2;
    m->hmask = slots - 1;
    m->byname = dp_schema_alloc(L, S, sizeof(uint16_t) * slots);
    m->byptr = dp_schema_alloc(L, S, sizeof(uint16_t) * slots);
    for (uint32_t i = 0; i < m->nfields; i++) {
        uint32_t h = dp_name_hash(m->fields[i].cname, m->fields[i].namelen) & m->hmask;
        while (m->byname[h]) h = (h + 1) & m->hmask;
        m->byname[h] = (uint16_t)(i + 1);
        h = dp_ptr_hash(m->fields[i].lname) & m->hmask;
        while (m->byptr[h]) h = (h + 1) & m->hmask;
        m->byptr[h] = (uint16_t)(i + 1);
    }
    dp_json_prepare(L, S, m);
    dp_encode_prepare(L, S, m);
    return 1;
}

/* map entries: key = 1 (integral or string), value = 2, nothing else;
   a field whose type is a map entry must be repeated. */
static int check_maps(ctx *c) {
    dp_schema *S = c->S;
    for (uint32_t i = 0; i < S->nmsgs; i++) {
        dp_msg *m = &S->msgs[i];
        for (uint32_t j = 0; j < m->nfields; j++) {
            dp_field *fd = &m->fields[j];
            if (fd->type != DP_T_MESSAGE || !S->msgs[fd->sub].map_entry) continue;
            if (!(fd->flags & DPF_REPEATED))
                return fail(c, "field '%s.%s': map entry type '%s' used by a non-repeated field",
                            m->name, fd->cname, S->msgs[fd->sub].name);
            fd->flags |= DPF_MAP;
            fd->flags &= (uint16_t)~DPF_PRESENCE;
        }
        if (!m->map_entry) continue;
        const dp_field *k = dp_find_field(m, 1), *v = dp_find_field(m, 2);
        if (m->nfields != 2 || !k || !v || strcmp(k->cname, "key") || strcmp(v->cname, "value"))
            return fail(c, "malformed map entry '%s': it must have exactly fields key = 1 and "
                           "value = 2", m->name);
        if ((k->flags | v->flags) & DPF_REPEATED)
            return fail(c, "malformed map entry '%s': key and value cannot be repeated", m->name);
        switch (k->type) {
        case DP_T_DOUBLE: case DP_T_FLOAT: case DP_T_BYTES: case DP_T_MESSAGE:
        case DP_T_GROUP: case DP_T_ENUM:
            return fail(c, "malformed map entry '%s': a %s cannot be a map key", m->name,
                        dp_type_str(k->type));
        }
        if (v->type == DP_T_GROUP)
            return fail(c, "malformed map entry '%s': a group cannot be a map value", m->name);
    }
    return 1;
}

int dp_compile(lua_State *L, dp_schema *S, int uvidx, const unsigned char *data, size_t len) {
    char err[256];
    int top = lua_gettop(L);
    uvidx = dp_absindex(L, uvidx);
    if (!dp_scan_descriptor_set(data, len, err, sizeof err)) {
        lua_pushstring(L, err);
        return 0;
    }
    luaL_checkstack(L, 16, "dynpb: compile");
    holder *h = push_holder(L);                                   /* +1 holder */
    h->set = (FDSet *)protobuf_c_message_unpack(
        &google__protobuf__file_descriptor_set__descriptor, &h->pa, len, data);
    if (!h->set) {
        /* protobuf-c reports a failed allocation as a parse failure */
        if (h->oom) luaL_error(L, "dynpb: not enough memory");
        holder_release(h);
        lua_settop(L, top);
        lua_pushstring(L, "malformed descriptor set: not a valid FileDescriptorSet "
                          "(protobuf-c could not parse it)");
        return 0;
    }
    if (h->set->n_file == 0) {
        holder_release(h);
        lua_settop(L, top);
        lua_pushstring(L, "empty descriptor set: it contains no files");
        return 0;
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.S = S;
    c.uv = uvidx;
    lua_newtable(L); lua_pushvalue(L, -1); lua_rawseti(L, uvidx, DP_UV_NAMES);
    c.names = lua_gettop(L);
    lua_newtable(L); lua_pushvalue(L, -1); lua_rawseti(L, uvidx, DP_UV_MSGS);
    c.msgs = lua_gettop(L);
    lua_newtable(L); lua_pushvalue(L, -1); lua_rawseti(L, uvidx, DP_UV_ENUMS);
    c.enums = lua_gettop(L);
    lua_newtable(L); lua_rawseti(L, uvidx, DP_UV_ENUMTABS);

    int ok = collect(&c, h->set);
    if (ok) ok = collect_extensions(&c, h->set);
    for (uint32_t i = 0; ok && i < c.ne; i++) ok = compile_enum(&c, i);
    for (uint32_t i = 0; ok && i < c.nm; i++) ok = compile_msg(&c, i);
    if (ok) ok = check_maps(&c);
    if (ok) S->fhints = dp_schema_alloc(L, S, sizeof(uint16_t) * (S->nfields_total + 1));
    if (!ok) {
        holder_release(h);         /* the parsed set now, not at the next GC */
        lua_replace(L, top + 1);   /* message over the holder */
        lua_settop(L, top + 1);
        return 0;
    }
    holder_release(h);
    lua_settop(L, top);
    return 1;
}
