/*
 * encode_check.c -- encode's checked path: each value read with every
 * check (ranges, integral floats, numbers as decimal strings, enum names
 * and numbers, UTF-8, field types), and every error message with the path
 * of the field it is about. The fast paths (encode.c) hand a value here
 * when it is not one they take; what is written is the same.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"

/* ---- errors */

/* [-0, +1] pushes the error message; returns 0. The innermost path element
   is the field being encoded (c->path[c->depth]). */
int enc_fail(ectx *c, const char *fmt, ...) {
    lua_State *L = c->L;
    va_list ap;
    dp_push_path(L, c->path, c->depth + (c->path[c->depth].f != NULL));
    const char *path = lua_tostring(L, -1);
    va_start(ap, fmt);
    const char *rule = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    if (*path)
        lua_pushfstring(L, "dynpb: encode %s: field '%s': %s", c->tname, path, rule);
    else
        lua_pushfstring(L, "dynpb: encode %s: %s", c->tname, rule);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 0;
}

/* the type name used in messages: the same on every Lua version */

/* Writes a number as messages show it, the same on every Lua: integral
   values below 1e21 in full without ".0", others in the shortest %g that
   reads back the same (at most 17 digits). */
static void fmt_number(lua_State *L, int idx, char *buf, size_t size) {
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
        return;
    }
#endif
    double x = (double)lua_tonumber(L, idx);
    if (x != x) snprintf(buf, size, "nan");
    else if (isinf(x)) snprintf(buf, size, x < 0 ? "-inf" : "inf");
    else if (x == floor(x) && fabs(x) < 1e21) snprintf(buf, size, "%.0f", x);
    else
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, x);
            if (strtod(buf, NULL) == x) break;
        }
}

/* Describes the value at idx for "got ..." in messages: its type, and its
   value for strings (the first 40 bytes, control bytes as '?'), numbers and
   booleans, e.g. "string '12abc'", "number 1.5", "boolean true". */
const char *enc_value_desc(lua_State *L, int idx, char *buf, size_t size) {
    int t = lua_type(L, idx);
    if (t == LUA_TNUMBER) {
        char num[48];
        fmt_number(L, idx, num, sizeof num);
        snprintf(buf, size, "number %s", num);
    } else if (t == LUA_TBOOLEAN) {
        snprintf(buf, size, "boolean %s", lua_toboolean(L, idx) ? "true" : "false");
    } else if (t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        char part[44];
        size_t k = n > 40 ? 40 : n;
        for (size_t i = 0; i < k; i++)
            part[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        part[k] = 0;
        snprintf(buf, size, "string '%s'%s", part, n > 40 ? "..." : "");
    } else {
        snprintf(buf, size, "%s", lua_kind(L, idx));
    }
    return buf;
}

/* ---- values */

/* integer types: 64 bits wide? unsigned? (indexed by DP_T_*) */
enum { IK_64 = 1, IK_UNSIGNED = 2 };
static const uint8_t int_kind[19] = {
    [DP_T_INT64] = IK_64, [DP_T_UINT64] = IK_64 | IK_UNSIGNED, [DP_T_SINT64] = IK_64,
    [DP_T_FIXED64] = IK_64 | IK_UNSIGNED, [DP_T_SFIXED64] = IK_64,
    [DP_T_UINT32] = IK_UNSIGNED, [DP_T_FIXED32] = IK_UNSIGNED};

/* Parses a decimal integer string (optional '-'); returns 1 on success. */
static int parse_dec(const char *s, size_t n, int *neg, uint64_t *mag) {
    size_t i = 0;
    *neg = 0;
    *mag = 0;
    if (n && s[0] == '-') { *neg = 1; i = 1; }
    if (i == n || n - i > 20) return 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (*mag > (UINT64_MAX - d) / 10) return 0;
        *mag = *mag * 10 + d;
    }
    return 1;
}

/* Reads the integer at idx for field f into *out (sign-extended for signed
   types). Accepts Lua integers, integral floats and, for 64-bit types,
   decimal strings. Range is checked against the field's type. */
int enc_get_int(ectx *c, const dp_field *f, int idx, uint64_t *out) {
    lua_State *L = c->L;
    int is64 = int_kind[f->type] & IK_64;
    int is_unsigned = int_kind[f->type] & IK_UNSIGNED;
    int neg;
    uint64_t mag;
    int t = lua_type(L, idx);
    if (t == LUA_TNUMBER) {
#if LUA_VERSION_NUM >= 503
        int isint;
        lua_Integer i = lua_tointegerx(L, idx, &isint);   /* integral floats too */
        if (isint) {
            neg = i < 0;
            mag = neg ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
            goto range;
        }
#endif
        lua_Number x = lua_tonumber(L, idx);
        if (x != x || isinf(x))
            return enc_fail(c, "expected integer, got %s", x != x ? "nan" : "inf");
        if (x != floor(x)) {
            char num[48];
            fmt_number(L, idx, num, sizeof num);
            return enc_fail(c, "expected integer, got non-integral number %s", num);
        }
        if (!(x >= -9223372036854775808.0 && x < 18446744073709551616.0)) goto out_of_range;
        neg = x < 0;
        mag = neg ? (uint64_t)(-x) : (uint64_t)x;
        if (neg && x == -9223372036854775808.0) mag = UINT64_C(1) << 63;
    } else if (t == LUA_TSTRING && is64) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!parse_dec(s, n, &neg, &mag))
            return enc_fail(c, "expected integer, got string '%s' (not a decimal integer)", s);
    } else {
        char d[96];
        return enc_fail(c, "expected integer, got %s", enc_value_desc(L, idx, d, sizeof d));
    }
#if LUA_VERSION_NUM >= 503
range:
#endif
    if (neg && mag == 0) neg = 0;
    if (is_unsigned) {
        uint64_t max = is64 ? UINT64_MAX : UINT32_MAX;
        if (neg || mag > max) goto out_of_range;
        *out = mag;
    } else {
        uint64_t max = is64 ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
        if (neg ? mag > max + 1 : mag > max) goto out_of_range;
        *out = neg ? (uint64_t)0 - mag : mag;
    }
    return 1;
out_of_range: {
        char num[48];
        if (t == LUA_TSTRING) snprintf(num, sizeof num, "%s", lua_tostring(L, idx));
        else fmt_number(L, idx, num, sizeof num);
        return enc_fail(c, "integer %s out of range for %s", num, dp_type_str(f->type));
    }
}

/* Reads an enum value (a name, or a number) for field f. */
static int get_enum(ectx *c, const dp_field *f, int idx, int32_t *out) {
    lua_State *L = c->L;
    const dp_enum *e = &c->S->enums[f->sub];
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        int i = dp_enum_find_name(e, s, n);
        if (i >= 0) {
            *out = e->values[i].number;
            return 1;
        }
        return enc_fail(c, "unknown value '%s' for enum %s", s, e->name);
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        uint64_t v;
        dp_field tmp = *f;
        tmp.type = DP_T_INT32;
        if (!enc_get_int(c, &tmp, idx, &v)) return 0;
        if (e->closed && dp_enum_find(e, (int32_t)v) < 0)
            return enc_fail(c, "unknown value %d for closed enum %s", (int)(int32_t)v, e->name);
        *out = (int32_t)v;
        return 1;
    }
    char d[96];
    return enc_fail(c, "expected enum name or number, got %s", enc_value_desc(L, idx, d, sizeof d));
}


/* Writes one value (no tag) of field f from stack index idx.
   *zero is set when the value is its type's zero (proto3 omission). */
int enc_put_value(ectx *c, const dp_field *f, int idx, int *zero) {
    lua_State *L = c->L;
    uint64_t u;
    char d[96];                      /* enc_value_desc() for messages */
    switch (f->type) {
    case DP_T_INT32: case DP_T_INT64: case DP_T_UINT32: case DP_T_UINT64:
        if (!enc_get_int(c, f, idx, &u)) return 0;
        *zero = u == 0;
        put_varint(c, u);
        return 1;
    case DP_T_SINT32:
        if (!enc_get_int(c, f, idx, &u)) return 0;
        *zero = u == 0;
        put_varint(c, (uint32_t)(((uint32_t)u << 1) ^ (uint32_t)((int32_t)u >> 31)));
        return 1;
    case DP_T_SINT64:
        if (!enc_get_int(c, f, idx, &u)) return 0;
        *zero = u == 0;
        put_varint(c, (u << 1) ^ (uint64_t)((int64_t)u >> 63));
        return 1;
    case DP_T_FIXED32: case DP_T_SFIXED32:
        if (!enc_get_int(c, f, idx, &u)) return 0;
        *zero = u == 0;
        put_le32(c, (uint32_t)u);
        return 1;
    case DP_T_FIXED64: case DP_T_SFIXED64:
        if (!enc_get_int(c, f, idx, &u)) return 0;
        *zero = u == 0;
        put_le64(c, u);
        return 1;
    case DP_T_BOOL:
        if (lua_type(L, idx) != LUA_TBOOLEAN)
            return enc_fail(c, "expected boolean, got %s", enc_value_desc(L, idx, d, sizeof d));
        *zero = !lua_toboolean(L, idx);
        put_varint(c, (uint64_t)!*zero);
        return 1;
    case DP_T_ENUM: {
        int32_t e = 0;
        if (!get_enum(c, f, idx, &e)) return 0;
        *zero = e == 0;
        put_varint(c, (uint64_t)(int64_t)e);
        return 1;
    }
    case DP_T_FLOAT: case DP_T_DOUBLE: {
        if (lua_type(L, idx) != LUA_TNUMBER)
            return enc_fail(c, "expected number, got %s", enc_value_desc(L, idx, d, sizeof d));
        double x = (double)lua_tonumber(L, idx);
        uint64_t bits;
        /* NaN is written as the canonical quiet NaN: Lua implementations
           do not all keep a NaN's sign and payload */
        if (f->type == DP_T_FLOAT) {
            if (x == x && !isinf(x) && (x > FLT_MAX || x < -FLT_MAX))
                return enc_fail(c, "number %s out of range for float", enc_value_desc(L, idx, d, sizeof d) + 7);
            float fx = (float)x;
            uint32_t b32 = UINT32_C(0x7fc00000);
            if (x == x) memcpy(&b32, &fx, 4);
            *zero = b32 == 0;
            put_le32(c, b32);
        } else {
            bits = UINT64_C(0x7ff8000000000000);
            if (x == x) memcpy(&bits, &x, 8);
            *zero = bits == 0;
            put_le64(c, bits);
        }
        return 1;
    }
    case DP_T_STRING: case DP_T_BYTES: {
        if (lua_type(L, idx) != LUA_TSTRING)
            return enc_fail(c, "expected string, got %s", enc_value_desc(L, idx, d, sizeof d));
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if ((f->flags & DPF_UTF8) && !dp_utf8_valid((const unsigned char *)s, n))
            return enc_fail(c, "invalid UTF-8 in string");
        *zero = n == 0;
        put_varint(c, n);
        put_bytes(c, s, n);
        return 1;
    }
    case DP_T_MESSAGE: case DP_T_GROUP:
        if (!lua_istable(L, idx)) return enc_fail(c, "expected table, got %s", lua_kind(L, idx));
        *zero = 0;
        return enc_put_body(c, f, dp_absindex(L, idx), -1, NULL);
    }
    return enc_fail(c, "unsupported field type");
}

/* Encodes one value with its tag; proto3 implicit-presence zeros are
   dropped by truncating what was written. */
int enc_put_field(ectx *c, const dp_field *f, int idx, int omit_zero) {
    size_t start = c->len;
    int zero = 0;
    put_ftag(c, f);
    if (!enc_put_value(c, f, idx, &zero)) return 0;
    if (omit_zero && zero) c->len = start;
    return 1;
}
