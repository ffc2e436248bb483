/*
 * schema.c -- compile a FileDescriptorSet into dynpb's immutable tables.
 *
 * Stages:
 *   1. dp_desc_read (desc_read.c) reads the wire bytes into structs in an
 *      arena owned by a dp_dset userdata (checking their whole structure):
 *      released as soon as the compile ends, and by its __gc if anything
 *      below raises;
 *   2. collect: every message and enum gets a full name and an index
 *      (duplicates rejected), recorded in the schema's type-name hash
 *      (S->types, schema memory: dp_find_type);
 *   3. enums, then messages, are compiled into blocks owned by the schema
 *      userdata (dp_schema_alloc); field names become Lua strings in the
 *      NAMES array (one entry per distinct name) so decode never builds or
 *      hashes a name.
 *
 * Contract of dp_compile: returns 1 with S filled, or 0 with one error
 * message pushed; it may raise only for memory errors. Either way the Lua
 * stack is as it was (plus the message on failure).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "desc.h"

typedef dp_dset FDSet;
typedef dp_dfile FileProto;
typedef dp_dmsg MsgProto;
typedef dp_dfield FieldProto;
typedef dp_denum EnumProto;

/* ---- schema memory: bump allocation in blocks from the Lua allocator */

#define DP_ALIGN 16
#define DP_BLOCK 16384

/* dp_schema_alloc without the zeroing, aligned to align (a power of 2 up
   to DP_ALIGN): for strings */
static void *schema_alloc_raw(lua_State *L, dp_schema *S, size_t n, size_t align) {
    size_t pad = (size_t)(-(uintptr_t)S->cur & (align - 1));
    if (S->cur && pad + n <= S->left) {
        void *p = S->cur + pad;
        S->cur += pad + n;
        S->left -= pad + n;
        return p;
    }
    return dp_schema_alloc(L, S, n);
}

void *dp_schema_alloc(lua_State *L, dp_schema *S, size_t n) {
    n = (n + (DP_ALIGN - 1)) & ~(size_t)(DP_ALIGN - 1);
    size_t pad = (size_t)(-(uintptr_t)S->cur & (DP_ALIGN - 1));   /* after a string */
    if (pad) {
        if (pad > S->left) pad = S->left;
        S->cur += pad;
        S->left -= pad;
    }
    if (n > S->left) {
        size_t hdr = (sizeof(dp_block) + DP_ALIGN - 1) & ~(size_t)(DP_ALIGN - 1);
        /* a big request gets a block of its own: the current block's rest
           stays usable */
        if (n > DP_BLOCK / 4) {
            dp_block *b = S->alloc(S->alloc_ud, NULL, 0, hdr + n);
            if (!b) luaL_error(L, "dynpb: not enough memory");
            b->size = hdr + n;
            S->nbytes += b->size;
            if (S->blocks) {
                b->next = S->blocks->next;
                S->blocks->next = b;
            } else {
                b->next = NULL;
                S->blocks = b;
                S->cur = NULL;
                S->left = 0;
            }
            memset((char *)b + hdr, 0, n);
            return (char *)b + hdr;
        }
        size_t size = hdr + DP_BLOCK;
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

/* n bytes of s and a NUL in schema memory */
static char *sdupn(lua_State *L, dp_schema *S, const char *s, size_t n) {
    char *d = schema_alloc_raw(L, S, n + 1, 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static const char *sdup(lua_State *L, dp_schema *S, const char *s) {
    return sdupn(L, S, s, strlen(s));
}

/* ---- the type-name hash: full name -> message or enum index
 * S->types has tmask + 1 slots (at least twice the types); a slot holds
 * the name's hash, v (0: empty; v <= nmsgs is message v - 1, a larger v
 * enum v - nmsgs - 1) and the full name, so a probe reads one slot and a
 * hit one name. */

/* a hash of s[0..n) that reads 8 bytes at a time (full type names are
   long: FNV-1a's byte loop was a tenth of a load) */
static uint32_t type_hash(const char *s, size_t n) {
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 32;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 29;
    return (uint32_t)h;
}

/* the slot of the name s[0..n), empty or holding it; *h = its hash */
static uint32_t type_slot(const dp_schema *S, const char *s, size_t n, uint32_t *h) {
    *h = type_hash(s, n);
    for (uint32_t i = *h & S->tmask;; i = (i + 1) & S->tmask) {
        const dp_tslot *t = &S->types[i];
        if (!t->v) return i;
        /* strncmp stops at the end of a shorter name; s has no NUL */
        if (t->hash == *h && strncmp(t->name, s, n) == 0 && t->name[n] == 0) return i;
    }
}

/* index of the type s[0..n): *kind 1 message, 2 enum; -1 if none.
   *full (unless NULL) = its full name in schema memory. */
static int32_t find_type_full(const dp_schema *S, const char *s, size_t n, int *kind,
                              const char **full) {
    if (!S->types || memchr(s, 0, n)) return -1;      /* no name holds a NUL */
    uint32_t h;
    const dp_tslot *t = &S->types[type_slot(S, s, n, &h)];
    uint32_t v = t->v;
    if (!v) return -1;
    if (full) *full = t->name;
    *kind = v <= S->nmsgs ? 1 : 2;
    return (int32_t)(v <= S->nmsgs ? v - 1 : v - S->nmsgs - 1);
}

static int32_t find_type(const dp_schema *S, const char *s, size_t n, int *kind) {
    return find_type_full(S, s, n, kind, NULL);
}

int32_t dp_find_type(const dp_schema *S, const char *s, size_t n, int *kind) {
    return find_type(S, s, n, kind);
}

int32_t dp_find_msg(const dp_schema *S, const char *s, size_t n) {
    int kind;
    int32_t i = find_type(S, s, n, &kind);
    return i >= 0 && kind == 1 ? i : -1;
}

int32_t dp_find_enum(const dp_schema *S, const char *s, size_t n) {
    int kind;
    int32_t i = find_type(S, s, n, &kind);
    return i >= 0 && kind == 2 ? i : -1;
}

/* ---- compile context */

typedef struct ctx {
    lua_State *L;
    dp_schema *S;
    dp_dset *d;              /* the set read (desc.h); its arena holds temporaries */
    int uv;                  /* absolute index of the uservalue table */
    int names;               /* absolute index of the NAMES array */
    int nnames;              /* entries in NAMES so far */
    /* the distinct names in NAMES (intern): nslot has nmask + 1 slots of
       hash << 32 | NAMES index (at most half full: grown by intern); by
       index, the Lua string's bytes, its length, and the name's copy in
       schema memory */
    uint32_t nmask;
    uint64_t *nslot;
    struct nrec { const char *lstr, *cname; size_t len; } *nrec;
    uint32_t ncap;           /* entries nrec has room for (index 0 unused) */
    /* a scratch buffer for per-message checks (grow_scratch) */
    void *scratch;
    size_t scratch_cap;
    /* per message/enum index: its proto, file and scope */
    const MsgProto **mproto;
    const FileProto **mfile;
    const EnumProto **eproto;
    const FileProto **efile;
    /* per file, message and enum index: its resolved features (issue 14) */
    dp_features *ffeat;
    dp_features *mfeat;
    dp_features *efeat;
    uint32_t nm, ne;
    /* compact per-type facts, read for every field that refers to a type
       (the dp_msg / dp_enum themselves are scattered: a cache miss each):
       mflags[i] MF_* of message i; edef[e] the default (first) value of
       enum e, eclosed[e] whether it is closed */
    uint8_t *mflags;
    int32_t *edef;
    uint8_t *eclosed;
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
    const char *w_file, *w_msg, *w_scope;
    dp_dstr w_field;
} ctx;

enum { MF_MAP_ENTRY = 1, MF_MAP_FIELD = 2 };   /* is a map entry / has a field of one */

/* [-0, +0, m] s as a C string (a copy in the dset arena), or "(none)"
   when absent: for messages, built only when one is made */
static const char *cs(ctx *c, dp_dstr s) {
    if (!s.off) return "(none)";
    char *b = dp_dalloc(c->L, c->d, (size_t)s.n + 1);
    memcpy(b, dp_dstr_p(c->d, s), s.n);
    return b;
}

/* A message "%s: ..." given WHERE for %s is prefixed by fail() with
   "file 'f': field 'M.x'" for the field in ctx: the text is only built when
   a compile fails (building it per field was a tenth of a compile). */
static const char WHERE[] = "\001";

/* [-1, +1] replaces the string at the top, when it begins with WHERE, by
   the field's "file 'f': field 'M.x'" (or extension) and the rest */
static void expand_where(ctx *c) {
    const char *msg = lua_tostring(c->L, -1);
    if (!msg || msg[0] != WHERE[0]) return;
    const char *field = cs(c, c->w_field);
    if (c->w_scope)
        lua_pushfstring(c->L, "file '%s': extension '%s%s%s' of '%s'%s", c->w_file,
                        c->w_scope, *c->w_scope ? "." : "", field, c->w_msg,
                        msg + 1);                             /* +1 */
    else
        lua_pushfstring(c->L, "file '%s': field '%s.%s'%s", c->w_file, c->w_msg,
                        field, msg + 1);                      /* +1 */
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

/* [-0, +0, m] the NAMES index of the name s[0..n) (no NUL inside; h is
   dp_name_hash of it), added
   on first use; *lname = the Lua string's bytes (anchored in NAMES, so
   stable), *cname = its NUL-terminated copy in schema memory (shared by
   every field and value of that name) */
static int32_t intern(ctx *c, const char *s, size_t n, uint32_t h, const char **lname,
                      const char **cname) {
    uint32_t i;
    for (i = h & c->nmask;; i = (i + 1) & c->nmask) {
        uint64_t e = c->nslot[i];
        if (!e) break;
        uint32_t k = (uint32_t)e;
        if ((uint32_t)(e >> 32) == h && c->nrec[k].len == n && memcmp(c->nrec[k].lstr, s, n) == 0) {
            *lname = c->nrec[k].lstr;
            *cname = c->nrec[k].cname;
            return (int32_t)k;
        }
    }
    uint32_t k = (uint32_t)++c->nnames;
    if (k >= c->ncap) {                                       /* full: double */
        struct nrec *r = dp_dalloc(c->L, c->d, sizeof *r * 2 * (size_t)c->ncap);
        memcpy(r, c->nrec, sizeof *r * c->ncap);
        c->nrec = r;
        c->ncap *= 2;
    }
    lua_pushlstring(c->L, s, n);                              /* +1 */
    c->nrec[k].lstr = lua_tostring(c->L, -1);
    lua_rawseti(c->L, c->names, (int)k);                      /* -1 */
    c->nrec[k].len = n;
    c->nrec[k].cname = sdupn(c->L, c->S, s, n);
    c->nslot[i] = (uint64_t)h << 32 | k;
    if (2 * k > c->nmask) {                                   /* half full: double */
        uint32_t mask = 2 * c->nmask + 1;
        uint64_t *t = dp_dalloc(c->L, c->d, sizeof(uint64_t) * ((size_t)mask + 1));
        for (uint32_t j = 0; j <= c->nmask; j++) {
            uint64_t e = c->nslot[j];
            if (!e) continue;
            uint32_t q = (uint32_t)(e >> 32) & mask;
            while (t[q]) q = (q + 1) & mask;
            t[q] = e;
        }
        c->nslot = t;
        c->nmask = mask;
    }
    *lname = c->nrec[k].lstr;
    *cname = c->nrec[k].cname;
    return (int32_t)k;
}

/* [-0, +0, m] a scratch buffer of at least n bytes (not zeroed), reused by
   the next call: grown in the dset arena, the old one dropped with it */
static void *grow_scratch(ctx *c, size_t n) {
    if (n > c->scratch_cap) {
        size_t cap = c->scratch_cap * 2 > n ? c->scratch_cap * 2 : n;
        c->scratch = dp_dalloc(c->L, c->d, cap);
        c->scratch_cap = cap;
    }
    return c->scratch;
}

/* slots for a hash of n entries: a power of 2, at least twice n */
static uint32_t slots_for(size_t n) {
    uint32_t s = 8;
    while (s < 2 * n) s *= 2;
    return s;
}

/* character classes of identifiers: 1 may start one, 2 may follow */
static const unsigned char ident_class[256] = {
    ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2, ['_'] = 3,
    ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3, ['G'] = 3, ['H'] = 3,
    ['I'] = 3, ['J'] = 3, ['K'] = 3, ['L'] = 3, ['M'] = 3, ['N'] = 3, ['O'] = 3, ['P'] = 3,
    ['Q'] = 3, ['R'] = 3, ['S'] = 3, ['T'] = 3, ['U'] = 3, ['V'] = 3, ['W'] = 3, ['X'] = 3,
    ['Y'] = 3, ['Z'] = 3,
    ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3, ['g'] = 3, ['h'] = 3,
    ['i'] = 3, ['j'] = 3, ['k'] = 3, ['l'] = 3, ['m'] = 3, ['n'] = 3, ['o'] = 3, ['p'] = 3,
    ['q'] = 3, ['r'] = 3, ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3, ['w'] = 3, ['x'] = 3,
    ['y'] = 3, ['z'] = 3,
};

static int is_ident(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    if (!u || !(ident_class[*u] & 1)) return 0;
    for (u++; *u; u++)
        if (!(ident_class[*u] & 2)) return 0;
    return 1;
}

/* is s an identifier? (the dp_dstr form of is_ident) */
static int is_ident_s(const ctx *c, dp_dstr s) {
    const unsigned char *u = (const unsigned char *)dp_dstr_p(c->d, s);
    if (!u || !s.n || !(ident_class[*u] & 1)) return 0;
    for (size_t i = 1; i < s.n; i++)
        if (!(ident_class[u[i]] & 2)) return 0;
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
                          const dp_dfeatures *fs, dp_features *out,
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

/* ---- stage 2: collect names */

/* counts the messages and enums under m */
static void count_types(const MsgProto *m, uint32_t *nm, uint32_t *ne) {
    (*nm)++;
    *ne += (uint32_t)m->n_enum_type;
    for (size_t i = 0; i < m->n_nested_type; i++) count_types(&m->nested_type[i], nm, ne);
}

/* [-0, +0|1] registers full name "scope.name" as message (kind 1) or enum
   (kind 2) idx; *out receives the full name, made in schema memory. */
static int register_name(ctx *c, const FileProto *f, const char *scope,
                         const char *name, int kind, uint32_t idx,
                         const char **out) {
    dp_schema *S = c->S;
    if (!is_ident(name))
        return fail(c, "file '%s': invalid type name '%s' in scope '%s'",
                    f->name, name ? name : "(none)", scope);
    size_t sn = strlen(scope), nn = strlen(name);
    size_t n = sn ? sn + 1 + nn : nn;
    char *full = schema_alloc_raw(c->L, S, n + 1, 1);
    if (sn) {
        memcpy(full, scope, sn);
        full[sn] = '.';
        memcpy(full + sn + 1, name, nn + 1);
    } else {
        memcpy(full, name, nn + 1);
    }
    uint32_t h, slot = type_slot(S, full, n, &h);    /* full: C strings, no NUL inside */
    if (S->types[slot].v) return fail(c, "file '%s': duplicate type name '%s'", f->name, full);
    *out = full;
    if (kind == 1) S->msgs[idx].namelen = (uint32_t)n;
    else S->enums[idx].namelen = (uint32_t)n;
    S->types[slot].hash = h;
    S->types[slot].v = kind == 1 ? idx + 1 : S->nmsgs + idx + 1;
    S->types[slot].name = full;
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
    if (m->options && m->options->has_map_entry && m->options->map_entry)
        c->mflags[idx] = MF_MAP_ENTRY;
    if (!register_name(c, f, scope, m->name, 1, idx, &dm->name))
        return 0;
    if (!scope_features(c, parent, OPT_FEATURES(m), &c->mfeat[idx], "file '%s': message '%s'",
                        f->name, dm->name))
        return 0;
    for (size_t i = 0; i < m->n_enum_type; i++) {
        uint32_t e = (*ie)++;
        c->eproto[e] = &m->enum_type[i];
        c->efile[e] = f;
        if (!register_name(c, f, dm->name, m->enum_type[i].name, 2, e, &c->S->enums[e].name))
            return 0;
        if (!scope_features(c, &c->mfeat[idx], OPT_FEATURES(&m->enum_type[i]), &c->efeat[e],
                            "file '%s': enum '%s'", f->name, c->S->enums[e].name))
            return 0;
    }
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!collect_msg(c, f, dm->name, &m->nested_type[i], &c->mfeat[idx], im, ie)) return 0;
    return 1;
}

/* the slot of file name s in the hash fs (mask) of file indices + 1 */
static uint32_t file_slot(const FDSet *set, const uint32_t *fs, uint32_t mask, const char *s) {
    for (uint32_t i = type_hash(s, strlen(s)) & mask;; i = (i + 1) & mask)
        if (!fs[i] || strcmp(set->file[fs[i] - 1].name, s) == 0) return i;
}

static int collect(ctx *c, const FDSet *set) {
    lua_State *L = c->L;
    dp_schema *S = c->S;
    uint32_t nm = 0, ne = 0;
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = &set->file[i];
        ne += (uint32_t)f->n_enum_type;
        for (size_t j = 0; j < f->n_message_type; j++) count_types(&f->message_type[j], &nm, &ne);
    }
    c->nm = nm;
    c->ne = ne;
    S->nmsgs = nm;
    S->nenums = ne;
    S->msgs = dp_schema_alloc(L, S, sizeof(dp_msg) * (nm ? nm : 1));
    S->enums = dp_schema_alloc(L, S, sizeof(dp_enum) * (ne ? ne : 1));
    S->hints = dp_schema_alloc(L, S, nm ? nm : 1);
    uint32_t tslots = slots_for((size_t)nm + ne);
    S->tmask = tslots - 1;
    S->types = dp_schema_alloc(L, S, sizeof(dp_tslot) * tslots);
    /* temporaries, in the dset arena */
    c->mproto = dp_dalloc(L, c->d, sizeof(void *) * ((size_t)nm + 1));
    c->mfile = dp_dalloc(L, c->d, sizeof(void *) * ((size_t)nm + 1));
    c->eproto = dp_dalloc(L, c->d, sizeof(void *) * ((size_t)ne + 1));
    c->efile = dp_dalloc(L, c->d, sizeof(void *) * ((size_t)ne + 1));
    c->mflags = dp_dalloc(L, c->d, (size_t)nm + 1);
    c->edef = dp_dalloc(L, c->d, sizeof(int32_t) * ((size_t)ne + 1));
    c->eclosed = dp_dalloc(L, c->d, (size_t)ne + 1);
    dp_features *feat = dp_dalloc(L, c->d, sizeof(dp_features) * ((size_t)nm + ne + 1));
    c->mfeat = feat;
    c->efeat = feat + nm;
    c->nmask = 4095;
    c->nslot = dp_dalloc(L, c->d, sizeof(uint64_t) * 4096);
    c->ncap = 2048;
    c->nrec = dp_dalloc(L, c->d, sizeof *c->nrec * c->ncap);

    /* file names unique, dependencies present in the set */
    uint32_t fmask = slots_for(set->n_file) - 1;
    uint32_t *fs = dp_dalloc(L, c->d, sizeof(uint32_t) * (fmask + 1));
    c->ffeat = dp_dalloc(L, c->d, sizeof(dp_features) * (set->n_file + 1));
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = &set->file[i];
        if (!f->name || !*f->name) return fail(c, "file #%d has no name", (int)i + 1);
        if (!dp_file_features(L, f, &c->ffeat[i])) return 0;
        uint32_t slot = file_slot(set, fs, fmask, f->name);
        if (fs[slot]) return fail(c, "duplicate file '%s' in the set", f->name);
        fs[slot] = (uint32_t)i + 1;
        if (!is_package(f->package))
            return fail(c, "file '%s': invalid package name '%s'", f->name, f->package);
    }
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = &set->file[i];
        for (size_t j = 0; j < f->n_dependency; j++) {
            const char *dep = f->dependency[j] ? f->dependency[j] : "";
            if (!fs[file_slot(set, fs, fmask, dep)])
                return fail(c, "file '%s' imports '%s', which is not in the set "
                               "(make the set with protoc --include_imports)",
                            f->name, dep);
        }
    }

    uint32_t im = 0, ie = 0;
    for (size_t i = 0; i < set->n_file; i++) {
        const FileProto *f = &set->file[i];
        const char *pkg = f->package ? f->package : "";
        const dp_features *ff = &c->ffeat[i];
        for (size_t j = 0; j < f->n_enum_type; j++) {
            uint32_t e = ie++;
            c->eproto[e] = &f->enum_type[j];
            c->efile[e] = f;
            if (!register_name(c, f, pkg, f->enum_type[j].name, 2, e, &c->S->enums[e].name))
                return 0;
            if (!scope_features(c, ff, OPT_FEATURES(&f->enum_type[j]), &c->efeat[e],
                                "file '%s': enum '%s'", f->name, c->S->enums[e].name))
                return 0;
        }
        for (size_t j = 0; j < f->n_message_type; j++)
            if (!collect_msg(c, f, pkg, &f->message_type[j], ff, &im, &ie)) return 0;
    }
    return 1;
}

/* ---- stage 2b: extensions (issue 11)
 * Every `extend` in the set (top level or nested in a message) is listed
 * under the message it extends, so compile_msg compiles each extension as
 * one more field of that message, named "[full.name]". The lists live in
 * the dset arena. */

static int resolve(ctx *c, const char *scope, dp_dstr tn, int *kind, int32_t *idx,
                   const char **full);

/* [-0, +0] the message an extension extends; -1 with an error pushed */
static int32_t extendee_of(ctx *c, const FileProto *f, const char *scope, const FieldProto *fp) {
    int kind;
    int32_t sub;
    if (!fp->extendee.n)
        return fail(c, "file '%s': extension '%s' has no extendee", f->name,
                    cs(c, fp->name)), -1;
    if (!resolve(c, scope, fp->extendee, &kind, &sub, NULL) || kind != 1)
        return fail(c, "file '%s': extension '%s%s%s' extends '%s', which is not a message in "
                       "the set (make the set with protoc --include_imports)",
                    f->name, scope, *scope ? "." : "", cs(c, fp->name),
                    cs(c, fp->extendee)), -1;
    return sub;
}

/* visits every extension declaration: pass 0 counts per extendee (into
   extstart[i + 1]), pass 1 fills ext/extfile/extscope (cursor: fill[]) */
static int visit_extensions(ctx *c, const FDSet *set, int pass, uint32_t *fill) {
    for (size_t i = 0; i < set->n_file + c->nm; i++) {
        const FileProto *f;
        const char *scope;
        const FieldProto *list;
        size_t n;
        if (i < set->n_file) {
            f = &set->file[i];
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
            int32_t to = extendee_of(c, f, scope, &list[j]);
            if (to < 0) return 0;
            if (pass == 0) {
                c->extstart[to + 1]++;
            } else {
                uint32_t k = fill[to]++;
                c->ext[k] = &list[j];
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
    for (size_t i = 0; i < set->n_file; i++) next += set->file[i].n_extension;
    for (uint32_t i = 0; i < nm; i++) next += c->mproto[i]->n_extension;
    c->extstart = dp_dalloc(L, c->d, sizeof(uint32_t) * ((size_t)nm + 1));
    uint32_t *fill = dp_dalloc(L, c->d, sizeof(uint32_t) * ((size_t)nm + 1));
    c->ext = dp_dalloc(L, c->d, sizeof(void *) * (next + 1));
    c->extfile = dp_dalloc(L, c->d, sizeof(void *) * (next + 1));
    c->extscope = dp_dalloc(L, c->d, sizeof(void *) * (next + 1));
    if (next == 0) return 1;
    if (!visit_extensions(c, set, 0, NULL)) return 0;
    for (uint32_t i = 0; i < nm; i++) c->extstart[i + 1] += c->extstart[i];
    for (uint32_t i = 0; i < nm; i++) fill[i] = c->extstart[i];
    return visit_extensions(c, set, 1, fill);
}

/* ---- stage 3a: enums */

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
    c->eclosed[idx] = e->closed;
    e->json_format = ef->json_format;
    if (ep->n_value == 0) return fail(c, "file '%s': enum '%s' has no values", f->name, e->name);
    e->nvalues = (uint32_t)ep->n_value;
    e->values = dp_schema_alloc(L, c->S, sizeof(dp_enumval) * ep->n_value);
    /* value names seen so far: a hash of value indices + 1 in the scratch
       buffer, so the check is linear (an enum of 100,000 values must not
       take minutes); then the (number, index) pairs sorted below */
    uint32_t sslots = slots_for(ep->n_value), smask = sslots - 1;
    size_t hbytes = sizeof(uint32_t) * sslots;
    hbytes = (hbytes + 7) & ~(size_t)7;
    char *scr = grow_scratch(c, hbytes + sizeof(enum_slot) * ep->n_value);
    uint32_t *seen = (uint32_t *)scr;
    memset(seen, 0, sizeof(uint32_t) * sslots);
    for (size_t i = 0; i < ep->n_value; i++) {
        const dp_devalue *v = &ep->value[i];
        if (!is_ident_s(c, v->name))
            return fail(c, "file '%s': enum '%s': invalid value name '%s'", f->name, e->name,
                        cs(c, v->name));
        if (!v->has_number)
            return fail(c, "file '%s': enum '%s': value '%s' has no number", f->name, e->name,
                        cs(c, v->name));
        dp_features vf;   /* checked only: no feature of a value has a run-time effect */
        if (!scope_features(c, ef, OPT_FEATURES(v), &vf, "file '%s': enum value '%s.%s'",
                            f->name, e->name, OPT_FEATURES(v) ? cs(c, v->name) : ""))
            return 0;
        size_t vn = v->name.n;
        const char *vp = dp_dstr_p(c->d, v->name);
        uint32_t vh = dp_name_hash(vp, vn), h;
        for (h = vh & smask; seen[h]; h = (h + 1) & smask)
            if (strncmp(e->values[seen[h] - 1].cname, vp, vn) == 0 &&
                e->values[seen[h] - 1].cname[vn] == 0)
                return fail(c, "file '%s': enum '%s': duplicate value name '%s'", f->name,
                            e->name, cs(c, v->name));
        seen[h] = (uint32_t)i + 1;
        e->values[i].number = v->number;
        e->values[i].name = intern(c, vp, vn, vh, &e->values[i].lname, &e->values[i].cname);
    }
    if (!e->closed && e->values[0].number != 0)
        return fail(c, "file '%s': enum '%s': the first value of %s must be 0", f->name,
                    e->name, ef->edition == DP_EDITION_PROTO3 ? "a proto3 enum"
                                                              : "an open enum");
    /* by_number: indices sorted by number; the first declared of aliases kept.
       Sorted by (number, declaration index) in a scratch userdata, so equal
       numbers keep declaration order; O(n log n) for any input order. */
    int32_t *bn = dp_schema_alloc(L, c->S, sizeof(int32_t) * e->nvalues);
    enum_slot *tmp = (enum_slot *)(scr + hbytes);
    for (uint32_t i = 0; i < e->nvalues; i++) {
        tmp[i].number = e->values[i].number;
        tmp[i].index = (int32_t)i;
    }
    int ordered = 1;   /* declared in number order (the usual case): already sorted */
    for (uint32_t i = 1; ordered && i < e->nvalues; i++) ordered = tmp[i - 1].number <= tmp[i].number;
    if (!ordered) qsort(tmp, e->nvalues, sizeof(enum_slot), enum_slot_cmp);
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->nvalues; i++) {
        if (i > 0 && tmp[i].number == tmp[i - 1].number) continue;          /* alias */
        bn[n++] = tmp[i].index;
    }
    e->by_number = bn;
    /* name hashes (content and interned address), at most half full */
    uint32_t slots = 4;
    while (slots < 2 * e->nvalues) slots *= 2;
    e->hmask = slots - 1;
    e->byname = dp_schema_alloc(L, c->S, sizeof(uint32_t) * 2 * slots);   /* and byptr */
    e->byptr = e->byname + slots;
    for (uint32_t i = 0; i < e->nvalues; i++) {
        uint32_t h = dp_name_hash(e->values[i].cname, strlen(e->values[i].cname)) & e->hmask;
        while (e->byname[h]) h = (h + 1) & e->hmask;
        e->byname[h] = i + 1;
        h = dp_ptr_hash(e->values[i].lname) & e->hmask;
        while (e->byptr[h]) h = (h + 1) & e->hmask;
        e->byptr[h] = i + 1;
    }
    e->nunique = n;
    c->edef[idx] = e->values[0].number;
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

/* ---- stage 3b: messages */

/* [-0, +0] resolves type_name seen in message scope; returns 1 and sets
   *kind (1 message, 2 enum) and *idx, or 0 if not found. Relative names are
   searched from the innermost scope outwards. */
static int resolve(ctx *c, const char *scope, dp_dstr tns, int *kind, int32_t *idx,
                   const char **full) {
    const char *tn = dp_dstr_p(c->d, tns);
    const dp_schema *S = c->S;
    int32_t i;
    if (tns.n && tn[0] == '.') {
        i = find_type_full(S, tn + 1, tns.n - 1, kind, full);
    } else {
        /* try scope prefixes, longest first: "scope.tn" made in buf */
        size_t n = strlen(scope), tl = tns.n;
        char *buf = dp_dalloc(c->L, c->d, n + tl + 2);
        memcpy(buf, scope, n);
        for (;;) {
            if (n) buf[n] = '.';
            memcpy(buf + (n ? n + 1 : 0), tn, tl);
            i = find_type_full(S, buf, n ? n + 1 + tl : tl, kind, full);
            if (i >= 0 || n == 0) break;
            while (n > 0 && scope[n - 1] != '.') n--;
            if (n > 0) n--;   /* drop the dot */
        }
    }
    if (i < 0) return 0;
    *idx = i;
    return 1;
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

/* [-0, +0|1] the features of the scope an extension is declared in: file
   ef's (scope is its package), or those of the message named scope */
static int ext_scope_features(ctx *c, const FileProto *ef, const char *scope,
                              dp_features *out) {
    int32_t mi = ef->package ? scope == ef->package ? -1 : dp_find_msg(c->S, scope, strlen(scope))
                             : !*scope ? -1 : dp_find_msg(c->S, scope, strlen(scope));
    *out = mi < 0 ? c->ffeat[ef - c->d->file] : c->mfeat[mi];
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
    m->map_entry = (uint8_t)(c->mflags[idx] & MF_MAP_ENTRY);
    m->message_set = (uint8_t)(mp->options && mp->options->has_message_set_wire_format &&
                               mp->options->message_set_wire_format);
    uint32_t e0 = c->extstart[idx], ne = c->extstart[idx + 1] - e0;
    size_t nall = mp->n_field + ne;
    m->nfields = (uint32_t)nall;
    if (nall > 65535)
        return fail(c, "file '%s': message '%s' has more than 65535 fields (extensions "
                       "included)", f->name, m->name);
    /* fields, then the oneof names, in one allocation */
    m->fields = dp_schema_alloc(L, S, sizeof(dp_field) * (nall ? nall : 1) +
                                          sizeof(char *) * (mp->n_oneof_decl + 1));
    m->noneofs = (uint32_t)mp->n_oneof_decl;
    m->oneof_names = (const char **)(m->fields + (nall ? nall : 1));
    for (size_t i = 0; i < mp->n_oneof_decl; i++) {
        const char *on = mp->oneof_decl[i].name;
        if (!is_ident(on))
            return fail(c, "file '%s': message '%s': invalid oneof name '%s'", f->name, m->name,
                        on ? on : "(none)");
        m->oneof_names[i] = sdup(L, S, on);
    }

    /* field numbers and names seen so far (hashes of field indices + 1),
       and the oneofs that have a member, in the scratch buffer: these
       checks are linear in the number of fields (65,535 fields must not
       take seconds) */
    uint32_t sslots = slots_for(nall), smask = sslots - 1;
    uint32_t *seen_num = grow_scratch(c, sizeof(uint32_t) * 2 * sslots + mp->n_oneof_decl + 1);
    uint32_t *seen_name = seen_num + sslots;
    unsigned char *has_member = (unsigned char *)(seen_name + sslots);
    memset(seen_num, 0, sizeof(uint32_t) * 2 * sslots + mp->n_oneof_decl + 1);
    for (size_t i = 0; i < nall; i++) {
        /* normal fields first, then the extensions of this message: an
           extension is compiled as one more field, named "[full.name]",
           with the rules of the file that declares it */
        int is_ext = i >= mp->n_field;
        const FieldProto *fp = is_ext ? c->ext[e0 + (i - mp->n_field)] : &mp->field[i];
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
        if (!is_ident_s(c, fp->name))
            return fail(c, "file '%s': %s '%s': invalid field name '%s'", xf->name,
                        is_ext ? "extensions of" : "message", is_ext ? scope : m->name,
                        cs(c, fp->name));
        /* "file 'f': field 'M.x'" (or the extension's), built by fail() */
        const char *where = WHERE;
        c->w_file = is_ext ? xf->name : f->name;
        c->w_msg = m->name;
        c->w_field = fp->name;
        c->w_scope = is_ext ? scope : NULL;
        const char *fname = dp_dstr_p(c->d, fp->name);
        size_t fnamelen = fp->name.n;
        if (is_ext) {
            /* the key "[full.name]", interned like a field name */
            size_t sl = strlen(scope);
            char *b = dp_dalloc(L, c->d, sl + fnamelen + 4);
            b[0] = '[';
            memcpy(b + 1, scope, sl);
            if (sl) b[1 + sl++] = '.';
            memcpy(b + 1 + sl, fname, fnamelen);
            b[1 + sl + fnamelen] = ']';
            fnamelen += sl + 2;
            b[fnamelen] = 0;
            fname = b;
            fd->flags |= DPF_EXTENSION;
        }
        if (!fp->has_number || fp->number <= 0 || fp->number > 536870911)
            return fail(c, "%s: invalid field number %d", where, fp->has_number ? fp->number : 0);
        if (fp->number >= 19000 && fp->number <= 19999)
            return fail(c, "%s: field number %d is reserved for the protobuf implementation",
                        where, fp->number);
        if (is_ext) {
            size_t r;
            for (r = 0; r < mp->n_extension_range; r++) {
                const dp_dxrange *er = &mp->extension_range[r];
                if (fp->number >= er->start && fp->number < er->end) break;
            }
            if (r == mp->n_extension_range)
                return fail(c, "%s: number %d is not in an extension range of '%s'", where,
                            fp->number, m->name);
            if (fp->has_oneof_index) return fail(c, "%s: an extension cannot be in a oneof", where);
        }
        uint32_t hn, hs, fh = dp_name_hash(fname, fnamelen);
        for (hn = ((uint32_t)fp->number * 2654435761u) & smask; seen_num[hn]; hn = (hn + 1) & smask)
            if (m->fields[seen_num[hn] - 1].number == (uint32_t)fp->number)
                return fail(c, "%s: duplicate field number %d%s", where, fp->number,
                            is_ext ? " (a field or another extension of the message has it)" : "");
        for (hs = fh & smask; seen_name[hs]; hs = (hs + 1) & smask) {
            const dp_field *o = &m->fields[seen_name[hs] - 1];
            if (o->namelen == fnamelen && memcmp(o->cname, fname, fnamelen) == 0)
                return fail(c, "%s: duplicate field name", where);
        }
        seen_num[hn] = seen_name[hs] = (uint32_t)i + 1;
        fd->number = (uint32_t)fp->number;
        fd->gidx = S->nfields_total++;
        fd->name = intern(c, fname, fnamelen, fh, &fd->lname, &fd->cname);
        fd->namelen = (uint32_t)fnamelen;
        fd->oneof = -1;
        fd->sub = -1;
        fd->jname = fp->json_name.n && fname[0] != '[' &&
                            (fp->json_name.n != fnamelen ||
                             memcmp(dp_dstr_p(c->d, fp->json_name), fname, fnamelen))
                        ? sdupn(L, S, dp_dstr_p(c->d, fp->json_name), fp->json_name.n)
                        : NULL;   /* NULL: dp_json_prepare */
        fd->jnamelen = fd->jname ? (uint32_t)strlen(fd->jname) : 0;

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
                const dp_doneof *od = &mp->oneof_decl[fp->oneof_index];
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
        if (fp->type_name.n) {
            int kind;
            int32_t sub;
            const char *full;
            if (!resolve(c, scope, fp->type_name, &kind, &sub, &full))
                return fail(c, "%s: type '%s' not found in the set (is an import missing? "
                               "make the set with protoc --include_imports)",
                            where, cs(c, fp->type_name));
            if (type == 0) type = kind == 1 ? DP_T_MESSAGE : DP_T_ENUM;
            if ((kind == 1 && type != DP_T_MESSAGE && type != DP_T_GROUP) ||
                (kind == 2 && type != DP_T_ENUM))
                return fail(c, "%s: type '%s' is not a%s", where, cs(c, fp->type_name),
                            type == DP_T_ENUM ? "n enum" : " message");
            fd->sub = sub;
            fd->type_name = full;
        } else if (type == DP_T_MESSAGE || type == DP_T_GROUP || type == DP_T_ENUM || type == 0) {
            return fail(c, "%s: missing type name", where);
        }
        if (type < 1 || type > 18) return fail(c, "%s: invalid type %d", where, type);
        /* features.message_encoding = DELIMITED: a group on the wire (never
           for a map field, nor for the value of a map entry) */
        if (type == DP_T_MESSAGE && fx.message_encoding == DP_MSG_DELIMITED &&
            !(c->mflags[fd->sub] & MF_MAP_ENTRY) && !(c->mflags[idx] & MF_MAP_ENTRY))
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
            const dp_dopts *o = fp->options;
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
        if (type == DP_T_MESSAGE && (c->mflags[fd->sub] & MF_MAP_ENTRY))
            c->mflags[idx] |= MF_MAP_FIELD;
        if (type == DP_T_ENUM && c->eclosed[fd->sub]) {
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
            fd->def.i = c->edef[fd->sub];
        }
    }
    /* oneof members of each oneof must exist */
    for (uint32_t o = 0; o < m->noneofs; o++)
        if (!has_member[o])
            return fail(c, "file '%s': message '%s': oneof '%s' has no fields", f->name, m->name,
                        m->oneof_names[o]);

    uint32_t sorted = 1;
    for (uint32_t i = 1; sorted && i < m->nfields; i++)
        sorted = m->fields[i - 1].number < m->fields[i].number;
    if (!sorted) qsort(m->fields, m->nfields, sizeof(dp_field), field_cmp);
    /* dense index over small numbers */
    uint32_t maxn = 0;
    for (uint32_t i = 0; i < m->nfields; i++)
        if (m->fields[i].number < 1024 && m->fields[i].number > maxn) maxn = m->fields[i].number;
    m->ndense = m->nfields ? maxn + 1 : 0;
    /* name hash: at least twice as many slots as fields, so probes end */
    uint32_t slots = 4;
    while (slots < 2 * m->nfields) slots *= 2;
    m->hmask = slots - 1;
    /* byname, byptr and dense in one allocation */
    m->byname = dp_schema_alloc(L, S, sizeof(uint16_t) * (2 * (size_t)slots +
                                                          (m->ndense ? m->ndense : 1)));
    m->byptr = m->byname + slots;
    m->dense = m->byptr + slots;
    for (uint32_t i = 0; i < m->nfields; i++)
        if (m->fields[i].number < m->ndense) m->dense[m->fields[i].number] = (uint16_t)(i + 1);
    for (uint32_t i = 0; i < m->nfields; i++) {
        uint32_t h = dp_name_hash(m->fields[i].cname, m->fields[i].namelen) & m->hmask;
        while (m->byname[h]) h = (h + 1) & m->hmask;
        m->byname[h] = (uint16_t)(i + 1);
        h = dp_ptr_hash(m->fields[i].lname) & m->hmask;
        while (m->byptr[h]) h = (h + 1) & m->hmask;
        m->byptr[h] = (uint16_t)(i + 1);
    }
    dp_json_prepare(L, S, m);                  /* encode's key table: on first use */
    return 1;
}

/* map entries: key = 1 (integral or string), value = 2, nothing else;
   a field whose type is a map entry must be repeated. */
static int check_maps(ctx *c) {
    dp_schema *S = c->S;
    for (uint32_t i = 0; i < S->nmsgs; i++) {
        dp_msg *m = &S->msgs[i];
        if (!c->mflags[i]) continue;                  /* no map here */
        for (uint32_t j = 0; (c->mflags[i] & MF_MAP_FIELD) && j < m->nfields; j++) {
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
    luaL_checkstack(L, 16, "dynpb: compile");
    dp_dset *d = dp_dset_push(L);                                 /* +1 dset */
    if (!dp_desc_read(L, d, data, len, err, sizeof err)) {
        dp_dset_release(d);
        lua_settop(L, top);
        lua_pushstring(L, err);
        return 0;
    }
    if (d->n_file == 0) {
        dp_dset_release(d);
        lua_settop(L, top);
        lua_pushstring(L, "empty descriptor set: it contains no files");
        return 0;
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.S = S;
    c.d = d;
    c.uv = uvidx;
    lua_newtable(L); lua_pushvalue(L, -1); lua_rawseti(L, uvidx, DP_UV_NAMES);
    c.names = lua_gettop(L);
    lua_newtable(L); lua_rawseti(L, uvidx, DP_UV_ENUMTABS);

    int ok = collect(&c, d);
    if (ok) ok = collect_extensions(&c, d);
    for (uint32_t i = 0; ok && i < c.ne; i++) ok = compile_enum(&c, i);
    for (uint32_t i = 0; ok && i < c.nm; i++) ok = compile_msg(&c, i);
    if (ok) ok = check_maps(&c);
    if (ok) S->fhints = dp_schema_alloc(L, S, sizeof(uint16_t) * (S->nfields_total + 1));
    dp_dset_release(d);            /* the set read now, not at the next GC */
    if (!ok) {
        lua_replace(L, top + 1);   /* message over the dset */
        lua_settop(L, top + 1);
        return 0;
    }
    lua_settop(L, top);
    return 1;
}
