/*
 * options.c -- option interpretation, as protoc's OptionInterpreter: each
 * `option a.(b).c = v` is resolved against google.protobuf.*Options (the
 * pool's descriptor.proto when a compiled file has it, else the built-in
 * one), its value checked and encoded, and appended; the options message is
 * then what the C++ runtime writes after re-parsing those bytes: fields of
 * the options message itself in field-number order, then the custom
 * (extension) options in the order they were written. Aggregate values
 * `{ ... }` are protobuf text format, serialized in field-number order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc.h"

typedef struct {
    pc_ctx *C;
    pc_file *f;
    const char *optname;      /* as written, for messages */
    pc_pos pos;
    int target;               /* editions: the FieldOptions.OptionTargetType being set (0: unchecked) */
} oi;

/* FieldOptions.OptionTargetType, by options message */
static const char *const target_names[] = {"", "FILE", "EXTENSION_RANGE", "MESSAGE", "FIELD", "ONEOF", "ENUM",
                                           "ENUM_ENTRY", "SERVICE", "METHOD"};
static const char *const target_words[] = {"", "file", "extension range", "message", "field", "oneof", "enum",
                                           "enum entry", "service", "method"};

static int tlook(pc_lexer *X, const char *s);

/* an Edition enum name (EDITION_2023, ...) as a number; 0 if unknown */
static int edition_num(const char *s, size_t n) {
    static const struct { const char *name; int num; } e[] = {
        {"EDITION_LEGACY", 900}, {"EDITION_PROTO2", 998}, {"EDITION_PROTO3", 999}, {"EDITION_2023", 1000},
        {"EDITION_2024", 1001}, {"EDITION_2026", 1002}, {"EDITION_UNSTABLE", 9999}, {"EDITION_MAX", 0x7fffffff}};
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        if (strlen(e[i].name) == n && memcmp(e[i].name, s, n) == 0) return e[i].num;
    return 0;
}

static const char *edition_word(int ed) {
    switch (ed) {
    case 900: return "LEGACY";
    case 998: return "PROTO2";
    case 999: return "PROTO3";
    case 1000: return "2023";
    case 1001: return "2024";
    case 1002: return "2026";
    default: return "UNSTABLE";
    }
}

static void full_name_of(pc_field *fd, char *buf, size_t n) {
    if (fd->is_ext || !fd->parent) snprintf(buf, n, "%s", fd->full ? fd->full : fd->name);
    else snprintf(buf, n, "%s.%s", fd->parent->full, fd->name);
}

/* protoc's feature lifetimes (feature_resolver.cc ValidateSingleFeatureLifetimes):
   an option or feature field whose `feature_support` says it was introduced
   after, or removed by, this file's edition cannot be set; editions files only */
static void check_lifetime(oi *I, pc_field *fd, pc_pos pos) {
    int ed = I->f->edition;
    if (!ed) return;
    for (pc_uopt *u = fd->opts.head; u; u = u->next) {
        if (u->nparts != 1 || u->parts[0].is_ext || strcmp(u->parts[0].name, "feature_support") != 0 || u->vkind != V_AGG)
            continue;
        pc_lexer X;
        pc_lex_init(&X, I->C, I->f->name, u->agg, 0, u->aggpos.line, u->aggpos.col);
        X.end = u->agg + u->agglen;
        pc_lex_next(&X);
        int introduced = 0, removed = 0;
        pc_buf err = {0};
        while (X.cur.type != TK_EOF) {
            if (X.cur.type != TK_IDENT) { pc_lex_next(&X); continue; }
            pc_tok key = X.cur;
            pc_lex_next(&X);
            if (tlook(&X, ":")) pc_lex_next(&X);
            int *slot = key.n == 18 && !memcmp(key.s, "edition_introduced", 18) ? &introduced
                      : key.n == 15 && !memcmp(key.s, "edition_removed", 15) ? &removed : NULL;
            if (slot && X.cur.type == TK_IDENT) {
                *slot = edition_num(X.cur.s, X.cur.n);
                pc_lex_next(&X);
            } else if (key.n == 13 && !memcmp(key.s, "removal_error", 13)) {
                while (X.cur.type == TK_STRING) {
                    pc_lex_string(&X, &X.cur, &err);
                    pc_lex_next(&X);
                }
            }
        }
        char name[300];
        full_name_of(fd, name, sizeof name);
        if (introduced && ed < introduced)
            pc_fail(I->C, I->f->name, pos.line, pos.col, "%s wasn't introduced until edition %s and can't be used in edition %s",
                    name, edition_word(introduced), edition_word(ed));
        if (removed && ed >= removed) {
            pc_buf_byte(I->C, &err, 0);
            pc_fail(I->C, I->f->name, pos.line, pos.col, "%s has been removed in edition %s%s%s", name,
                    edition_word(removed), err.n > 1 ? ": " : "", err.n > 1 ? (const char *)err.p : "");
        }
    }
}

/* protoc's target check (command_line_interface.cc ValidateTargetConstraints):
   an option field whose definition lists `targets` can be set only on those
   entities; checked for editions files, whose descriptor.proto has targets */
static void check_target(oi *I, pc_field *fd, pc_pos pos) {
    if (!I->target) return;
    int any = 0;
    char want[40];
    snprintf(want, sizeof want, "TARGET_TYPE_%s", target_names[I->target]);
    for (pc_uopt *u = fd->opts.head; u; u = u->next) {
        if (u->nparts != 1 || u->parts[0].is_ext || strcmp(u->parts[0].name, "targets") != 0 || u->vkind != V_IDENT)
            continue;
        if (strcmp(u->ident, want) == 0) return;
        any = 1;
    }
    if (!any) return;
    const char *owner = fd->parent && !fd->is_ext ? fd->parent->full : "";
    pc_fail(I->C, I->f->name, pos.line, pos.col, "Option %s%s%s cannot be set on an entity of type `%s`.", owner,
            *owner ? "." : "", fd->is_ext ? fd->full : fd->name, target_words[I->target]);
}

typedef struct oentry { uint32_t num; int known; pc_buf bytes; struct fpath *fp; } oentry;

static void ofail(oi *I, pc_pos pos, const char *fmt, const char *a, const char *b) __attribute__((noreturn));
static void ofail(oi *I, pc_pos pos, const char *fmt, const char *a, const char *b) {
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a, b);
    pc_fail(I->C, I->f->name, pos.line, pos.col, "%s", msg);
}

static int is_repeated(pc_field *fd) { return fd->label == 3; }

static int wiretype(int t) {
    switch (t) {
    case DP_T_DOUBLE: case DP_T_FIXED64: case DP_T_SFIXED64: return 1;
    case DP_T_FLOAT: case DP_T_FIXED32: case DP_T_SFIXED32: return 5;
    case DP_T_STRING: case DP_T_BYTES: case DP_T_MESSAGE: return 2;
    case DP_T_GROUP: return 3;
    default: return 0;
    }
}

static void put_fixed(pc_ctx *C, pc_buf *b, uint64_t v, int n) {
    unsigned char u[8];
    for (int i = 0; i < n; i++) u[i] = (unsigned char)(v >> (8 * i));
    pc_buf_put(C, b, u, (size_t)n);
}

/* a parsed scalar, from an uninterpreted option or a text-format token */
typedef struct {
    int kind;                 /* V_IDENT, V_POS, V_NEG, V_DOUBLE, V_STRING */
    uint64_t u;
    double d;
    const char *s;
    size_t n;
    int textfmt;
} val;

static const char *type_word(int t) {
    static const char *const w[] = {"", "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32",
                                    "bool", "string", "group", "message", "bytes", "uint32", "enum",
                                    "sfixed32", "sfixed64", "sint32", "sint64"};
    return t >= 1 && t <= 18 ? w[t] : "?";
}

static int ident_is(const val *v, const char *s) {
    return v->kind == V_IDENT && strlen(s) == v->n && memcmp(v->s, s, v->n) == 0;
}

/* the payload of one scalar (no tag) into b; errors name the option */
static void put_scalar(oi *I, pc_buf *b, pc_field *fd, const val *v, pc_pos pos) {
    pc_ctx *C = I->C;
    const char *on = I->optname;
    int t = fd->type;
    switch (t) {
    case DP_T_INT32: case DP_T_SFIXED32: case DP_T_SINT32:
    case DP_T_INT64: case DP_T_SFIXED64: case DP_T_SINT64: {
        int is32 = t == DP_T_INT32 || t == DP_T_SFIXED32 || t == DP_T_SINT32;
        int64_t x;
        if (v->kind == V_POS) {
            if (v->u > (uint64_t)(is32 ? INT32_MAX : INT64_MAX)) goto range;
            x = (int64_t)v->u;
        } else if (v->kind == V_NEG) {
            if (v->u > (uint64_t)(is32 ? INT32_MAX : INT64_MAX) + 1) goto range;
            x = (int64_t)(0 - v->u);
        } else {
            ofail(I, pos, is32 ? "Value must be integer for int32 option \"%s\"." : "Value must be integer for int64 option \"%s\".", on, NULL);
        }
        if (t == DP_T_INT32 || t == DP_T_INT64) pc_buf_varint(C, b, (uint64_t)x);
        else if (t == DP_T_SINT32) pc_buf_varint(C, b, (uint32_t)(((uint32_t)x << 1) ^ (uint32_t)((int32_t)x >> 31)));
        else if (t == DP_T_SINT64) pc_buf_varint(C, b, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
        else put_fixed(C, b, (uint64_t)x, is32 ? 4 : 8);
        return;
    range:
        ofail(I, pos, is32 ? "Value out of range for int32 option \"%s\"." : "Value out of range for int64 option \"%s\".", on, NULL);
    }
    case DP_T_UINT32: case DP_T_FIXED32: case DP_T_UINT64: case DP_T_FIXED64: {
        int is32 = t == DP_T_UINT32 || t == DP_T_FIXED32;
        if (v->kind != V_POS)
            ofail(I, pos, is32 ? "Value must be non-negative integer for uint32 option \"%s\"."
                              : "Value must be non-negative integer for uint64 option \"%s\".", on, NULL);
        if (is32 && v->u > UINT32_MAX) ofail(I, pos, "Value out of range for uint32 option \"%s\".", v->textfmt ? on : fd->name, NULL);
        if (t == DP_T_UINT32 || t == DP_T_UINT64) pc_buf_varint(C, b, v->u);
        else put_fixed(C, b, v->u, is32 ? 4 : 8);
        return;
    }
    case DP_T_FLOAT: case DP_T_DOUBLE: {
        double d;
        if (v->kind == V_DOUBLE) d = v->d;
        else if (v->kind == V_POS) d = (double)v->u;
        else if (v->kind == V_NEG) d = -(double)v->u;
        else if (v->textfmt && (ident_is(v, "inf") || ident_is(v, "infinity") || ident_is(v, "Infinity") || ident_is(v, "INF"))) d = INFINITY;
        else if (v->textfmt && (ident_is(v, "nan") || ident_is(v, "NaN") || ident_is(v, "NAN"))) d = NAN;
        else ofail(I, pos, t == DP_T_FLOAT ? "Value must be number for float option \"%s\"." : "Value must be number for double option \"%s\".", on, NULL);
        if (t == DP_T_FLOAT) {
            float f = (float)d;
            uint32_t u;
            memcpy(&u, &f, 4);
            put_fixed(C, b, u, 4);
        } else {
            uint64_t u;
            memcpy(&u, &d, 8);
            put_fixed(C, b, u, 8);
        }
        return;
    }
    case DP_T_BOOL:
        if (v->kind != V_IDENT && !(v->textfmt && v->kind == V_POS && v->u <= 1))
            ofail(I, pos, "Value must be identifier for boolean option \"%s\".", on, NULL);
        if (ident_is(v, "true") || (v->textfmt && (ident_is(v, "True") || ident_is(v, "t") || (v->kind == V_POS && v->u == 1))))
            pc_buf_varint(C, b, 1);
        else if (ident_is(v, "false") || (v->textfmt && (ident_is(v, "False") || ident_is(v, "f") || (v->kind == V_POS && v->u == 0))))
            pc_buf_varint(C, b, 0);
        else ofail(I, pos, "Value must be \"true\" or \"false\" for boolean option \"%s\".", on, NULL);
        return;
    case DP_T_ENUM: {
        pc_enum *e = fd->renum;
        if (v->textfmt && (v->kind == V_POS || v->kind == V_NEG)) {
            int64_t x = v->kind == V_POS ? (int64_t)v->u : -(int64_t)v->u;
            pc_buf_varint(C, b, (uint64_t)x);
            return;
        }
        if (v->kind != V_IDENT) ofail(I, pos, "Value must be identifier for enum-valued option \"%s\".", on, NULL);
        for (int i = 0; i < e->values.n; i++) {
            pc_enumval *ev = e->values.v[i];
            if (strlen(ev->name) == v->n && memcmp(ev->name, v->s, v->n) == 0) {
                pc_buf_varint(C, b, (uint64_t)(int64_t)ev->number);
                return;
            }
        }
        char nm[256];
        snprintf(nm, sizeof nm, "%.*s", (int)v->n, v->s);
        pc_fail(C, I->f->name, pos.line, pos.col, "Enum type \"%s\" has no value named \"%s\" for option \"%s\".",
                e->full, nm, on);
    }
    case DP_T_STRING: case DP_T_BYTES:
        if (v->kind != V_STRING) ofail(I, pos, "Value must be quoted string for string option \"%s\".", on, NULL);
        pc_buf_varint(C, b, v->n);
        pc_buf_put(C, b, v->s, v->n);
        return;
    default:
        ofail(I, pos, "Option \"%s\" has an unexpected type (%s).", on, type_word(t));
    }
}

static pc_field *field_by_name(pc_msg *m, const char *s, size_t n) {
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *fd = m->fields.v[i];
        if (strlen(fd->name) == n && memcmp(fd->name, s, n) == 0) return fd;
    }
    return NULL;
}

/* ---- text format (aggregate values) */

typedef struct { pc_field *fd; pc_buf payload; int order; } tentry;

static void text_message(oi *I, pc_lexer *X, pc_pool *P, pc_msg *m, pc_buf *out, const char *close, int depth);

static void text_fail(oi *I, pc_lexer *X, const char *msg, const char *arg) __attribute__((noreturn));
static void text_fail(oi *I, pc_lexer *X, const char *msg, const char *arg) {
    char m2[400];
    snprintf(m2, sizeof m2, msg, arg ? arg : "");
    pc_fail(I->C, I->f->name, I->pos.line, I->pos.col, "Error while parsing option value for \"%s\": %s",
            I->optname, m2);
    (void)X;
}

static int tlook(pc_lexer *X, const char *s) {
    return X->cur.type != TK_STRING && X->cur.type != TK_EOF && X->cur.n == strlen(s) &&
           memcmp(X->cur.s, s, X->cur.n) == 0;
}

static void text_scalar(oi *I, pc_lexer *X, pc_field *fd, pc_buf *payload) {
    val v = {0};
    v.textfmt = 1;
    int neg = 0;
    if (tlook(X, "-")) {
        neg = 1;
        pc_lex_next(X);
    }
    pc_buf sb = {0};
    switch (X->cur.type) {
    case TK_INT:
        if (!pc_parse_uint(X->cur.s, X->cur.n, &v.u)) text_fail(I, X, "Integer out of range (%s)", NULL);
        v.kind = neg ? V_NEG : V_POS;
        if (fd->type == DP_T_FLOAT || fd->type == DP_T_DOUBLE) {
            v.kind = V_DOUBLE;
            v.d = neg ? -(double)v.u : (double)v.u;
        }
        pc_lex_next(X);
        break;
    case TK_FLOAT:
        v.kind = V_DOUBLE;
        v.d = pc_parse_float(X->cur.s, X->cur.n);
        if (neg) v.d = -v.d;
        if (fd->type != DP_T_FLOAT && fd->type != DP_T_DOUBLE)
            text_fail(I, X, "Expected integer, got: %s", pc_strndup(I->C, X->cur.s, X->cur.n));
        pc_lex_next(X);
        break;
    case TK_IDENT:
        v.kind = V_IDENT;
        v.s = X->cur.s;
        v.n = X->cur.n;
        if (neg) {
            if (fd->type != DP_T_FLOAT && fd->type != DP_T_DOUBLE) text_fail(I, X, "Invalid value after '-'.", NULL);
            val w = v;
            w.kind = V_IDENT;
            pc_buf tmp = {0};
            put_scalar(I, &tmp, fd, &w, I->pos);
            /* negate the encoded float/double: flip the sign bit */
            tmp.p[tmp.n - 1] ^= 0x80;
            pc_buf_put(I->C, payload, tmp.p, tmp.n);
            pc_lex_next(X);
            return;
        }
        pc_lex_next(X);
        break;
    case TK_STRING:
        if (neg) text_fail(I, X, "Invalid '-' before a string.", NULL);
        while (X->cur.type == TK_STRING) {
            pc_lex_string(X, &X->cur, &sb);
            pc_lex_next(X);
        }
        v.kind = V_STRING;
        v.s = (const char *)sb.p;
        v.n = sb.n;
        break;
    default:
        text_fail(I, X, "Expected a value for field \"%s\".", fd->name);
    }
    put_scalar(I, payload, fd, &v, I->pos);
}

static void text_value(oi *I, pc_lexer *X, pc_pool *P, pc_field *fd, pc_vec *entries, int depth) {
    tentry *e = pc_alloc(I->C, sizeof *e);
    e->fd = fd;
    e->order = entries->n;
    if (fd->type == DP_T_MESSAGE || fd->type == DP_T_GROUP) {
        const char *close;
        if (tlook(X, "{")) close = "}";
        else if (tlook(X, "<")) close = ">";
        else text_fail(I, X, "Expected \"{\" for field \"%s\".", fd->name);
        pc_lex_next(X);
        text_message(I, X, P, fd->rmsg, &e->payload, close, depth + 1);
    } else {
        text_scalar(I, X, fd, &e->payload);
    }
    pc_vec_push(I->C, entries, e);
}

/* features.repeated_field_encoding set by an option statement of o: 1 PACKED,
   2 EXPANDED, 0 not set (the aggregate form `features = { ... }` is not seen) */
static int uopt_encoding(const pc_opts *o) {
    int v = 0;
    for (const pc_uopt *u = o->head; u; u = u->next)
        if (u->nparts == 2 && !u->parts[0].is_ext && !u->parts[1].is_ext && !strcmp(u->parts[0].name, "features") &&
            !strcmp(u->parts[1].name, "repeated_field_encoding") && u->vkind == V_IDENT)
            v = !strcmp(u->ident, "PACKED") ? 1 : !strcmp(u->ident, "EXPANDED") ? 2 : v;
    return v;
}

static int packed(pc_field *fd) {
    int t = fd->type;
    if (!is_repeated(fd) || t == DP_T_STRING || t == DP_T_BYTES || t == DP_T_MESSAGE || t == DP_T_GROUP) return 0;
    if (fd->file->edition) {
        /* editions: the field's feature, else its messages', else the file's, else PACKED */
        int v = uopt_encoding(&fd->opts);
        for (pc_msg *m = fd->parent; !v && m; m = m->parent) v = uopt_encoding(&m->opts);
        if (!v) v = uopt_encoding(&fd->file->opts);
        return v != 2;
    }
    if (fd->packed >= 0 && fd->packed != 0) return fd->packed > 0;
    return fd->file->proto3 && fd->packed == 0;
}

static int entry_cmp(const void *a, const void *b) {
    const tentry *x = *(tentry *const *)a, *y = *(tentry *const *)b;
    if (x->fd->number != y->fd->number) return x->fd->number < y->fd->number ? -1 : 1;
    return x->order - y->order;
}

static void text_message(oi *I, pc_lexer *X, pc_pool *P, pc_msg *m, pc_buf *out, const char *close, int depth) {
    pc_ctx *C = I->C;
    if (depth > PC_MAX_DEPTH) text_fail(I, X, "Message is too deep", NULL);
    pc_vec entries = {0};
    pc_set seen = {0}, oneofs = {0};          /* field numbers, oneof indices set */
    for (;;) {
        if (close && tlook(X, close)) {
            pc_lex_next(X);
            break;
        }
        if (X->cur.type == TK_EOF) {
            if (close) text_fail(I, X, "Expected \"%s\".", close);
            break;
        }
        pc_field *fd = NULL;
        char nm[300];
        if (tlook(X, "[")) {
            pc_lex_next(X);
            pc_buf nb = {0};
            int url = 0;
            for (;;) {
                if (X->cur.type != TK_IDENT) text_fail(I, X, "Expected identifier.", NULL);
                pc_buf_put(C, &nb, X->cur.s, X->cur.n);
                pc_lex_next(X);
                if (tlook(X, "/")) url = (int)nb.n + 1;
                else if (!tlook(X, ".")) break;
                pc_buf_byte(C, &nb, *X->cur.s);
                pc_lex_next(X);
            }
            pc_buf_byte(C, &nb, 0);
            if (!tlook(X, "]")) text_fail(I, X, "Expected \"]\".", NULL);
            pc_lex_next(X);
            if (url) {
                /* an expanded google.protobuf.Any: [prefix/full.Type] { ... } */
                const char *tn = (const char *)nb.p + url;
                pc_field *fu = field_by_name(m, "type_url", 8), *fv = field_by_name(m, "value", 5);
                pc_sym *s = pc_sym_find(P, tn);
                if (strcmp(m->full, "google.protobuf.Any") || !fu || !fv)
                    text_fail(I, X, "Field \"%s\" is not an Any.", (const char *)nb.p);
                if (!s || s->kind != SYM_MSG) text_fail(I, X, "Could not find type \"%s\" stored in google.protobuf.Any.", tn);
                if (tlook(X, ":")) pc_lex_next(X);
                const char *aclose = tlook(X, "<") ? ">" : "}";
                if (!tlook(X, "{") && !tlook(X, "<")) text_fail(I, X, "Expected \"{\".", NULL);
                pc_lex_next(X);
                tentry *eu = pc_alloc(C, sizeof *eu), *ev = pc_alloc(C, sizeof *ev);
                eu->fd = fu;
                eu->order = entries.n;
                pc_buf_varint(C, &eu->payload, nb.n - 1);
                pc_buf_put(C, &eu->payload, nb.p, nb.n - 1);
                pc_vec_push(C, &entries, eu);
                ev->fd = fv;
                ev->order = entries.n;
                pc_buf body = {0};
                text_message(I, X, P, s->p, &body, aclose, depth + 1);
                pc_buf_varint(C, &ev->payload, body.n);
                pc_buf_put(C, &ev->payload, body.p, body.n);
                pc_vec_push(C, &entries, ev);
                if (tlook(X, ";") || tlook(X, ",")) pc_lex_next(X);
                continue;
            }
            pc_sym *s = pc_lookup(C, P, I->f, m->full, (const char *)nb.p, 0, NULL);
            if (!s || s->kind != SYM_FIELD || !((pc_field *)s->p)->is_ext || ((pc_field *)s->p)->rext != m)
                text_fail(I, X, "Extension \"%s\" is not defined or is not an extension of the message.", (const char *)nb.p);
            fd = s->p;
            snprintf(nm, sizeof nm, "%s", (const char *)nb.p);
        } else {
            if (X->cur.type != TK_IDENT) text_fail(I, X, "Expected identifier, got: %s", pc_strndup(C, X->cur.s, X->cur.n));
            fd = field_by_name(m, X->cur.s, X->cur.n);
            if (!fd) {
                /* a group is named by its type */
                for (int i = 0; i < m->fields.n && !fd; i++) {
                    pc_field *g = m->fields.v[i];
                    if (g->type == DP_T_GROUP && strlen(g->rmsg->name) == X->cur.n &&
                        memcmp(g->rmsg->name, X->cur.s, X->cur.n) == 0)
                        fd = g;
                }
            }
            snprintf(nm, sizeof nm, "%.*s", (int)X->cur.n, X->cur.s);
            if (fd) check_target(I, fd, I->pos);
            if (fd) check_lifetime(I, fd, I->pos);
            if (!fd) {
                char full[400];
                snprintf(full, sizeof full, "Message type \"%s\" has no field named \"%s\".", m->full, nm);
                text_fail(I, X, "%s", full);
            }
            pc_lex_next(X);
        }
        int sub = fd->type == DP_T_MESSAGE || fd->type == DP_T_GROUP;
        if (tlook(X, ":")) pc_lex_next(X);
        else if (!sub) text_fail(I, X, "Expected \":\", found \"%s\".", pc_strndup(C, X->cur.s, X->cur.n));
        if (tlook(X, "[")) {
            if (!is_repeated(fd)) text_fail(I, X, "Field \"%s\" is not repeated but a list was given.", nm);
            pc_lex_next(X);
            if (!tlook(X, "]")) {
                for (;;) {
                    text_value(I, X, P, fd, &entries, depth);
                    if (tlook(X, "]")) break;
                    if (!tlook(X, ",")) text_fail(I, X, "Expected \",\" or \"]\".", NULL);
                    pc_lex_next(X);
                }
            }
            pc_lex_next(X);
        } else {
            if (!is_repeated(fd)) {
                if (pc_imap_get_or_add(C, &seen, fd->number, 1) >= 0)
                    text_fail(I, X, "Non-repeated field \"%s\" is specified multiple times.", nm);
                /* a second member of the same oneof */
                if (fd->oneof_index >= 0 && !fd->is_ext && pc_imap_get_or_add(C, &oneofs, fd->oneof_index, 1) >= 0)
                    text_fail(I, X, "Field \"%s\" is specified along with another member of its oneof.", nm);
            }
            text_value(I, X, P, fd, &entries, depth);
        }
        if (tlook(X, ";") || tlook(X, ",")) pc_lex_next(X);
    }
    /* serialize in field-number order; packed fields as one record */
    if (entries.n > 1) qsort(entries.v, (size_t)entries.n, sizeof(void *), entry_cmp);
    for (int i = 0; i < entries.n;) {
        tentry *e = entries.v[i];
        pc_field *fd = e->fd;
        if (packed(fd)) {
            pc_buf pk = {0};
            int j = i;
            for (; j < entries.n && ((tentry *)entries.v[j])->fd == fd; j++) {
                tentry *x = entries.v[j];
                pc_buf_put(C, &pk, x->payload.p, x->payload.n);
            }
            pc_buf_lenbytes(C, out, (uint32_t)fd->number, pk.p, pk.n);
            i = j;
            continue;
        }
        if (m->message_set && fd->is_ext && fd->type == DP_T_MESSAGE && !is_repeated(fd)) {
            /* MessageSet item: group 1 { type_id = 2; message = 3 } */
            pc_buf_tag(C, out, 1, 3);
            pc_buf_tag(C, out, 2, 0);
            pc_buf_varint(C, out, (uint64_t)fd->number);
            pc_buf_lenbytes(C, out, 3, e->payload.p, e->payload.n);
            pc_buf_tag(C, out, 1, 4);
        } else if (fd->type == DP_T_GROUP) {
            pc_buf_tag(C, out, (uint32_t)fd->number, 3);
            pc_buf_put(C, out, e->payload.p, e->payload.n);
            pc_buf_tag(C, out, (uint32_t)fd->number, 4);
        } else if (fd->type == DP_T_MESSAGE) {
            pc_buf_lenbytes(C, out, (uint32_t)fd->number, e->payload.p, e->payload.n);
        } else {
            pc_buf_tag(C, out, (uint32_t)fd->number, wiretype(fd->type));
            pc_buf_put(C, out, e->payload.p, e->payload.n);
        }
        i++;
    }
}

/* ---- one options message */

/* the options message type for f: the pool's descriptor.proto when a compiled
   file has it (unless f is an editions file and that copy predates features:
   Debian's, loaded first by a proto2/proto3 importer), else the built-in one */
static pc_msg *options_type(pc_ctx *C, pc_file *f, const char *name, pc_pool **pool) {
    pc_sym *s = pc_sym_find(&C->pool, name);
    if (s && s->kind == SYM_MSG && (!f->edition || field_by_name(s->p, "features", 8))) {
        *pool = &C->pool;
        return s->p;
    }
    *pool = pc_load_std(C, f->edition != 0)->pool;
    s = pc_sym_find(*pool, name);
    return s ? s->p : NULL;
}

typedef struct fpath { pc_field *path[PC_MAX_DEPTH]; int n; } fpath;

static int rd_varint(const unsigned char **p, const unsigned char *e, uint64_t *v) {
    *v = 0;
    for (int sh = 0; sh < 64 && *p < e; sh += 7) {
        unsigned c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) return 1;
    }
    return 0;
}

/* skips one value of wire type wt; for groups, *gend gets the end of its
   content. 0 on malformed input (never for bytes this file wrote) */
static int skip_value(const unsigned char **p, const unsigned char *e, int wt, uint64_t num,
                      const unsigned char **gend) {
    uint64_t v;
    switch (wt) {
    case 0: return rd_varint(p, e, &v);
    case 1: if (e - *p < 8) return 0; *p += 8; return 1;
    case 5: if (e - *p < 4) return 0; *p += 4; return 1;
    case 2:
        if (!rd_varint(p, e, &v) || v > (uint64_t)(e - *p)) return 0;
        *p += v;
        return 1;
    case 3:
        for (;;) {
            const unsigned char *at = *p;
            uint64_t t;
            if (!rd_varint(p, e, &t)) return 0;
            if ((t & 7) == 4 && (t >> 3) == num) {
                if (gend) *gend = at;
                return 1;
            }
            if ((t & 7) == 4 || !skip_value(p, e, (int)(t & 7), t >> 3, NULL)) return 0;
        }
    default: return 0;
    }
}

/* protoc's ExamineIfOptionIsSet over serialized options [p, e) */
static int is_set(const unsigned char *p, const unsigned char *e, fpath *fp, int k) {
    while (p < e) {
        uint64_t t;
        if (!rd_varint(&p, e, &t)) return 0;
        int wt = (int)(t & 7);
        uint64_t num = t >> 3;
        const unsigned char *start = p, *gend = NULL;
        if (!skip_value(&p, e, wt, num, &gend)) return 0;
        if (k == fp->n - 1) {
            if (num == (uint64_t)fp->path[k]->number) return 1;
        } else if (num == (uint64_t)fp->path[k]->number) {
            if (fp->path[k]->type == DP_T_MESSAGE && wt == 2) {
                uint64_t len;
                const unsigned char *q = start;
                rd_varint(&q, e, &len);
                if (is_set(q, q + len, fp, k + 1)) return 1;
            } else if (fp->path[k]->type == DP_T_GROUP && wt == 3) {
                if (is_set(start, gend, fp, k + 1)) return 1;
            }
        }
    }
    return 0;
}

static int target_of(const char *type) {
    static const char *const t[] = {"", "google.protobuf.FileOptions", "google.protobuf.ExtensionRangeOptions",
        "google.protobuf.MessageOptions", "google.protobuf.FieldOptions", "google.protobuf.OneofOptions",
        "google.protobuf.EnumOptions", "google.protobuf.EnumValueOptions", "google.protobuf.ServiceOptions",
        "google.protobuf.MethodOptions"};
    for (int i = 1; i < 10; i++)
        if (strcmp(t[i], type) == 0) return i;
    return 0;
}

/* a field of m numbered n: m's own, or an extension some entry's option path
   names at this depth */
static pc_field *field_numbered(pc_msg *m, uint32_t n, oentry **ents, int nents, int depth) {
    for (int i = 0; i < m->fields.n; i++)
        if ((uint32_t)((pc_field *)m->fields.v[i])->number == n) return m->fields.v[i];
    for (int i = 0; i < nents; i++) {
        fpath *fp = ents[i]->fp;
        if (fp->n > depth && (uint32_t)fp->path[depth]->number == n && fp->path[depth]->rext == m) return fp->path[depth];
    }
    return NULL;
}

typedef struct { uint32_t num; int wt, order; const unsigned char *rec, *pay; size_t reclen, paylen; } orec;

static int orec_cmp(const void *a, const void *b) {
    const orec *x = a, *y = b;
    if (x->num != y->num) return x->num < y->num ? -1 : 1;
    return x->order - y->order;
}

/* the serialized message m [p, p+n) as the C++ runtime writes it after
   parsing: fields by number (stable), a singular message field's records
   merged into one */
static void canon(pc_ctx *C, pc_msg *m, const unsigned char *p, size_t n, pc_buf *out, oentry **ents, int nents,
                  int depth) {
    const unsigned char *e = p + n;
    pc_vec recs = {0};
    while (p < e) {
        orec *r = pc_alloc(C, sizeof *r);
        r->rec = p;
        uint64_t t;
        if (!rd_varint(&p, e, &t)) break;
        r->num = (uint32_t)(t >> 3);
        r->wt = (int)(t & 7);
        r->order = recs.n;
        const unsigned char *v = p;
        if (!skip_value(&p, e, r->wt, t >> 3, NULL)) break;
        if (r->wt == 2) {
            uint64_t len;
            rd_varint(&v, e, &len);
            r->pay = v;
            r->paylen = (size_t)len;
        }
        r->reclen = (size_t)(p - r->rec);
        pc_vec_push(C, &recs, r);
    }
    orec *a = pc_alloc(C, sizeof(orec) * (size_t)(recs.n ? recs.n : 1));
    for (int i = 0; i < recs.n; i++) a[i] = *(orec *)recs.v[i];
    qsort(a, (size_t)recs.n, sizeof *a, orec_cmp);
    for (int i = 0; i < recs.n;) {
        int j = i + 1;
        while (j < recs.n && a[j].num == a[i].num) j++;
        pc_field *fd = m && depth < PC_MAX_DEPTH ? field_numbered(m, a[i].num, ents, nents, depth) : NULL;
        int all2 = 1;
        for (int x = i; x < j; x++) all2 &= a[x].wt == 2;
        if (j - i > 1 && fd && fd->type == DP_T_MESSAGE && !is_repeated(fd) && all2) {
            pc_buf inner = {0}, merged = {0};
            for (int x = i; x < j; x++) pc_buf_put(C, &inner, a[x].pay, a[x].paylen);
            canon(C, fd->rmsg, inner.p, inner.n, &merged, ents, nents, depth + 1);
            pc_buf_lenbytes(C, out, a[i].num, merged.p, merged.n);
        } else {
            for (int x = i; x < j; x++) pc_buf_put(C, out, a[x].rec, a[x].reclen);
        }
        i = j;
    }
}

static void interpret(pc_ctx *C, pc_file *f, pc_opts *o, const char *type, const char *scope) {
    if (!o->present) return;
    pc_pool *tp;
    pc_msg *om = options_type(C, f, type, &tp);
    if (!om) pc_fail(C, f->name, -1, 0, "%s is not defined (descriptor.proto)", type);
    pc_vec entries = {0};
    int nknown = 0;
    for (pc_uopt *u = o->head; u; u = u->next) {
        oi I = {C, f, NULL, u->pos, f->edition ? target_of(type) : 0};
        /* the name as written: a.(b.c).d */
        pc_buf nb = {0};
        for (int i = 0; i < u->nparts; i++) {
            if (i) pc_buf_byte(C, &nb, '.');
            if (u->parts[i].is_ext) pc_buf_byte(C, &nb, '(');
            pc_buf_put(C, &nb, u->parts[i].name, strlen(u->parts[i].name));
            if (u->parts[i].is_ext) pc_buf_byte(C, &nb, ')');
        }
        pc_buf_byte(C, &nb, 0);
        I.optname = (const char *)nb.p;
        if (!u->parts[0].is_ext && strcmp(u->parts[0].name, "uninterpreted_option") == 0)
            pc_fail(C, f->name, u->pos.line, u->pos.col, "Option must not use reserved name \"uninterpreted_option\".");
        if (u->nparts > PC_MAX_DEPTH) pc_fail(C, f->name, u->pos.line, u->pos.col, "Option name has too many parts.");
        fpath *fp = pc_alloc(C, sizeof *fp);
        pc_msg *m = om;
        pc_buf sofar = {0};
        for (int i = 0; i < u->nparts; i++) {
            pc_optpart *pt = &u->parts[i];
            if (i) pc_buf_byte(C, &sofar, '.');
            if (pt->is_ext) pc_buf_byte(C, &sofar, '(');
            pc_buf_put(C, &sofar, pt->name, strlen(pt->name));
            if (pt->is_ext) pc_buf_byte(C, &sofar, ')');
            pc_buf_byte(C, &sofar, 0);
            sofar.n--;
            const char *dbg = (const char *)sofar.p;
            pc_field *fd = NULL;
            if (!m) {
                ofail(&I, pt->pos, "Option \"%s\" is an atomic type, not a message.", dbg, NULL);
            }
            if (pt->is_ext) {
                pc_sym *s = pc_lookup(C, &C->pool, f, scope, pt->name, 0, NULL);
                if (s && s->kind == SYM_FIELD && ((pc_field *)s->p)->is_ext) fd = s->p;
                if (!fd)
                    ofail(&I, pt->pos, "Option \"%s\" unknown. Ensure that your proto definition file imports the proto which defines the option.", dbg, NULL);
                if (fd->rext != m) {
                    char a[300];
                    snprintf(a, sizeof a, "%s", fd->rext->full);
                    pc_fail(C, f->name, pt->pos.line, pt->pos.col,
                            "Option \"%s\" is an extension of \"%s\", not of \"%s\".", dbg, a, m->full);
                }
            } else {
                fd = field_by_name(m, pt->name, strlen(pt->name));
                if (!fd)
                    ofail(&I, pt->pos, "Option \"%s\" unknown. Ensure that your proto definition file imports the proto which defines the option.", dbg, NULL);
            }
            check_target(&I, fd, pt->pos);
            check_lifetime(&I, fd, pt->pos);
            fp->path[fp->n++] = fd;
            if (i + 1 < u->nparts) {
                if (fd->type != DP_T_MESSAGE && fd->type != DP_T_GROUP) m = NULL;
                else if (is_repeated(fd))
                    ofail(&I, pt->pos, "Option field \"%s\" is a repeated message. Repeated message options must be initialized using an aggregate value.", dbg, NULL);
                else m = fd->rmsg;
            }
        }
        pc_field *last = fp->path[fp->n - 1];
        /* set twice? protoc looks through what the earlier options wrote */
        if (!is_repeated(last)) {
            pc_buf prior = {0};
            for (int i = 0; i < entries.n; i++) {
                oentry *pe = entries.v[i];
                pc_buf_put(C, &prior, pe->bytes.p, pe->bytes.n);
            }
            if (prior.n && is_set(prior.p, prior.p + prior.n, fp, 0))
                ofail(&I, u->pos, "Option \"%s\" was already set.", I.optname, NULL);
        }
        /* the value */
        pc_buf vb = {0};
        if (last->type == DP_T_MESSAGE || last->type == DP_T_GROUP) {
            if (u->vkind != V_AGG) {
                char msg[700];
                snprintf(msg, sizeof msg,
                         "Option \"%s\" is a message. To set the entire message, use syntax like \"%s = { <proto "
                         "text format> }\". To set fields within it, use syntax like \"%s.foo = value\".",
                         I.optname, I.optname, I.optname);
                pc_fail(C, f->name, u->pos.line, u->pos.col, "%s", msg);
            }
            pc_lexer X;
            pc_buf body = {0};
            /* protoc joins the block's .proto tokens (comments dropped) and
               parses that as text format: re-read them with the .proto lexer */
            pc_lex_init(&X, C, f->name, u->agg, 0, u->aggpos.line, u->aggpos.col);
            X.end = u->agg + u->agglen;
            pc_lex_next(&X);
            I.optname = last->name;
            text_message(&I, &X, &C->pool, last->rmsg, &body, NULL, 0);
            if (last->type == DP_T_GROUP) {
                pc_buf_tag(C, &vb, (uint32_t)last->number, 3);
                pc_buf_put(C, &vb, body.p, body.n);
                pc_buf_tag(C, &vb, (uint32_t)last->number, 4);
            } else {
                pc_buf_lenbytes(C, &vb, (uint32_t)last->number, body.p, body.n);
            }
        } else {
            if (u->vkind == V_AGG)
                ofail(&I, u->vpos, "Option \"%s\" is a message. Only message options can be set with an aggregate value.", I.optname, NULL);
            val v = {0};
            v.kind = u->vkind;
            v.u = u->u;
            v.d = u->d;
            if (u->vkind == V_IDENT) { v.s = u->ident; v.n = strlen(u->ident); }
            if (u->vkind == V_STRING) { v.s = u->str; v.n = u->slen; }
            pc_buf_tag(C, &vb, (uint32_t)last->number, wiretype(last->type));
            I.optname = last->full;    /* value errors name the field */
            put_scalar(&I, &vb, last, &v, u->vpos);
        }
        /* wrap in the intermediate messages, innermost first */
        for (int i = fp->n - 2; i >= 0; i--) {
            pc_field *im = fp->path[i];
            pc_buf w = {0};
            if (im->type == DP_T_GROUP) {
                pc_buf_tag(C, &w, (uint32_t)im->number, 3);
                pc_buf_put(C, &w, vb.p, vb.n);
                pc_buf_tag(C, &w, (uint32_t)im->number, 4);
            } else {
                pc_buf_lenbytes(C, &w, (uint32_t)im->number, vb.p, vb.n);
            }
            vb = w;
        }
        /* the path source info gives this option: field numbers, and for a
           repeated field the index among its earlier values */
        u->ndest = fp->n + (is_repeated(last) ? 1 : 0);
        u->dest = pc_alloc(C, sizeof(int32_t) * (size_t)u->ndest);
        for (int i = 0; i < fp->n; i++) u->dest[i] = fp->path[i]->number;
        if (is_repeated(last)) {
            int idx = 0;
            for (int i = 0; i < entries.n; i++) {
                fpath *q = ((oentry *)entries.v[i])->fp;
                int same = q->n == fp->n;
                for (int k = 0; same && k < fp->n; k++) same = q->path[k] == fp->path[k];
                idx += same;
            }
            u->dest[fp->n] = idx;
        }
        oentry *e = pc_alloc(C, sizeof *e);
        e->fp = fp;
        e->num = (uint32_t)fp->path[0]->number;
        e->known = !fp->path[0]->is_ext;
        e->bytes = vb;
        nknown += e->known;
        pc_vec_push(C, &entries, e);
        (void)tp;
    }
    /* known fields by number (stable), then extensions as written */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 && !nknown) continue;
        if (pass == 0) {
            /* insertion sort of the known entries, stable */
            oentry **k = pc_alloc(C, sizeof(oentry *) * (size_t)nknown);
            int nk = 0;
            for (int i = 0; i < entries.n; i++) {
                oentry *e = entries.v[i];
                if (!e->known) continue;
                int j = nk++;
                while (j > 0 && k[j - 1]->num > e->num) { k[j] = k[j - 1]; j--; }
                k[j] = e;
            }
            for (int i = 0; i < nk;) {
                /* a singular message field set by several statements
                   (features.a = ..; features.b = ..): protoc parses the
                   options into its options message, which merges them */
                int j = i + 1;
                pc_field *top = k[i]->fp->path[0];
                while (j < nk && k[j]->num == k[i]->num) j++;
                if (j - i > 1 && top->type == DP_T_MESSAGE && !is_repeated(top)) {
                    pc_buf inner = {0}, merged = {0};
                    for (int x = i; x < j; x++) {
                        const unsigned char *q = k[x]->bytes.p, *qe = q + k[x]->bytes.n;
                        uint64_t t, len;
                        rd_varint(&q, qe, &t);
                        rd_varint(&q, qe, &len);
                        pc_buf_put(C, &inner, q, (size_t)len);
                    }
                    canon(C, top->rmsg, inner.p, inner.n, &merged, k + i, j - i, 1);
                    pc_buf_lenbytes(C, &o->out, (uint32_t)top->number, merged.p, merged.n);
                } else {
                    for (int x = i; x < j; x++) pc_buf_put(C, &o->out, k[x]->bytes.p, k[x]->bytes.n);
                }
                i = j;
            }
        } else {
            for (int i = 0; i < entries.n; i++) {
                oentry *e = entries.v[i];
                if (!e->known) pc_buf_put(C, &o->out, e->bytes.p, e->bytes.n);
            }
        }
    }
}

static const char *dummy_scope(pc_ctx *C, pc_file *f) {
    return *f->pkg ? pc_strcat3(C, f->pkg, ".dummy", "") : "dummy";
}

static void set_packed(pc_field *fd) {
    for (pc_uopt *u = fd->opts.head; u; u = u->next)
        if (u->nparts == 1 && !u->parts[0].is_ext && !strcmp(u->parts[0].name, "packed") && u->vkind == V_IDENT)
            fd->packed = !strcmp(u->ident, "true") ? 1 : -1;
}

static void fields_packed(pc_msg *m) {
    for (int i = 0; i < m->fields.n; i++) set_packed(m->fields.v[i]);
    for (int i = 0; i < m->exts.n; i++) set_packed(m->exts.v[i]);
    for (int i = 0; i < m->nested.n; i++) fields_packed(m->nested.v[i]);
}

static void interp_field(pc_ctx *C, pc_file *f, pc_field *fd) {
    interpret(C, f, &fd->opts, "google.protobuf.FieldOptions", fd->full);
}

static void interp_enum(pc_ctx *C, pc_file *f, pc_enum *e) {
    interpret(C, f, &e->opts, "google.protobuf.EnumOptions", e->full);
    for (int i = 0; i < e->values.n; i++) {
        pc_enumval *v = e->values.v[i];
        interpret(C, f, &v->opts, "google.protobuf.EnumValueOptions", v->full);
    }
}

static void interp_msg(pc_ctx *C, pc_file *f, pc_msg *m) {
    if (!m->map_entry) interpret(C, f, &m->opts, "google.protobuf.MessageOptions", m->full);
    else {
        /* map_entry = true (MessageOptions field 7) */
        m->opts.out.n = 0;
        pc_buf_tag(C, &m->opts.out, 7, 0);
        pc_buf_varint(C, &m->opts.out, 1);
    }
    for (int i = 0; i < m->fields.n; i++) interp_field(C, f, m->fields.v[i]);
    for (int i = 0; i < m->oneofs.n; i++) {
        pc_oneof *o = m->oneofs.v[i];
        interpret(C, f, &o->opts, "google.protobuf.OneofOptions", pc_strcat3(C, m->full, ".", o->name));
    }
    for (int i = 0; i < m->nested.n; i++) interp_msg(C, f, m->nested.v[i]);
    for (int i = 0; i < m->enums.n; i++) interp_enum(C, f, m->enums.v[i]);
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        if (i > 0 && ((pc_range *)m->extranges.v[i - 1])->opts.head == r->opts.head && r->opts.head) {
            r->opts.out = ((pc_range *)m->extranges.v[i - 1])->opts.out;
            continue;
        }
        interpret(C, f, &r->opts, "google.protobuf.ExtensionRangeOptions", m->full);
    }
    for (int i = 0; i < m->exts.n; i++) interp_field(C, f, m->exts.v[i]);
}

static int uopt_ident(pc_opts *o, const char *name, const char *value) {
    for (pc_uopt *u = o->head; u; u = u->next)
        if (u->nparts == 1 && !u->parts[0].is_ext && !strcmp(u->parts[0].name, name) && u->vkind == V_IDENT &&
            !strcmp(u->ident, value))
            return 1;
    return 0;
}

static int file_lite(pc_file *f) { return uopt_ident(&f->opts, "optimize_for", "LITE_RUNTIME"); }

static void check_field_options(pc_ctx *C, pc_file *f, pc_field *fd) {
    int t = fd->type;
    if (fd->packed > 0 && (fd->label != 3 || t == DP_T_STRING || t == DP_T_BYTES || t == DP_T_MESSAGE || t == DP_T_GROUP))
        pc_fail(C, f->name, fd->type_pos.line, fd->type_pos.col,
                "[packed = true] can only be specified for repeated primitive fields.");
    if (fd->is_ext && file_lite(f) && !file_lite(fd->rext->file))
        pc_fail(C, f->name, fd->ext_pos.line, fd->ext_pos.col,
                "Extensions to non-lite types can only be declared in non-lite files.  Note that you cannot extend "
                "a non-lite type to contain a lite type, but the reverse is allowed.");
    if (fd->parent && fd->parent->message_set && !fd->is_ext)
        pc_fail(C, f->name, fd->name_pos.line, fd->name_pos.col, "MessageSets cannot have fields, only extensions.");
    if (fd->is_ext && fd->rext->message_set && (fd->label != 1 || t != DP_T_MESSAGE))
        pc_fail(C, f->name, fd->type_pos.line, fd->type_pos.col, "Extensions of MessageSets must be optional messages.");
}

static void check_msg_options(pc_ctx *C, pc_file *f, pc_msg *m) {
    for (int i = 0; i < m->fields.n; i++) check_field_options(C, f, m->fields.v[i]);
    for (int i = 0; i < m->exts.n; i++) check_field_options(C, f, m->exts.v[i]);
    for (int i = 0; i < m->nested.n; i++) check_msg_options(C, f, m->nested.v[i]);
    int32_t max = m->message_set ? INT32_MAX : 536870911;
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        if ((int64_t)r->end > (int64_t)max + 1)
            pc_fail(C, f->name, r->pos.line, r->pos.col, "Extension numbers cannot be greater than %d.", max);
    }
}

void pc_interpret_options(pc_ctx *C, pc_file *f) {
    for (int i = 0; i < f->msgs.n; i++) fields_packed(f->msgs.v[i]);
    for (int i = 0; i < f->exts.n; i++) set_packed(f->exts.v[i]);
    interpret(C, f, &f->opts, "google.protobuf.FileOptions", dummy_scope(C, f));
    for (int i = 0; i < f->msgs.n; i++) interp_msg(C, f, f->msgs.v[i]);
    for (int i = 0; i < f->enums.n; i++) interp_enum(C, f, f->enums.v[i]);
    for (int i = 0; i < f->services.n; i++) {
        pc_service *s = f->services.v[i];
        interpret(C, f, &s->opts, "google.protobuf.ServiceOptions", s->full);
        for (int j = 0; j < s->methods.n; j++) {
            pc_method *m = s->methods.v[j];
            interpret(C, f, &m->opts, "google.protobuf.MethodOptions", m->full);
        }
    }
    for (int i = 0; i < f->exts.n; i++) interp_field(C, f, f->exts.v[i]);
    /* descriptor.cc's Validate*Options */
    for (int i = 0; i < f->msgs.n; i++) check_msg_options(C, f, f->msgs.v[i]);
    for (int i = 0; i < f->exts.n; i++) check_field_options(C, f, f->exts.v[i]);
    if (!file_lite(f))
        for (int i = 0; i < f->depfiles.n; i++) {
            pc_file *d = f->depfiles.v[i];
            if (file_lite(d)) {
                pc_pos *p = f->dep_pos.v[i];
                pc_fail(C, f->name, p->line, p->col,
                        "Files that do not use optimize_for = LITE_RUNTIME cannot import files which do use this "
                        "option.  This file is not lite, but it imports \"%s\" which is.", d->name);
            }
        }
    if (file_lite(f) && (uopt_ident(&f->opts, "cc_generic_services", "true") ||
                         uopt_ident(&f->opts, "java_generic_services", "true")))
        for (int i = 0; i < f->services.n; i++) {
            pc_service *s = f->services.v[i];
            pc_fail(C, f->name, s->pos.line, s->pos.col,
                    "Files with optimize_for = LITE_RUNTIME cannot define services unless you set both options "
                    "cc_generic_services and java_generic_services to false.");
        }
}
