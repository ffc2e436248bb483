/*
 * dynpb.h -- shared internals of the dynpb Lua module.
 *
 * Pipeline (one source file per stage):
 *   sha256.c   content fingerprint of descriptor-set bytes
 *   wire.c     varint primitives, skipping a field (groups bounded)
 *   desc_read.c FileDescriptorSet bytes -> the structs of desc.h (one
 *              checked pass over the wire bytes)
 *   schema.c   those structs -> compiled tables (features.c: editions)
 *   cache.c    per-lua_State fingerprint cache: weak values + pinned LRU
 *   reflect.c  enum constant tables, type lists, field reflection
 *   decode.c   protobuf bytes -> Lua tables
 *   encode.c   Lua tables -> protobuf bytes
 *   dynpb.c    luaopen_dynpb: module table, object layout, method tables
 *
 * Invariants:
 *  - no mutable C global anywhere: per-state data lives in a dp_state
 *    userdata, per-schema data in a dp_schema userdata;
 *  - a compiled schema is immutable once dp_compile returns;
 *  - all C memory of a schema comes from the lua_State's allocator and is
 *    owned by the schema userdata, so its __gc releases it even when the
 *    compile raised half way.
 */
#ifndef DYNPB_H
#define DYNPB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "compat.h"

#define DP_HIDDEN __attribute__((visibility("hidden")))
#define DP_EXPORT __attribute__((visibility("default")))

#define DP_DEFAULT_PIN 4
#define DP_DEFAULT_MAX_DEPTH 100   /* decode/encode nesting limit */
#define DP_MAX_MAX_DEPTH 1000      /* upper bound accepted for max_depth */
#define DP_MAX_TYPE_DEPTH 64       /* nested message declarations in a set */
#define DP_UNKNOWN_KEY "@unknown"  /* dynpb.UNKNOWN: not a valid field name */

/* ---- status codes (upb style): every failure of a stage is one of these */
typedef enum {
    DP_OK = 0,
    DP_ERR_TRUNCATED,       /* input ends inside a tag, varint, fixed or length */
    DP_ERR_VARINT,          /* varint longer than 10 bytes */
    DP_ERR_LENGTH,          /* length-delimited field runs past its container */
    DP_ERR_WIRETYPE,        /* wire type 6 or 7, or not the field's wire type */
    DP_ERR_FIELD_ZERO,      /* field number 0 */
    DP_ERR_GROUP,           /* unmatched or mismatched group end */
    DP_ERR_DEPTH,           /* nesting deeper than the limit */
    DP_ERR_UTF8             /* invalid UTF-8 in a proto3 string */
} dp_status;

DP_HIDDEN const char *dp_status_str(dp_status st);

/* ---- descriptor field types (values of FieldDescriptorProto.Type) */
enum {
    DP_T_DOUBLE = 1, DP_T_FLOAT = 2, DP_T_INT64 = 3, DP_T_UINT64 = 4,
    DP_T_INT32 = 5, DP_T_FIXED64 = 6, DP_T_FIXED32 = 7, DP_T_BOOL = 8,
    DP_T_STRING = 9, DP_T_GROUP = 10, DP_T_MESSAGE = 11, DP_T_BYTES = 12,
    DP_T_UINT32 = 13, DP_T_ENUM = 14, DP_T_SFIXED32 = 15, DP_T_SFIXED64 = 16,
    DP_T_SINT32 = 17, DP_T_SINT64 = 18
};

enum { DP_WT_VARINT = 0, DP_WT_I64 = 1, DP_WT_LEN = 2, DP_WT_SGROUP = 3,
       DP_WT_EGROUP = 4, DP_WT_I32 = 5 };

/* field flags */
enum {
    DPF_REPEATED = 1 << 0,
    DPF_PACKED = 1 << 1,      /* encode repeated scalars packed */
    DPF_PACKABLE = 1 << 2,    /* scalar numeric: decode accepts packed and not */
    DPF_PRESENCE = 1 << 3,    /* explicit presence (proto2, optional, message, oneof) */
    DPF_MAP = 1 << 4,         /* repeated map-entry message */
    DPF_UTF8 = 1 << 5,        /* string checked as UTF-8 (proto3) */
    DPF_CLOSED_ENUM = 1 << 6, /* enum type is closed (proto2) */
    DPF_REQUIRED = 1 << 7,
    DPF_HAS_DEFAULT = 1 << 8, /* proto2 [default = ...] given */
    DPF_EXTENSION = 1 << 9    /* an extension: its name is "[full.name]" (issue 11) */
};

/* A default value, parsed at compile time. */
typedef union {
    int64_t i;
    uint64_t u;
    double d;
    struct { const char *p; size_t n; } s;
} dp_value;

typedef struct dp_field {
    uint32_t number;
    uint8_t type;             /* DP_T_* */
    uint8_t wiretype;         /* DP_WT_* of one unpacked element */
    uint16_t flags;           /* DPF_* */
    int32_t oneof;            /* index into the message's oneofs, or -1 */
    int32_t sub;              /* message index (message/group/map) or enum index, or -1 */
    int32_t name;             /* index of the name string in the schema's names array */
    uint32_t gidx;            /* index among all fields of the schema (fhints) */
    uint8_t tag[8];           /* the encoded tag (wire type of one element;
                                 START_GROUP for groups), taglen bytes */
    uint8_t taglen;
    uint8_t emode;            /* how encode writes it as a member (encode.c's
                                 PS_KEEP, PS_OMIT, or EM_OTHER; set with the
                                 message's ekeys) */
    uint32_t namelen;         /* strlen(cname) */
    const char *cname;        /* the name as C string (errors, reflection) */
    const char *lname;        /* bytes of the interned Lua string NAMES[name]:
                                 a key with the same pointer is this name */
    const char *type_name;    /* resolved full type name without dot, or NULL */
    dp_value def;             /* parsed default (DPF_HAS_DEFAULT or proto3 zero) */
    const char *jname;        /* JSON name (descriptor's json_name, else computed;
                                 == cname when equal), jnamelen bytes */
    uint32_t jnamelen;
} dp_field;

/* a slot of a message's encode key table: an interned field name and the
   field's index (key NULL: an empty slot) */
typedef struct dp_ekey {
    const char *key;
    uint32_t index;
} dp_ekey;

typedef struct dp_msg {
    const char *name;         /* full name, no leading dot */
    uint32_t namelen;         /* strlen(name) */
    uint32_t nfields;
    dp_field *fields;         /* sorted by number */
    uint32_t ndense;          /* dense[n] valid for n < ndense */
    uint32_t hmask;           /* byname has hmask + 1 slots (a power of 2) */
    uint16_t *dense;          /* field number -> index+1, 0 = no such field */
    uint16_t *byname;         /* open-addressing hash of names: field index+1 */
    uint16_t *byptr;          /* the same, keyed by lname pointer */
    dp_ekey *ekeys;           /* encode's key table, built on m's first encode
                                 (encode.c's enc_prepare; NULL before, and each
                                 field's emode unset): ekmask + 1 slots of
                                 {lname, field index}, slot ekey_slot */
    uint64_t ekmul;           /* its hash multiplier, picked so that no two names
                                 share a slot where a few tries can manage it */
    uint32_t ekmask;
    uint8_t ekshift;          /* 64 - log2(slots) */
    uint32_t noneofs;
    uint8_t map_entry;        /* is a synthesized map entry (key=1, value=2) */
    uint8_t proto3;           /* declared in a proto3 file */
    uint8_t closed_enum_rep;  /* some repeated field has a closed enum type */
    uint8_t wkt;              /* DP_WKT_* (json.h): a well-known type's JSON form */
    const char **oneof_names;
    uint16_t *byjson;         /* hmask + 1 slots: field index+1 by jname */
    int32_t jconf[2];         /* two fields with one JSON name, or -1 (JSON fails) */
    uint8_t message_set;      /* option message_set_wire_format (issue 11) */
    uint8_t json_format;      /* resolved features.json_format: DP_JSON_* (issue 14) */
} dp_msg;

typedef struct dp_enumval {
    const char *cname;
    const char *lname;        /* bytes of the interned Lua string NAMES[name] */
    int32_t number;
    int32_t name;             /* index in the names array */
} dp_enumval;

typedef struct dp_enum {
    const char *name;         /* full name, no leading dot */
    uint32_t namelen;         /* strlen(name) */
    uint32_t nvalues;
    dp_enumval *values;       /* declaration order */
    int32_t *by_number;       /* value indices sorted by number, first declared wins */
    uint32_t nunique;         /* length of by_number */
    uint32_t hmask;           /* byname/byptr have hmask + 1 slots */
    uint32_t *byname;         /* value index+1 by name content hash */
    uint32_t *byptr;          /* value index+1 by interned name address */
    uint8_t closed;           /* closed enum (proto2, features.enum_type = CLOSED) */
    uint8_t json_format;      /* resolved features.json_format: DP_JSON_* (issue 14) */
} dp_enum;

/* Per lua_State module state; a full userdata anchored in the registry. */
typedef struct dp_state {
    /* cache counters, exposed by dynpb.stats() */
    uint64_t hits, misses;
    int64_t live;             /* compiled schemas not yet freed */
    int64_t bytes;            /* C bytes held by those schemas */
    int pin;                  /* size of the pinned LRU */
    int sha_fast;             /* dp_sha256_fast(), asked once at luaopen */
    /* an encode output buffer, freed by __gc: the module state's own
       (while ebusy) and that of the buffer holders of encode.c (userdata
       of this type and metatable, leased through DP_SU_EBUF) */
    unsigned char *buf;
    size_t bufcap;
    int ebusy;                /* module state: an encode is writing into buf
                                 (encode.c, encode_call) */
} dp_state;

/* a slot of dp_schema.types (schema.c) */
typedef struct dp_tslot {
    uint32_t hash;
    uint32_t v;               /* 0 empty, 1..nmsgs message v - 1, then enums */
    const char *name;         /* the full name (NUL-terminated) */
} dp_tslot;

/* A block of schema memory; blocks form a list freed together. */
typedef struct dp_block {
    struct dp_block *next;
    size_t size;              /* bytes of this block, header included */
} dp_block;

typedef struct dp_schema {
    dp_state *state;          /* anchored in the uservalue; counters */
    lua_Alloc alloc;
    void *alloc_ud;
    dp_block *blocks;         /* everything below lives in these */
    size_t nbytes;            /* sum of block sizes */
    char *cur;                /* bump pointer into the newest block */
    size_t left;              /* bytes left at cur */
    int counted;              /* included in state->live/bytes */
    int freed;                /* __gc ran: the C memory is gone (a Lua 5.1 / LuaJIT weak
                                 cache may still hold the object, see cache.c) */
    uint32_t nmsgs, nenums;
    dp_msg *msgs;
    dp_enum *enums;
    /* decode's table-size hints, one per message (keys set last time).
       The only part of a compiled schema that changes after compile. */
    uint8_t *hints;
    uint16_t *fhints;         /* per field (gidx): elements of its repeated/map
                                 table last time; also mutable */
    uint32_t nfields_total;
    uint32_t tmask;           /* types has tmask + 1 slots (a power of 2) */
    struct dp_tslot *types;   /* full-name hash of messages and enums (dp_find_type) */
    char fingerprint[65];
} dp_schema;

/* ---- 64-bit integers in Lua
 * A 64-bit value is pushed as a Lua integer (5.3+) or number (5.1, LuaJIT)
 * when that holds it exactly, otherwise as its decimal string. */
DP_HIDDEN void dp_push_i64_string(lua_State *L, int64_t v);
DP_HIDDEN void dp_push_u64_string(lua_State *L, uint64_t v);
static inline void dp_push_i64(lua_State *L, int64_t v) {
#if DP_HAVE_INT64
    lua_pushinteger(L, (lua_Integer)v);
#else
    if (v >= -(INT64_C(1) << 53) && v <= (INT64_C(1) << 53)) lua_pushnumber(L, (lua_Number)v);
    else dp_push_i64_string(L, v);
#endif
}
static inline void dp_push_u64(lua_State *L, uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) dp_push_i64(L, (int64_t)v);
    else dp_push_u64_string(L, v);
}

/* ---- sha256.c */
/* hex SHA-256 of data; fast = dp_sha256_fast() (the CPU's SHA instructions) */
DP_HIDDEN void dp_sha256_hex(const void *data, size_t len, char out[65], int fast);
/* can dp_sha256_hex use the CPU's SHA instructions? (asks CPUID: slow in VMs) */
DP_HIDDEN int dp_sha256_fast(void);

/* ---- wire.c */
/* Reads a varint at *p (< end). Returns DP_OK and advances *p, or an error. */
DP_HIDDEN dp_status dp_read_varint(const unsigned char **p,
                                   const unsigned char *end, uint64_t *out);
/* Skips one field's value of wire type wt (groups included, bounded by depth). */
DP_HIDDEN dp_status dp_skip_field(const unsigned char **p, const unsigned char *end,
                                  uint32_t number, int wt, int depth);

/* ---- schema.c */
/* [-0, +0, e] allocates n bytes (aligned) from the schema's blocks; raises on OOM. */
DP_HIDDEN void *dp_schema_alloc(lua_State *L, dp_schema *S, size_t n);
DP_HIDDEN void dp_schema_free(dp_schema *S);
/* [-0, +0, e] compiles data into S, whose uservalue table is at uvidx.
   Returns 1, or 0 with an error message pushed. */
DP_HIDDEN int dp_compile(lua_State *L, dp_schema *S, int uvidx,
                         const unsigned char *data, size_t len);
/* [-0, +0] index of the message or enum named s[0..n) (full name, no
   leading dot): *kind = 1 for a message, 2 for an enum; -1 if none */
DP_HIDDEN int32_t dp_find_type(const dp_schema *S, const char *s, size_t n, int *kind);
/* [-0, +0] the same for a message only / an enum only */
DP_HIDDEN int32_t dp_find_msg(const dp_schema *S, const char *s, size_t n);
DP_HIDDEN int32_t dp_find_enum(const dp_schema *S, const char *s, size_t n);
/* field lookup by number: dense index, else binary search. NULL if none. */
static inline const dp_field *dp_find_field(const dp_msg *m, uint32_t number) {
    if (number < m->ndense) {
        uint16_t i = m->dense[number];
        return i ? &m->fields[i - 1] : NULL;
    }
    uint32_t lo = 0, hi = m->nfields;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        uint32_t n = m->fields[mid].number;
        if (n == number) return &m->fields[mid];
        if (n < number) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
/* hash of a name s[0..n) (fields, JSON names, enum values: byname tables)
   read 8 bytes at a time; the last 1-7 bytes with two loads that overlap
   (4-7) or the first, middle and last byte (1-3), which is every byte of
   them (n is in the hash). A load hashes some 700,000 names of googleapis:
   FNV-1a's byte loop was a twentieth of it. */
static inline uint32_t dp_name_hash(const char *s, size_t n) {
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) * (n + 1), w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 29;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        w = (uint64_t)a << 32 | b;
    } else {
        const unsigned char *u = (const unsigned char *)s;
        w = n ? (uint64_t)u[0] << 16 | (uint64_t)u[n >> 1] << 8 | u[n - 1] : 0;
    }
    h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53);
    return (uint32_t)(h ^ (h >> 32));
}
/* field lookup by name (s[0..n), not NUL-terminated). NULL if none. */
static inline const dp_field *dp_find_field_by_name(const dp_msg *m, const char *s, size_t n) {
    for (uint32_t i = dp_name_hash(s, n) & m->hmask;; i = (i + 1) & m->hmask) {
        uint16_t k = m->byname[i];
        if (!k) return NULL;
        const dp_field *f = &m->fields[k - 1];
        if (f->namelen == n && memcmp(f->cname, s, n) == 0) return f;
    }
}
/* hash of a string's address: the high half of a 64-bit multiplicative
   hash, so aligned addresses still spread over the low bits used */
static inline uint32_t dp_ptr_hash(const char *p) {
    return (uint32_t)(((uint64_t)(uintptr_t)p * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}
/* field lookup by an interned key string: a pointer compare in the common
   case; keys that are not interned (long strings) by content. */
static inline const dp_field *dp_find_field_by_key(const dp_msg *m, const char *s, size_t n) {
    for (uint32_t i = dp_ptr_hash(s) & m->hmask;; i = (i + 1) & m->hmask) {
        uint16_t k = m->byptr[i];
        if (!k) return dp_find_field_by_name(m, s, n);
        if (m->fields[k - 1].lname == s) return &m->fields[k - 1];
    }
}
/* enum value index for a name (s[0..n), interned or not), or -1 */
static inline int dp_enum_find_name(const dp_enum *e, const char *s, size_t n) {
    for (uint32_t i = dp_ptr_hash(s) & e->hmask;; i = (i + 1) & e->hmask) {
        uint32_t k = e->byptr[i];
        if (!k) break;
        if (e->values[k - 1].lname == s) return (int)(k - 1);
    }
    for (uint32_t i = dp_name_hash(s, n) & e->hmask;; i = (i + 1) & e->hmask) {
        uint32_t k = e->byname[i];
        if (!k) return -1;
        const char *v = e->values[k - 1].cname;
        if (strlen(v) == n && memcmp(v, s, n) == 0) return (int)(k - 1);
    }
}
/* enum value index for a number, or -1 */
DP_HIDDEN int dp_enum_find(const dp_enum *e, int32_t number);

/* uservalue table slots of a schema userdata */
enum {
    DP_UV_NAMES = 1,      /* array of interned Lua strings (field and value names,
                             one entry per distinct name) */
                          /* 2, 3: unused (type names are in dp_schema.types) */
    DP_UV_ENUMTABS = 4,   /* enum index -> constants table (lazy) */
    DP_UV_STATE = 5,      /* the dp_state userdata (anchor) */
    DP_UV_HANDLES = 6,    /* message index -> handle object (lazy) */
    DP_UV_SOURCE = 20,    /* the descriptor-set bytes as given (issue 11) */
    DP_UV_REFL = 21       /* options.c: decoded services, files, options (lazy) */
};

/* upvalues shared by every function of the module and its objects */
enum {
    DP_UP_STATE = 1,      /* the dp_state userdata */
    DP_UP_SCHEMAMT = 2,   /* metatable of schema objects */
    DP_UP_HANDLEMT = 3,   /* metatable of message handles */
    DP_UP_COREMT = 4,     /* metatable of dp_schema userdata */
    DP_NUPVALUES = 4
};

/* slots of the dp_state userdata's uservalue table */
enum {
    DP_SU_CACHE = 1,      /* fingerprint -> schema object, weak values */
    DP_SU_PINS = 2,       /* array of pinned schema objects, least recent first */
    DP_SU_JSON = 3,       /* the JSON scratch userdata, leased to each call (json_common.c) */
    DP_SU_DESC = 20       /* options.c: the embedded descriptor.proto schema (lazy) */
};

/* ---- cache.c */
DP_HIDDEN void dp_cache_open(lua_State *L, int stateidx);
DP_HIDDEN int dp_l_load(lua_State *L);
DP_HIDDEN int dp_l_load_file(lua_State *L);
DP_HIDDEN int dp_l_stats(lua_State *L);
DP_HIDDEN int dp_l_configure(lua_State *L);
DP_HIDDEN int dp_l_fingerprint(lua_State *L);

/* ---- reflect.c */
DP_HIDDEN int dp_l_types(lua_State *L);
DP_HIDDEN int dp_l_enums(lua_State *L);
DP_HIDDEN int dp_l_enum(lua_State *L);
DP_HIDDEN int dp_l_enum_values(lua_State *L);
DP_HIDDEN int dp_l_message(lua_State *L);
DP_HIDDEN int dp_l_fields(lua_State *L);
DP_HIDDEN const char *dp_type_str(int type);

/* ---- codec.c: what decode and encode share */

/* options of one decode/encode call (defaults when none are given) */
typedef struct dp_opts {
    int max_depth;            /* nesting limit, default DP_DEFAULT_MAX_DEPTH */
    uint8_t int64_string;     /* decode 64-bit integers as decimal strings */
    uint8_t enums_number;     /* decode enums as numbers */
    uint8_t defaults;         /* decode: fill absent scalars with defaults (1: true);
                                 2 ("all"): also empty tables for repeated and map fields */
    uint8_t array_mt;         /* decode: option array_mt is a table (a metatable for arrays) */
    uint8_t drop_unknown;     /* decode: drop unknown fields; encode: do not emit them */
    uint8_t ignore_unknown_keys; /* encode: keys that are not fields are skipped */
} dp_opts;

/* [-0, +0, e] fills o from the options table at idx (nil/none = defaults);
   raises on an unknown option or a bad value. */
DP_HIDDEN void dp_parse_opts(lua_State *L, int idx, const char *fn, dp_opts *o);

/* one step of the path to a value, for error messages */
typedef struct dp_pathel {
    const dp_field *f;
    uint8_t kind;             /* DP_PK_* */
    int64_t i;                /* element index (1-based) or integer key */
    const char *s;            /* string key */
    size_t n;
} dp_pathel;
enum { DP_PK_NONE, DP_PK_INDEX, DP_PK_IKEY, DP_PK_SKEY, DP_PK_BKEY };

/* [-0, +1, m] pushes "a.b[3].c" for path[0..n) */
DP_HIDDEN void dp_push_path(lua_State *L, const dp_pathel *path, int n);
/* is s[0..n) valid UTF-8 (no surrogates, overlongs or values past U+10FFFF)? */
DP_HIDDEN int dp_utf8_valid(const unsigned char *s, size_t n);

/* upvalues of a handle's own decode/encode closures */
enum { DP_HU_CORE = 1, DP_HU_NAMES = 2, DP_HU_INDEX = 3, DP_HU_STATE = 4, DP_HU_N = 4 };

/* ---- decode.c / encode.c: Lua methods */
DP_HIDDEN int dp_l_schema_decode(lua_State *L);  /* schema:decode(type, bytes [, opts]) */
DP_HIDDEN int dp_l_handle_decode(lua_State *L);  /* handle:decode(bytes [, opts]), DP_HU_* upvalues */
DP_HIDDEN int dp_l_schema_encode(lua_State *L);  /* schema:encode(type, t [, opts]) */
DP_HIDDEN int dp_l_handle_encode(lua_State *L);  /* handle:encode(t [, opts]), DP_HU_* upvalues */

/* ---- dynpb.c: object access shared by the binding files */
/* [-0, +0, e] schema userdata behind the schema object at idx; raises if not one */
DP_HIDDEN dp_schema *dp_check_schema(lua_State *L, int idx);
/* [-0, +0, e] schema and message index behind the handle object at idx */
DP_HIDDEN dp_schema *dp_check_handle(lua_State *L, int idx, const dp_msg **m);
/* [-0, +0, e] message named by the string at idx (with or without dot), or raises */
DP_HIDDEN const dp_msg *dp_lookup_msg(lua_State *L, dp_schema *S, int sidx, int nameidx);
/* [-0, +0, e] raises "dynpb.<fn>: unknown option 'k'" for a key of the
   table at idx not in the NULL-terminated list known; raises if idx holds
   neither a table nor nil. */
DP_HIDDEN void dp_check_options(lua_State *L, int idx, const char *fn,
                                const char *const known[]);
/* [-0, +0] a printable name for the key at idx (its text, or its type) */
DP_HIDDEN const char *dp_keyname(lua_State *L, int idx);
/* [-0, +1] pushes the NAMES array of the schema object at idx */
DP_HIDDEN void dp_push_names(lua_State *L, int idx);
/* [-0, +1, e] pushes a new schema object for the schema userdata at udidx */
DP_HIDDEN void dp_push_schema_object(lua_State *L, int udidx);

/* ---- csrc/gen/descriptor_set.c (make regen): the FileDescriptorSet of
   csrc/gen/src/google/protobuf/descriptor.proto, the newer descriptor.proto
   the module decodes google.protobuf.*Options messages with */
DP_HIDDEN extern const unsigned char dp_descriptor_set[];
DP_HIDDEN extern const size_t dp_descriptor_set_len;

/* ---- options.c (issue 11): files, services, options, decoded per schema */
/* [-0, +1, e] pushes R, the schema's decoded services/files/options data
   (built on first use, never changed after; see options.c), for the schema
   object at sidx. Runs in a closure with the module's DP_NUPVALUES upvalues. */
DP_HIDDEN void dp_push_refl(lua_State *L, int sidx);
/* [-0, +1, e] pushes a deep copy of the value at idx: plain tables are
   copied, anything else (handles and other objects included) is shared */
DP_HIDDEN void dp_push_copy(lua_State *L, int idx);

/* ---- services.c / reflect.c (issue 11): Lua methods */
DP_HIDDEN int dp_l_services(lua_State *L);      /* schema:services() */
DP_HIDDEN int dp_l_service(lua_State *L);       /* schema:service(name) */
DP_HIDDEN int dp_l_method(lua_State *L);        /* schema:method(x) */
DP_HIDDEN int dp_l_files(lua_State *L);         /* schema:files() */
DP_HIDDEN int dp_l_enum_options(lua_State *L);  /* schema:enum_options(name) */
DP_HIDDEN int dp_l_handle_options(lua_State *L);/* handle:options() */
DP_HIDDEN int dp_l_oneofs(lua_State *L);        /* handle:oneofs() */
DP_HIDDEN int dp_l_extensions(lua_State *L);    /* handle:extensions() */
/* ---- durable.c (issue 20) */
/* [-0, +1|2, e] dynpb.write_durable(path, bytes) --> true | nil, err:
   temp file (O_EXCL|O_NOFOLLOW, random name), write, fsync, rename, fsync dir */
DP_HIDDEN int dp_l_write_durable(lua_State *L);

/* ---- encode.c: slot of the state's uservalue holding the encode buffer's
   holder when no encode runs (false while one has leased it; see
   encode_call): an error inside an encode cannot leave it taken */
#define DP_SU_EBUF 4
/* ---- text_encode.c: protobuf bytes -> text format (protoc --decode) */
/* a growable C buffer owned by a userdata with __gc */
typedef struct dp_tbuf {
    char *p;
    size_t n, cap;
    lua_Alloc alloc;
    void *ud;
} dp_tbuf;
/* [-0, +1, m] pushes a new empty buffer userdata */
DP_HIDDEN dp_tbuf *dp_tbuf_new(lua_State *L);
/* [-0, +0, m] appends s[0..n) (raises on out of memory) */
DP_HIDDEN void dp_tbuf_add(lua_State *L, dp_tbuf *b, const void *s, size_t n);
/* [-0, +0, m] appends s[0..n) escaped as protobuf's CEscape does */
DP_HIDDEN void dp_text_escape(lua_State *L, dp_tbuf *b, const char *s, size_t n);
/* shortest text that reads back to v, as protobuf's SimpleDtoa/SimpleFtoa */
DP_HIDDEN void dp_text_double(char out[40], double v);
DP_HIDDEN void dp_text_float(char out[40], float v);
/* is extension f of MessageSet m printed by its type name ("[pkg.Type]")? */
DP_HIDDEN int dp_text_mset_item(const dp_msg *m, const dp_field *f);
/* is field f of m group-like (named by its type in text format)? */
DP_HIDDEN int dp_text_group_like(const dp_msg *m, const dp_field *f);
DP_HIDDEN int dp_l_schema_to_text(lua_State *L);    /* schema:to_text(type, bytes [, opts]) */
DP_HIDDEN int dp_l_handle_to_text(lua_State *L);    /* handle:to_text(bytes [, opts]) */

/* ---- text_decode.c: text format -> protobuf bytes (protoc --encode) */
/* uservalue slot of a schema: reserved field names by message (lazy) */
#define DP_UV_TEXT_RESERVED 30
DP_HIDDEN int dp_l_schema_from_text(lua_State *L);  /* schema:from_text(type, text [, opts]) */
DP_HIDDEN int dp_l_handle_from_text(lua_State *L);  /* handle:from_text(text [, opts]) */

/* ---- tty.c (issue 19): dynpb.isatty(file) for bin/dynpb */
DP_HIDDEN int dp_l_isatty(lua_State *L);

/* ---- json_common.c, json_encode.c, json_decode.c (issue 12; more in json.h) */
/* [-0, +0, e] JSON names, the JSON-name hash and the well-known-type kind of
   message m (called by dp_compile after its fields are sorted and hashed) */
DP_HIDDEN void dp_json_prepare(lua_State *L, dp_schema *S, dp_msg *m);
DP_HIDDEN int dp_l_schema_to_json(lua_State *L);    /* schema:to_json(type, bytes [, opts]) */
DP_HIDDEN int dp_l_handle_to_json(lua_State *L);    /* handle:to_json(bytes [, opts]) */
DP_HIDDEN int dp_l_schema_from_json(lua_State *L);  /* schema:from_json(type, json [, opts]) */
DP_HIDDEN int dp_l_handle_from_json(lua_State *L);  /* handle:from_json(json [, opts]) */

/* ---- features.c: protobuf editions, resolved features (issue 14) */
struct dp_dfile;       /* desc.h */
struct dp_dfeatures;
/* the resolved features of one scope: values of the FeatureSet enums */
typedef struct dp_features {
    uint8_t field_presence;           /* DP_FP_* */
    uint8_t enum_type;                /* DP_ENUM_OPEN / DP_ENUM_CLOSED */
    uint8_t repeated_field_encoding;  /* DP_REP_PACKED / DP_REP_EXPANDED */
    uint8_t utf8_validation;          /* DP_UTF8_VERIFY / DP_UTF8_NONE */
    uint8_t message_encoding;         /* DP_MSG_LENGTH_PREFIXED / DP_MSG_DELIMITED */
    uint8_t json_format;              /* DP_JSON_ALLOW / DP_JSON_LEGACY_BEST_EFFORT */
    int32_t edition;                  /* the file's google.protobuf.Edition: 998 proto2,
                                         999 proto3, 1000 2023, 1001 2024 */
} dp_features;
enum {
    DP_FP_EXPLICIT = 1, DP_FP_IMPLICIT = 2, DP_FP_LEGACY_REQUIRED = 3,
    DP_ENUM_OPEN = 1, DP_ENUM_CLOSED = 2,
    DP_REP_PACKED = 1, DP_REP_EXPANDED = 2,
    DP_UTF8_VERIFY = 2, DP_UTF8_NONE = 3,
    DP_MSG_LENGTH_PREFIXED = 1, DP_MSG_DELIMITED = 2,
    DP_JSON_ALLOW = 1, DP_JSON_LEGACY_BEST_EFFORT = 2,
    /* google.protobuf.Edition numbers */
    DP_EDITION_PROTO2 = 998, DP_EDITION_PROTO3 = 999,
    DP_EDITION_2023 = 1000, DP_EDITION_2024 = 1001
};
/* [-0, +0|1] the features of file f: its edition's defaults, then its
   FileOptions.features. Returns 1, or 0 with an error pushed (unsupported
   syntax or edition, unknown feature value: naming the file and edition). */
DP_HIDDEN int dp_file_features(lua_State *L, const struct dp_dfile *f,
                               dp_features *out);
/* [-0, +0|1] *out = parent overridden by the features set in fs (NULL: none);
   out may be parent. Returns 1, or 0 with "<where>: ..." pushed for an
   unknown value, or for features in a proto2/proto3 file. */
DP_HIDDEN int dp_features_merge(lua_State *L, const dp_features *parent,
                                const struct dp_dfeatures *fs,
                                const char *where, dp_features *out);
/* ---- protoc/compile.c: the .proto compiler (csrc/protoc/pc.h has its stages) */
/* dynpb.compile(opts) [-1, +1|2, e]: FileDescriptorSet bytes, or nil and
   "dynpb: compile: file:line:col: message"; raises on a bad opts table */
DP_HIDDEN int dp_l_compile(lua_State *L);
/* dynpb.load_proto(opts [, load_opts]) [-2, +1|2, e]: dynpb.load of the
   compiled bytes (needs the DP_UP_* upvalues of the module functions) */
DP_HIDDEN int dp_l_load_proto(lua_State *L);

#endif
