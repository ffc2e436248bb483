/*
 * lexer.c -- protoc's tokenizer (io::Tokenizer): identifiers, integers
 * (decimal, 0x hex, 0 octal), floats, quoted strings, single-character
 * symbols; // and block comments are skipped (# in text format). Lines and
 * columns are 0-based; a tab advances the column to the next multiple of 8,
 * as protoc counts them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pc.h"

void pc_lex_init(pc_lexer *X, pc_ctx *C, const char *file, const char *s, size_t n, int line,
                 int col) {
    memset(X, 0, sizeof *X);
    X->C = C;
    X->file = file;
    X->p = s;
    X->end = s + n;
    X->line = line;
    X->col = col;
    pc_lex_next(X);
}

static void adv(pc_lexer *X) {
    if (*X->p == '\n') {
        X->line++;
        X->col = 0;
    } else if (*X->p == '\t') {
        X->col += 8 - X->col % 8;
    } else {
        X->col++;
    }
    X->p++;
}

#define AT(X) ((X)->p < (X)->end ? (unsigned char)*(X)->p : 0)
#define AT1(X) ((X)->p + 1 < (X)->end ? (unsigned char)(X)->p[1] : 0)

static int isletter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int isdig(int c) { return c >= '0' && c <= '9'; }
static int ishex(int c) { return isdig(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static void lexfail(pc_lexer *X, const char *msg) {
    pc_fail(X->C, X->file, X->line, X->col, "%s", msg);
}

static void skip_space(pc_lexer *X) {
    for (;;) {
        int c = AT(X);
        if (X->p >= X->end) return;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            adv(X);
        } else if (c == '/' && AT1(X) == '/' && !X->textfmt) {
            while (X->p < X->end && *X->p != '\n') adv(X);
        } else if (c == '#' && X->textfmt) {
            while (X->p < X->end && *X->p != '\n') adv(X);
        } else if (c == '/' && AT1(X) == '*' && !X->textfmt) {
            adv(X);
            adv(X);
            for (;;) {
                if (X->p >= X->end) lexfail(X, "End-of-file inside block comment.");
                if (*X->p == '*' && AT1(X) == '/') {
                    adv(X);
                    adv(X);
                    break;
                }
                if (*X->p == '/' && AT1(X) == '*') {
                    adv(X);
                    lexfail(X, "\"/*\" inside block comment.  Block comments cannot be nested.");
                }
                adv(X);
            }
        } else if (c == 0 && X->p < X->end) {
            lexfail(X, "Invalid control characters encountered in text.");
        } else {
            return;
        }
    }
}

static void lex_number(pc_lexer *X, pc_tok *t) {
    int isfloat = 0;
    if (AT(X) == '0' && (AT1(X) == 'x' || AT1(X) == 'X')) {
        adv(X);
        adv(X);
        if (!ishex(AT(X))) lexfail(X, "\"0x\" must be followed by hex digits.");
        while (ishex(AT(X))) adv(X);
    } else if (AT(X) == '0' && isdig(AT1(X))) {
        while (isdig(AT(X))) {
            if (AT(X) > '7') lexfail(X, "Numbers starting with leading zero must be in octal.");
            adv(X);
        }
    } else {
        if (AT(X) == '.') isfloat = 1;
        while (isdig(AT(X))) adv(X);
        if (AT(X) == '.' && !isfloat) {
            isfloat = 1;
            adv(X);
            while (isdig(AT(X))) adv(X);
        } else if (isfloat) {
            adv(X);
            while (isdig(AT(X))) adv(X);
        }
        if (AT(X) == 'e' || AT(X) == 'E') {
            isfloat = 1;
            adv(X);
            if (AT(X) == '-' || AT(X) == '+') adv(X);
            if (!isdig(AT(X))) lexfail(X, "\"e\" must be followed by exponent.");
            while (isdig(AT(X))) adv(X);
        }
        if (X->textfmt && (AT(X) == 'f' || AT(X) == 'F')) {
            isfloat = 1;
            adv(X);
        }
    }
    if (isletter(AT(X))) lexfail(X, "Need space between number and identifier.");
    if (AT(X) == '.' && !isfloat) lexfail(X, "Already saw decimal point or exponent; can't have another one.");
    t->type = isfloat ? TK_FLOAT : TK_INT;
}

void pc_lex_next(pc_lexer *X) {
    X->prev = X->cur;
    skip_space(X);
    pc_tok *t = &X->cur;
    t->s = X->p;
    t->line = X->line;
    t->col = X->col;
    if (X->p >= X->end) {
        t->type = TK_EOF;
        t->n = 0;
        t->endcol = X->col;
        return;
    }
    int c = AT(X);
    if (isletter(c)) {
        while (isletter(AT(X)) || isdig(AT(X))) adv(X);
        t->type = TK_IDENT;
    } else if (isdig(c) || (c == '.' && isdig(AT1(X)))) {
        lex_number(X, t);
    } else if (c == '"' || c == '\'') {
        adv(X);
        for (;;) {
            int d = AT(X);
            if (X->p >= X->end) lexfail(X, "Unexpected end of string.");
            if (d == '\n') lexfail(X, "String literals cannot cross line boundaries.");
            if (d == '\\') {
                adv(X);
                if (X->p >= X->end) lexfail(X, "Unexpected end of string.");
                if (*X->p == '\n') lexfail(X, "String literals cannot cross line boundaries.");
                adv(X);
                continue;
            }
            adv(X);
            if (d == c) break;
        }
        t->type = TK_STRING;
    } else {
        if (c < 32 || c == 127) lexfail(X, "Invalid control characters encountered in text.");
        if (c >= 128) lexfail(X, "Interpreting non ascii codepoint.");
        adv(X);
        t->type = TK_SYMBOL;
    }
    t->n = (size_t)(X->p - t->s);
    t->endcol = X->col;
}

static int hexval(int c) {
    if (isdig(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

static void put_utf8(pc_ctx *C, pc_buf *b, uint32_t cp) {
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (unsigned char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (unsigned char)(0xC0 | (cp >> 6)); u[1] = (unsigned char)(0x80 | (cp & 63)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12)); u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        u[2] = (unsigned char)(0x80 | (cp & 63)); n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | (cp >> 18)); u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)); u[3] = (unsigned char)(0x80 | (cp & 63)); n = 4;
    }
    pc_buf_put(C, b, u, n);
}

static int read_hex(const char *p, const char *e, int n, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        if (p + i >= e || !ishex((unsigned char)p[i])) return 0;
        v = v * 16 + (uint32_t)hexval((unsigned char)p[i]);
    }
    *out = v;
    return 1;
}

/* protoc's Tokenizer::ParseStringAppend */
void pc_lex_string(pc_lexer *X, const pc_tok *t, pc_buf *b) {
    pc_ctx *C = X->C;
    const char *p = t->s + 1, *e = t->s + t->n - 1;
    while (p < e) {
        if (*p != '\\') {
            pc_buf_byte(C, b, *p++);
            continue;
        }
        p++;
        int c = (unsigned char)*p;
        if (c >= '0' && c <= '7') {
            int v = 0, k = 0;
            while (k < 3 && p < e && *p >= '0' && *p <= '7') { v = v * 8 + (*p - '0'); p++; k++; }
            pc_buf_byte(C, b, v & 0xff);
        } else if (c == 'x' || c == 'X') {
            p++;
            int v = 0, k = 0;
            while (k < 2 && p < e && ishex((unsigned char)*p)) { v = v * 16 + hexval((unsigned char)*p); p++; k++; }
            if (!k) pc_fail(C, X->file, t->line, t->col, "Invalid escape sequence in string literal.");
            pc_buf_byte(C, b, v);
        } else if (c == 'u' || c == 'U') {
            uint32_t cp;
            int nd = c == 'u' ? 4 : 8;
            if (!read_hex(p + 1, e, nd, &cp) || cp > 0x10ffff) {
                /* protoc copies an invalid unicode escape through */
                pc_buf_byte(C, b, '\\');
                continue;
            }
            p += 1 + nd;
            if (c == 'u' && cp >= 0xD800 && cp <= 0xDBFF && p + 6 <= e && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo;
                if (read_hex(p + 2, e, 4, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            put_utf8(C, b, cp);
        } else {
            int v;
            switch (c) {
            case 'a': v = '\a'; break;
            case 'b': v = '\b'; break;
            case 'f': v = '\f'; break;
            case 'n': v = '\n'; break;
            case 'r': v = '\r'; break;
            case 't': v = '\t'; break;
            case 'v': v = '\v'; break;
            case '\\': v = '\\'; break;
            case '?': v = '?'; break;
            case '\'': v = '\''; break;
            case '"': v = '"'; break;
            default:
                pc_fail(C, X->file, t->line, t->col, "Invalid escape sequence in string literal.");
            }
            pc_buf_byte(C, b, v);
            p++;
        }
    }
}

int pc_parse_uint(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0, base = 10;
    size_t i = 0;
    if (n > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; i = 2; }
    else if (n > 1 && s[0] == '0') { base = 8; i = 1; }
    for (; i < n; i++) {
        uint64_t d = (uint64_t)hexval((unsigned char)s[i]);
        if (d >= base) return 0;
        if (v > (UINT64_MAX - d) / base) return 0;
        v = v * base + d;
    }
    *out = v;
    return 1;
}

double pc_parse_float(const char *s, size_t n) {
    char buf[128];
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (n && (buf[n - 1] == 'f' || buf[n - 1] == 'F')) buf[n - 1] = 0;
    return strtod(buf, NULL);
}
