/*
 * desc_read.c -- a FileDescriptorSet's wire bytes -> the dp_d* structs of
 * desc.h, in one pass (schema.c compiles those).
 *
 * Only what schema.c compiles is kept (files, messages, fields, oneofs,
 * extension ranges, enums, values, and from the options their features and
 * packed / map_entry / message_set_wire_format). Every other field is still
 * checked: each message field of descriptor.proto is entered (services,
 * methods, source info, uninterpreted options, ...) and its tags read as
 * dynpb's own decoder reads them, since options.c decodes the same bytes
 * again with descriptor.proto (issue 11) and the two must agree. As in that
 * decoder, a known field with another wire type is an unknown field, and
 * unknown fields (groups included: custom options may be groups) are
 * skipped with their structure checked. Message declarations nest at most
 * DP_MAX_TYPE_DEPTH deep, so the recursion here is bounded.
 *
 * Repeated fields become arrays: a message's own tags are counted first
 * (a walk over its top-level fields only), then its fields are read.
 */
#include <stdio.h>
#include <string.h>

#include "desc.h"

/* ---- the arena */

#define DA_ALIGN 16

static int dset_gc(lua_State *L) {
    dp_dset_release(lua_touserdata(L, 1));
    return 0;
}

dp_dset *dp_dset_push(lua_State *L) {
    dp_dset *d = dp_newudata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    d->alloc = lua_getallocf(L, &d->alloc_ud);
    d->chunk = (size_t)64 << 10;
    if (luaL_newmetatable(L, "dynpb.dset")) {     /* +1 metatable */
        lua_pushcfunction(L, dset_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                      /* -1 */
    return d;
}

void dp_dset_release(dp_dset *d) {
    dp_dchunk *c = d->chunks;
    while (c) {
        dp_dchunk *next = c->next;
        d->alloc(d->alloc_ud, c, c->size, 0);
        c = next;
    }
    d->chunks = NULL;
    d->cur = NULL;
    d->left = 0;
    d->n_file = 0;
    d->file = NULL;
}

/* dalloc_raw when the newest chunk has no room: a new chunk */
static void *dalloc_chunk(lua_State *L, dp_dset *d, size_t n) {
    size_t hdr = (sizeof(dp_dchunk) + DA_ALIGN - 1) & ~(size_t)(DA_ALIGN - 1);
    size_t want = n > d->chunk ? n : d->chunk;
    dp_dchunk *c = want <= (size_t)-1 - hdr ? d->alloc(d->alloc_ud, NULL, 0, hdr + want) : NULL;
    if (!c) luaL_error(L, "dynpb: not enough memory");
    c->next = d->chunks;
    c->size = hdr + want;
    d->chunks = c;
    d->cur = (char *)c + hdr;
    d->left = want;
    if (d->chunk < ((size_t)4 << 20)) d->chunk *= 2;   /* 64 KiB, 128 KiB, ... 4 MiB */
    void *p = d->cur;
    d->cur += n;
    d->left -= n;
    return p;
}

/* n bytes, not zeroed, aligned to align (a power of 2 up to DA_ALIGN) */
static inline void *dalloc_raw(lua_State *L, dp_dset *d, size_t n, size_t align) {
    size_t pad = (size_t)(-(uintptr_t)d->cur & (align - 1));
    if (pad + n > d->left) return dalloc_chunk(L, d, n);
    void *p = d->cur + pad;
    d->cur += pad + n;
    d->left -= pad + n;
    return p;
}

void *dp_dalloc(lua_State *L, dp_dset *d, size_t n) {
    void *p = dalloc_raw(L, d, n, 8);
    memset(p, 0, n);
    return p;
}

/* ---- what descriptor.proto's messages hold */

enum { K_SET, K_FILE, K_MSG, K_FIELD, K_ENUM, K_EVAL, K_SVC, K_METHOD, K_ONEOF, K_XRANGE,
       K_FILEOPTS, K_MSGOPTS, K_FIELDOPTS, K_ONEOFOPTS, K_ENUMOPTS, K_EVALOPTS, K_SVCOPTS,
       K_METHODOPTS, K_XOPTS, K_FEATURES, K_UNINT, K_SCI, K_LOC, K_LEAF };

/* the kind of message field num of a message of kind k holds, or -1 (a
   scalar, or not a field of descriptor.proto). K_LEAF: a message without
   message fields (reserved ranges, name parts, locations, ...). */
static int child_kind(int k, uint32_t num) {
    switch (k) {
    case K_SET: return num == 1 ? K_FILE : -1;
    case K_FILE:
        switch (num) {
        case 4: return K_MSG;
        case 5: return K_ENUM;
        case 6: return K_SVC;
        case 7: return K_FIELD;
        case 8: return K_FILEOPTS;
        case 9: return K_SCI;
        default: return -1;
        }
    case K_MSG:
        switch (num) {
        case 2: case 6: return K_FIELD;
        case 3: return K_MSG;
        case 4: return K_ENUM;
        case 5: return K_XRANGE;
        case 7: return K_MSGOPTS;
        case 8: return K_ONEOF;
        case 9: return K_LEAF;                       /* reserved_range */
        default: return -1;
        }
    case K_FIELD: return num == 8 ? K_FIELDOPTS : -1;
    case K_ONEOF: return num == 2 ? K_ONEOFOPTS : -1;
    case K_ENUM: return num == 2 ? K_EVAL : num == 3 ? K_ENUMOPTS : num == 4 ? K_LEAF : -1;
    case K_EVAL: return num == 3 ? K_EVALOPTS : -1;
    case K_SVC: return num == 2 ? K_METHOD : num == 3 ? K_SVCOPTS : -1;
    case K_METHOD: return num == 4 ? K_METHODOPTS : -1;
    case K_XRANGE: return num == 3 ? K_XOPTS : -1;
    case K_FILEOPTS: return num == 50 ? K_FEATURES : num == 999 ? K_UNINT : -1;
    case K_MSGOPTS: return num == 12 ? K_FEATURES : num == 999 ? K_UNINT : -1;
    case K_FIELDOPTS:                                /* edition_defaults, feature_support */
        return num == 21 ? K_FEATURES : num == 999 ? K_UNINT : (num == 20 || num == 22) ? K_LEAF : -1;
    case K_ONEOFOPTS: return num == 1 ? K_FEATURES : num == 999 ? K_UNINT : -1;
    case K_ENUMOPTS: return num == 7 ? K_FEATURES : num == 999 ? K_UNINT : -1;
    case K_EVALOPTS:                                 /* feature_support */
        return num == 2 ? K_FEATURES : num == 999 ? K_UNINT : num == 4 ? K_LEAF : -1;
    case K_SVCOPTS: return num == 34 ? K_FEATURES : num == 999 ? K_UNINT : -1;
    case K_METHODOPTS: return num == 35 ? K_FEATURES : num == 999 ? K_UNINT : -1;
    case K_XOPTS:                                    /* declaration */
        return num == 50 ? K_FEATURES : num == 999 ? K_UNINT : num == 2 ? K_LEAF : -1;
    case K_UNINT: return num == 2 ? K_LEAF : -1;     /* name parts */
    case K_SCI: return num == 1 ? K_LOC : -1;        /* locations */
    default: return -1;
    }
}

/* ---- reader */

typedef struct rd {
    lua_State *L;
    dp_dset *d;
    const unsigned char *base;
    char *err;
    size_t errlen;
    int depth;                /* nesting of DescriptorProto */
} rd;

typedef const unsigned char *bp;

/* dp_read_varint with the one-byte case inline (tags and most lengths) */
static inline dp_status rv(bp *pp, bp end, uint64_t *v) {
    bp p = *pp;
    if (p < end && *p < 0x80) {
        *v = *p;
        *pp = p + 1;
        return DP_OK;
    }
    if (end - p >= 2 && p[1] < 0x80) {           /* two bytes: lengths to 16 KiB */
        *v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        *pp = p + 2;
        return DP_OK;
    }
    return dp_read_varint(pp, end, v);
}

static int rfail(rd *r, bp at, const char *what) {
    snprintf(r->err, r->errlen, "malformed descriptor set: %s at byte %ld", what,
             (long)(at - r->base));
    return 0;
}

/* rd_tag past its one-byte case */
static int rd_tag_slow(rd *r, bp *pp, bp end, uint32_t *num, int *wt) {
    bp at = *pp;
    uint64_t tag;
    dp_status st = rv(pp, end, &tag);
    if (st != DP_OK) return rfail(r, at, dp_status_str(st));
    if ((tag >> 3) == 0) return rfail(r, at, "field number 0");
    if (tag > UINT32_MAX) return rfail(r, at, "field number out of range");
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    if (*wt == DP_WT_EGROUP) return rfail(r, at, dp_status_str(DP_ERR_GROUP));
    return 1;
}

/* reads the tag at *pp (< end): number and wire type; 0 on an error */
static inline int rd_tag(rd *r, bp *pp, bp end, uint32_t *num, int *wt) {
    unsigned t = **pp;
    if (t >= 8 && t < 0x80 && (t & 7) != DP_WT_EGROUP) {
        (*pp)++;
        *num = t >> 3;
        *wt = (int)(t & 7);
        return 1;
    }
    return rd_tag_slow(r, pp, end, num, wt);
}

/* a length-delimited value at *pp: [*v, *ve), *pp moved past it */
static int rd_len_slow(rd *r, bp at, bp *pp, bp end, bp *v, bp *ve) {
    uint64_t n;
    dp_status st = rv(pp, end, &n);
    if (st != DP_OK) return rfail(r, at, dp_status_str(st));
    if (n > (uint64_t)(end - *pp)) return rfail(r, at, dp_status_str(DP_ERR_LENGTH));
    *v = *pp;
    *ve = *pp + n;
    *pp = *ve;
    return 1;
}

static inline int rd_len(rd *r, bp at, bp *pp, bp end, bp *v, bp *ve) {
    bp p = *pp;
    if (p < end && *p < 0x80 && (size_t)*p <= (size_t)(end - p - 1)) {
        *v = p + 1;
        *pp = *ve = p + 1 + *p;
        return 1;
    }
    return rd_len_slow(r, at, pp, end, v, ve);
}


static inline int rd_varint(rd *r, bp at, bp *pp, bp end, uint64_t *v) {
    dp_status st = rv(pp, end, v);
    return st == DP_OK ? 1 : rfail(r, at, dp_status_str(st));
}

/* a NUL-terminated copy of v[0..ve) in the arena */
static const char *rd_str(rd *r, bp v, bp ve) {
    size_t n = (size_t)(ve - v);
    char *s = dalloc_raw(r->L, r->d, n + 1, 1);
    memcpy(s, v, n);
    s[n] = 0;
    return s;
}

/* v[0..ve) as a dp_dstr, ended at a NUL inside */
static dp_dstr rd_dstr(rd *r, bp v, bp ve) {
    const unsigned char *z = memchr(v, 0, (size_t)(ve - v));
    dp_dstr s = {(uint32_t)(v - r->base), (uint32_t)((z ? z : ve) - v)};
    return s;
}

static int check_msg(rd *r, int k, bp p, bp end);

/* Is field num of a message of kind k one of descriptor.proto's repeated
   varint fields (public_dependency, weak_dependency, a location's path and
   span, FieldOptions.targets)? Its length-delimited form is a packed run,
   which the decoder reads varint by varint. */
static int packed_varints(int k, uint32_t num) {
    return (k == K_FILE && (num == 10 || num == 11)) || (k == K_LOC && (num == 1 || num == 2)) ||
           (k == K_FIELDOPTS && num == 19);
}

/* a field of a message of kind k that is not kept: a message field of
   descriptor.proto is entered and checked, a packed run read, anything
   else skipped */
static int rd_other(rd *r, int k, uint32_t num, int wt, bp at, bp *pp, bp end) {
    if (wt == DP_WT_LEN) {
        bp v, ve;
        if (!rd_len(r, at, pp, end, &v, &ve)) return 0;
        if (packed_varints(k, num)) {
            uint64_t x;
            while (v < ve)
                if (!rd_varint(r, v, &v, ve, &x)) return 0;
            return 1;
        }
        int child = child_kind(k, num);
        return child < 0 || check_msg(r, child, v, ve);
    }
    if (wt == DP_WT_VARINT) {                   /* the common scalar, inline */
        uint64_t v;
        return rd_varint(r, at, pp, end, &v);
    }
    dp_status st = dp_skip_field(pp, end, num, wt, DP_DEFAULT_MAX_DEPTH);
    return st == DP_OK ? 1 : rfail(r, at, dp_status_str(st));
}

/* checks a message of kind k spanning [p, end), keeping nothing */
static int check_msg(rd *r, int k, bp p, bp end) {
    while (p < end) {
        bp at = p;
        uint32_t num;
        int wt;
        if (!rd_tag(r, &p, end, &num, &wt) || !rd_other(r, k, num, wt, at, &p, end)) return 0;
    }
    return 1;
}

/* counts the length-delimited occurrences of fields nums[0..n) among the
   top-level fields of [p, end) into counts[]; stops quietly at anything
   malformed (the reading pass that follows reports it, in byte order) */
static void count_fields(bp p, bp end, const uint32_t *nums, size_t *counts, int n) {
    while (p < end) {
        uint64_t tag, len;
        if (rv(&p, end, &tag) != DP_OK || tag > UINT32_MAX || (tag >> 3) == 0) return;
        uint32_t num = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (wt == DP_WT_LEN) {
            if (rv(&p, end, &len) != DP_OK || len > (uint64_t)(end - p)) return;
            p += len;
            for (int i = 0; i < n; i++)
                if (nums[i] == num) counts[i]++;
        } else if (dp_skip_field(&p, end, num, wt, DP_DEFAULT_MAX_DEPTH) != DP_OK) {
            return;
        }
    }
}

/* the next element of an array counted by count_fields */
#define NEXT(r, at, arr, n, cap) \
    ((n) < (cap) ? &(arr)[(n)++] : (rfail((r), (at), "internal error: miscounted field"), NULL))

/* ---- the kept messages; each reads [p, end) into its struct */

static int read_features(rd *r, bp p, bp end, dp_dfeatures *fs) {
    while (p < end) {
        bp at = p;
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (num >= 1 && num <= 6 && wt == DP_WT_VARINT) {
            if (!rd_varint(r, at, &p, end, &v)) return 0;
            int32_t x = (int32_t)(uint32_t)v;
            switch (num) {
            case 1: fs->has_field_presence = 1; fs->field_presence = x; break;
            case 2: fs->has_enum_type = 1; fs->enum_type = x; break;
            case 3: fs->has_repeated_field_encoding = 1; fs->repeated_field_encoding = x; break;
            case 4: fs->has_utf8_validation = 1; fs->utf8_validation = x; break;
            case 5: fs->has_message_encoding = 1; fs->message_encoding = x; break;
            default: fs->has_json_format = 1; fs->json_format = x; break;
            }
        } else if (!rd_other(r, K_FEATURES, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}

/* an *Options message of kind k into *o (made on first use: a second
   occurrence merges into the first, as protobuf merges messages) */
static int read_opts(rd *r, int k, bp p, bp end, dp_dopts **op) {
    if (!*op) *op = dp_dalloc(r->L, r->d, sizeof(dp_dopts));
    dp_dopts *o = *op;
    while (p < end) {
        bp at = p;
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (child_kind(k, num) == K_FEATURES && wt == DP_WT_LEN) {
            bp s, se;
            if (!rd_len(r, at, &p, end, &s, &se)) return 0;
            if (!o->features) o->features = dp_dalloc(r->L, r->d, sizeof(dp_dfeatures));
            if (!read_features(r, s, se, o->features)) return 0;
            continue;
        }
        int which = wt != DP_WT_VARINT ? 0
                  : k == K_FIELDOPTS && num == 2 ? 1
                  : k == K_MSGOPTS && num == 7 ? 2
                  : k == K_MSGOPTS && num == 1 ? 3 : 0;
        if (!which) {
            if (!rd_other(r, k, num, wt, at, &p, end)) return 0;
            continue;
        }
        if (!rd_varint(r, at, &p, end, &v)) return 0;
        if (which == 1) { o->has_packed = 1; o->packed = v != 0; }
        else if (which == 2) { o->has_map_entry = 1; o->map_entry = v != 0; }
        else { o->has_message_set_wire_format = 1; o->message_set_wire_format = v != 0; }
    }
    return 1;
}

static int read_field(rd *r, bp p, bp end, dp_dfield *f) {
    while (p < end) {
        bp at = p;
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (wt == DP_WT_LEN && (num <= 2 || num == 6 || num == 7 || num == 8 || num == 10)) {
            bp s, se;
            if (!rd_len(r, at, &p, end, &s, &se)) return 0;
            switch (num) {
            case 1: f->name = rd_dstr(r, s, se); break;
            case 2: f->extendee = rd_dstr(r, s, se); break;
            case 6: f->type_name = rd_dstr(r, s, se); break;
            case 7: f->default_value = rd_str(r, s, se); break;
            case 10: f->json_name = rd_dstr(r, s, se); break;
            default: if (!read_opts(r, K_FIELDOPTS, s, se, &f->options)) return 0;
            }
        } else if (wt == DP_WT_VARINT && ((num >= 3 && num <= 5) || num == 9 || num == 17)) {
            if (!rd_varint(r, at, &p, end, &v)) return 0;
            int32_t x = (int32_t)(uint32_t)v;
            switch (num) {
            case 3: f->has_number = 1; f->number = x; break;
            case 4: f->has_label = 1; f->label = x; break;
            case 5: f->has_type = 1; f->type = x; break;
            case 9: f->has_oneof_index = 1; f->oneof_index = x; break;
            default: f->has_proto3_optional = 1; f->proto3_optional = v != 0; break;
            }
        } else if (!rd_other(r, K_FIELD, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}

static int read_oneof(rd *r, bp p, bp end, dp_doneof *o) {
    while (p < end) {
        bp at = p, s, se;
        uint32_t num;
        int wt;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (wt == DP_WT_LEN && (num == 1 || num == 2)) {
            if (!rd_len(r, at, &p, end, &s, &se)) return 0;
            if (num == 1) o->name = rd_str(r, s, se);
            else if (!read_opts(r, K_ONEOFOPTS, s, se, &o->options)) return 0;
        } else if (!rd_other(r, K_ONEOF, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}

static int read_xrange(rd *r, bp p, bp end, dp_dxrange *x) {
    while (p < end) {
        bp at = p;
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (wt == DP_WT_VARINT && (num == 1 || num == 2)) {
            if (!rd_varint(r, at, &p, end, &v)) return 0;
            if (num == 1) x->start = (int32_t)(uint32_t)v;
            else x->end = (int32_t)(uint32_t)v;
        } else if (!rd_other(r, K_XRANGE, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}

static int read_evalue(rd *r, bp p, bp end, dp_devalue *e) {
    while (p < end) {
        bp at = p, s, se;
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (wt == DP_WT_LEN && (num == 1 || num == 3)) {
            if (!rd_len(r, at, &p, end, &s, &se)) return 0;
            if (num == 1) e->name = rd_dstr(r, s, se);
            else if (!read_opts(r, K_EVALOPTS, s, se, &e->options)) return 0;
        } else if (wt == DP_WT_VARINT && num == 2) {
            if (!rd_varint(r, at, &p, end, &v)) return 0;
            e->has_number = 1;
            e->number = (int32_t)(uint32_t)v;
        } else if (!rd_other(r, K_EVAL, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}

static int read_enum(rd *r, bp p, bp end, dp_denum *e) {
    static const uint32_t nums[1] = {2};
    size_t cap[1] = {0};
    count_fields(p, end, nums, cap, 1);
    e->value = dp_dalloc(r->L, r->d, sizeof(dp_devalue) * (cap[0] ? cap[0] : 1));
    while (p < end) {
        bp at = p, s, se;
        uint32_t num;
        int wt;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (wt == DP_WT_LEN && num >= 1 && num <= 3) {
            if (!rd_len(r, at, &p, end, &s, &se)) return 0;
            if (num == 1) {
                e->name = rd_str(r, s, se);
            } else if (num == 2) {
                dp_devalue *v = NEXT(r, at, e->value, e->n_value, cap[0]);
                if (!v || !read_evalue(r, s, se, v)) return 0;
            } else if (!read_opts(r, K_ENUMOPTS, s, se, &e->options)) {
                return 0;
            }
        } else if (!rd_other(r, K_ENUM, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}

/* a DescriptorProto about to be entered from the tag at `at` */
static int enter_msg(rd *r, bp at) {
    if (r->depth >= DP_MAX_TYPE_DEPTH) {
        snprintf(r->err, r->errlen, "malformed descriptor set: message declarations nested "
                                    "deeper than %d at byte %ld",
                 DP_MAX_TYPE_DEPTH, (long)(at - r->base));
        return 0;
    }
    r->depth++;
    return 1;
}

static int read_msg(rd *r, bp p, bp end, dp_dmsg *m) {
    /* field, nested_type, enum_type, extension_range, extension, oneof_decl */
    static const uint32_t nums[6] = {2, 3, 4, 5, 6, 8};
    size_t cap[6] = {0};
    lua_State *L = r->L;
    count_fields(p, end, nums, cap, 6);
    m->field = cap[0] + cap[4] ? dp_dalloc(L, r->d, sizeof(dp_dfield) * (cap[0] + cap[4])) : NULL;
    m->extension = m->field ? m->field + cap[0] : NULL;
    m->nested_type = cap[1] ? dp_dalloc(L, r->d, sizeof(dp_dmsg) * cap[1]) : NULL;
    m->enum_type = cap[2] ? dp_dalloc(L, r->d, sizeof(dp_denum) * cap[2]) : NULL;
    m->extension_range = cap[3] ? dp_dalloc(L, r->d, sizeof(dp_dxrange) * cap[3]) : NULL;
    m->oneof_decl = cap[5] ? dp_dalloc(L, r->d, sizeof(dp_doneof) * cap[5]) : NULL;
    while (p < end) {
        bp at = p, s, se;
        uint32_t num;
        int wt;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (wt != DP_WT_LEN || num < 1 || num > 8) {
            if (!rd_other(r, K_MSG, num, wt, at, &p, end)) return 0;
            continue;
        }
        if (!rd_len(r, at, &p, end, &s, &se)) return 0;
        int ok = 1;
        switch (num) {
        case 1: m->name = rd_str(r, s, se); break;
        case 2: {
            dp_dfield *f = NEXT(r, at, m->field, m->n_field, cap[0]);
            ok = f && read_field(r, s, se, f);
            break;
        }
        case 3: {
            dp_dmsg *n = NEXT(r, at, m->nested_type, m->n_nested_type, cap[1]);
            ok = n && enter_msg(r, at) && read_msg(r, s, se, n);
            r->depth--;
            break;
        }
        case 4: {
            dp_denum *e = NEXT(r, at, m->enum_type, m->n_enum_type, cap[2]);
            ok = e && read_enum(r, s, se, e);
            break;
        }
        case 5: {
            dp_dxrange *x = NEXT(r, at, m->extension_range, m->n_extension_range, cap[3]);
            ok = x && read_xrange(r, s, se, x);
            break;
        }
        case 6: {
            dp_dfield *f = NEXT(r, at, m->extension, m->n_extension, cap[4]);
            ok = f && read_field(r, s, se, f);
            break;
        }
        case 7: ok = read_opts(r, K_MSGOPTS, s, se, &m->options); break;
        default: {
            dp_doneof *o = NEXT(r, at, m->oneof_decl, m->n_oneof_decl, cap[5]);
            ok = o && read_oneof(r, s, se, o);
            break;
        }
        }
        if (!ok) return 0;
    }
    return 1;
}

static int read_file(rd *r, bp p, bp end, dp_dfile *f) {
    /* dependency, message_type, enum_type, extension */
    static const uint32_t nums[4] = {3, 4, 5, 7};
    size_t cap[4] = {0};
    lua_State *L = r->L;
    count_fields(p, end, nums, cap, 4);
    f->dependency = cap[0] ? dp_dalloc(L, r->d, sizeof(char *) * cap[0]) : NULL;
    f->message_type = cap[1] ? dp_dalloc(L, r->d, sizeof(dp_dmsg) * cap[1]) : NULL;
    f->enum_type = cap[2] ? dp_dalloc(L, r->d, sizeof(dp_denum) * cap[2]) : NULL;
    f->extension = cap[3] ? dp_dalloc(L, r->d, sizeof(dp_dfield) * cap[3]) : NULL;
    while (p < end) {
        bp at = p, s, se;
        uint32_t num;
        int wt;
        uint64_t v;
        if (!rd_tag(r, &p, end, &num, &wt)) return 0;
        if (num == 14 && wt == DP_WT_VARINT) {
            if (!rd_varint(r, at, &p, end, &v)) return 0;
            f->has_edition = 1;
            f->edition = (int32_t)(uint32_t)v;
            continue;
        }
        if (wt != DP_WT_LEN || num == 6 || (num > 8 && num != 12)) {
            if (!rd_other(r, K_FILE, num, wt, at, &p, end)) return 0;
            continue;
        }
        if (!rd_len(r, at, &p, end, &s, &se)) return 0;
        int ok = 1;
        switch (num) {
        case 1: f->name = rd_str(r, s, se); break;
        case 2: f->package = rd_str(r, s, se); break;
        case 12: f->syntax = rd_str(r, s, se); break;
        case 3: {
            const char **d = NEXT(r, at, f->dependency, f->n_dependency, cap[0]);
            if (d) *d = rd_str(r, s, se);
            ok = d != NULL;
            break;
        }
        case 4: {
            dp_dmsg *m = NEXT(r, at, f->message_type, f->n_message_type, cap[1]);
            ok = m && enter_msg(r, at) && read_msg(r, s, se, m);
            r->depth--;
            break;
        }
        case 5: {
            dp_denum *e = NEXT(r, at, f->enum_type, f->n_enum_type, cap[2]);
            ok = e && read_enum(r, s, se, e);
            break;
        }
        case 7: {
            dp_dfield *x = NEXT(r, at, f->extension, f->n_extension, cap[3]);
            ok = x && read_field(r, s, se, x);
            break;
        }
        default: ok = read_opts(r, K_FILEOPTS, s, se, &f->options); break;
        }
        if (!ok) return 0;
    }
    return 1;
}

int dp_desc_read(lua_State *L, dp_dset *d, const unsigned char *data, size_t len, char *err,
                 size_t errlen) {
    rd r;
    r.L = L;
    r.d = d;
    r.base = data;
    r.err = err;
    r.errlen = errlen;
    r.depth = 0;
    static const uint32_t nums[1] = {1};
    size_t cap[1] = {0};
    bp p = data, end = data + len;
    d->base = data;
    if (len > UINT32_MAX) {                     /* dp_dstr holds 32-bit offsets */
        snprintf(err, errlen, "malformed descriptor set: %zu bytes, more than 4 GiB", len);
        return 0;
    }
    count_fields(p, end, nums, cap, 1);
    d->file = cap[0] ? dp_dalloc(L, d, sizeof(dp_dfile) * cap[0]) : NULL;
    d->n_file = 0;
    while (p < end) {
        bp at = p, s, se;
        uint32_t num;
        int wt;
        if (!rd_tag(&r, &p, end, &num, &wt)) return 0;
        if (num == 1 && wt == DP_WT_LEN) {
            if (!rd_len(&r, at, &p, end, &s, &se)) return 0;
            dp_dfile *f = NEXT(&r, at, d->file, d->n_file, cap[0]);
            if (!f || !read_file(&r, s, se, f)) return 0;
        } else if (!rd_other(&r, K_SET, num, wt, at, &p, end)) {
            return 0;
        }
    }
    return 1;
}
