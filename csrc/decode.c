/*
 * decode.c -- protobuf bytes -> plain Lua tables.
 *
 * One recursive function per message (decode_msg), bounded by max_depth, so
 * the C stack is bounded too. Field names are pushed from the schema's NAMES
 * array (lua_rawgeti by a precomputed index): decode never builds or hashes a
 * name. Errors do not raise: the first failure records a status, the byte
 * offset and the innermost field, decode_msg returns 0 all the way up, and
 * the method returns nil plus a message built from the path stack. Only
 * memory errors raise (the partial result is then garbage, never returned).
 *
 * Stack discipline: decode_msg(c, m, t, ...) fills the table at absolute
 * index t and leaves the stack as it found it.
 *
 * What keeps it near the cost of building the same tables (bench/floor.c,
 * `build`), each with a comment saying what it assumes: one_byte_tag (a
 * field's one-byte tag), entry_fast (a map entry as encoders write it),
 * keys_known (a table decode made itself needs no lookups of old values),
 * msg_slots (decode_msg's stack slots pushed only when used), names read
 * from a stack slot rather than an upvalue.
 */
#include <stdio.h>
#include <string.h>

#include "dynpb.h"

/* helpers kept out of line: inlined into decode_msg (the rare paths: map
   entries, MessageSet items, oneofs, unknown fields) or into every
   rd_varint (its long-varint part), they would crowd the registers of the
   hot loop (measured with callgrind) */
#if defined(__GNUC__)
#define OUT_OF_LINE __attribute__((noinline))
#else
#define OUT_OF_LINE
#endif

/* A partial decode's pick (decode option `fields`): for one message, which
   fields are decoded. picked[i] != 0 for field index i of m; child[i] is
   the pick inside that field (a message or group), or NULL when the field
   is decoded whole. Nodes are userdata anchored for the call only. */
typedef struct dp_pick {
    const dp_msg *m;
    uint8_t *picked;
    struct dp_pick **child;
} dp_pick;

typedef struct dctx {
    lua_State *L;
    const dp_schema *S;
    const unsigned char *base;       /* start of the input (byte offsets) */
    int names;                       /* stack index of the NAMES array */
    int amt;                         /* stack index of option array_mt, or 0 */
    dp_opts o;
    const dp_pick *pick;             /* the message being decoded: its pick, or
                                        NULL (every field) */
    int partial;                     /* a pick was given: size hints untouched */
    /* error state */
    dp_status st;
    dp_status vst;                   /* why the last rd_varint failed */
    const char *detail;              /* overrides dp_status_str(st) */
    size_t at;                       /* byte offset of the failure */
    /* for data cut short: where the enclosing data ends, what it is (CUT_*),
       the length that runs past it (UINT64_MAX: none) */
    const unsigned char *cut_end;
    int cut_kind;
    uint64_t cut_len;
    int cut_has_len;
    int fail_f;                      /* the last path entry is the failing field */
    int depth;                       /* entries used in path */
    dp_pathel path[DP_MAX_MAX_DEPTH + 2];
} dctx;

/* Records the first failure; always returns 0 so callers can `return fail(...)`. */
static int fail(dctx *c, dp_status st, const unsigned char *at, const dp_field *f,
                int64_t index) {
    if (c->st == DP_OK) {
        c->st = st;
        c->at = (size_t)(at - c->base);
        c->path[c->depth].f = f;
        c->path[c->depth].kind = index ? DP_PK_INDEX : DP_PK_NONE;
        c->path[c->depth].i = index;
        c->fail_f = f != NULL;
        if (f) c->depth++;
    }
    return 0;
}

/* where cut data was enclosed: the message (or the input), a map entry, a packed run */
enum { CUT_MSG, CUT_ENTRY, CUT_PACKED };

/* fail() for data cut short by the end of what encloses it, at `end` */
static int fail_cut(dctx *c, dp_status st, const unsigned char *end, int kind,
                    const unsigned char *at, const dp_field *f, int64_t index) {
    if (c->st == DP_OK) {
        c->cut_end = end;
        c->cut_kind = kind;
    }
    return fail(c, st, at, f, index);
}

/* fail_cut() for the length len of field f running past `end` */
static int fail_len(dctx *c, uint64_t len, const unsigned char *end, int kind,
                    const unsigned char *at, const dp_field *f, int64_t index) {
    if (c->st == DP_OK) {
        c->cut_len = len;
        c->cut_has_len = 1;
    }
    return fail_cut(c, DP_ERR_LENGTH, end, kind, at, f, index);
}

/* fail() for a varint that could not be read before `end` (kind: CUT_*) */
static int fail_varint(dctx *c, const unsigned char *end, int kind, const unsigned char *at,
                       const dp_field *f, int64_t index) {
    if (c->st == DP_OK)
        c->detail = c->vst == DP_ERR_TRUNCATED ? "truncated varint" : "varint longer than 10 bytes";
    if (c->vst != DP_ERR_TRUNCATED) return fail(c, c->vst, at, f, index);
    return fail_cut(c, DP_ERR_TRUNCATED, end, kind, at, f, index);
}

/* fail() for a fixed-width value cut short by `end` */
static int fail_fixed(dctx *c, size_t width, const unsigned char *end, int kind,
                      const unsigned char *at, const dp_field *f, int64_t index) {
    if (c->st == DP_OK) c->detail = width == 4 ? "truncated 32-bit value" : "truncated 64-bit value";
    return fail_cut(c, DP_ERR_TRUNCATED, end, kind, at, f, index);
}

/* ---- scalar reads */

/* rd_varint past its first two bytes: with two bytes or more at p, rd_varint
   found both with their high bit set (the varint goes on), so one loop reads
   the rest, up to 10 bytes in all, bounded by end; a varint it cannot read
   goes to dp_read_varint, which says why. */
static OUT_OF_LINE const unsigned char *varint_slow(dctx *c, const unsigned char *p,
                                                  const unsigned char *end, uint64_t *out) {
    const unsigned char *lim = end - p > 10 ? p + 10 : end;
    uint64_t v = 0;
    unsigned shift = 0;
    const unsigned char *q = p;
    if (end - p >= 2) {
        v = (uint64_t)(p[0] & 0x7f) | (uint64_t)(p[1] & 0x7f) << 7;
        shift = 14;
        q = p + 2;
    }
    for (; q < lim; q++, shift += 7) {
        v |= (uint64_t)(*q & 0x7f) << shift;
        if (*q < 0x80) {
            *out = v;
            return q + 1;
        }
    }
    c->vst = dp_read_varint(&p, end, out);
    return c->vst == DP_OK ? p : NULL;
}

/* Reads a varint; on failure returns NULL with c->vst set (not yet recorded). */
static inline const unsigned char *rd_varint(dctx *c, const unsigned char *p,
                                             const unsigned char *end, uint64_t *out) {
    if (p < end && *p < 0x80) {
        *out = *p;
        return p + 1;
    }
    if (end - p >= 2 && p[1] < 0x80) {
        *out = (uint64_t)(p[0] & 0x7f) | ((uint64_t)p[1] << 7);
        return p + 2;
    }
    return varint_slow(c, p, end, out);
}

static inline uint32_t rd_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t rd_le64(const unsigned char *p) {
    return (uint64_t)rd_le32(p) | ((uint64_t)rd_le32(p + 4) << 32);
}

/* [-0, +1] pushes the enum value name, or the number if it has none */
static void push_enum(dctx *c, const dp_field *f, int32_t v) {
    if (!c->o.enums_number) {
        const dp_enum *e = &c->S->enums[f->sub];
        int i = dp_enum_find(e, v);
        if (i >= 0) {
            lua_rawgeti(c->L, c->names, e->values[i].name);
            return;
        }
    }
    lua_pushinteger(c->L, v);
}

static void push_i64(dctx *c, int64_t v) {
    if (c->o.int64_string) dp_push_i64_string(c->L, v);
    else dp_push_i64(c->L, v);
}

static void push_u64(dctx *c, uint64_t v) {
    if (c->o.int64_string) dp_push_u64_string(c->L, v);
    else dp_push_u64(c->L, v);
}

/* does a varint field of this type keep only the low 32 bits? (one test of
   a mask of the types: DP_T_* are below 32) */
#define BIT(type) (1u << (type))
#define IS_32BIT(type) ((BIT(DP_T_INT32) | BIT(DP_T_UINT32) | BIT(DP_T_SINT32) | \
                         BIT(DP_T_ENUM)) >> (type) & 1)

/* [-0, +1] pushes a varint-encoded value of field f */
static void push_varint(dctx *c, const dp_field *f, uint64_t v) {
    lua_State *L = c->L;
    switch (f->type) {
    case DP_T_INT32: lua_pushinteger(L, (int32_t)(uint32_t)v); break;
    case DP_T_UINT32: lua_pushinteger(L, (lua_Integer)(uint32_t)v); break;
    case DP_T_SINT32: {
        uint32_t n = (uint32_t)v;
        lua_pushinteger(L, (int32_t)((n >> 1) ^ (~(n & 1) + 1)));
        break;
    }
    case DP_T_INT64: push_i64(c, (int64_t)v); break;
    case DP_T_UINT64: push_u64(c, v); break;
    case DP_T_SINT64: push_i64(c, (int64_t)((v >> 1) ^ (~(v & 1) + 1))); break;
    case DP_T_BOOL: lua_pushboolean(L, v != 0); break;
    case DP_T_ENUM: push_enum(c, f, (int32_t)(uint32_t)v); break;
    default: lua_pushnil(L);
    }
}

/* [-0, +1] pushes a fixed-width value of field f from p (4 or 8 bytes) */
static void push_fixed(dctx *c, const dp_field *f, const unsigned char *p) {
    lua_State *L = c->L;
    switch (f->type) {
    case DP_T_FIXED32: lua_pushinteger(L, (lua_Integer)rd_le32(p)); break;
    case DP_T_SFIXED32: lua_pushinteger(L, (int32_t)rd_le32(p)); break;
    case DP_T_FLOAT: {
        uint32_t u = rd_le32(p);
        float x;
        memcpy(&x, &u, 4);
        lua_pushnumber(L, (lua_Number)x);
        break;
    }
    case DP_T_FIXED64: push_u64(c, rd_le64(p)); break;
    case DP_T_SFIXED64: push_i64(c, (int64_t)rd_le64(p)); break;
    case DP_T_DOUBLE: {
        uint64_t u = rd_le64(p);
        double x;
        memcpy(&x, &u, 8);
        lua_pushnumber(L, (lua_Number)x);
        break;
    }
    default: lua_pushnil(L);
    }
}

/* [-0, +1] pushes the default of scalar field f: its proto2 [default = ...]
   if it has one, else its type's zero (an enum's first value); a message
   value gets an empty table. 64-bit types follow the int64 option. */
static void push_default(dctx *c, const dp_field *f) {
    lua_State *L = c->L;
    int has = (f->flags & DPF_HAS_DEFAULT) != 0;
    switch (f->type) {
    case DP_T_DOUBLE: case DP_T_FLOAT: lua_pushnumber(L, has ? f->def.d : 0); break;
    case DP_T_BOOL: lua_pushboolean(L, has ? (int)f->def.i : 0); break;
    case DP_T_STRING: case DP_T_BYTES:
        if (has) lua_pushlstring(L, f->def.s.p, f->def.s.n);
        else lua_pushliteral(L, "");
        break;
    case DP_T_ENUM: push_enum(c, f, (int32_t)f->def.i); break;
    case DP_T_MESSAGE: case DP_T_GROUP: lua_newtable(L); break;
    case DP_T_UINT64: case DP_T_FIXED64: push_u64(c, has ? f->def.u : 0); break;
    case DP_T_INT64: case DP_T_SINT64: case DP_T_SFIXED64: push_i64(c, has ? f->def.i : 0); break;
    case DP_T_UINT32: case DP_T_FIXED32: lua_pushinteger(L, (lua_Integer)(has ? f->def.u : 0)); break;
    default: lua_pushinteger(L, (lua_Integer)(has ? f->def.i : 0));
    }
}

/* Is an enum value acceptable for field f, or does it go to unknown fields? */
static inline int enum_known(const dctx *c, const dp_field *f, int32_t v) {
    return !(f->flags & DPF_CLOSED_ENUM) || dp_enum_find(&c->S->enums[f->sub], v) >= 0;
}

/* decode_msg's two stack slots above its table t, pushed on first use
   (most messages need neither): t + 1 (arr) holds the array or map of the
   current run of a repeated field, t + 2 (unk) the array of unknown-field
   pieces. need_slots pushes them: it is called only with nothing else
   above t (between fields), or once they are there. */
typedef struct msg_slots {
    int t;
    int made;                        /* both slots pushed */
    int unk_made;                    /* the pieces array exists */
} msg_slots;

static inline void need_slots(lua_State *L, msg_slots *s) {
    if (!s->made) {
        lua_pushnil(L);
        lua_pushnil(L);
        s->made = 1;
    }
}

/* [-0, +0] appends raw bytes [p, p+n) to the unknown-field pieces of the
   message being decoded (the array in slot unk, made on first use).
   decode_msg joins the pieces once, at its end: linear in the input. */
static void add_unknown(dctx *c, msg_slots *s, const unsigned char *p, size_t n) {
    lua_State *L = c->L;
    if (c->o.drop_unknown) return;
    need_slots(L, s);
    int unk = s->t + 2;
    if (!s->unk_made) {
        lua_newtable(L);                           /* +1 pieces */
        lua_replace(L, unk);                       /* -1 */
        s->unk_made = 1;
    }
    lua_pushlstring(L, (const char *)p, n);        /* +1 */
    lua_rawseti(L, unk, (int)dp_rawlen(L, unk) + 1);   /* -1 */
}

/* [-0, +0] sets t[UNKNOWN] to its old value (if any) followed by the pieces
   in the array at unk. */
static OUT_OF_LINE void join_unknown(dctx *c, int t, int unk) {
    lua_State *L = c->L;
    luaL_Buffer b;
    int n = (int)dp_rawlen(L, unk);
    lua_pushliteral(L, DP_UNKNOWN_KEY);            /* +1 key */
    luaL_buffinit(L, &b);
    lua_pushliteral(L, DP_UNKNOWN_KEY);
    lua_rawget(L, t);                              /* old value, from a merge */
    if (lua_type(L, -1) == LUA_TSTRING) luaL_addvalue(&b);
    else lua_pop(L, 1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, unk, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);                           /* +1 joined */
    lua_rawset(L, t);                              /* -2 */
}

/* [-0, +0] appends a varint field (number, value) to the unknown fields, for
   closed-enum values without a name found in packed runs */
static void add_unknown_varint(dctx *c, msg_slots *s, uint32_t number, uint64_t v) {
    unsigned char tmp[20];
    size_t n = 0;
    uint64_t tag = (uint64_t)number << 3;
    do { tmp[n++] = (unsigned char)((tag & 0x7f) | (tag > 0x7f ? 0x80 : 0)); tag >>= 7; } while (tag);
    do { tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
    add_unknown(c, s, tmp, n);
}

/* What decode_msg knows of the keys already in its table: a table this
   decode made itself starts empty (fresh), and bit i of `stored` is set
   once field i (< 64) was stored in it; a field of a fresh table without
   its bit is surely absent, so its old value needs no lookup. A table to
   merge into (a repeated occurrence of a message field) knows nothing.
   Only the fields whose old value matters are marked and asked about:
   message and group fields (merged) and repeated fields (appended to). */
typedef struct keys_known {
    int fresh;
    uint64_t stored;
} keys_known;

static inline int surely_absent(const keys_known *k, const dp_msg *m, const dp_field *f) {
    size_t i = (size_t)(f - m->fields);
    return k->fresh && i < 64 && !(k->stored >> i & 1);
}

static inline void mark_stored(keys_known *k, const dp_msg *m, const dp_field *f) {
    size_t i = (size_t)(f - m->fields);
    if (i < 64) k->stored |= (uint64_t)1 << i;
}

/* which member of each oneof is set in the table being decoded: -2 = not
   known yet (the table may come with one, when merging), -1 = none, else
   its index */
typedef struct oneof_track {
    uint32_t n;                    /* oneofs tracked: min(noneofs, 64) */
    int32_t cur[64];
} oneof_track;

/* [-0, +0] clears the members of f's oneof other than f in table t. The
   first time per oneof every member is cleared; after that only the one
   known to be set, so a long run of oneof values stays linear. */
static OUT_OF_LINE void clear_oneof(dctx *c, const dp_msg *m, const dp_field *f, int t, oneof_track *ot) {
    int32_t me = (int32_t)(f - m->fields);
    if ((uint32_t)f->oneof < ot->n && ot->cur[f->oneof] != -2) {
        int32_t prev = ot->cur[f->oneof];
        if (prev >= 0 && prev != me) {
            lua_rawgeti(c->L, c->names, m->fields[prev].name);
            lua_pushnil(c->L);
            lua_rawset(c->L, t);
        }
    } else {
        for (uint32_t i = 0; i < m->nfields; i++) {
            const dp_field *g = &m->fields[i];
            if (g->oneof != f->oneof || g == f) continue;
            lua_rawgeti(c->L, c->names, g->name);
            lua_pushnil(c->L);
            lua_rawset(c->L, t);
        }
    }
    if ((uint32_t)f->oneof < ot->n) ot->cur[f->oneof] = me;
}

static int decode_msg(dctx *c, const dp_msg *m, int t, int fresh, const unsigned char *p,
                      const unsigned char *end, uint32_t group, const unsigned char **after);
static void fill_defaults(dctx *c, const dp_msg *m, int t, const dp_pick *pk);
static int decode_sub(dctx *c, const dp_field *f, const dp_msg *sm, int64_t index, int merge,
                      const unsigned char *at, const unsigned char *p, const unsigned char *end,
                      uint32_t group, const unsigned char **after);

/* Decodes one MessageSet item (message_set_wire_format): *pp is just past
   the START_GROUP tag of field 1 at `at`; reads type_id (2) and message (3)
   up to the END_GROUP and advances *pp past it. An item whose type_id is a
   message extension of m is decoded into t["[ext]"] (merging, like a
   repeated occurrence of a message field); any other item goes to the
   unknown fields (slots s) as it was. */
static OUT_OF_LINE int decode_item(dctx *c, const dp_msg *m, int t, keys_known *kk, msg_slots *s,
                       const unsigned char *at, const unsigned char **pp,
                       const unsigned char *end) {
    lua_State *L = c->L;
    const unsigned char *p = *pp, *msg = NULL;
    uint64_t type_id = 0, mlen = 0;
    int have_id = 0;
    for (;;) {
        const unsigned char *fat = p;
        uint64_t tag, v;
        if (p >= end) {
            c->detail = "missing end of MessageSet item";
            return fail(c, DP_ERR_TRUNCATED, end, NULL, 0);
        }
        if (!(p = rd_varint(c, p, end, &tag))) return fail_varint(c, end, CUT_MSG, fat, NULL, 0);
        if (tag > UINT32_MAX) {
            c->detail = "field number out of range";
            return fail(c, DP_ERR_WIRETYPE, fat, NULL, 0);
        }
        uint32_t num = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (wt == DP_WT_EGROUP) {
            if (num != 1) return fail(c, DP_ERR_GROUP, fat, NULL, 0);
            break;
        }
        if (num == 0) return fail(c, DP_ERR_FIELD_ZERO, fat, NULL, 0);
        if (num == 2 && wt == DP_WT_VARINT) {
            if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_MSG, fat, NULL, 0);
            type_id = v;
            have_id = 1;
        } else if (num == 3 && wt == DP_WT_LEN) {
            if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_MSG, fat, NULL, 0);
            if (v > (uint64_t)(end - p)) return fail_len(c, v, end, CUT_MSG, fat, NULL, 0);
            msg = p;
            mlen = v;
            p += v;
        } else {
            dp_status st = dp_skip_field(&p, end, num, wt, c->o.max_depth - c->depth);
            if (st != DP_OK) return fail(c, st, fat, NULL, 0);
        }
    }
    *pp = p;
    const dp_field *f = have_id && msg && type_id <= UINT32_MAX
                        ? dp_find_field(m, (uint32_t)type_id) : NULL;
    if (!f || !(f->flags & DPF_EXTENSION) || f->type != DP_T_MESSAGE ||
        (f->flags & DPF_REPEATED)) {
        add_unknown(c, s, at, (size_t)(p - at));
        return 1;
    }
    lua_rawgeti(L, c->names, f->name);               /* +1 key */
    lua_pushvalue(L, -1);
    lua_rawget(L, t);                                /* +1 previous value: merge */
    if (!decode_sub(c, f, &c->S->msgs[f->sub], 0, 1, at, msg, msg + mlen, 0, NULL)) return 0;
    lua_rawset(L, t);                                /* -2 */
    mark_stored(kk, m, f);
    return 1;
}

/* [-merge, +1] pushes the table of message sm decoded from [p, end); f and
   index name the path step. merge: the value at the top is the previous
   value of the field, replaced by the result (decoded into when it is a
   table; anything else stands for none); else a new table is pushed. */
static int decode_sub(dctx *c, const dp_field *f, const dp_msg *sm, int64_t index, int merge,
                      const unsigned char *at, const unsigned char *p, const unsigned char *end,
                      uint32_t group, const unsigned char **after) {
    lua_State *L = c->L;
    if (c->depth >= c->o.max_depth) {
        c->detail = "nesting deeper than max_depth";
        return fail(c, DP_ERR_DEPTH, at, f, index);
    }
    int fresh = !merge || !lua_istable(L, -1);
    if (fresh) {
        if (merge) lua_pop(L, 1);
        lua_createtable(L, 0, c->S->hints[sm - c->S->msgs]);
    }
    c->path[c->depth].f = f;
    c->path[c->depth].kind = index ? DP_PK_INDEX : DP_PK_NONE;
    c->path[c->depth].i = index;
    c->depth++;
    /* the field's own pick, while its message is decoded (NULL: all of it;
       map values are always whole, so their parent's pick never applies) */
    const dp_pick *outer = c->pick;
    if (outer) c->pick = outer->m->fields <= f && f < outer->m->fields + outer->m->nfields
                             ? outer->child[f - outer->m->fields] : NULL;
    int ok = decode_msg(c, sm, lua_gettop(L), fresh, p, end, group, after);
    c->pick = outer;
    if (ok) c->depth--;
    return ok;
}

/* [-0, +1|0] for entry_fast: pushes the value of scalar field ef of a map
   entry, read at p (past its tag) with ef's wire type, and returns the
   position past it; returns NULL with nothing pushed when the general path
   must judge the value: data cut short, a closed-enum number without a
   name, invalid UTF-8, or a message (no failure is recorded). */
static const unsigned char *push_entry_scalar(dctx *c, const dp_field *ef, const unsigned char *p,
                                              const unsigned char *end) {
    uint64_t v;
    switch (ef->wiretype) {
    case DP_WT_VARINT:
        if (!(p = rd_varint(c, p, end, &v))) return NULL;
        if (ef->type == DP_T_ENUM && !enum_known(c, ef, (int32_t)(uint32_t)v)) return NULL;
        push_varint(c, ef, v);
        return p;
    case DP_WT_I32:
        if (end - p < 4) return NULL;
        push_fixed(c, ef, p);
        return p + 4;
    case DP_WT_I64:
        if (end - p < 8) return NULL;
        push_fixed(c, ef, p);
        return p + 8;
    case DP_WT_LEN:
        if (ef->type == DP_T_MESSAGE || !(p = rd_varint(c, p, end, &v)) || v > (uint64_t)(end - p))
            return NULL;
        if ((ef->flags & DPF_UTF8) && !dp_utf8_valid(p, (size_t)v)) return NULL;
        lua_pushlstring(c->L, (const char *)p, (size_t)v);
        return p + v;
    default:
        return NULL;
    }
}

/* Fast path of decode_entry for the entry every encoder writes: the key's
   one-byte tag and value, then the value's tag and value, nothing else.
   Pushes key and value straight (no slots to fill) and sets map[key] =
   value in the map at mt. Returns 1 when done, 0 for a failure recorded in
   c (only a message value's decode fails here), or -1 with nothing done
   when the entry is not of that form or a value needs the general path,
   which then decodes the whole entry again. */
static int entry_fast(dctx *c, const dp_field *f, const dp_field *kf, const dp_field *vf, int mt,
                      int64_t index, const unsigned char *p, const unsigned char *end) {
    lua_State *L = c->L;
    if (p >= end || *p != kf->tag[0]) return -1;
    const unsigned char *q = push_entry_scalar(c, kf, p + 1, end);   /* +1 key */
    if (!q) return -1;
    if (q >= end || *q != vf->tag[0]) {
        lua_pop(L, 1);
        return -1;
    }
    const unsigned char *at = q++;                  /* the value's tag */
    if (vf->type == DP_T_MESSAGE) {
        uint64_t v;
        if (!(q = rd_varint(c, q, end, &v)) || v != (uint64_t)(end - q)) {
            lua_pop(L, 1);
            return -1;
        }
        if (!decode_sub(c, f, &c->S->msgs[vf->sub], index, 0, at, q, end, 0, NULL)) return 0;
    } else {
        q = push_entry_scalar(c, vf, q, end);      /* +1 value */
        if (q != end) {
            lua_pop(L, q ? 2 : 1);
            return -1;
        }
    }
    lua_rawset(L, mt);                               /* -2 map[key] = value */
    return 1;
}

/* Decodes one map entry [p, end) into the map table at mt; the raw entry
   [raw, end) goes to the unknown fields (slots s) when its value is a
   closed-enum number without a name. */
static OUT_OF_LINE int decode_entry(dctx *c, const dp_field *f, int mt, msg_slots *s, int64_t index,
                        const unsigned char *raw, const unsigned char *p,
                        const unsigned char *end) {
    lua_State *L = c->L;
    const dp_msg *em = &c->S->msgs[f->sub];
    const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
    int fast = entry_fast(c, f, kf, vf, mt, index, p, end);
    if (fast >= 0) return fast;
    int have_k = 0, have_v = 0, unknown_enum = 0;
    lua_pushnil(L);                                  /* +1 key slot */
    lua_pushnil(L);                                  /* +1 value slot */
    int ks = lua_gettop(L) - 1, vs = ks + 1;
    while (p < end) {
        const unsigned char *at = p;
        uint64_t tag, v;
        if (!(p = rd_varint(c, p, end, &tag))) return fail_varint(c, end, CUT_ENTRY, at, f, index);
        uint32_t num = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (tag >> 32 || num == 0) return fail(c, DP_ERR_FIELD_ZERO, at, f, index);
        const dp_field *ef = num == 1 ? kf : num == 2 ? vf : NULL;
        if (!ef || wt != ef->wiretype) {
            dp_status st = dp_skip_field(&p, end, num, wt, c->o.max_depth - c->depth);
            if (st != DP_OK) return fail_cut(c, st, end, CUT_ENTRY, at, f, index);
            continue;
        }
        int slot = ef == kf ? ks : vs;
        switch (wt) {
        case DP_WT_VARINT:
            if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_ENTRY, at, f, index);
            if (ef->type == DP_T_ENUM && !enum_known(c, ef, (int32_t)(uint32_t)v)) {
                unknown_enum = 1;
                lua_pushnil(L);
            } else {
                unknown_enum = ef == vf ? 0 : unknown_enum;
                push_varint(c, ef, v);
            }
            break;
        case DP_WT_I32:
            if (end - p < 4) return fail_fixed(c, 4, end, CUT_ENTRY, at, f, index);
            push_fixed(c, ef, p);
            p += 4;
            break;
        case DP_WT_I64:
            if (end - p < 8) return fail_fixed(c, 8, end, CUT_ENTRY, at, f, index);
            push_fixed(c, ef, p);
            p += 8;
            break;
        default: { /* length-delimited: string, bytes or message value */
            if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_ENTRY, at, f, index);
            if (v > (uint64_t)(end - p)) return fail_len(c, v, end, CUT_ENTRY, at, f, index);
            if (ef->type == DP_T_MESSAGE) {
                lua_pushvalue(L, slot);              /* +1 previous value: merge */
                if (!decode_sub(c, f, &c->S->msgs[ef->sub], index, 1, at, p, p + v, 0, NULL))
                    return 0;
            } else {
                if ((ef->flags & DPF_UTF8) && !dp_utf8_valid(p, (size_t)v))
                    return fail(c, DP_ERR_UTF8, at, f, index);
                lua_pushlstring(L, (const char *)p, (size_t)v);
            }
            p += v;
        }
        }
        lua_replace(L, slot);
        if (slot == ks) have_k = 1; else have_v = 1;
    }
    if (unknown_enum) {
        lua_pop(L, 2);
        add_unknown(c, s, raw, (size_t)(end - raw));
        return 1;
    }
    if (!have_k) {
        push_default(c, kf);
        lua_replace(L, ks);
    }
    if (!have_v) {
        push_default(c, vf);
        if (vf->type == DP_T_MESSAGE && c->o.defaults)   /* an absent message value */
            fill_defaults(c, &c->S->msgs[vf->sub], lua_gettop(L), NULL);
        lua_replace(L, vs);
    }
    lua_rawset(L, mt);                               /* -2 map[key] = value */
    return 1;
}

/* Counts the elements of a packed run of field f in [p, end). */
static size_t packed_count(const dp_field *f, const unsigned char *p, const unsigned char *end) {
    if (f->wiretype == DP_WT_I32) return (size_t)(end - p) / 4;
    if (f->wiretype == DP_WT_I64) return (size_t)(end - p) / 8;
    size_t n = 0;
    for (; p < end; p++) n += *p < 0x80;
    return n;
}

/* a size hint from a count (hints are small: they only presize tables) */
#define HINT(n) ((uint16_t)((n) < 1024 ? (n) : 1024))

/* [-0, +1] pushes a new table for repeated field f: an array gets the
   array_mt option as its metatable */
static void new_container(dctx *c, const dp_field *f, int narr, int nrec) {
    lua_createtable(c->L, narr, nrec);
    if (c->amt && !(f->flags & DPF_MAP)) {
        lua_pushvalue(c->L, c->amt);
        lua_setmetatable(c->L, -2);
    }
}

/* [-0, +0] puts the array (or map) table of field f in t into stack slot
   slot, creating it with narr array and nrec hash slots (absent: t is
   known to have no such key, so it is not looked up). Returns 1 when the
   table is new (empty). */
static int get_container(dctx *c, const dp_field *f, int t, int slot, int absent,
                         int narr, int nrec) {
    lua_State *L = c->L;
    lua_rawgeti(L, c->names, f->name);               /* +1 name */
    if (!absent) {
        lua_pushvalue(L, -1);
        lua_rawget(L, t);                            /* +1 old value */
        if (lua_istable(L, -1)) {
            lua_replace(L, slot);
            lua_pop(L, 1);                           /* -1 name */
            return 0;
        }
        lua_pop(L, 1);
    }
    new_container(c, f, narr, nrec);                 /* +1 new */
    lua_pushvalue(L, -1);
    lua_replace(L, slot);
    lua_rawset(L, t);                                /* -2 t[name] = new */
    return 1;
}

/* [-0, +0] removes the arrays of repeated closed-enum fields of m that
   stayed empty (every value went to the unknown fields): an absent field
   stays absent. */
static OUT_OF_LINE void drop_empty_arrays(dctx *c, const dp_msg *m, int t) {
    lua_State *L = c->L;
    for (uint32_t i = 0; i < m->nfields; i++) {
        const dp_field *f = &m->fields[i];
        if (!(f->flags & DPF_CLOSED_ENUM) || !(f->flags & DPF_REPEATED) || (f->flags & DPF_MAP))
            continue;
        lua_rawgeti(L, c->names, f->name);
        lua_rawget(L, t);
        int empty = lua_istable(L, -1) && dp_rawlen(L, -1) == 0;
        lua_pop(L, 1);
        if (!empty) continue;
        lua_rawgeti(L, c->names, f->name);
        lua_pushnil(L);
        lua_rawset(L, t);
    }
}

/* Fills absent singular scalars of m in t with their defaults; with
   defaults = "all", absent repeated and map fields with empty tables
   (absent message fields stay absent: recursive types must not recurse).
   Only the picked fields when pk is not NULL (a partial decode). */
static void fill_defaults(dctx *c, const dp_msg *m, int t, const dp_pick *pk) {
    lua_State *L = c->L;
    for (uint32_t i = 0; i < m->nfields; i++) {
        const dp_field *f = &m->fields[i];
        int rep = (f->flags & DPF_REPEATED) != 0;
        if ((f->flags & DPF_EXTENSION) || (pk && !pk->picked[i]) ||
            (rep ? c->o.defaults < 2
                 : (f->oneof >= 0 || f->type == DP_T_MESSAGE || f->type == DP_T_GROUP)))
            continue;
        lua_rawgeti(L, c->names, f->name);
        lua_rawget(L, t);
        int absent = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!absent) continue;
        lua_rawgeti(L, c->names, f->name);
        if (rep) new_container(c, f, 0, 0);
        else push_default(c, f);
        lua_rawset(L, t);
    }
}

/* Fast path of decode_msg's tag reading: the field of m whose tag is the
   one byte b with the field's own wire type (f->tag), as encoders write
   fields 1 to 15; for it every check of a tag holds (field number known
   and not 0, no end of group, no packed run). NULL: any other byte, which
   the general path reads. A MessageSet takes the general path always
   (its item tag is no field's). */
static inline const dp_field *one_byte_tag(const dp_msg *m, unsigned b) {
    uint32_t num = b >> 3;
    if (b >= 0x80 || num >= m->ndense || m->message_set) return NULL;
    uint16_t i = m->dense[num];
    if (!i) return NULL;
    const dp_field *f = &m->fields[i - 1];
    return f->tag[0] == b ? f : NULL;
}

/*
 * Decodes the fields in [p, end) into the table at absolute index t, the
 * top of the stack. fresh: decode made t itself, empty (see keys_known).
 * group != 0: the message is a group of that field number, ended by its
 * END_GROUP tag; *after receives the position past it.
 * Returns 1, or 0 with the failure recorded in c. Stack: balanced.
 */
static int decode_msg(dctx *c, const dp_msg *m, int t, int fresh, const unsigned char *p,
                      const unsigned char *end, uint32_t group, const unsigned char **after) {
    lua_State *L = c->L;
    if (!lua_checkstack(L, 12)) luaL_error(L, "stack overflow (dynpb: decode)");
    const dp_pick *pk = c->pick;     /* NULL: every field */
    /* a run of the same repeated field keeps its array in slot `arr` */
    const dp_field *rep = NULL;
    lua_Integer repn = 0;
    unsigned nset = 0;               /* keys set: next time's size hint */
    keys_known kk = { fresh, 0 };
    oneof_track ot;
    ot.n = m->noneofs < 64 ? m->noneofs : 64;
    for (uint32_t i = 0; i < ot.n; i++) ot.cur[i] = fresh ? -1 : -2;
    msg_slots slots = { t, 0, 0 };
    const int arr = t + 1, unk = t + 2;

    while (p < end) {
        const unsigned char *at = p;
        uint64_t tag, v;
        uint32_t num;
        int wt, packed_in = 0;
        const dp_field *f = one_byte_tag(m, *p);
        if (f) {                     /* the usual tag: the checks below hold */
            p++;
            num = f->number;
            wt = f->wiretype;
        } else {
            if (!(p = rd_varint(c, p, end, &tag))) return fail_varint(c, end, CUT_MSG, at, NULL, 0);
            if (tag > UINT32_MAX) {
                c->detail = "field number out of range";
                return fail(c, DP_ERR_WIRETYPE, at, NULL, 0);
            }
            num = (uint32_t)(tag >> 3);
            wt = (int)(tag & 7);
            if (wt == DP_WT_EGROUP) {
                if (group && num == group) {
                    *after = p;
                    goto done;
                }
                return fail(c, DP_ERR_GROUP, at, NULL, 0);
            }
            if (num == 0) return fail(c, DP_ERR_FIELD_ZERO, at, NULL, 0);
            if (m->message_set && num == 1 && wt == DP_WT_SGROUP) {
                if (!decode_item(c, m, t, &kk, &slots, at, &p, end)) return 0;
                nset++;
                continue;
            }
            f = dp_find_field(m, num);
            if (f && wt != f->wiretype) {
                if (wt == DP_WT_LEN && (f->flags & DPF_REPEATED) && (f->flags & DPF_PACKABLE))
                    packed_in = 1;
                else
                    f = NULL;       /* wrong wire type: kept as an unknown field */
            }
        }
        if (pk && f && !pk->picked[f - m->fields]) f = NULL;   /* not picked: skipped */
        if (!f) {
            dp_status st = dp_skip_field(&p, end, num, wt, c->o.max_depth - c->depth);
            if (st != DP_OK) {
                if (st == DP_ERR_DEPTH) c->detail = "nesting deeper than max_depth";
                return fail_cut(c, st, end, CUT_MSG, at, NULL, 0);
            }
            add_unknown(c, &slots, at, (size_t)(p - at));
            continue;
        }

        if (f->flags & DPF_REPEATED) {
            if (f->flags & DPF_MAP) {
                if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_MSG, at, f, 0);
                if (v > (uint64_t)(end - p)) return fail_len(c, v, end, CUT_MSG, at, f, 0);
                if (rep != f) {                      /* switch the cached container */
                    if (rep && !c->partial) c->S->fhints[rep->gidx] = HINT(repn);
                    nset++;
                    need_slots(L, &slots);
                    get_container(c, f, t, arr, surely_absent(&kk, m, f), 0, c->S->fhints[f->gidx]);
                    mark_stored(&kk, m, f);
                    rep = f;
                    repn = 0;                        /* entries seen: the next hint */
                }
                if (!decode_entry(c, f, arr, &slots, 0, at, p, p + v)) return 0;
                repn++;
                p += v;
                continue;
            }
            const unsigned char *q = p, *qend = p;
            if (packed_in) {
                if (!(q = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_MSG, at, f, 0);
                if (v > (uint64_t)(end - q)) return fail_len(c, v, end, CUT_MSG, at, f, 0);
                qend = q + v;
                if (q == qend) {                     /* an empty run adds nothing */
                    p = qend;
                    continue;
                }
            }
            if (rep != f) {                          /* switch the cached array */
                if (rep && !c->partial) c->S->fhints[rep->gidx] = HINT(repn);
                nset++;
                need_slots(L, &slots);
                int made = get_container(c, f, t, arr, surely_absent(&kk, m, f),
                                         packed_in ? (int)packed_count(f, q, qend)
                                                   : c->S->fhints[f->gidx], 0);
                mark_stored(&kk, m, f);
                rep = f;
                repn = made ? 0 : (lua_Integer)dp_rawlen(L, arr);
            }
            if (packed_in) {
                while (q < qend) {
                    const unsigned char *eat = q;
                    if (f->wiretype == DP_WT_VARINT) {
                        uint64_t x;
                        if (!(q = rd_varint(c, q, qend, &x))) return fail_varint(c, qend, CUT_PACKED, eat, f, repn + 1);
                        if (f->type == DP_T_ENUM && !enum_known(c, f, (int32_t)(uint32_t)x)) {
                            add_unknown_varint(c, &slots, num, x);
                            continue;
                        }
                        push_varint(c, f, x);
                    } else {
                        size_t w = f->wiretype == DP_WT_I32 ? 4 : 8;
                        if ((size_t)(qend - q) < w) return fail_fixed(c, w, qend, CUT_PACKED, eat, f, repn + 1);
                        push_fixed(c, f, q);
                        q += w;
                    }
                    lua_rawseti(L, arr, (int)++repn);
                }
                p = qend;
                continue;
            }
        }

        int64_t index = rep == f && (f->flags & DPF_REPEATED) ? repn + 1 : 0;
        /* singular: the key goes below the value (no rotation afterwards) */
        if (!index) {
            lua_rawgeti(L, c->names, f->name);       /* +1 key */
            nset++;
        }
        int zero = 0;                                /* the value is its type's zero */
        switch (wt) {
        case DP_WT_VARINT:
            if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_MSG, at, f, index);
            if (f->type == DP_T_ENUM && !enum_known(c, f, (int32_t)(uint32_t)v)) {
                if (!index) lua_pop(L, 1);           /* -1 key */
                add_unknown(c, &slots, at, (size_t)(p - at));
                continue;
            }
            push_varint(c, f, v);
            zero = (uint32_t)v == 0 && (v == 0 || IS_32BIT(f->type));
            break;
        case DP_WT_I32:
            if (end - p < 4) return fail_fixed(c, 4, end, CUT_MSG, at, f, index);
            push_fixed(c, f, p);
            zero = rd_le32(p) == 0;                  /* bitwise: -0.0f is not zero */
            p += 4;
            break;
        case DP_WT_I64:
            if (end - p < 8) return fail_fixed(c, 8, end, CUT_MSG, at, f, index);
            push_fixed(c, f, p);
            zero = rd_le64(p) == 0;
            p += 8;
            break;
        case DP_WT_LEN:
            if (!(p = rd_varint(c, p, end, &v))) return fail_varint(c, end, CUT_MSG, at, f, index);
            if (v > (uint64_t)(end - p)) return fail_len(c, v, end, CUT_MSG, at, f, index);
            if (f->type == DP_T_MESSAGE) {
                /* an element, or a first occurrence, is new; else merge */
                int merge = !index && !surely_absent(&kk, m, f);
                if (merge) {
                    lua_pushvalue(L, -1);
                    lua_rawget(L, t);                /* the previous value */
                }
                if (!decode_sub(c, f, &c->S->msgs[f->sub], index, merge, at, p, p + v, 0, NULL))
                    return 0;
                if (!index) mark_stored(&kk, m, f);
            } else {
                if ((f->flags & DPF_UTF8) && !dp_utf8_valid(p, (size_t)v))
                    return fail(c, DP_ERR_UTF8, at, f, index);
                lua_pushlstring(L, (const char *)p, (size_t)v);
                zero = v == 0;
            }
            p += v;
            break;
        case DP_WT_SGROUP: {
            const unsigned char *q = NULL;
            int merge = !index && !surely_absent(&kk, m, f);
            if (merge) {
                lua_pushvalue(L, -1);
                lua_rawget(L, t);
            }
            if (!decode_sub(c, f, &c->S->msgs[f->sub], index, merge, at, p, end, num, &q)) return 0;
            if (!index) mark_stored(&kk, m, f);
            p = q;
            break;
        }
        default:
            return fail(c, DP_ERR_WIRETYPE, at, f, index);
        }
        /* the value is at the top (singular: with its key below) */
        if (index) lua_rawseti(L, arr, (int)++repn);
        else {
            if (f->oneof >= 0) clear_oneof(c, m, f, t, &ot);   /* balanced */
            if (zero && !(f->flags & (DPF_PRESENCE | DPF_REPEATED))) {
                /* a field without presence holding its zero is absent (as
                   encode omits it); it also clears an earlier value */
                lua_pop(L, 1);
                lua_pushnil(L);
            }
            lua_rawset(L, t);                        /* -2 */
        }
    }
    if (group) {
        c->detail = "missing end of group";
        return fail_cut(c, DP_ERR_TRUNCATED, end, CUT_MSG, end, NULL, 0);
    }
done:
    if (!c->partial) {               /* a partial decode says nothing of sizes */
        c->S->hints[m - c->S->msgs] = (uint8_t)(nset < 64 ? nset : 64);
        if (rep) c->S->fhints[rep->gidx] = HINT(repn);
    }
    if (slots.unk_made) join_unknown(c, t, unk);
    if (m->closed_enum_rep) drop_empty_arrays(c, m, t);
    if (c->o.defaults) fill_defaults(c, m, t, pk);
    if (slots.made) lua_settop(L, t);
    return 1;
}

/* [-0, +2] pushes nil and the message for data cut short: what was cut
   (path), where, what enclosed it and where that ends, e.g. "length 40 of
   field 'items[2].name' at byte 12 runs past the end of 'items[2]' (ends at
   byte 29)". */
static int cut_message(lua_State *L, dctx *c, const dp_msg *m, const char *rule,
                       const char *path, const char *at) {
    char end[32];
    snprintf(end, sizeof end, "%llu", (unsigned long long)(c->cut_end - c->base));
    int n = c->depth - (c->fail_f && c->cut_kind == CUT_MSG);   /* the enclosing path */
    if (c->cut_kind == CUT_PACKED && n > 0) c->path[n - 1].kind = DP_PK_NONE;
    dp_push_path(L, c->path, n);                       /* +1 */
    const char *in = lua_tostring(L, -1);
    if (c->cut_kind == CUT_ENTRY) lua_pushfstring(L, "a map entry of '%s'", in);
    else if (c->cut_kind == CUT_PACKED) lua_pushfstring(L, "the packed run of '%s'", in);
    else if (*in) lua_pushfstring(L, "'%s'", in);
    else lua_pushliteral(L, "the input");              /* +1 what encloses */
    const char *what = lua_tostring(L, -1);
    lua_pushnil(L);
    if (c->cut_has_len) {
        char len[32];
        snprintf(len, sizeof len, "%llu", (unsigned long long)c->cut_len);
        lua_pushfstring(L, "dynpb: decode %s: length %s of field '%s' at byte %s runs past the end "
                        "of %s (ends at byte %s)", m->name, len, path, at, what, end);
    } else {
        if (c->st == DP_ERR_LENGTH)
            rule = *path ? "length runs past the end" : "length of an unknown field runs past the end";
        lua_pushfstring(L, "dynpb: decode %s: %s%s%s%s at byte %s (%s ends at byte %s)", m->name,
                        rule, *path ? " in field '" : "", path, *path ? "'" : "", at, what, end);
    }
    return 2;
}

/* ---- partial decode: the `fields` option */

/* [-0, +1, m] pushes a new pick node for m (a userdata) and returns it */
static dp_pick *new_pick(lua_State *L, const dp_msg *m) {
    size_t n = m->nfields ? m->nfields : 1;
    dp_pick *pk = lua_newuserdata(L, sizeof(dp_pick) + n * sizeof(dp_pick *) + n);
    pk->m = m;
    pk->child = (dp_pick **)(pk + 1);
    pk->picked = (uint8_t *)(pk->child + n);
    memset(pk->child, 0, n * sizeof(dp_pick *));
    memset(pk->picked, 0, n);
    return pk;
}

/* [-0, +1, e] builds the pick for m from the array of paths at idx ("id",
   "customer.name", "items.qty"), pushing the userdata of its nodes in an
   anchor table (the nodes live while it is on the stack). Each step names
   a field of the message reached so far; a step past a map, or past a
   field that is not a message or group, or a name that is not a field,
   raises (misuse). A field named whole wins over paths inside it. */
static const dp_pick *build_pick(lua_State *L, const dp_schema *S, const dp_msg *m, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "dynpb: decode: option 'fields' must be an array of field paths");
    lua_newtable(L);                                  /* +1 anchor */
    int anchor = lua_gettop(L);
    dp_pick *root = new_pick(L, m);                   /* +1 */
    lua_rawseti(L, anchor, 1);                        /* -1 */
    int nodes = 1;
    size_t n = dp_rawlen(L, idx);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);          /* +1 path */
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "dynpb: decode: option 'fields': entry %d is not a string", (int)i);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len), *e = s + len;
        dp_pick *pk = root;
        for (;;) {
            const char *dot = memchr(s, '.', (size_t)(e - s));
            const char *stop = dot ? dot : e;
            const dp_field *f = dp_find_field_by_name(pk->m, s, (size_t)(stop - s));
            if (!f) {
                lua_pushlstring(L, s, (size_t)(stop - s));   /* +1 the step (raising) */
                luaL_error(L, "dynpb: decode: option 'fields': '%s': '%s' is not a field of %s",
                           lua_tostring(L, -2), lua_tostring(L, -1), pk->m->name);
            }
            size_t k = (size_t)(f - pk->m->fields);
            if (!dot) {                               /* picked whole */
                pk->picked[k] = 1;
                pk->child[k] = NULL;
                break;
            }
            if ((f->type != DP_T_MESSAGE && f->type != DP_T_GROUP) || (f->flags & DPF_MAP))
                luaL_error(L, "dynpb: decode: option 'fields': '%s': field '%s' of %s is %s, not a message "
                              "(only messages have fields to pick; maps are picked whole)",
                           lua_tostring(L, -1), f->cname, pk->m->name,
                           (f->flags & DPF_MAP) ? "map" : dp_type_str(f->type));
            if (pk->picked[k] && !pk->child[k]) break;   /* already whole */
            if (!pk->picked[k]) {
                pk->picked[k] = 1;
                pk->child[k] = new_pick(L, &S->msgs[f->sub]);   /* +1 */
                lua_rawseti(L, anchor, ++nodes);              /* -1 */
            }
            pk = pk->child[k];
            s = dot + 1;
        }
        lua_pop(L, 1);                                /* -1 path */
    }
    return root;
}

/* [-0, +1|2] the body of both decode methods: pushes the table, or nil and
   the error message. */
static int decode_call(lua_State *L, dp_schema *S, const dp_msg *m, int names, int bidx,
                       int oidx) {
    size_t len;
    if (lua_type(L, bidx) != LUA_TSTRING)
        luaL_error(L, "dynpb: decode %s: bytes expected, got %s", m->name, luaL_typename(L, bidx));
    const unsigned char *data = (const unsigned char *)lua_tolstring(L, bidx, &len);
    dctx c;
    c.L = L;
    c.S = S;
    c.base = data;
    c.st = c.vst = DP_OK;
    c.detail = NULL;
    c.at = 0;
    c.depth = 0;
    c.cut_end = NULL;
    c.cut_has_len = 0;
    c.fail_f = 0;
    int otype = lua_type(L, oidx);
    if (otype == LUA_TNONE || otype == LUA_TNIL) {  /* no options: dp_parse_opts's defaults */
        memset(&c.o, 0, sizeof c.o);
        c.o.max_depth = DP_DEFAULT_MAX_DEPTH;
    } else {
        dp_parse_opts(L, oidx, "decode", &c.o);
    }
    c.names = names;
    c.amt = 0;
    if (c.o.array_mt) {
        lua_getfield(L, oidx, "array_mt");            /* +1 stays below the results */
        c.amt = lua_gettop(L);
    }
    c.pick = NULL;
    c.partial = 0;
    if (otype == LUA_TTABLE) {
        lua_getfield(L, oidx, "fields");              /* +1 (stays below the result) */
        if (!lua_isnil(L, -1)) {
            int fidx = lua_gettop(L);
            c.pick = build_pick(L, S, m, fidx);       /* +1 anchor (stays below the result) */
            c.partial = 1;
            c.o.drop_unknown = 1;                     /* unknown fields are not kept */
        }
    }
    lua_createtable(L, 0, S->hints[m - S->msgs]);     /* +1 result */
    if (decode_msg(&c, m, lua_gettop(L), 1, data, data + len, 0, NULL)) return 1;
    const char *rule = c.detail ? c.detail : dp_status_str(c.st);
    if (c.st == DP_ERR_DEPTH) {
        lua_pushfstring(L, "%s (%d)", rule, c.o.max_depth);
        rule = lua_tostring(L, -1);
    }
    dp_push_path(L, c.path, c.depth);                 /* +1 path */
    const char *path = lua_tostring(L, -1);
    char at[32];
    snprintf(at, sizeof at, "%llu", (unsigned long long)c.at);
    if (c.cut_end && (c.st == DP_ERR_LENGTH || c.st == DP_ERR_TRUNCATED))
        return cut_message(L, &c, m, rule, path, at);
    lua_pushnil(L);
    lua_pushfstring(L, "dynpb: decode %s: %s%s%s%s at byte %s", m->name, rule,
                    *path ? " in field '" : "", path, *path ? "'" : "", at);
    return 2;
}

int dp_l_schema_decode(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    const dp_msg *m = dp_lookup_msg(L, S, 1, 2);
    lua_settop(L, 4);                                 /* names go above the arguments */
    dp_push_names(L, 1);                              /* +1 names */
    return decode_call(L, S, m, lua_gettop(L), 3, 4);
}

/* a handle's own closure: its upvalues (DP_HU_*) say what to decode. The
   names go on the stack: a stack slot is read faster than an upvalue, and
   decode reads a name for every field it sets. Without an options
   argument, the options index is the free slot above the names (none). */
int dp_l_handle_decode(lua_State *L) {
    dp_schema *S = lua_touserdata(L, lua_upvalueindex(DP_HU_CORE));
    const dp_msg *m = &S->msgs[lua_tointeger(L, lua_upvalueindex(DP_HU_INDEX))];
    int n = lua_gettop(L);
    if (n < 2)                       /* no bytes: raises, naming what was given */
        return decode_call(L, S, m, lua_upvalueindex(DP_HU_NAMES), 2, 3);
    lua_pushvalue(L, lua_upvalueindex(DP_HU_NAMES));   /* +1 names */
    return decode_call(L, S, m, n + 1, 2, n >= 3 ? 3 : n + 2);
}
