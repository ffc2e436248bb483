/*
 * srcinfo.c -- SourceCodeInfo (source_info = true, protoc
 * --include_source_info): the locations protoc's parser records (its
 * LocationRecorder: created in order, a path, a span from the first token
 * to the last, comments attached at the end of a declaration), the comment
 * collection of its tokenizer (Tokenizer::NextWithComments), and the
 * serialization, where an option statement's location takes the path of
 * the option it was interpreted as (OptionInterpreter::UpdateSourceCodeInfo;
 * the locations inside an option statement are never recorded, since
 * protoc drops them).
 */
#include <string.h>

#include "pc.h"

/* ---- locations */

pc_loc *pc_loc_new(pc_ctx *C, pc_vec *into, const pc_loc *parent, const pc_tok *cur, int n, int a, int b) {
    pc_loc *l = pc_alloc(C, sizeof *l);
    int pn = parent ? parent->npath : 0;
    l->cap = pn + n + 4;
    l->path = pc_alloc(C, sizeof(int32_t) * (size_t)l->cap);
    if (pn) memcpy(l->path, parent->path, sizeof(int32_t) * (size_t)pn);
    l->npath = pn;
    if (n > 0) l->path[l->npath++] = a;
    if (n > 1) l->path[l->npath++] = b;
    l->span[0] = cur->line;
    l->span[1] = cur->col;
    l->nspan = 2;
    pc_vec_push(C, into, l);
    return l;
}

void pc_loc_add(pc_ctx *C, pc_loc *l, int c) {
    if (!l) return;
    if (l->npath == l->cap) {
        int32_t *np = pc_alloc(C, sizeof(int32_t) * (size_t)(l->cap * 2));
        memcpy(np, l->path, sizeof(int32_t) * (size_t)l->npath);
        l->path = np;
        l->cap *= 2;
    }
    l->path[l->npath++] = c;
}

void pc_loc_end_at(pc_loc *l, const pc_tok *t) {
    if (!l) return;
    if (t->line != l->span[0]) l->span[l->nspan++] = t->line;
    l->span[l->nspan++] = t->endcol;
}

void pc_loc_done(pc_loc *l, const pc_tok *prev) {
    if (l && l->nspan <= 2) pc_loc_end_at(l, prev);
}

/* ---- comments: protoc's CommentCollector and NextWithComments */

typedef struct {
    pc_ctx *C;
    pc_buf buf;
    int has, is_line, can_attach;
    pc_buf *trail;
    pc_vec *det;
} coll;

static void c_clear(coll *c) {
    c->buf.n = 0;
    c->has = 0;
}

static void c_flush(coll *c) {
    if (!c->has) return;
    if (c->can_attach) {
        pc_buf_put(c->C, c->trail, c->buf.p, c->buf.n);
        c->can_attach = 0;
    } else {
        pc_buf *d = pc_alloc(c->C, sizeof *d);
        pc_buf_put(c->C, d, c->buf.p, c->buf.n);
        pc_vec_push(c->C, c->det, d);
    }
    c_clear(c);
}

static pc_buf *c_line(coll *c) {
    if (c->has && !c->is_line) c_flush(c);
    c->has = 1;
    c->is_line = 1;
    return &c->buf;
}

static pc_buf *c_block(coll *c) {
    if (c->has) c_flush(c);
    c->has = 1;
    c->is_line = 0;
    return &c->buf;
}

#define CH(X) ((X)->p < (X)->end ? (unsigned char)*(X)->p : 0)
#define CH1(X) ((X)->p + 1 < (X)->end ? (unsigned char)(X)->p[1] : 0)

static void step(pc_lexer *X, pc_buf *rec) {
    if (rec) pc_buf_byte(X->C, rec, *X->p);
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

static void ws_nonl(pc_lexer *X) {
    while (X->p < X->end) {
        int c = CH(X);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') step(X, NULL);
        else break;
    }
}

/* after "//": to the end of the line, newline included */
static void line_comment(pc_lexer *X, pc_buf *rec) {
    while (X->p < X->end && CH(X) != '\n') step(X, rec);
    if (X->p < X->end) step(X, rec);
}

/* after slash-star: the text, continuation stars dropped, to the close */
static void block_comment(pc_lexer *X, pc_buf *rec) {
    int sl = X->line, sc = X->col - 2;
    for (;;) {
        while (X->p < X->end && CH(X) != '*' && CH(X) != '/' && CH(X) != '\n') step(X, rec);
        if (X->p < X->end && CH(X) == '\n') {
            step(X, rec);
            ws_nonl(X);
            if (CH(X) == '*' && X->p < X->end) {
                step(X, NULL);
                if (CH(X) == '/' && X->p < X->end) {
                    step(X, NULL);
                    return;
                }
            }
        } else if (X->p < X->end && CH(X) == '*') {
            step(X, rec);
            if (CH(X) == '/' && X->p < X->end) {
                step(X, rec);
                if (rec) rec->n -= 2;
                return;
            }
        } else if (X->p < X->end && CH(X) == '/') {
            step(X, rec);
            if (CH(X) == '*' && X->p < X->end)
                pc_fail(X->C, X->file, X->line, X->col, "\"/*\" inside block comment.  Block comments cannot be nested.");
        } else {
            (void)sl;
            (void)sc;
            pc_fail(X->C, X->file, X->line, X->col, "End-of-file inside block comment.");
        }
    }
}

static int at_close(pc_lexer *X) {
    const pc_tok *t = &X->cur;
    return t->type == TK_EOF || (t->type == TK_SYMBOL && (*t->s == '}' || *t->s == ']' || *t->s == ')'));
}

void pc_lex_next_comments(pc_lexer *X, int start, pc_buf *trail, pc_vec *det, pc_buf *lead, int *has_lead) {
    coll c = {X->C, {0}, 0, 0, 1, trail, det};
    *has_lead = 0;
    if (start) {
        c.can_attach = 0;
    } else {
        ws_nonl(X);
        if (CH(X) == '/' && CH1(X) == '/' && X->p + 1 < X->end) {
            step(X, NULL);
            step(X, NULL);
            line_comment(X, c_line(&c));
            c_flush(&c);
        } else if (CH(X) == '/' && CH1(X) == '*' && X->p + 1 < X->end) {
            step(X, NULL);
            step(X, NULL);
            block_comment(X, c_block(&c));
            ws_nonl(X);
            if (!(X->p < X->end && CH(X) == '\n')) {
                c_clear(&c);
                pc_lex_next(X);
                return;
            }
            step(X, NULL);
            c_flush(&c);
        } else if (X->p < X->end && CH(X) == '\n') {
            step(X, NULL);
        } else {
            pc_lex_next(X);
            goto done;
        }
    }
    for (;;) {
        ws_nonl(X);
        if (CH(X) == '/' && CH1(X) == '/' && X->p + 1 < X->end) {
            step(X, NULL);
            step(X, NULL);
            line_comment(X, c_line(&c));
        } else if (CH(X) == '/' && CH1(X) == '*' && X->p + 1 < X->end) {
            step(X, NULL);
            step(X, NULL);
            block_comment(X, c_block(&c));
            ws_nonl(X);
            if (X->p < X->end && CH(X) == '\n') step(X, NULL);
        } else if (X->p < X->end && CH(X) == '\n') {
            step(X, NULL);
            c_flush(&c);
            c.can_attach = 0;
        } else {
            pc_lex_next(X);
            if (at_close(X)) c_flush(&c);
            break;
        }
    }
done:
    if (c.has) {
        lead->n = 0;
        pc_buf_put(X->C, lead, c.buf.p, c.buf.n);
        *has_lead = c.buf.n > 0;
    }
}

/* ---- serialization (SourceCodeInfo, FileDescriptorProto field 9) */

static void put_packed(pc_ctx *C, pc_buf *b, uint32_t num, const int32_t *v, int n) {
    if (!n) return;
    pc_buf t = {0};
    for (int i = 0; i < n; i++) pc_buf_varint(C, &t, (uint64_t)(int64_t)v[i]);
    pc_buf_lenbytes(C, b, num, t.p, t.n);
}

void pc_emit_srcinfo(pc_ctx *C, pc_file *f, pc_buf *out) {
    pc_buf si = {0};
    for (int i = 0; i < f->locs.n; i++) {
        pc_loc *l = f->locs.v[i];
        pc_buf lb = {0};
        if (l->opt) {
            /* the option's interpreted path replaces [.., options, 999, i] */
            pc_uopt *u = l->opt;
            int n = l->npath + u->ndest;
            int32_t *p = pc_alloc(C, sizeof(int32_t) * (size_t)(n ? n : 1));
            memcpy(p, l->path, sizeof(int32_t) * (size_t)l->npath);
            memcpy(p + l->npath, u->dest, sizeof(int32_t) * (size_t)u->ndest);
            put_packed(C, &lb, 1, p, n);
        } else {
            put_packed(C, &lb, 1, l->path, l->npath);
        }
        put_packed(C, &lb, 2, l->span, l->nspan);
        if (l->has_lead) pc_buf_lenbytes(C, &lb, 3, l->lead.p, l->lead.n);
        if (l->trail.n) pc_buf_lenbytes(C, &lb, 4, l->trail.p, l->trail.n);
        for (int k = 0; k < l->det.n; k++) {
            pc_buf *d = l->det.v[k];
            pc_buf_lenbytes(C, &lb, 6, d->p, d->n);
        }
        pc_buf_lenbytes(C, &si, 1, lb.p, lb.n);
    }
    pc_buf_lenbytes(C, out, 9, si.p, si.n);
}
