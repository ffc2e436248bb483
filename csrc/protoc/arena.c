/*
 * arena.c -- the compiler's memory: a list of blocks from the lua_State's
 * allocator, freed together (pc_arena_free, called by the context
 * userdata's __gc). Growable buffers and vectors live in it too (a grown
 * buffer leaves its old copy until the arena goes). Also: pc_fail and the
 * symbol hash table.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pc.h"

#define BLOCK_MIN 16384

static void oom(pc_ctx *C) {
    C->oom = 1;
    longjmp(*C->jb, 1);
}

void *pc_alloc(pc_ctx *C, size_t n) {
    n = (n + 15) & ~(size_t)15;
    pc_block *b = C->blocks;
    /* the newest block keeps its bump offset just after its header's size */
    if (b) {
        size_t *used = (size_t *)(b + 1);
        if (b->size - *used >= n) {
            char *p = (char *)b + *used;
            *used += n;
            memset(p, 0, n);
            return p;
        }
    }
    size_t hdr = (sizeof(pc_block) + sizeof(size_t) + 15) & ~(size_t)15;
    size_t sz = hdr + n < BLOCK_MIN ? BLOCK_MIN : hdr + n;
    if (sz < n) oom(C);
    pc_block *nb = C->alloc(C->alloc_ud, NULL, 0, sz);
    if (!nb) oom(C);
    nb->size = sz;
    size_t *used = (size_t *)(nb + 1);
    *used = hdr + n;
    char *p = (char *)nb + hdr;
    memset(p, 0, n);
    if (b && hdr + n == sz && b->size - *(size_t *)(b + 1) > BLOCK_MIN / 4) {
        /* a big single allocation: keep the current block for bumping */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        C->blocks = nb;
    }
    return p;
}

void pc_arena_free(pc_ctx *C) {
    pc_block *b = C->blocks;
    while (b) {
        pc_block *nx = b->next;
        C->alloc(C->alloc_ud, b, b->size, 0);
        b = nx;
    }
    C->blocks = NULL;
}

char *pc_strndup(pc_ctx *C, const char *s, size_t n) {
    char *p = pc_alloc(C, n + 1);
    memcpy(p, s, n);
    return p;
}

char *pc_strcat3(pc_ctx *C, const char *a, const char *b, const char *c) {
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *p = pc_alloc(C, na + nb + nc + 1);
    memcpy(p, a, na);
    memcpy(p + na, b, nb);
    memcpy(p + na + nb, c, nc);
    return p;
}

static void buf_grow(pc_ctx *C, pc_buf *b, size_t need) {
    if (b->cap - b->n >= need) return;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap - b->n < need) {
        if (cap > ((size_t)-1) / 2) oom(C);
        cap *= 2;
    }
    unsigned char *p = pc_alloc(C, cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
}

void pc_buf_put(pc_ctx *C, pc_buf *b, const void *p, size_t n) {
    if (!n) return;
    buf_grow(C, b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void pc_buf_byte(pc_ctx *C, pc_buf *b, int c) {
    buf_grow(C, b, 1);
    b->p[b->n++] = (unsigned char)c;
}

void pc_buf_varint(pc_ctx *C, pc_buf *b, uint64_t v) {
    buf_grow(C, b, 10);
    while (v >= 0x80) {
        b->p[b->n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (unsigned char)v;
}

void pc_buf_tag(pc_ctx *C, pc_buf *b, uint32_t num, int wt) {
    pc_buf_varint(C, b, ((uint64_t)num << 3) | (uint64_t)wt);
}

void pc_buf_lenbytes(pc_ctx *C, pc_buf *b, uint32_t num, const void *p, size_t n) {
    pc_buf_tag(C, b, num, 2);
    pc_buf_varint(C, b, n);
    pc_buf_put(C, b, p, n);
}

void pc_buf_str(pc_ctx *C, pc_buf *b, uint32_t num, const char *s) {
    pc_buf_lenbytes(C, b, num, s, strlen(s));
}

void pc_vec_push(pc_ctx *C, pc_vec *v, void *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        void **nv = pc_alloc(C, sizeof(void *) * (size_t)cap);
        if (v->n) memcpy(nv, v->v, sizeof(void *) * (size_t)v->n);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

void pc_fail(pc_ctx *C, const char *file, int line, int col, const char *fmt, ...) {
    size_t n = 0;
    if (file && line >= 0) n = (size_t)snprintf(C->err, sizeof C->err, "%s:%d:%d: ", file, line + 1, col + 1);
    else if (file) n = (size_t)snprintf(C->err, sizeof C->err, "%s: ", file);
    if (n >= sizeof C->err) n = sizeof C->err - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(C->err + n, sizeof C->err - n, fmt, ap);
    va_end(ap);
    longjmp(*C->jb, 1);
}

/* ---- symbols: open addressing on the full name (FNV-1a) */

pc_sym *pc_sym_find(pc_pool *P, const char *name) {
    if (!P->syms) return NULL;
    uint32_t h = dp_name_hash(name, strlen(name));
    for (uint32_t i = h & P->mask;; i = (i + 1) & P->mask) {
        pc_sym *s = &P->syms[i];
        if (!s->name) return NULL;
        if (strcmp(s->name, name) == 0) return s;
    }
}

pc_sym *pc_sym_add(pc_ctx *C, pc_pool *P, const char *name, int kind, void *p, pc_file *f) {
    if (2 * (P->n + 1) > P->mask + 1 || !P->syms) {
        uint32_t cap = P->syms ? (P->mask + 1) * 2 : 256;
        pc_sym *ns = pc_alloc(C, sizeof(pc_sym) * cap);
        for (uint32_t i = 0; P->syms && i <= P->mask; i++) {
            pc_sym *s = &P->syms[i];
            if (!s->name) continue;
            uint32_t j = dp_name_hash(s->name, strlen(s->name)) & (cap - 1);
            while (ns[j].name) j = (j + 1) & (cap - 1);
            ns[j] = *s;
        }
        P->syms = ns;
        P->mask = cap - 1;
    }
    uint32_t h = dp_name_hash(name, strlen(name));
    uint32_t i = h & P->mask;
    for (;; i = (i + 1) & P->mask) {
        pc_sym *s = &P->syms[i];
        if (!s->name) break;
        if (strcmp(s->name, name) == 0) return s;
    }
    pc_sym *s = &P->syms[i];
    s->name = name;
    s->kind = kind;
    s->p = p;
    s->file = f;
    P->n++;
    return NULL;
}

/* ---- sets: strings, and int32 -> int */

int pc_set_add(pc_ctx *C, pc_set *s, const char *k) {
    if (!s->k || 2 * (s->n + 1) > s->mask + 1) {
        uint32_t cap = s->k ? (s->mask + 1) * 2 : 64;
        const char **nk = pc_alloc(C, sizeof(char *) * cap);
        for (uint32_t i = 0; s->k && i <= s->mask; i++) {
            if (!s->k[i]) continue;
            uint32_t j = dp_name_hash(s->k[i], strlen(s->k[i])) & (cap - 1);
            while (nk[j]) j = (j + 1) & (cap - 1);
            nk[j] = s->k[i];
        }
        s->k = nk;
        s->mask = cap - 1;
    }
    for (uint32_t i = dp_name_hash(k, strlen(k)) & s->mask;; i = (i + 1) & s->mask) {
        if (!s->k[i]) {
            s->k[i] = k;
            s->n++;
            return 1;
        }
        if (strcmp(s->k[i], k) == 0) return 0;
    }
}

int pc_set_has(const pc_set *s, const char *k) {
    if (!s->k) return 0;
    for (uint32_t i = dp_name_hash(k, strlen(k)) & s->mask;; i = (i + 1) & s->mask) {
        if (!s->k[i]) return 0;
        if (strcmp(s->k[i], k) == 0) return 1;
    }
}

static uint32_t ihash(int32_t k) { return (uint32_t)k * 2654435761u; }

int pc_imap_get_or_add(pc_ctx *C, pc_set *s, int32_t k, int v) {
    if (!s->iv || 2 * (s->n + 1) > s->mask + 1) {
        uint32_t cap = s->iv ? (s->mask + 1) * 2 : 64;
        int32_t *nk = pc_alloc(C, sizeof(int32_t) * cap);
        int *nv = pc_alloc(C, sizeof(int) * cap);
        for (uint32_t i = 0; i < cap; i++) nv[i] = -1;
        for (uint32_t i = 0; s->iv && i <= s->mask; i++) {
            if (s->iv[i] < 0) continue;
            uint32_t j = ihash(s->ik[i]) & (cap - 1);
            while (nv[j] >= 0) j = (j + 1) & (cap - 1);
            nk[j] = s->ik[i];
            nv[j] = s->iv[i];
        }
        s->ik = nk;
        s->iv = nv;
        s->mask = cap - 1;
    }
    for (uint32_t i = ihash(k) & s->mask;; i = (i + 1) & s->mask) {
        if (s->iv[i] < 0) {
            s->ik[i] = k;
            s->iv[i] = v;
            s->n++;
            return -1;
        }
        if (s->ik[i] == k) return s->iv[i];
    }
}
