/*
 * wire.c -- protobuf wire primitives and the bounded pre-scan of descriptor
 * sets.
 *
 * protobuf-c parses nested DescriptorProto messages by plain recursion with
 * no limit, so a hostile set could overflow the C stack. dp_scan_descriptor_set
 * walks the same bytes first, with every length checked against its
 * container and the nesting of message declarations bounded; only bytes it
 * accepts are handed to protobuf-c.
 */
#include <stdio.h>
#include <string.h>

#include "dynpb.h"

const char *dp_status_str(dp_status st) {
    switch (st) {
    case DP_OK: return "ok";
    case DP_ERR_TRUNCATED: return "truncated input";
    case DP_ERR_VARINT: return "varint longer than 10 bytes";
    case DP_ERR_LENGTH: return "length runs past the end of its container";
    case DP_ERR_WIRETYPE: return "invalid wire type";
    case DP_ERR_FIELD_ZERO: return "field number 0";
    case DP_ERR_GROUP: return "unmatched group end";
    case DP_ERR_DEPTH: return "nesting too deep";
    case DP_ERR_UTF8: return "invalid UTF-8 in string";
    }
    return "unknown status";
}

dp_status dp_read_varint(const unsigned char **pp, const unsigned char *end,
                         uint64_t *out) {
    const unsigned char *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return DP_ERR_TRUNCATED;
        unsigned char b = *p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return DP_OK;
        }
    }
    return DP_ERR_VARINT;
}

dp_status dp_skip_field(const unsigned char **pp, const unsigned char *end,
                        uint32_t number, int wt, int depth) {
    const unsigned char *p = *pp;
    uint64_t v;
    dp_status st;
    switch (wt) {
    case DP_WT_VARINT:
        if ((st = dp_read_varint(&p, end, &v)) != DP_OK) return st;
        break;
    case DP_WT_I64:
        if (end - p < 8) return DP_ERR_TRUNCATED;
        p += 8;
        break;
    case DP_WT_I32:
        if (end - p < 4) return DP_ERR_TRUNCATED;
        p += 4;
        break;
    case DP_WT_LEN:
        if ((st = dp_read_varint(&p, end, &v)) != DP_OK) return st;
        if (v > (uint64_t)(end - p)) return DP_ERR_LENGTH;
        p += v;
        break;
    case DP_WT_SGROUP:
        if (depth <= 0) return DP_ERR_DEPTH;
        for (;;) {
            uint64_t tag;
            if (p >= end) return DP_ERR_TRUNCATED;
            if ((st = dp_read_varint(&p, end, &tag)) != DP_OK) return st;
            uint64_t num = tag >> 3;
            int w = (int)(tag & 7);
            if (num == 0) return DP_ERR_FIELD_ZERO;
            if (num > 536870911u) return DP_ERR_WIRETYPE;
            if (w == DP_WT_EGROUP) {
                if (num != number) return DP_ERR_GROUP;
                break;
            }
            if ((st = dp_skip_field(&p, end, (uint32_t)num, w, depth - 1)) != DP_OK)
                return st;
        }
        break;
    case DP_WT_EGROUP:
        return DP_ERR_GROUP;
    default:
        return DP_ERR_WIRETYPE;
    }
    *pp = p;
    return DP_OK;
}

/* ---- descriptor-set pre-scan */

/* what a length-delimited field of a descriptor message holds, for the
   fields the scan descends into; everything else is checked and skipped.
   The scan goes into every message field of descriptor.proto, so each tag
   protobuf-c would read is checked as dynpb's own decoder checks it (dynpb
   decodes the set again for options, issue 11: the two must agree). */
enum { K_SET, K_FILE, K_MSG, K_FIELD, K_ENUM, K_EVAL, K_SVC, K_METHOD, K_ONEOF,
       K_XRANGE, K_OPTS, K_FOPTS, K_XOPTS, K_UNINT, K_SCI, K_LEAF };

/* the kind of field num of a message of kind k, or -1 (a scalar or an
   unknown field, skipped) */
static int scan_child(int k, uint64_t num) {
    switch (k) {
    case K_SET: return num == 1 ? K_FILE : -1;
    case K_FILE:
        switch (num) {
        case 4: return K_MSG;
        case 5: return K_ENUM;
        case 6: return K_SVC;
        case 7: return K_FIELD;
        case 8: return K_OPTS;
        case 9: return K_SCI;
        default: return -1;
        }
    case K_MSG:
        switch (num) {
        case 2: case 6: return K_FIELD;
        case 3: return K_MSG;
        case 4: return K_ENUM;
        case 5: return K_XRANGE;
        case 7: return K_OPTS;
        case 8: return K_ONEOF;
        case 9: return K_LEAF;          /* reserved_range */
        default: return -1;
        }
    case K_FIELD: return num == 8 ? K_FOPTS : -1;
    case K_ONEOF: return num == 2 ? K_OPTS : -1;
    case K_ENUM:
        return num == 2 ? K_EVAL : num == 3 ? K_OPTS : num == 4 ? K_LEAF : -1;
    case K_EVAL: return num == 3 ? K_OPTS : -1;
    case K_SVC: return num == 2 ? K_METHOD : num == 3 ? K_OPTS : -1;
    case K_METHOD: return num == 4 ? K_OPTS : -1;
    case K_XRANGE: return num == 3 ? K_XOPTS : -1;
    case K_OPTS:                        /* every *Options: uninterpreted, features */
        return num == 999 ? K_UNINT : num == 50 ? K_LEAF : -1;
    case K_FOPTS:                       /* FieldOptions: also edition_defaults, feature_support */
        return num == 999 ? K_UNINT : (num == 50 || num == 20 || num == 22) ? K_LEAF : -1;
    case K_XOPTS:                       /* ExtensionRangeOptions: also declaration */
        return num == 999 ? K_UNINT : (num == 50 || num == 2) ? K_LEAF : -1;
    case K_UNINT: return num == 2 ? K_LEAF : -1;   /* name parts */
    case K_SCI: return num == 1 ? K_LEAF : -1;     /* locations */
    default: return -1;
    }
}

typedef struct {
    const unsigned char *base;
    char *err;
    size_t errlen;
    int depth;        /* current nesting of DescriptorProto */
} scan_ctx;

static int scan_fail(scan_ctx *c, const unsigned char *at, const char *what) {
    snprintf(c->err, c->errlen, "malformed descriptor set: %s at byte %ld", what,
             (long)(at - c->base));
    return 0;
}

/* Scans one message of kind k spanning [p, end). */
static int scan_msg(scan_ctx *c, int k, const unsigned char *p,
                    const unsigned char *end) {
    while (p < end) {
        const unsigned char *at = p;
        uint64_t tag, len;
        dp_status st = dp_read_varint(&p, end, &tag);
        if (st != DP_OK) return scan_fail(c, at, dp_status_str(st));
        uint64_t num = tag >> 3;
        int wt = (int)(tag & 7);
        if (num == 0) return scan_fail(c, at, "field number 0");
        if (tag > UINT32_MAX) return scan_fail(c, at, "field number out of range");
        /* groups: none in descriptor.proto; options may hold custom ones
           (extensions), which are skipped whole */
        if (wt == DP_WT_EGROUP || (wt == DP_WT_SGROUP && k != K_OPTS && k != K_FOPTS &&
                                   k != K_XOPTS))
            return scan_fail(c, at, "group in a descriptor");
        int child = scan_child(k, num);
        if (child < 0 || wt != DP_WT_LEN) {
            st = dp_skip_field(&p, end, (uint32_t)num, wt, DP_DEFAULT_MAX_DEPTH);
            if (st != DP_OK) return scan_fail(c, at, dp_status_str(st));
            continue;
        }
        st = dp_read_varint(&p, end, &len);
        if (st != DP_OK) return scan_fail(c, at, dp_status_str(st));
        if (len > (uint64_t)(end - p)) return scan_fail(c, at, dp_status_str(DP_ERR_LENGTH));
        if (child == K_MSG) {
            if (c->depth >= DP_MAX_TYPE_DEPTH) {
                snprintf(c->err, c->errlen,
                         "malformed descriptor set: message declarations nested "
                         "deeper than %d at byte %ld",
                         DP_MAX_TYPE_DEPTH, (long)(at - c->base));
                return 0;
            }
            c->depth++;
        }
        if (!scan_msg(c, child, p, p + len)) return 0;
        if (child == K_MSG) c->depth--;
        p += len;
    }
    return 1;
}

int dp_scan_descriptor_set(const unsigned char *data, size_t len, char *err,
                           size_t errlen) {
    scan_ctx c;
    c.base = data;
    c.err = err;
    c.errlen = errlen;
    c.depth = 0;
    return scan_msg(&c, K_SET, data, data + len);
}
