/*
 * text_decode.c -- protobuf text format -> protobuf bytes, reading what
 * protoc --decode and Google's TextFormat::Printer write, with the input
 * forms TextFormat::Parser also takes:
 *   - `name: value`, `name { ... }` or `name < ... >` (the ':' optional
 *     before a message), `;` or `,` after any field;
 *   - repeated fields as repeated entries or `name: [v1, v2]` lists (message
 *     lists too), maps as `name { key: k value: v }` entries;
 *   - integers in decimal, hex (0x) and octal (0...), with range checks per
 *     type; floats with exponents, an `f` suffix, inf, infinity and nan
 *     (any case); bools as true/false/True/False/t/f/1/0; enums by name or
 *     number (a number not in a closed enum is an error);
 *   - strings in '...' or "..." (adjacent ones joined) with C escapes:
 *     \a \b \f \n \r \t \v \\ \? \' \", octal \ooo, \xHH, \uXXXX, \UXXXXXXXX;
 *   - groups by their type name; `[pkg.ext]` for an extension field of
 *     the schema; `[type.googleapis.com/pkg.T] { ... }` inside an Any;
 *   - `#` comments to the end of the line.
 * A singular field given twice, two members of one oneof, an unknown field
 * name or a bad value are errors with the line:col of the token and the
 * field path. The text becomes a Lua table (enums as numbers, 64-bit
 * values as integers or decimal strings) that the schema's own encoder
 * turns into bytes, so the output is canonical like every dynpb encode.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynpb.h"

enum { TK_END, TK_IDENT, TK_INT, TK_FLOAT, TK_STRING, TK_SYM };

typedef struct token {
    int type;
    const char *p;        /* text of the token (quotes included for strings) */
    size_t n;
    int line, col;
} token;

typedef struct pctx {
    lua_State *L;
    dp_schema *S;
    int schema;           /* stack index of the schema object */
    int names;            /* stack index of NAMES */
    const char *tname;    /* the top message's name */
    const char *p, *end;  /* text not yet lexed */
    const char *lstart;   /* start of the current line */
    int line;
    token t;              /* the lookahead token */
    dp_tbuf *b;           /* scratch for string literals */
    int depth, max_depth;
    int failed;
    int npath;
    struct { const dp_field *f; int64_t i; } path[DP_MAX_MAX_DEPTH + 2];
} pctx;

/* [-0, +1, m] records the first error as "dynpb: from_text T: L:C: [field 'p': ]msg";
   returns 0 so that callers can `return fail(...)` */
static int fail_at(pctx *c, int line, int col, const char *fmt, ...) {
    if (c->failed) return 0;
    c->failed = 1;
    lua_State *L = c->L;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char head[64];
    lua_pushfstring(L, "dynpb: from_text %s: ", c->tname);
    luaL_addvalue(&b);
    snprintf(head, sizeof head, "%d:%d: ", line, col);
    luaL_addstring(&b, head);
    if (c->npath) {
        luaL_addstring(&b, "field '");
        for (int i = 0; i < c->npath; i++) {
            if (i) luaL_addchar(&b, '.');
            luaL_addstring(&b, c->path[i].f->cname);
            if (c->path[i].i) {
                snprintf(head, sizeof head, "[%lld]", (long long)c->path[i].i);
                luaL_addstring(&b, head);
            }
        }
        luaL_addstring(&b, "': ");
    }
    luaL_addstring(&b, msg);
    luaL_pushresult(&b);
    return 0;
}

#define fail(c, ...) fail_at((c), (c)->t.line, (c)->t.col, __VA_ARGS__)

/* ---- tokenizer */

static int is_ident_start(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static int is_ident(int ch) { return is_ident_start(ch) || is_digit(ch); }
static int is_hex(int ch) { return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'); }

/* lexes the next token into c->t; returns 0 on a lexical error */
static int advance(pctx *c) {
    const char *p = c->p, *end = c->end;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f' || *p == '\n')) {
            if (*p == '\n') { c->line++; c->lstart = p + 1; }
            p++;
        }
        if (p < end && *p == '#') {
            while (p < end && *p != '\n') p++;
            continue;
        }
        break;
    }
    token *t = &c->t;
    t->p = p;
    t->line = c->line;
    t->col = (int)(p - c->lstart) + 1;
    if (p >= end) {
        t->type = TK_END;
        t->n = 0;
        c->p = p;
        return 1;
    }
    int ch = (unsigned char)*p;
    if (is_ident_start(ch)) {
        while (p < end && is_ident((unsigned char)*p)) p++;
        t->type = TK_IDENT;
    } else if (is_digit(ch) || (ch == '.' && p + 1 < end && is_digit((unsigned char)p[1]))) {
        t->type = TK_INT;
        if (ch == '0' && p + 1 < end && (p[1] == 'x' || p[1] == 'X')) {
            p += 2;
            if (p >= end || !is_hex((unsigned char)*p)) {
                c->p = p;
                return fail(c, "'0x' must be followed by hex digits");
            }
            while (p < end && is_hex((unsigned char)*p)) p++;
        } else {
            while (p < end && is_digit((unsigned char)*p)) p++;
            if (p < end && *p == '.') {
                t->type = TK_FLOAT;
                p++;
                while (p < end && is_digit((unsigned char)*p)) p++;
            }
            if (p < end && (*p == 'e' || *p == 'E')) {
                const char *q = p + 1;
                if (q < end && (*q == '+' || *q == '-')) q++;
                if (q >= end || !is_digit((unsigned char)*q)) {
                    c->p = p;
                    return fail(c, "'e' must be followed by an exponent");
                }
                while (q < end && is_digit((unsigned char)*q)) q++;
                p = q;
                t->type = TK_FLOAT;
            }
            if (p < end && (*p == 'f' || *p == 'F')) {
                p++;
                t->type = TK_FLOAT;
            }
        }
        if (p < end && (is_ident((unsigned char)*p) || *p == '.')) {
            c->p = p;
            return fail(c, "need space between a number and '%c'", *p);
        }
    } else if (ch == '"' || ch == '\'') {
        p++;
        while (p < end && (unsigned char)*p != ch) {
            if (*p == '\n') {
                c->p = p;
                return fail(c, "string literal not closed on its line");
            }
            if (*p == '\\' && p + 1 < end) p++;
            p++;
        }
        if (p >= end) {
            c->p = p;
            return fail(c, "string literal not closed");
        }
        p++;
        t->type = TK_STRING;
    } else {
        p++;
        t->type = TK_SYM;
    }
    t->n = (size_t)(p - t->p);
    c->p = p;
    return 1;
}

static int is_sym(const pctx *c, char ch) { return c->t.type == TK_SYM && c->t.p[0] == ch; }

static int try_sym(pctx *c, char ch) {
    if (!is_sym(c, ch)) return 0;
    return advance(c) ? 1 : -1;
}

/* [-0, +1] pushes a printable form of the current token (for errors) */
static const char *tok_text(pctx *c, char *buf, size_t n) {
    if (c->t.type == TK_END) return "end of input";
    size_t k = c->t.n < n - 3 ? c->t.n : n - 6;
    snprintf(buf, n, "'%.*s%s'", (int)k, c->t.p, k < c->t.n ? "..." : "");
    return buf;
}

static int expect_sym(pctx *c, char ch) {
    char buf[48];
    if (!is_sym(c, ch)) return fail(c, "expected '%c', got %s", ch, tok_text(c, buf, sizeof buf));
    return advance(c);
}

/* ---- values */

static void utf8_put(pctx *c, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)); n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f)); n = 4;
    }
    dp_tbuf_add(c->L, c->b, u, n);
}

static int hexval(int ch) {
    return is_digit(ch) ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : ch - 'A' + 10;
}

/* appends the unescaped contents of the string token to c->b */
static int unescape(pctx *c) {
    const char *p = c->t.p + 1, *end = c->t.p + c->t.n - 1;
    lua_State *L = c->L;
    while (p < end) {
        const char *q = p;
        while (q < end && *q != '\\') q++;
        if (q > p) dp_tbuf_add(L, c->b, p, (size_t)(q - p));
        if (q >= end) break;
        p = q + 1;                        /* after the backslash; p < end (the lexer) */
        int col = c->t.col + (int)(q - c->t.p);
        char ch = *p++, o;
        switch (ch) {
        case 'a': o = '\a'; break;
        case 'b': o = '\b'; break;
        case 'f': o = '\f'; break;
        case 'n': o = '\n'; break;
        case 'r': o = '\r'; break;
        case 't': o = '\t'; break;
        case 'v': o = '\v'; break;
        case '\\': case '?': case '\'': case '"': o = ch; break;
        case 'x': case 'X': {
            if (p >= end || !is_hex((unsigned char)*p))
                return fail_at(c, c->t.line, col, "'\\x' must be followed by hex digits");
            int v = hexval((unsigned char)*p++);
            if (p < end && is_hex((unsigned char)*p)) v = v * 16 + hexval((unsigned char)*p++);
            o = (char)v;
            break;
        }
        case 'u': case 'U': {
            int nd = ch == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int i = 0; i < nd; i++, p++) {
                if (p >= end || !is_hex((unsigned char)*p))
                    return fail_at(c, c->t.line, col, "'\\%c' must be followed by %d hex digits", ch, nd);
                cp = cp * 16 + (uint32_t)hexval((unsigned char)*p);
            }
            /* as protobuf v33: a surrogate (paired or not) is no character */
            if (cp >= 0xd800 && cp < 0xe000)
                return fail_at(c, c->t.line, col, "escape '\\%c' of a surrogate (U+%04X)", ch, (unsigned)cp);
            if (cp > 0x10ffff)
                return fail_at(c, c->t.line, col, "escape '\\%c' beyond U+10FFFF", ch);
            utf8_put(c, cp);
            continue;
        }
        default:
            if (ch >= '0' && ch <= '7') {
                int v = ch - '0';
                for (int i = 0; i < 2 && p < end && *p >= '0' && *p <= '7'; i++) v = v * 8 + (*p++ - '0');
                if (v > 255) return fail_at(c, c->t.line, col, "octal escape beyond \\377");
                o = (char)v;
                break;
            }
            return fail_at(c, c->t.line, col, "invalid escape '\\%c' in string literal", ch);
        }
        dp_tbuf_add(L, c->b, &o, 1);
    }
    return 1;
}

/* [-0, +1] pushes one or more adjacent string literals, joined */
static int push_string(pctx *c) {
    char buf[48];
    if (c->t.type != TK_STRING) return fail(c, "expected a string, got %s", tok_text(c, buf, sizeof buf));
    c->b->n = 0;
    while (c->t.type == TK_STRING) {
        if (!unescape(c) || !advance(c)) return 0;
    }
    lua_pushlstring(c->L, c->b->p ? c->b->p : "", c->b->n);
    return 1;
}

/* the magnitude of an integer token (decimal, 0x hex, 0 octal); 0 on overflow */
static int int_token(pctx *c, uint64_t *out) {
    const char *p = c->t.p, *end = p + c->t.n;
    uint64_t v = 0;
    int base = 10;
    if (c->t.n > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) { base = 16; p += 2; }
    else if (c->t.n > 1 && p[0] == '0') { base = 8; p++; }
    for (; p < end; p++) {
        int d = hexval((unsigned char)*p);
        if (d >= base) return fail(c, "invalid digit '%c' in an integer", *p);
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return fail(c, "integer out of range");
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return 1;
}

static int ieq(const token *t, const char *s) {
    size_t n = strlen(s);
    if (t->n != n) return 0;
    for (size_t i = 0; i < n; i++) {
        int a = (unsigned char)t->p[i];
        if (a >= 'A' && a <= 'Z') a += 32;
        if (a != s[i]) return 0;
    }
    return 1;
}

/* [-0, +1] pushes the scalar value of field f (type type) from the tokens */
static int push_scalar(pctx *c, const dp_field *f, int type, int32_t sub) {
    lua_State *L = c->L;
    char buf[48];
    switch (type) {
    case DP_T_STRING:
    case DP_T_BYTES:
        return push_string(c);
    case DP_T_BOOL:
        if (c->t.type == TK_IDENT) {
            const token *t = &c->t;
            int v = -1;
            if ((t->n == 4 && (memcmp(t->p, "true", 4) == 0 || memcmp(t->p, "True", 4) == 0)) ||
                (t->n == 1 && t->p[0] == 't')) v = 1;
            if ((t->n == 5 && (memcmp(t->p, "false", 5) == 0 || memcmp(t->p, "False", 5) == 0)) ||
                (t->n == 1 && t->p[0] == 'f')) v = 0;
            if (v >= 0) {
                lua_pushboolean(L, v);
                return advance(c);
            }
        } else if (c->t.type == TK_INT && c->t.n == 1 && (c->t.p[0] == '0' || c->t.p[0] == '1')) {
            lua_pushboolean(L, c->t.p[0] == '1');
            return advance(c);
        }
        return fail(c, "expected a bool (true or false), got %s", tok_text(c, buf, sizeof buf));
    case DP_T_FLOAT:
    case DP_T_DOUBLE: {
        int neg = 0;
        if (is_sym(c, '-')) {
            neg = 1;
            if (!advance(c)) return 0;
        }
        double v;
        if (c->t.type == TK_FLOAT || (c->t.type == TK_INT && (c->t.n == 1 || c->t.p[0] != '0'))) {
            char num[128];
            size_t n = c->t.n;
            if (n && (c->t.p[n - 1] == 'f' || c->t.p[n - 1] == 'F')) n--;
            if (n >= sizeof num) {
                lua_pushlstring(L, c->t.p, n);
                v = strtod(lua_tostring(L, -1), NULL);
                lua_pop(L, 1);
            } else {
                memcpy(num, c->t.p, n);
                num[n] = 0;
                v = strtod(num, NULL);
            }
        } else if (c->t.type == TK_INT) {
            return fail(c, "a float must be decimal, got %s", tok_text(c, buf, sizeof buf));
        } else if (c->t.type == TK_IDENT && (ieq(&c->t, "inf") || ieq(&c->t, "infinity"))) {
            v = HUGE_VAL;
        } else if (c->t.type == TK_IDENT && ieq(&c->t, "nan")) {
            v = NAN;
        } else {
            return fail(c, "expected a number, got %s", tok_text(c, buf, sizeof buf));
        }
        if (neg) v = -v;
        if (type == DP_T_FLOAT && !isnan(v)) {
            /* as protoc's static_cast<float>: round to float, overflow to inf */
            double a = fabs(v);
            if (a > FLT_MAX) a = a < 3.4028235677973366e+38 ? FLT_MAX : HUGE_VAL;
            else a = (double)(float)a;
            v = copysign(a, v);
        }
        lua_pushnumber(L, v);
        return advance(c);
    }
    case DP_T_ENUM: {
        const dp_enum *e = &c->S->enums[sub];
        if (c->t.type == TK_IDENT) {
            int i = dp_enum_find_name(e, c->t.p, c->t.n);
            if (i < 0)
                return fail(c, "unknown value %s of enum %s", tok_text(c, buf, sizeof buf), e->name);
            lua_pushinteger(L, e->values[i].number);
            return advance(c);
        }
        int neg = 0;
        if (is_sym(c, '-')) {
            neg = 1;
            if (!advance(c)) return 0;
        }
        uint64_t u;
        if (c->t.type != TK_INT)
            return fail(c, "expected an enum value name or number, got %s", tok_text(c, buf, sizeof buf));
        if (!int_token(c, &u)) return 0;
        if (u > (neg ? UINT64_C(2147483648) : UINT64_C(2147483647))) return fail(c, "enum number out of range");
        int32_t v = neg ? (int32_t)(-(int64_t)u) : (int32_t)u;
        if (e->closed && dp_enum_find(e, v) < 0)
            return fail(c, "%s%llu is not a value of enum %s", neg ? "-" : "", (unsigned long long)u, e->name);
        lua_pushinteger(L, v);
        return advance(c);
    }
    default: {
        int sgn = type == DP_T_INT32 || type == DP_T_SINT32 || type == DP_T_SFIXED32 ||
                  type == DP_T_INT64 || type == DP_T_SINT64 || type == DP_T_SFIXED64;
        int is64 = type == DP_T_INT64 || type == DP_T_SINT64 || type == DP_T_SFIXED64 ||
                   type == DP_T_UINT64 || type == DP_T_FIXED64;
        int neg = 0;
        if (sgn && is_sym(c, '-')) {
            neg = 1;
            if (!advance(c)) return 0;
        }
        if (c->t.type != TK_INT)
            return fail(c, "expected %s, got %s", sgn ? "an integer" : "a non-negative integer",
                        tok_text(c, buf, sizeof buf));
        uint64_t u;
        if (!int_token(c, &u)) return 0;
        uint64_t max = is64 ? (sgn ? (neg ? UINT64_C(1) << 63 : (uint64_t)INT64_MAX) : UINT64_MAX)
                            : (sgn ? (neg ? UINT64_C(2147483648) : 2147483647u) : 4294967295u);
        if (u > max)
            return fail(c, "integer %s%.*s out of range for %s", neg ? "-" : "", (int)c->t.n, c->t.p,
                        dp_type_str(type));
        if (neg) dp_push_i64(L, (int64_t)(0 - u));
        else if (sgn) dp_push_i64(L, (int64_t)u);
        else dp_push_u64(L, u);
        return advance(c);
    }
    }
    (void)f;
}

/* ---- messages */

static int parse_msg(pctx *c, const dp_msg *m, int t, char close);

/* [-0, +1] pushes the default of a map entry value (value field vf) */
static void push_default(pctx *c, const dp_field *vf) {
    lua_State *L = c->L;
    switch (vf->type) {
    case DP_T_STRING: case DP_T_BYTES: lua_pushliteral(L, ""); break;
    case DP_T_BOOL: lua_pushboolean(L, 0); break;
    case DP_T_MESSAGE: case DP_T_GROUP: lua_newtable(L); break;
    case DP_T_ENUM: {
        const dp_enum *e = &c->S->enums[vf->sub];
        lua_pushinteger(L, e->nvalues ? e->values[0].number : 0);
        break;
    }
    default: lua_pushinteger(L, 0);
    }
}

/* [-0, +1] parses one message value ({...} or <...>) of type m into a new table */
static int push_message(pctx *c, const dp_msg *m) {
    char buf[48];
    char close;
    if (is_sym(c, '{')) close = '}';
    else if (is_sym(c, '<')) close = '>';
    else return fail(c, "expected '{' or '<', got %s", tok_text(c, buf, sizeof buf));
    if (!advance(c)) return 0;
    lua_newtable(c->L);
    return parse_msg(c, m, lua_gettop(c->L), close);
}

/* [-0, +1] pushes field f (key or value) of the parsed map entry table at
   absolute index entry, or f's default when the entry leaves it out */
static void push_entry_part(pctx *c, const dp_field *f, int entry) {
    lua_rawgeti(c->L, c->names, f->name);
    lua_rawget(c->L, entry);
    if (lua_isnil(c->L, -1)) {
        lua_pop(c->L, 1);
        push_default(c, f);
    }
}

/* one value of field f (tokens at the value) stored into the table at t */
static int parse_value(pctx *c, const dp_field *f, int t, int msgish) {
    lua_State *L = c->L;
    luaL_checkstack(L, 8, "dynpb: from_text");
    if (msgish) {
        if (!push_message(c, &c->S->msgs[f->sub])) return 0;
    } else if (!push_scalar(c, f, f->type, f->sub)) {
        return 0;
    }
    /* +1 value */
    lua_rawgeti(L, c->names, f->name);                /* +1 key */
    if (f->flags & DPF_MAP) {
        const dp_msg *em = &c->S->msgs[f->sub];
        const dp_field *kf = dp_find_field(em, 1), *vf = dp_find_field(em, 2);
        lua_pushvalue(L, -1);
        lua_rawget(L, t);                             /* +1 map */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, t);
        }
        int entry = lua_gettop(L) - 2;               /* the parsed entry table */
        if (kf) push_entry_part(c, kf, entry);        /* +1 key */
        else lua_pushinteger(L, 0);
        if (vf) push_entry_part(c, vf, entry);        /* +1 value */
        else lua_pushboolean(L, 0);
        lua_rawset(L, -3);                            /* -2 map[key] = value */
        lua_pop(L, 3);                                /* map, key, entry */
        return 1;
    }
    if (f->flags & DPF_REPEATED) {
        lua_pushvalue(L, -1);
        lua_rawget(L, t);                             /* +1 array */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, t);
        }
        lua_pushvalue(L, -3);
        lua_rawseti(L, -2, (int)dp_rawlen(L, -2) + 1);
        lua_pop(L, 3);
        return 1;
    }
    lua_insert(L, -2);
    lua_rawset(L, t);
    return 1;
}

/* the index the next element of repeated field f will have, for errors */
static void set_index(pctx *c, const dp_field *f, int t) {
    lua_State *L = c->L;
    if (!(f->flags & DPF_REPEATED) || (f->flags & DPF_MAP)) return;
    lua_rawgeti(L, c->names, f->name);
    lua_rawget(L, t);
    c->path[c->npath - 1].i = lua_istable(L, -1) ? (int64_t)dp_rawlen(L, -1) + 1 : 1;
    lua_pop(L, 1);
}

/* the value(s) of field f after its name: [':'] value | ':' '[' values ']' */
static int parse_field_value(pctx *c, const dp_field *f, int t, const char *what) {
    lua_State *L = c->L;
    char buf[48];
    int msgish = f->type == DP_T_MESSAGE || f->type == DP_T_GROUP;
    int r = try_sym(c, ':');
    if (r < 0) return 0;
    if (!r && !msgish) return fail(c, "expected ':' after %s, got %s", what, tok_text(c, buf, sizeof buf));
    /* a singular field or oneof member given before */
    if (!(f->flags & DPF_REPEATED)) {
        lua_rawgeti(L, c->names, f->name);
        lua_rawget(L, t);
        int set = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (set) return fail(c, "non-repeated %s given twice", what);
    }
    if (is_sym(c, '[')) {
        if (!(f->flags & DPF_REPEATED)) return fail(c, "a list '[...]' for non-repeated %s", what);
        if (!advance(c)) return 0;
        if (is_sym(c, ']')) return advance(c);
        for (;;) {
            set_index(c, f, t);
            if (!parse_value(c, f, t, msgish)) return 0;
            if (is_sym(c, ']')) return advance(c);
            if (!expect_sym(c, ',')) return 0;
        }
    }
    set_index(c, f, t);
    return parse_value(c, f, t, msgish);
}

/* [-0, +0, e] message index of a full type name, or -1 */
static int find_msg(pctx *c, const char *name, size_t n) {
    return (int)dp_find_msg(dp_check_schema(c->L, c->schema), name, n);
}

/* `[type.googleapis.com/pkg.T] { ... }` in the Any m at t; url in c->b */
static int parse_any(pctx *c, const dp_msg *m, int t, int line, int col) {
    lua_State *L = c->L;
    const dp_field *fu = dp_find_field(m, 1), *fv = dp_find_field(m, 2);
    const char *url = c->b->p;
    size_t un = c->b->n;
    const char *slash = url + un;
    while (slash > url && slash[-1] != '/') slash--;
    if (!fu || !fv) return fail_at(c, line, col, "an Any URL in a message that is not an Any");
    int mi = find_msg(c, slash, un - (size_t)(slash - url));
    if (mi < 0)
        return fail_at(c, line, col, "type '%.*s' of the Any is not in the schema",
                       (int)(un - (size_t)(slash - url)), slash);
    lua_pushlstring(L, url, un);                      /* +1 url */
    lua_rawgeti(L, c->names, fu->name);
    lua_rawget(L, t);
    lua_rawgeti(L, c->names, fv->name);
    lua_rawget(L, t);
    int set = !lua_isnil(L, -1) || !lua_isnil(L, -2);
    lua_pop(L, 2);
    if (set) return fail_at(c, line, col, "the Any has its type URL or value already");
    int r = try_sym(c, ':');
    if (r < 0 || !push_message(c, &c->S->msgs[mi])) return 0;   /* +1 table */
    lua_getfield(L, c->schema, "encode");
    lua_pushvalue(L, c->schema);
    lua_pushstring(L, c->S->msgs[mi].name);
    lua_pushvalue(L, -4);
    lua_call(L, 3, 2);                                /* +2 bytes, err */
    if (lua_isnil(L, -2)) return fail_at(c, line, col, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_rawgeti(L, c->names, fv->name);
    lua_insert(L, -2);
    lua_rawset(L, t);                                 /* value = bytes */
    lua_pop(L, 1);                                    /* table */
    lua_rawgeti(L, c->names, fu->name);
    lua_insert(L, -2);
    lua_rawset(L, t);                                 /* type_url = url */
    return 1;
}

/* ---- reserved names (DescriptorProto.reserved_name), read from the set's
   own bytes on first need into uservalue slot DP_UV_TEXT_RESERVED:
   { ["pkg.Msg"] = { name = true, ... } } */

static int rd_len(const unsigned char **p, const unsigned char *end, const unsigned char **s,
                  size_t *n) {
    uint64_t v;
    if (dp_read_varint(p, end, &v) != DP_OK || v > (uint64_t)(end - *p)) return 0;
    *s = *p;
    *n = (size_t)v;
    *p += v;
    return 1;
}

/* [-0, +0, e] the reserved names of the DescriptorProto d[0..n) (full name
   prefix.name) and of its nested messages into the table at tab */
static void scan_reserved(lua_State *L, int tab, const char *prefix, size_t plen,
                          const unsigned char *d, size_t n, int depth) {
    const unsigned char *p = d, *end = d + n, *s, *name = NULL;
    size_t sn, namen = 0;
    if (depth > DP_MAX_TYPE_DEPTH) return;
    /* the name first (it may come after other fields) */
    while (p < end) {
        uint64_t tag;
        if (dp_read_varint(&p, end, &tag) != DP_OK) return;
        if ((tag & 7) == DP_WT_LEN) {
            if (!rd_len(&p, end, &s, &sn)) return;
            if (tag >> 3 == 1) { name = s; namen = sn; }
        } else if (dp_skip_field(&p, end, (uint32_t)(tag >> 3), (int)(tag & 7), 64) != DP_OK) {
            return;
        }
    }
    if (!name) return;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (plen) {
        luaL_addlstring(&b, prefix, plen);
        luaL_addchar(&b, '.');
    }
    luaL_addlstring(&b, (const char *)name, namen);
    luaL_pushresult(&b);                              /* +1 full name */
    size_t fln;
    const char *full = lua_tolstring(L, -1, &fln);
    for (p = d; p < end;) {
        uint64_t tag;
        if (dp_read_varint(&p, end, &tag) != DP_OK) break;
        if ((tag & 7) != DP_WT_LEN) {
            if (dp_skip_field(&p, end, (uint32_t)(tag >> 3), (int)(tag & 7), 64) != DP_OK) break;
            continue;
        }
        if (!rd_len(&p, end, &s, &sn)) break;
        if (tag >> 3 == 3) {
            scan_reserved(L, tab, full, fln, s, sn, depth + 1);
        } else if (tag >> 3 == 10) {
            lua_pushvalue(L, -1);
            lua_rawget(L, tab);                       /* +1 set */
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_newtable(L);
                lua_pushvalue(L, -2);                 /* the full name */
                lua_pushvalue(L, -2);
                lua_rawset(L, tab);
            }
            lua_pushlstring(L, (const char *)s, sn);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
            lua_pop(L, 1);                            /* -1 set */
        }
    }
    lua_pop(L, 1);                                    /* -1 full name */
}

/* [-0, +0, e] is name[0..n) a reserved name of message m? */
static int is_reserved(pctx *c, const dp_msg *m, const char *name, size_t n) {
    lua_State *L = c->L;
    lua_rawgeti(L, c->schema, 1);                     /* +1 core */
    dp_getuv(L, -1);                                  /* +1 uv */
    lua_rawgeti(L, -1, DP_UV_TEXT_RESERVED);          /* +1 reserved */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        int tab = lua_gettop(L);
        lua_rawgeti(L, -2, DP_UV_SOURCE);             /* +1 set bytes */
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t sl;
            const unsigned char *p = (const unsigned char *)lua_tolstring(L, -1, &sl), *end = p + sl;
            while (p < end) {                         /* FileDescriptorSet.file = 1 */
                uint64_t tag;
                const unsigned char *f, *q, *s, *pkg = NULL;
                size_t fn, sn, pkgn = 0;
                if (dp_read_varint(&p, end, &tag) != DP_OK || tag != ((1 << 3) | DP_WT_LEN) ||
                    !rd_len(&p, end, &f, &fn))
                    break;
                for (q = f; q < f + fn;) {            /* package = 2 */
                    if (dp_read_varint(&q, f + fn, &tag) != DP_OK) break;
                    if ((tag & 7) == DP_WT_LEN) {
                        if (!rd_len(&q, f + fn, &s, &sn)) break;
                        if (tag >> 3 == 2) { pkg = s; pkgn = sn; }
                    } else if (dp_skip_field(&q, f + fn, (uint32_t)(tag >> 3), (int)(tag & 7), 64) != DP_OK) {
                        break;
                    }
                }
                for (q = f; q < f + fn;) {            /* message_type = 4 */
                    if (dp_read_varint(&q, f + fn, &tag) != DP_OK) break;
                    if ((tag & 7) == DP_WT_LEN) {
                        if (!rd_len(&q, f + fn, &s, &sn)) break;
                        if (tag >> 3 == 4)
                            scan_reserved(L, tab, (const char *)pkg, pkg ? pkgn : 0, s, sn, 0);
                    } else if (dp_skip_field(&q, f + fn, (uint32_t)(tag >> 3), (int)(tag & 7), 64) != DP_OK) {
                        break;
                    }
                }
            }
        }
        lua_pop(L, 1);                                /* -1 bytes */
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, DP_UV_TEXT_RESERVED);
    }
    lua_getfield(L, -1, m->name);                     /* +1 set or nil */
    int r = 0;
    if (lua_istable(L, -1)) {
        lua_pushlstring(L, name, n);
        lua_rawget(L, -2);
        r = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 4);
    return r;
}

static int skip_message_body(pctx *c, char close);

/* skips a value: [':'] { ... } | < ... > | [list] | scalar tokens */
static int skip_field_value(pctx *c) {
    char buf[48];
    int colon = try_sym(c, ':');
    if (colon < 0) return 0;
    if (is_sym(c, '{') || is_sym(c, '<')) {
        char close = is_sym(c, '{') ? '}' : '>';
        return advance(c) && skip_message_body(c, close);
    }
    if (!colon) return fail(c, "expected ':' or '{', got %s", tok_text(c, buf, sizeof buf));
    if (is_sym(c, '[')) {
        if (!advance(c)) return 0;
        if (is_sym(c, ']')) return advance(c);
        for (;;) {
            if (is_sym(c, '{') || is_sym(c, '<')) {
                char close = is_sym(c, '{') ? '}' : '>';
                if (!advance(c) || !skip_message_body(c, close)) return 0;
            } else {
                if (is_sym(c, '-') && !advance(c)) return 0;
                if (c->t.type == TK_STRING) {
                    while (c->t.type == TK_STRING) if (!advance(c)) return 0;
                } else if (c->t.type == TK_IDENT || c->t.type == TK_INT || c->t.type == TK_FLOAT) {
                    if (!advance(c)) return 0;
                } else {
                    return fail(c, "expected a value, got %s", tok_text(c, buf, sizeof buf));
                }
            }
            if (is_sym(c, ']')) return advance(c);
            if (!expect_sym(c, ',')) return 0;
        }
    }
    if (is_sym(c, '-') && !advance(c)) return 0;
    if (c->t.type == TK_STRING) {
        while (c->t.type == TK_STRING) if (!advance(c)) return 0;
        return 1;
    }
    if (c->t.type == TK_IDENT || c->t.type == TK_INT || c->t.type == TK_FLOAT) return advance(c);
    return fail(c, "expected a value, got %s", tok_text(c, buf, sizeof buf));
}

/* skips the fields of a message up to close */
static int skip_message_body(pctx *c, char close) {
    char buf[48];
    if (++c->depth > c->max_depth) return fail(c, "nesting deeper than %d", c->max_depth);
    while (!is_sym(c, close)) {
        if (c->t.type == TK_END) return fail(c, "expected '%c', got end of input", close);
        if (is_sym(c, '[')) {
            while (!is_sym(c, ']')) {
                if (c->t.type == TK_END) return fail(c, "expected ']', got end of input");
                if (!advance(c)) return 0;
            }
        } else if (c->t.type != TK_IDENT) {
            return fail(c, "expected a field name, got %s", tok_text(c, buf, sizeof buf));
        }
        if (!advance(c) || !skip_field_value(c)) return 0;
        int r = try_sym(c, ';');
        if (r == 0) r = try_sym(c, ',');
        if (r < 0) return 0;
    }
    c->depth--;
    return advance(c);
}

/* fields of message m into the table at t, up to close (0: end of input) */
static int parse_msg(pctx *c, const dp_msg *m, int t, char close) {
    lua_State *L = c->L;
    char buf[48];
    if (++c->depth > c->max_depth) return fail(c, "nesting deeper than %d", c->max_depth);
    for (;;) {
        if (c->t.type == TK_END) {
            if (close) return fail(c, "expected '%c', got end of input", close);
            break;
        }
        if (close && is_sym(c, close)) {
            if (!advance(c)) return 0;
            break;
        }
        const dp_field *f = NULL;
        int line = c->t.line, col = c->t.col;
        if (is_sym(c, '[')) {
            /* [pkg.ext] or [type.googleapis.com/pkg.T] */
            if (!advance(c)) return 0;
            c->b->n = 0;
            dp_tbuf_add(L, c->b, "[", 1);
            int any = 0;
            for (;;) {
                if (c->t.type != TK_IDENT)
                    return fail(c, "expected a name in '[...]', got %s", tok_text(c, buf, sizeof buf));
                dp_tbuf_add(L, c->b, c->t.p, c->t.n);
                if (!advance(c)) return 0;
                if (is_sym(c, '.') || is_sym(c, '/')) {
                    if (is_sym(c, '/')) any = 1;
                    dp_tbuf_add(L, c->b, c->t.p, 1);
                    if (!advance(c)) return 0;
                    continue;
                }
                break;
            }
            if (!expect_sym(c, ']')) return 0;
            if (any) {
                /* the URL without the brackets */
                memmove(c->b->p, c->b->p + 1, c->b->n - 1);
                c->b->n--;
                if (!parse_any(c, m, t, line, col)) return 0;
                int r = try_sym(c, ';');
                if (r == 0) r = try_sym(c, ',');
                if (r < 0) return 0;
                continue;
            }
            dp_tbuf_add(L, c->b, "]", 1);
            f = dp_find_field_by_name(m, c->b->p, c->b->n);
            if (!f && m->message_set) {
                /* a MessageSet item by its type name: [pkg.Type] */
                for (uint32_t i = 0; i < m->nfields && !f; i++) {
                    const dp_field *g = &m->fields[i];
                    if (dp_text_mset_item(m, g) && strlen(g->type_name) == c->b->n - 2 &&
                        memcmp(g->type_name, c->b->p + 1, c->b->n - 2) == 0)
                        f = g;
                }
            }
            if (!f)
                return fail_at(c, line, col, "no extension %.*s of message %s", (int)c->b->n, c->b->p, m->name);
        } else if (c->t.type == TK_IDENT) {
            /* a group goes by its type name, or (as protobuf v33 also takes)
               its lowercase field name. Only a group-like field answers to
               its type name (dp_text_group_like: an editions message may
               have other delimited fields of that type, which go by their
               field names) */
            f = dp_find_field_by_name(m, c->t.p, c->t.n);
            for (uint32_t i = 0; !f && i < m->nfields; i++) {
                const dp_field *g = &m->fields[i];
                if (!dp_text_group_like(m, g)) continue;
                const char *sn = strrchr(g->type_name, '.');
                sn = sn ? sn + 1 : g->type_name;
                if (strlen(sn) == c->t.n && memcmp(sn, c->t.p, c->t.n) == 0) f = g;
            }
            if (!f && is_reserved(c, m, c->t.p, c->t.n)) {
                /* a reserved name: its value is read and dropped */
                if (!advance(c) || !skip_field_value(c)) return 0;
                int r = try_sym(c, ';');
                if (r == 0) r = try_sym(c, ',');
                if (r < 0) return 0;
                continue;
            }
            if (!f)
                return fail(c, "no field named '%.*s' in message %s", (int)c->t.n, c->t.p, m->name);
            if (!advance(c)) return 0;
        } else {
            return fail(c, "expected a field name, got %s", tok_text(c, buf, sizeof buf));
        }
        char what[160];
        snprintf(what, sizeof what, "field '%s'", f->cname);
        if (f->oneof >= 0) {
            for (uint32_t i = 0; i < m->nfields; i++) {
                const dp_field *g = &m->fields[i];
                if (g == f || g->oneof != f->oneof) continue;
                lua_rawgeti(L, c->names, g->name);
                lua_rawget(L, t);
                int set = !lua_isnil(L, -1);
                lua_pop(L, 1);
                if (set)
                    return fail_at(c, line, col, "field '%s' given with field '%s' of the same oneof '%s'",
                                   f->cname, g->cname, m->oneof_names[f->oneof]);
            }
        }
        if (c->npath >= DP_MAX_MAX_DEPTH + 1) return fail(c, "nesting too deep");
        c->path[c->npath].f = f;
        c->path[c->npath].i = 0;
        c->npath++;
        if (!parse_field_value(c, f, t, what)) return 0;
        c->npath--;
        int r = try_sym(c, ';');
        if (r == 0) r = try_sym(c, ',');
        if (r < 0) return 0;
    }
    c->depth--;
    return 1;
}

/* [-0, +2|+1, e] bytes of message m for the text at tidx, options at oidx */
static int from_text(lua_State *L, int schema, const dp_msg *m, int tidx, int oidx) {
    static const char *const known[] = {"max_depth", NULL};
    pctx c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.schema = schema;
    c.tname = m->name;
    c.max_depth = DP_DEFAULT_MAX_DEPTH;
    if (lua_type(L, tidx) != LUA_TSTRING)
        luaL_error(L, "dynpb: from_text: text must be a string, got %s", luaL_typename(L, tidx));
    dp_check_options(L, oidx, "from_text", known);
    if (lua_istable(L, oidx)) {
        lua_getfield(L, oidx, "max_depth");
        if (!lua_isnil(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= DP_MAX_MAX_DEPTH) || n != (lua_Number)(int)n)
                luaL_error(L, "dynpb: from_text: option 'max_depth' must be an integer from 1 to %d",
                           DP_MAX_MAX_DEPTH);
            c.max_depth = (int)n;
        }
        lua_pop(L, 1);
    }
    c.S = dp_check_schema(L, schema);
    size_t n;
    c.p = lua_tolstring(L, tidx, &n);
    c.end = c.p + n;
    c.lstart = c.p;
    c.line = 1;
    dp_push_names(L, schema);                         /* +1 names */
    c.names = lua_gettop(L);
    c.b = dp_tbuf_new(L);                             /* +1 scratch */
    lua_newtable(L);                                  /* +1 result table */
    int t = lua_gettop(L);
    int base = t;
    if (!advance(&c) || !parse_msg(&c, m, t, 0)) {
        lua_pushnil(L);
        lua_insert(L, -2);                            /* nil, message */
        return 2;
    }
    lua_settop(L, base);
    lua_getfield(L, schema, "encode");
    lua_pushvalue(L, schema);
    lua_pushstring(L, m->name);
    lua_pushvalue(L, t);
    lua_call(L, 3, 2);                                /* bytes | nil, err */
    if (lua_isnil(L, -2)) {
        const char *e = lua_tostring(L, -1);
        if (e && strncmp(e, "dynpb: encode ", 14) == 0) {
            lua_pushfstring(L, "dynpb: from_text %s", e + 14);
            lua_replace(L, -2);
        }
        return 2;
    }
    lua_pop(L, 1);
    return 1;
}

int dp_l_schema_from_text(lua_State *L) {
    dp_schema *S = dp_check_schema(L, 1);
    const dp_msg *m = dp_lookup_msg(L, S, 1, 2);
    return from_text(L, 1, m, 3, 4);
}

int dp_l_handle_from_text(lua_State *L) {
    const dp_msg *m;
    dp_check_handle(L, 1, &m);
    lua_settop(L, 3);
    lua_getfield(L, 1, "schema");                     /* +1 schema object at 4 */
    return from_text(L, 4, m, 2, 3);
}
