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
   fields the scan descends into; everything else is checked and skipped */
enum { K_SET, K_FILE, K_MSG };

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
        if (wt == DP_WT_SGROUP || wt == DP_WT_EGROUP)
            return scan_fail(c, at, "group in a descriptor");
        int child = -1;
        if (k == K_SET && num == 1) child = K_FILE;
        else if (k == K_FILE && num == 4) child = K_MSG;
        else if (k == K_MSG && num == 3) child = K_MSG;
        if (child < 0 || wt != DP_WT_LEN) {
            st = dp_skip_field(&p, end, (uint32_t)num, wt, 0);
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
