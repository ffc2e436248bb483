/*
 * wire.c -- protobuf wire primitives shared by the decoders: status texts,
 * varints, and skipping one field's value (groups bounded by a depth).
 */
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
