/*
 * resolve.c -- symbols and names, as protoc's DescriptorBuilder does them:
 * full names, the symbol table (duplicates are errors), type and extendee
 * resolution with protoc's scoping (innermost scope first, a leading dot
 * from the root, only this file's and its imports' symbols visible, public
 * imports re-exported), default values in protoc's canonical text, and the
 * validation rules of descriptor.cc that decide whether protoc accepts a file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pc.h"

#define MAX_NUMBER 536870911

typedef struct {
    pc_ctx *C;
    pc_pool *P;
    pc_file *f;
} rs;

static const char *join(pc_ctx *C, const char *scope, const char *name) {
    if (!scope || !*scope) return name;
    return pc_strcat3(C, scope, ".", name);
}

/* ranges sorted by start with the running maximum of their ends, so
   "is n in some range" is a binary search (messages with 100k ranges) */
typedef struct { pc_range **r; int32_t *maxend; int n; } rngidx;

static int range_cmp(const void *a, const void *b) {
    const pc_range *x = *(pc_range *const *)a, *y = *(pc_range *const *)b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void rindex_build(pc_ctx *C, rngidx *ix, pc_vec *v) {
    ix->n = v->n;
    if (!v->n) return;
    ix->r = pc_alloc(C, sizeof(pc_range *) * (size_t)v->n);
    ix->maxend = pc_alloc(C, sizeof(int32_t) * (size_t)v->n);
    memcpy(ix->r, v->v, sizeof(pc_range *) * (size_t)v->n);
    qsort(ix->r, (size_t)v->n, sizeof(pc_range *), range_cmp);
    for (int i = 0; i < v->n; i++)
        ix->maxend[i] = i && ix->maxend[i - 1] > ix->r[i]->end ? ix->maxend[i - 1] : ix->r[i]->end;
}

/* some range [start, end) holds x? (end exclusive) */
static int rindex_has(const rngidx *ix, int32_t x) {
    int lo = 0, hi = ix->n;              /* first range with start > x */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ix->r[mid]->start <= x) lo = mid + 1; else hi = mid;
    }
    return lo > 0 && ix->maxend[lo - 1] > x;
}

/* the first two ranges (declaration order) that overlap: quadratic only
   for a few thousand ranges, else the first pair in start order */
static int overlap(pc_vec *v, const rngidx *ix, pc_range **a, pc_range **b) {
    int any = 0;
    for (int i = 1; i < ix->n && !any; i++) any = ix->r[i]->start < ix->maxend[i - 1];
    if (!any) return 0;
    if (v->n <= 4096) {
        for (int i = 0; i < v->n; i++)
            for (int j = 0; j < i; j++) {
                pc_range *r = v->v[i], *o = v->v[j];
                if (r->start < o->end && o->start < r->end) {
                    *a = r;
                    *b = o;
                    return 1;
                }
            }
    }
    for (int i = 1; i < ix->n; i++)
        for (int j = i - 1; j >= 0; j--)
            if (ix->r[i]->start < ix->r[j]->end) {
                *a = ix->r[i];
                *b = ix->r[j];
                return 1;
            }
    return 0;
}

static void check_reserved(rs *R, pc_vec *ranges, pc_vec *names, int incl, pc_pos pos, const char *what);

/* ---- visibility: this file, its imports, their public imports (recursively) */

static void mark_public(pc_file *d, int id) {
    if (d->vis == id) return;
    d->vis = id;
    for (int i = 0; i < d->public_deps.n; i++) {
        int k = (int)(intptr_t)d->public_deps.v[i];
        if (k < d->depfiles.n && d->depfiles.v[k]) mark_public(d->depfiles.v[k], id);
    }
}

static void mark_visible(pc_file *f) {
    f->vis = f->id;
    for (int i = 0; i < f->depfiles.n; i++)
        if (f->depfiles.v[i]) mark_public(f->depfiles.v[i], f->id);
}

void pc_mark_option_imports(pc_file *f) {
    for (int i = 0; i < f->optfiles.n; i++)
        if (f->optfiles.v[i]) mark_public(f->optfiles.v[i], f->id);
}

static int in_package(pc_file *f, const char *name) {
    size_t n = strlen(name);
    return strncmp(f->pkg, name, n) == 0 && (f->pkg[n] == 0 || f->pkg[n] == '.');
}

typedef struct { pc_file *undeclared; const char *undeclared_name; const char *unresolved; } lookinfo;

static pc_sym *find_visible(pc_pool *P, pc_file *from, const char *name, lookinfo *li) {
    pc_sym *s = pc_sym_find(P, name);
    if (!s || !from) return s;
    if (s->file == from || s->file->vis == from->id) return s;
    if (s->kind == SYM_PACKAGE) {
        if (in_package(from, name)) return s;
        for (int i = 0; i < P->files.n; i++) {
            pc_file *d = P->files.v[i];
            if (d->vis == from->id && in_package(d, name)) return s;
        }
    }
    if (li) {
        li->undeclared = s->file;
        li->undeclared_name = name;
    }
    return NULL;
}

static int is_type(pc_sym *s) { return s->kind == SYM_MSG || s->kind == SYM_ENUM; }
static int is_aggregate(pc_sym *s) { return is_type(s) || s->kind == SYM_PACKAGE || s->kind == SYM_SERVICE; }

static pc_sym *lookup(pc_ctx *C, pc_pool *P, pc_file *from, const char *scope, const char *name,
                      int types_only, lookinfo *li) {
    memset(li, 0, sizeof *li);
    if (name[0] == '.') return find_visible(P, from, name + 1, li);
    const char *dot = strchr(name, '.');
    size_t firstn = dot ? (size_t)(dot - name) : strlen(name);
    size_t sn = strlen(scope);
    char *buf = pc_alloc(C, sn + strlen(name) + 2);
    memcpy(buf, scope, sn + 1);
    for (;;) {
        char *d = strrchr(buf, '.');
        if (!d) return find_visible(P, from, name, li);
        *d = 0;
        size_t base = (size_t)(d - buf);
        buf[base] = '.';
        memcpy(buf + base + 1, name, firstn);
        buf[base + 1 + firstn] = 0;
        pc_sym *r = find_visible(P, from, buf, li);
        if (r) {
            if (dot) {
                if (is_aggregate(r)) {
                    strcpy(buf + base + 1, name);
                    r = find_visible(P, from, buf, li);
                    if (!r) li->unresolved = pc_strndup(C, buf, strlen(buf));
                    return r;
                }
            } else if (!types_only || is_type(r)) {
                return r;
            }
        }
        buf[base] = 0;
    }
}

pc_sym *pc_lookup(pc_ctx *C, pc_pool *P, pc_file *from, const char *scope, const char *name,
                  int types_only, const char **tried) {
    lookinfo li;
    pc_sym *s = lookup(C, P, from, scope, name, types_only, &li);
    if (tried) *tried = li.unresolved;
    return s;
}

static void not_defined(rs *R, pc_pos pos, const char *name, lookinfo *li) {
    pc_ctx *C = R->C;
    if (li->undeclared)
        pc_fail(C, R->f->name, pos.line, pos.col,
                "\"%s\" seems to be defined in \"%s\", which is not imported by \"%s\".  To use it here, "
                "please add the necessary import.",
                li->undeclared_name, li->undeclared->name, R->f->name);
    if (li->unresolved)
        pc_fail(C, R->f->name, pos.line, pos.col,
                "\"%s\" is resolved to \"%s\", which is not defined. The innermost scope is searched first "
                "in name resolution. Consider using a leading '.'(i.e., \".%s\") to start from the "
                "outermost scope.",
                name, li->unresolved, name);
    pc_fail(C, R->f->name, pos.line, pos.col, "\"%s\" is not defined.", name);
}

/* ---- symbols */

static void add_sym(rs *R, const char *full, int kind, void *p, pc_pos pos) {
    pc_sym *old = pc_sym_add(R->C, R->P, full, kind, p, R->f);
    if (!old) return;
    if (old->kind == SYM_PACKAGE && kind == SYM_PACKAGE) return;
    const char *f = R->f->name;
    if (kind == SYM_PACKAGE)
        pc_fail(R->C, f, pos.line, pos.col,
                "\"%s\" is already defined (as something other than a package) in file \"%s\".", full,
                old->file->name);
    if (old->file != R->f)
        pc_fail(R->C, f, pos.line, pos.col, "\"%s\" is already defined in file \"%s\".", full, old->file->name);
    const char *dot = strrchr(full, '.');
    if (!dot) pc_fail(R->C, f, pos.line, pos.col, "\"%s\" is already defined.", full);
    pc_fail(R->C, f, pos.line, pos.col, "\"%s\" is already defined in \"%.*s\".", dot + 1, (int)(dot - full), full);
}

static void add_enum(rs *R, pc_enum *e, const char *scope) {
    e->full = join(R->C, scope, e->name);
    e->scope = scope;
    add_sym(R, e->full, SYM_ENUM, e, e->pos);
    for (int i = 0; i < e->values.n; i++) {
        pc_enumval *v = e->values.v[i];
        /* enum values are siblings of their type (C++ scoping) */
        v->full = join(R->C, scope, v->name);
        pc_sym *old = pc_sym_add(R->C, R->P, v->full, SYM_ENUMVAL, v, R->f);
        if (old) {
            if (old->kind == SYM_ENUMVAL && old->file == R->f) {
                /* protoc's first line; its second is the C++ scoping note */
                if (*scope)
                    pc_fail(R->C, R->f->name, v->pos.line, v->pos.col, "\"%s\" is already defined in \"%s\".",
                            v->name, scope);
                pc_fail(R->C, R->f->name, v->pos.line, v->pos.col, "\"%s\" is already defined.", v->name);
            }
            add_sym(R, v->full, SYM_ENUMVAL, v, v->pos);
        }
    }
    check_reserved(R, &e->resranges, &e->resnames, 1, e->pos, "Enum value");
}

/* descriptor.cc's BuildMessage/BuildEnum: reserved ranges that overlap
   (the first pair i < j; no source position, as protoc prints it) and
   reserved names given twice. incl: enum ranges include their end. */
static void check_reserved(rs *R, pc_vec *ranges, pc_vec *names, int incl, pc_pos pos, const char *what) {
    pc_ctx *C = R->C;
    int n = ranges->n;
    int any = n > 1;
    if (n > 4096) {
        rngidx ix;
        rindex_build(C, &ix, ranges);
        any = 0;
        for (int i = 1; i < ix.n && !any; i++) any = ix.r[i]->start < ix.maxend[i - 1] + (incl ? 1 : 0);
    }
    for (int i = 0; any && i < n; i++)
        for (int j = i + 1; j < n; j++) {
            pc_range *a = ranges->v[i], *b = ranges->v[j];
            int ov = incl ? (a->end >= b->start && b->end >= a->start) : (a->end > b->start && b->end > a->start);
            if (ov)
                pc_fail(C, R->f->name, -1, 0, "Reserved range %d to %d overlaps with already-defined range %d to %d.",
                        b->start, incl ? b->end : b->end - 1, a->start, incl ? a->end : a->end - 1);
        }
    pc_set seen = {0};
    for (int i = 0; i < names->n; i++)
        if (!pc_set_add(C, &seen, names->v[i]))
            pc_fail(C, R->f->name, pos.line, pos.col, "%s \"%s\" is reserved multiple times.", what,
                    (const char *)names->v[i]);
}

static void add_field_syms(rs *R, pc_field *fd, const char *scope) {
    fd->full = join(R->C, scope, fd->name);
    fd->scope = fd->full;
    add_sym(R, fd->full, SYM_FIELD, fd, fd->name_pos);
}

static void add_msg(rs *R, pc_msg *m, const char *scope) {
    if (++R->C->depth > PC_MAX_DEPTH)
        pc_fail(R->C, R->f->name, m->pos.line, m->pos.col, "messages nested too deep");
    m->full = join(R->C, scope, m->name);
    add_sym(R, m->full, SYM_MSG, m, m->pos);
    for (int i = 0; i < m->oneofs.n; i++) {
        pc_oneof *o = m->oneofs.v[i];
        add_sym(R, join(R->C, m->full, o->name), SYM_ONEOF, o, o->pos);
    }
    for (int i = 0; i < m->fields.n; i++) add_field_syms(R, m->fields.v[i], m->full);
    for (int i = 0; i < m->nested.n; i++) add_msg(R, m->nested.v[i], m->full);
    for (int i = 0; i < m->enums.n; i++) add_enum(R, m->enums.v[i], m->full);
    for (int i = 0; i < m->exts.n; i++) add_field_syms(R, m->exts.v[i], m->full);
    check_reserved(R, &m->resranges, &m->resnames, 0, m->pos, "Field name");
    R->C->depth--;
}

/* ---- defaults: protoc's DefaultValueAsString(false) */

static void simple_dtoa(char *buf, size_t n, double d, int isfloat) {
    if (isinf(d)) { snprintf(buf, n, d > 0 ? "inf" : "-inf"); return; }
    if (isnan(d)) { snprintf(buf, n, "nan"); return; }
    if (isfloat) {
        float f = (float)d;
        snprintf(buf, n, "%.*g", 6, (double)f);
        if (strtof(buf, NULL) != f) snprintf(buf, n, "%.*g", 9, (double)f);
    } else {
        snprintf(buf, n, "%.*g", 15, d);
        if (strtod(buf, NULL) != d) snprintf(buf, n, "%.*g", 17, d);
    }
}

static void cescape(pc_ctx *C, pc_buf *b, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        switch (c) {
        case '\n': pc_buf_put(C, b, "\\n", 2); break;
        case '\r': pc_buf_put(C, b, "\\r", 2); break;
        case '\t': pc_buf_put(C, b, "\\t", 2); break;
        case '"': pc_buf_put(C, b, "\\\"", 2); break;
        case '\'': pc_buf_put(C, b, "\\'", 2); break;
        case '\\': pc_buf_put(C, b, "\\\\", 2); break;
        default:
            if (c < 0x20 || c >= 0x7f) {
                char o[5];
                snprintf(o, sizeof o, "\\%03o", c);
                pc_buf_put(C, b, o, 4);
            } else pc_buf_byte(C, b, (int)c);
        }
    }
}

static void field_default(rs *R, pc_field *fd) {
    pc_ctx *C = R->C;
    if (!fd->has_default) return;
    if (R->f->proto3)
        pc_fail(C, R->f->name, fd->def_pos.line, fd->def_pos.col,
                "Explicit default values are not allowed in proto3.");
    char buf[64];
    switch (fd->type) {
    case DP_T_DOUBLE: case DP_T_FLOAT: {
        double d;
        if (fd->def_is_ident) goto bad;
        memcpy(&d, fd->def, sizeof d);
        /* the parser's SimpleDtoa text, read back by the builder */
        simple_dtoa(buf, sizeof buf, d, 0);
        d = strtod(buf, NULL);
        if (!strcmp(buf, "-nan")) d = NAN;
        simple_dtoa(buf, sizeof buf, d, fd->type == DP_T_FLOAT);
        break;
    }
    case DP_T_STRING:
        fd->out_def = fd->def;
        fd->out_deflen = fd->deflen;
        return;
    case DP_T_BYTES: {
        pc_buf b = {0};
        cescape(C, &b, (const unsigned char *)fd->def, fd->deflen);
        pc_buf_byte(C, &b, 0);
        fd->out_def = (char *)b.p;
        fd->out_deflen = b.n - 1;
        return;
    }
    case DP_T_ENUM: {
        pc_enum *e = fd->renum;
        if (!fd->def_is_ident) goto bad;
        for (int i = 0; i < e->values.n; i++) {
            pc_enumval *v = e->values.v[i];
            if (strcmp(v->name, fd->def) == 0) {
                fd->out_def = (char *)v->name;
                fd->out_deflen = strlen(v->name);
                return;
            }
        }
        pc_fail(C, R->f->name, fd->def_pos.line, fd->def_pos.col, "Enum type \"%s\" has no value named \"%s\".",
                e->full, fd->def);
    }
    case DP_T_MESSAGE: case DP_T_GROUP:
        pc_fail(C, R->f->name, fd->def_pos.line, fd->def_pos.col, "Messages can't have default values.");
    default:
        if (fd->def_is_ident) goto bad;
        fd->out_def = fd->def;
        fd->out_deflen = fd->deflen;
        return;
    }
    fd->out_def = pc_strndup(C, buf, strlen(buf));
    fd->out_deflen = strlen(buf);
    return;
bad:
    pc_fail(C, R->f->name, fd->def_pos.line, fd->def_pos.col, "Couldn't parse default value \"%s\".", fd->def);
}

/* ---- fields */

static const char *lower_nounder(pc_ctx *C, const char *s) {
    size_t n = strlen(s), j = 0;
    char *o = pc_alloc(C, n + 1);
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_') o[j++] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    return o;
}

static int options_type_name(const char *full) {
    static const char *const n[] = {"google.protobuf.FileOptions", "google.protobuf.MessageOptions",
        "google.protobuf.FieldOptions", "google.protobuf.EnumOptions", "google.protobuf.EnumValueOptions",
        "google.protobuf.ServiceOptions", "google.protobuf.MethodOptions", "google.protobuf.OneofOptions",
        "google.protobuf.ExtensionRangeOptions", NULL};
    for (int i = 0; n[i]; i++)
        if (strcmp(n[i], full) == 0) return 1;
    return 0;
}


static int in_ext_range(pc_msg *m, int32_t n) {
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        if (n >= r->start && n < r->end) return 1;
    }
    return 0;
}

static void resolve_field(rs *R, pc_field *fd) {
    pc_ctx *C = R->C;
    lookinfo li;
    const char *fn = R->f->name;
    if (fd->is_ext) {
        pc_sym *s = lookup(C, R->P, R->f, fd->full, fd->extendee, 0, &li);
        if (!s) not_defined(R, fd->ext_pos, fd->extendee, &li);
        if (s->kind != SYM_MSG)
            pc_fail(C, fn, fd->ext_pos.line, fd->ext_pos.col, "\"%s\" is not a message type.", fd->extendee);
        fd->rext = s->p;
        fd->rextendee = pc_strcat3(C, ".", fd->rext->full, "");
    }
    if (fd->type_name) {
        pc_sym *s = lookup(C, R->P, R->f, fd->full, fd->type_name, 1, &li);
        if (!s) not_defined(R, fd->type_pos, fd->type_name, &li);
        if (!is_type(s))
            pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col, "\"%s\" is not a type.", fd->type_name);
        if (fd->type == DP_T_GROUP) {
            if (s->kind != SYM_MSG)
                pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col, "\"%s\" is not a message type.", fd->type_name);
            fd->rmsg = s->p;
        } else if (s->kind == SYM_MSG) {
            fd->type = DP_T_MESSAGE;
            fd->rmsg = s->p;
        } else {
            fd->type = DP_T_ENUM;
            fd->renum = s->p;
        }
        fd->rtype_name = pc_strcat3(C, ".", ((pc_msg *)s->p)->full, "");
        if (s->kind == SYM_ENUM) fd->rtype_name = pc_strcat3(C, ".", fd->renum->full, "");
    }
    field_default(R, fd);
    /* validation (descriptor.cc ValidateFieldOptions, CrossLinkField) */
    pc_pos np = fd->num_pos;
    if (fd->number <= 0)
        pc_fail(C, fn, np.line, np.col, "Field numbers must be positive integers.");
    if (fd->number > MAX_NUMBER)
        pc_fail(C, fn, np.line, np.col, "Field numbers cannot be greater than %d.", MAX_NUMBER);
    if (fd->number >= 19000 && fd->number <= 19999)
        pc_fail(C, fn, np.line, np.col,
                "Field numbers 19000 through 19999 are reserved for the protocol buffer library "
                "implementation.");
    if (R->f->proto3) {
        if (fd->label == 2)
            pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col, "Required fields are not allowed in proto3.");
        if (fd->type == DP_T_GROUP)
            pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col, "Groups are not supported in proto3 syntax.");
        if (fd->renum && !fd->renum->file->proto3 && !fd->renum->file->edition)
            pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col,
                    "Enum type \"%s\" is not a proto3 enum, but is used in \"%s\" which is a proto3 message type.",
                    fd->renum->full, fd->parent ? fd->parent->full : fd->full);
    }
    if (fd->is_ext && R->f->proto3 && !options_type_name(fd->rext->full))
        pc_fail(C, fn, fd->ext_pos.line, fd->ext_pos.col, "Extensions in proto3 are only allowed for defining options.");
    if (fd->is_ext) {
        if (!in_ext_range(fd->rext, fd->number))
            pc_fail(C, fn, np.line, np.col, "\"%s\" does not declare %d as an extension number.", fd->rext->full,
                    fd->number);
        if (fd->has_json_name)
            pc_fail(C, fn, fd->json_pos.line, fd->json_pos.col, "option json_name is not allowed on extension fields.");
        if (fd->label == 2)
            pc_fail(C, fn, fd->label_pos.line, fd->label_pos.col, "The extension %s cannot be required.", fd->full);
    }
}

static void check_msg(rs *R, pc_msg *m) {
    pc_ctx *C = R->C;
    const char *fn = R->f->name;
    rngidx res, ext;
    rindex_build(C, &res, &m->resranges);
    rindex_build(C, &ext, &m->extranges);
    pc_set numbers = {0}, resnames = {0}, json = {0};
    for (int j = 0; j < m->resnames.n; j++) pc_set_add(C, &resnames, m->resnames.v[j]);
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *a = m->fields.v[i];
        int first = pc_imap_get_or_add(C, &numbers, a->number, i);
        if (first >= 0)
            pc_fail(C, fn, a->num_pos.line, a->num_pos.col,
                    "Field number %d has already been used in \"%s\" by field \"%s\".", a->number, m->full,
                    ((pc_field *)m->fields.v[first])->name);
        if (rindex_has(&res, a->number))
            pc_fail(C, fn, -1, 0, "Field \"%s\" uses reserved number %d.", a->name, a->number);
        if (pc_set_has(&resnames, a->name))
            pc_fail(C, fn, a->name_pos.line, a->name_pos.col, "Field name \"%s\" is reserved.", a->name);
        if (rindex_has(&ext, a->number)) {
            for (int j = 0; j < m->extranges.n; j++) {
                pc_range *r = m->extranges.v[j];
                if (a->number >= r->start && a->number < r->end)
                    pc_fail(C, fn, a->num_pos.line, a->num_pos.col,
                            "Extension range %d to %d includes field \"%s\" (%d).", r->start, r->end - 1, a->name,
                            a->number);
            }
        }
        if (R->f->proto3) {
            /* protoc 3.21: names equal once lowercased without underscores */
            const char *la = lower_nounder(C, a->name);
            if (!pc_set_add(C, &json, la)) {
                for (int j = 0; j < i; j++) {
                    pc_field *b = m->fields.v[j];
                    if (strcmp(la, lower_nounder(C, b->name)) == 0)
                        pc_fail(C, fn, a->name_pos.line, a->name_pos.col,
                                "The JSON camel-case name of field \"%s\" conflicts with field \"%s\". This is not "
                                "allowed in proto3.",
                                a->name, b->name);
                }
            }
        }
    }
    if (R->f->proto3 && m->extranges.n) {
        pc_range *r = m->extranges.v[0];
        pc_fail(C, fn, r->pos.line, r->pos.col, "Extension ranges are not allowed in proto3.");
    }
    if (R->f->proto3 && m->message_set)
        pc_fail(C, fn, m->pos.line, m->pos.col, "MessageSet is not supported in proto3.");
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        if (r->start <= 0 || r->end <= r->start)
            pc_fail(C, fn, r->pos.line, r->pos.col,
                    r->start <= 0 ? "Extension numbers must be positive integers." : "Extension range end number must be greater than start number.");
    }
    pc_range *ra, *rb;
    if (overlap(&m->extranges, &ext, &ra, &rb))
        pc_fail(C, fn, ra->pos.line, ra->pos.col, "Extension range %d to %d overlaps with already-defined range %d to %d.",
                ra->start, ra->end - 1, rb->start, rb->end - 1);
    for (int i = 0; i < m->resranges.n; i++) {
        pc_range *r = m->resranges.v[i];
        if (r->start <= 0)
            pc_fail(C, fn, r->pos.line, r->pos.col, "Reserved numbers must be positive integers.");
        if (r->end <= r->start)
            pc_fail(C, fn, r->pos.line, r->pos.col, "Reserved range end number must be greater than start number.");
    }
}

static void check_enum(rs *R, pc_enum *e) {
    pc_ctx *C = R->C;
    const char *fn = R->f->name;
    if (!e->values.n)
        pc_fail(C, fn, e->pos.line, e->pos.col, "Enums must contain at least one value.");
    if (R->f->proto3 && ((pc_enumval *)e->values.v[0])->number != 0) {
        pc_enumval *v = e->values.v[0];
        pc_fail(C, fn, v->num_pos.line, v->num_pos.col, "The first enum value must be zero in proto3.");
    }
    int alias = 0;
    for (pc_uopt *u = e->opts.head; u; u = u->next)
        if (u->nparts == 1 && !u->parts[0].is_ext && !strcmp(u->parts[0].name, "allow_alias") &&
            u->vkind == V_IDENT && !strcmp(u->ident, "true"))
            alias = 1;
    /* duplicate numbers: a sort would be faster, but the common case is small;
       large enums are checked through a hash of numbers */
    int n = e->values.n;
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2) cap *= 2;
    int32_t *slot = pc_alloc(C, sizeof(int32_t) * cap);
    for (uint32_t i = 0; i < cap; i++) slot[i] = -1;
    int dup = 0;
    for (int i = 0; i < n; i++) {
        pc_enumval *v = e->values.v[i];
        uint32_t h = ((uint32_t)v->number * 2654435761u) & (cap - 1);
        for (;; h = (h + 1) & (cap - 1)) {
            if (slot[h] < 0) { slot[h] = i; break; }
            pc_enumval *o = e->values.v[slot[h]];
            if (o->number == v->number) {
                dup = 1;
                if (!alias)
                    pc_fail(C, fn, v->num_pos.line, v->num_pos.col,
                            "\"%s\" uses the same enum value as \"%s\". If this is intended, set 'option "
                            "allow_alias = true;' to the enum definition.",
                            v->full, o->name);
                break;
            }
        }
        for (int j = 0; j < e->resranges.n; j++) {
            pc_range *r = e->resranges.v[j];
            if (v->number >= r->start && v->number <= r->end)
                pc_fail(C, fn, v->pos.line, v->pos.col, "Enum value \"%s\" uses reserved number %d.", v->name, v->number);
        }
        for (int j = 0; j < e->resnames.n; j++)
            if (strcmp(e->resnames.v[j], v->name) == 0)
                pc_fail(C, fn, v->pos.line, v->pos.col, "Enum value \"%s\" is reserved.", v->name);
    }
    (void)dup;
}

static void resolve_msg(rs *R, pc_msg *m) {
    for (int i = 0; i < m->fields.n; i++) resolve_field(R, m->fields.v[i]);
    for (int i = 0; i < m->exts.n; i++) resolve_field(R, m->exts.v[i]);
    for (int i = 0; i < m->nested.n; i++) resolve_msg(R, m->nested.v[i]);
    for (int i = 0; i < m->enums.n; i++) check_enum(R, m->enums.v[i]);
    check_msg(R, m);
}

static void add_package(rs *R) {
    const char *pkg = R->f->pkg;
    if (!*pkg) return;
    pc_pos p0 = {0, 0};
    for (const char *d = pkg;; d++) {
        if (*d == '.' || *d == 0) {
            add_sym(R, pc_strndup(R->C, pkg, (size_t)(d - pkg)), SYM_PACKAGE, NULL, p0);
            if (!*d) break;
        }
    }
}

/* after every name is resolved (protoc validates map entries then) */
static void check_maps(rs *R, pc_msg *m) {
    pc_ctx *C = R->C;
    const char *fn = R->f->name;
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *fd = m->fields.v[i];
        if (fd->is_map) {
            pc_msg *e = fd->rmsg;
            pc_field *k = e->fields.v[0];
            if (k->type == 0 || k->type == DP_T_FLOAT || k->type == DP_T_DOUBLE || k->type == DP_T_BYTES ||
                k->type == DP_T_MESSAGE || k->type == DP_T_ENUM || k->type == DP_T_GROUP || k->type_name)
                pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col,
                        "Key in map fields cannot be float/double, bytes or message types.");
        }
    }
    for (int i = 0; i < m->nested.n; i++) check_maps(R, m->nested.v[i]);
}

void pc_resolve_file(pc_ctx *C, pc_pool *P, pc_file *f) {
    rs R = {C, P, f};
    mark_visible(f);
    add_package(&R);
    for (int i = 0; i < f->msgs.n; i++) add_msg(&R, f->msgs.v[i], f->pkg);
    for (int i = 0; i < f->enums.n; i++) add_enum(&R, f->enums.v[i], f->pkg);
    for (int i = 0; i < f->services.n; i++) {
        pc_service *s = f->services.v[i];
        s->full = join(C, f->pkg, s->name);
        add_sym(&R, s->full, SYM_SERVICE, s, s->pos);
        for (int j = 0; j < s->methods.n; j++) {
            pc_method *m = s->methods.v[j];
            m->full = join(C, s->full, m->name);
            add_sym(&R, m->full, SYM_METHOD, m, m->pos);
        }
    }
    for (int i = 0; i < f->exts.n; i++) add_field_syms(&R, f->exts.v[i], f->pkg);

    for (int i = 0; i < f->msgs.n; i++) resolve_msg(&R, f->msgs.v[i]);
    for (int i = 0; i < f->enums.n; i++) check_enum(&R, f->enums.v[i]);
    for (int i = 0; i < f->exts.n; i++) resolve_field(&R, f->exts.v[i]);
    for (int i = 0; i < f->services.n; i++) {
        pc_service *s = f->services.v[i];
        for (int j = 0; j < s->methods.n; j++) {
            pc_method *m = s->methods.v[j];
            lookinfo li;
            pc_sym *a = lookup(C, P, f, m->full, m->in, 0, &li);
            if (!a) not_defined(&R, m->in_pos, m->in, &li);
            if (a->kind != SYM_MSG)
                pc_fail(C, f->name, m->in_pos.line, m->in_pos.col, "\"%s\" is not a message type.", m->in);
            m->rin = pc_strcat3(C, ".", ((pc_msg *)a->p)->full, "");
            pc_sym *b = lookup(C, P, f, m->full, m->out, 0, &li);
            if (!b) not_defined(&R, m->out_pos, m->out, &li);
            if (b->kind != SYM_MSG)
                pc_fail(C, f->name, m->out_pos.line, m->out_pos.col, "\"%s\" is not a message type.", m->out);
            m->rout = pc_strcat3(C, ".", ((pc_msg *)b->p)->full, "");
        }
    }
    for (int i = 0; i < f->msgs.n; i++) check_maps(&R, f->msgs.v[i]);
}
