/*
 * parser.c -- .proto source -> a pc_file tree shaped like the
 * FileDescriptorProto protoc's parser (compiler::Parser) fills in: map
 * fields get their entry message, groups their nested message, proto3
 * `optional` fields their synthetic oneofs, `to max` ranges their end, all
 * in protoc's order. Options stay uninterpreted (options.c), names
 * unresolved (resolve.c). Stops at the first error (pc_fail).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pc.h"

#define MAX_NUMBER 536870911
#define RANGE_SENTINEL (-1)

typedef struct {
    pc_ctx *C;
    pc_lexer X;
    pc_file *f;
    const char *fname;
    int depth;
    /* source info (C->source_info): locations, comments pending */
    int si;
    pc_vec *locs;
    pc_buf up_doc;            /* leading comments for the next declaration */
    pc_vec up_det;            /* detached comments for it */
} pc_parser;

#define CUR(P) (&(P)->X.cur)

static void perr(pc_parser *P, const char *msg) {
    pc_fail(P->C, P->fname, CUR(P)->line, CUR(P)->col, "%s", msg);
}

static pc_pos curpos(pc_parser *P) {
    pc_pos p = {CUR(P)->line, CUR(P)->col};
    return p;
}

static int looking_at(pc_parser *P, const char *s) {
    size_t n = strlen(s);
    return CUR(P)->type != TK_EOF && CUR(P)->type != TK_STRING && CUR(P)->n == n &&
           memcmp(CUR(P)->s, s, n) == 0;
}

static int try_consume(pc_parser *P, const char *s) {
    if (!looking_at(P, s)) return 0;
    pc_lex_next(&P->X);
    return 1;
}

static void consume(pc_parser *P, const char *s) {
    if (try_consume(P, s)) return;
    char msg[64];
    snprintf(msg, sizeof msg, "Expected \"%s\".", s);
    perr(P, msg);
}

static void consume_msg(pc_parser *P, const char *s, const char *msg) {
    if (!try_consume(P, s)) perr(P, msg);
}

static const char *ident(pc_parser *P, const char *msg) {
    if (CUR(P)->type != TK_IDENT) perr(P, msg);
    const char *s = pc_strndup(P->C, CUR(P)->s, CUR(P)->n);
    pc_lex_next(&P->X);
    return s;
}

/* one or more adjacent string tokens, unescaped and concatenated */
static char *string(pc_parser *P, const char *msg, size_t *len) {
    if (CUR(P)->type != TK_STRING) perr(P, msg);
    pc_buf b = {0};
    while (CUR(P)->type == TK_STRING) {
        pc_lex_string(&P->X, CUR(P), &b);
        pc_lex_next(&P->X);
    }
    pc_buf_byte(P->C, &b, 0);
    if (len) *len = b.n - 1;
    return (char *)b.p;
}

static uint64_t integer64(pc_parser *P, uint64_t max, const char *msg) {
    if (CUR(P)->type != TK_INT) perr(P, msg);
    uint64_t v;
    if (!pc_parse_uint(CUR(P)->s, CUR(P)->n, &v) || v > max) perr(P, "Integer out of range.");
    pc_lex_next(&P->X);
    return v;
}

static int32_t integer(pc_parser *P, const char *msg) {
    return (int32_t)integer64(P, INT32_MAX, msg);
}

static int32_t signed_integer(pc_parser *P, const char *msg) {
    int neg = try_consume(P, "-");
    uint64_t v = integer64(P, (uint64_t)INT32_MAX + (uint64_t)neg, msg);
    return neg ? (int32_t)(-(int64_t)v) : (int32_t)v;
}

/* ---- locations (protoc's LocationRecorder); NULL when not recording */

static pc_loc *LOC(pc_parser *P, const pc_loc *parent, int n, int a, int b) {
    return P->si ? pc_loc_new(P->C, P->locs, parent, CUR(P), n, a, b) : NULL;
}

static void DONE(pc_parser *P, pc_loc *l) { pc_loc_done(l, &P->X.prev); }

static void L_start_tok(pc_loc *l, const pc_tok *t) {
    if (l) { l->span[0] = t->line; l->span[1] = t->col; }
}

static void L_start_loc(pc_loc *l, const pc_loc *o) {
    if (l && o) { l->span[0] = o->span[0]; l->span[1] = o->span[1]; }
}

/* protoc's TryConsumeEndOfDeclaration: the comments around the token go
   to loc (leading and detached ones from before, trailing after) */
static int try_end_decl(pc_parser *P, const char *s, pc_loc *loc) {
    if (!looking_at(P, s)) return 0;
    if (!P->si) {
        pc_lex_next(&P->X);
        return 1;
    }
    pc_ctx *C = P->C;
    pc_buf trail = {0}, lead = {0};
    pc_vec det = {0};
    int hl;
    pc_lex_next_comments(&P->X, 0, &trail, &det, &lead, &hl);
    pc_buf old_doc = P->up_doc;
    P->up_doc = lead;
    if (loc) {
        pc_vec old_det = P->up_det;
        P->up_det = det;
        if (old_doc.n) {
            loc->lead = old_doc;
            loc->has_lead = 1;
        }
        loc->trail = trail;
        loc->det = old_det;
    } else if (strcmp(s, "}") == 0) {
        P->up_det = det;
    } else {
        for (int i = 0; i < det.n; i++) pc_vec_push(C, &P->up_det, det.v[i]);
    }
    return 1;
}

static void end_decl(pc_parser *P, const char *s, pc_loc *loc) {
    if (try_end_decl(P, s, loc)) return;
    char msg[64];
    snprintf(msg, sizeof msg, "Expected \"%s\".", s);
    perr(P, msg);
}

static void enter(pc_parser *P) {
    if (++P->depth > PC_MAX_DEPTH)
        perr(P, "Nesting too deep (more than 64 levels of messages, groups or blocks).");
}

void pc_opts_init(pc_opts *o) {
    o->head = NULL;
    o->tail = &o->head;
    o->present = 0;
    o->out.p = NULL;
    o->out.n = o->out.cap = 0;
}

static void add_uopt(pc_opts *o, pc_uopt *u) {
    if (!o->tail) o->tail = &o->head;
    *o->tail = u;
    o->tail = &u->next;
    o->present = 1;
}

/* protoc's ToJsonName */
const char *pc_json_name(pc_ctx *C, const char *name) {
    size_t n = strlen(name), j = 0;
    char *out = pc_alloc(C, n + 1);
    int cap = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '_') cap = 1;
        else if (cap) {
            out[j++] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            cap = 0;
        } else out[j++] = c;
    }
    out[j] = 0;
    return out;
}

/* ---- options */

static void option_name_part(pc_parser *P, pc_vec *parts) {
    pc_optpart *pt = pc_alloc(P->C, sizeof *pt);
    pt->pos = curpos(P);
    if (try_consume(P, "(")) {
        pc_buf b = {0};
        if (try_consume(P, ".")) pc_buf_byte(P->C, &b, '.');
        const char *id = ident(P, "Expected identifier.");
        pc_buf_put(P->C, &b, id, strlen(id));
        while (looking_at(P, ".")) {
            consume(P, ".");
            pc_buf_byte(P->C, &b, '.');
            id = ident(P, "Expected identifier.");
            pc_buf_put(P->C, &b, id, strlen(id));
        }
        consume(P, ")");
        pc_buf_byte(P->C, &b, 0);
        pt->name = (char *)b.p;
        pt->is_ext = 1;
    } else {
        pt->name = ident(P, "Expected identifier.");
    }
    pc_vec_push(P->C, parts, pt);
}

/* the text between a '{' and its '}' (braces balanced), for V_AGG */
static void uninterpreted_block(pc_parser *P, pc_uopt *u) {
    consume(P, "{");
    u->agg = P->X.cur.s;
    u->aggpos = curpos(P);
    int depth = 1;
    for (;;) {
        if (CUR(P)->type == TK_EOF) perr(P, "Unexpected end of stream while parsing aggregate value.");
        if (looking_at(P, "{")) {
            if (++depth > PC_MAX_DEPTH) perr(P, "Aggregate value nested too deep.");
        } else if (looking_at(P, "}")) {
            if (--depth == 0) break;
        }
        pc_lex_next(&P->X);
    }
    u->agglen = (size_t)(CUR(P)->s - u->agg);
    pc_lex_next(&P->X);
}

/* option name = value (statement: with "option" and ";") */
static void parse_option(pc_parser *P, pc_opts *o, int statement, const pc_loc *oloc) {
    pc_uopt *u = pc_alloc(P->C, sizeof *u);
    /* [.., options, 999, i]: written as oloc's path + the interpreted path */
    pc_loc *l = LOC(P, oloc, 0, 0, 0);
    if (l) l->opt = u;
    if (statement) consume(P, "option");
    u->pos = curpos(P);
    pc_vec parts = {0};
    option_name_part(P, &parts);
    while (looking_at(P, ".")) {
        consume(P, ".");
        option_name_part(P, &parts);
    }
    u->nparts = parts.n;
    u->parts = pc_alloc(P->C, sizeof(pc_optpart) * (size_t)parts.n);
    for (int i = 0; i < parts.n; i++) u->parts[i] = *(pc_optpart *)parts.v[i];
    consume(P, "=");
    int neg = try_consume(P, "-");
    u->vpos = curpos(P);
    switch (CUR(P)->type) {
    case TK_EOF:
        perr(P, "Unexpected end of stream while parsing option value.");
        break;
    case TK_IDENT:
        if (neg) perr(P, "Invalid '-' symbol before identifier.");
        u->vkind = V_IDENT;
        u->ident = ident(P, "Expected identifier.");
        break;
    case TK_INT:
        u->u = integer64(P, neg ? (uint64_t)INT64_MAX + 1 : UINT64_MAX, "Expected integer.");
        u->vkind = neg ? V_NEG : V_POS;
        break;
    case TK_FLOAT:
        u->d = pc_parse_float(CUR(P)->s, CUR(P)->n);
        if (neg) u->d = -u->d;
        u->vkind = V_DOUBLE;
        pc_lex_next(&P->X);
        break;
    case TK_STRING:
        if (neg) perr(P, "Invalid '-' symbol before string.");
        u->str = string(P, "Expected string.", &u->slen);
        u->vkind = V_STRING;
        break;
    default:
        if (looking_at(P, "{")) {
            uninterpreted_block(P, u);
            u->vkind = V_AGG;
        } else {
            perr(P, "Expected option value.");
        }
    }
    if (statement) end_decl(P, ";", l);
    DONE(P, l);
    add_uopt(o, u);
}

/* ---- types */

static const char *const scalar_names[] = {
    NULL, "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool",
    "string", "group", NULL, "bytes", "uint32", NULL, "sfixed32", "sfixed64", "sint32", "sint64"};

static int scalar_type(pc_parser *P) {
    if (CUR(P)->type != TK_IDENT) return 0;
    for (int i = 1; i <= 18; i++)
        if (scalar_names[i] && strlen(scalar_names[i]) == CUR(P)->n &&
            memcmp(scalar_names[i], CUR(P)->s, CUR(P)->n) == 0)
            return i;
    return 0;
}

static const char *user_type(pc_parser *P) {
    if (scalar_type(P)) perr(P, "Expected message type.");
    pc_buf b = {0};
    if (try_consume(P, ".")) pc_buf_byte(P->C, &b, '.');
    const char *id = ident(P, "Expected type name.");
    pc_buf_put(P->C, &b, id, strlen(id));
    while (try_consume(P, ".")) {
        pc_buf_byte(P->C, &b, '.');
        id = ident(P, "Expected identifier.");
        pc_buf_put(P->C, &b, id, strlen(id));
    }
    pc_buf_byte(P->C, &b, 0);
    return (const char *)b.p;
}

/* a field type: scalar (returns its number, *name NULL) or a type name */
static int parse_type(pc_parser *P, const char **name) {
    int t = scalar_type(P);
    *name = NULL;
    if (t == DP_T_GROUP && P->f->edition)
        perr(P, "Group syntax is no longer supported in editions. To get group behavior you can specify "
                "features.message_encoding = DELIMITED on a message field.");
    if (t) {
        pc_lex_next(&P->X);
        return t;
    }
    *name = user_type(P);
    return 0;
}

/* ---- messages */

static pc_msg *new_msg(pc_parser *P, const char *name, pc_msg *parent, pc_pos pos) {
    pc_msg *m = pc_alloc(P->C, sizeof *m);
    m->name = name;
    m->parent = parent;
    m->file = P->f;
    m->pos = pos;
    pc_opts_init(&m->opts);
    return m;
}

static void parse_message_block(pc_parser *P, pc_msg *m, pc_loc *mloc);
static void parse_enum(pc_parser *P, pc_vec *into, pc_loc *eloc);

static void default_value(pc_parser *P, pc_field *fd);

static void default_assignment(pc_parser *P, pc_field *fd, const pc_loc *floc) {
    if (fd->has_default) perr(P, "Already set option \"default\".");
    consume(P, "default");
    consume(P, "=");
    pc_loc *dl = LOC(P, floc, 1, 7, 0);
    default_value(P, fd);
    DONE(P, dl);
}

static void default_value(pc_parser *P, pc_field *fd) {
    fd->has_default = 1;
    fd->def_pos = curpos(P);
    if (fd->label == 3) perr(P, "Repeated fields can't have default values.");
    pc_ctx *C = P->C;
    char buf[64];
    if (fd->type == 0) {
        /* a named type: the token as it is (enum value name, checked later) */
        if (CUR(P)->type == TK_EOF) perr(P, "Expected identifier.");
        fd->def = pc_strndup(C, CUR(P)->s, CUR(P)->n);
        fd->deflen = CUR(P)->n;
        fd->def_is_ident = 1;
        pc_lex_next(&P->X);
        return;
    }
    switch (fd->type) {
    case DP_T_INT32: case DP_T_INT64: case DP_T_SINT32: case DP_T_SINT64:
    case DP_T_SFIXED32: case DP_T_SFIXED64: {
        int64_t max = (fd->type == DP_T_INT32 || fd->type == DP_T_SINT32 || fd->type == DP_T_SFIXED32)
                          ? INT32_MAX : INT64_MAX;
        int neg = try_consume(P, "-");
        uint64_t v = integer64(P, (uint64_t)max + (uint64_t)neg, "Expected integer for field default value.");
        if (neg && v) snprintf(buf, sizeof buf, "-%llu", (unsigned long long)v);
        else snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        break;
    }
    case DP_T_UINT32: case DP_T_UINT64: case DP_T_FIXED32: case DP_T_FIXED64: {
        uint64_t max = (fd->type == DP_T_UINT32 || fd->type == DP_T_FIXED32) ? UINT32_MAX : UINT64_MAX;
        if (try_consume(P, "-")) perr(P, "Unsigned field can't have negative default value.");
        uint64_t v = integer64(P, max, "Expected integer for field default value.");
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        break;
    }
    case DP_T_FLOAT: case DP_T_DOUBLE: {
        int neg = try_consume(P, "-");
        double d;
        if (CUR(P)->type == TK_FLOAT) d = pc_parse_float(CUR(P)->s, CUR(P)->n);
        else if (CUR(P)->type == TK_INT) {
            uint64_t v;
            if (!pc_parse_uint(CUR(P)->s, CUR(P)->n, &v)) d = pc_parse_float(CUR(P)->s, CUR(P)->n);
            else d = (double)v;
        } else if (looking_at(P, "inf")) d = INFINITY;
        else if (looking_at(P, "nan")) d = NAN;
        else perr(P, "Expected number.");
        pc_lex_next(&P->X);
        /* protoc stores the number's text and parses it again: keep it exact */
        fd->def = pc_alloc(C, sizeof(double));
        if (neg) d = -d;
        memcpy(fd->def, &d, sizeof d);
        fd->deflen = sizeof d;
        return;
    }
    case DP_T_BOOL:
        if (looking_at(P, "true")) strcpy(buf, "true");
        else if (looking_at(P, "false")) strcpy(buf, "false");
        else perr(P, "Expected \"true\" or \"false\".");
        pc_lex_next(&P->X);
        break;
    case DP_T_STRING: case DP_T_BYTES:
        fd->def = string(P, fd->type == DP_T_STRING ? "Expected string for field default value."
                                                    : "Expected string.", &fd->deflen);
        return;
    case DP_T_ENUM:
        fd->def = (char *)ident(P, "Default value for an enum field must be an identifier.");
        fd->deflen = strlen(fd->def);
        fd->def_is_ident = 1;
        return;
    default: /* group, message */
        perr(P, "Messages can't have default values.");
    }
    fd->def = pc_strndup(C, buf, strlen(buf));
    fd->deflen = strlen(buf);
}

static void field_options(pc_parser *P, pc_field *fd, const pc_loc *floc) {
    if (!looking_at(P, "[")) return;
    pc_loc *ol = LOC(P, floc, 1, 8, 0);
    consume(P, "[");
    do {
        if (looking_at(P, "default")) {
            default_assignment(P, fd, floc);
        } else if (looking_at(P, "json_name")) {
            if (fd->has_json_name) perr(P, "Already set option \"json_name\".");
            fd->json_pos = curpos(P);
            pc_loc *jl = LOC(P, floc, 1, 10, 0);
            consume(P, "json_name");
            consume(P, "=");
            pc_loc *vl = LOC(P, jl, 0, 0, 0);
            fd->json_name = string(P, "Expected string for JSON name.", NULL);
            DONE(P, vl);
            DONE(P, jl);
            fd->has_json_name = 1;
        } else {
            parse_option(P, &fd->opts, 0, ol);
        }
    } while (try_consume(P, ","));
    consume(P, "]");
    DONE(P, ol);
}

static char *map_entry_name(pc_parser *P, const char *field) {
    size_t n = strlen(field), j = 0;
    char *out = pc_alloc(P->C, n + 6);
    int cap = 1;
    for (size_t i = 0; i < n; i++) {
        char c = field[i];
        if (c == '_') cap = 1;
        else if (cap) {
            out[j++] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            cap = 0;
        } else out[j++] = c;
    }
    memcpy(out + j, "Entry", 6);
    return out;
}

static pc_field *new_field(pc_parser *P, pc_msg *parent) {
    pc_field *fd = pc_alloc(P->C, sizeof *fd);
    fd->parent = parent;
    fd->file = P->f;
    fd->oneof_index = -1;
    fd->pos = curpos(P);
    pc_opts_init(&fd->opts);
    return fd;
}

static pc_field *entry_field(pc_parser *P, pc_msg *e, const char *name, int num, int type,
                             const char *tn, pc_pos pos) {
    pc_field *fd = new_field(P, e);
    fd->name = name;
    fd->number = num;
    fd->label = 1;
    fd->type = type;
    fd->type_name = tn;
    fd->pos = pos;
    fd->name_pos = pos;
    fd->type_pos.line = -1;   /* synthesized: protoc has no location for it */
    return fd;
}

/* the field after its label (if any): protoc's ParseMessageFieldNoLabel.
   has_label: a label was written. nested: where groups and map entries go. */
static void field_no_label(pc_parser *P, pc_field *fd, int has_label, pc_vec *nested, pc_msg *parent,
                           const pc_loc *ploc, int nested_num, pc_loc *floc) {
    int ktype = 0, vtype = 0, is_map = 0;
    const char *kname = NULL, *vname = NULL;
    pc_pos tpos = curpos(P);
    fd->type_pos = tpos;
    int type_parsed = 0;
    pc_loc *tl = LOC(P, floc, 0, 0, 0);
    if (looking_at(P, "map")) {
        pc_lex_next(&P->X);
        if (looking_at(P, "<")) is_map = 1;
        else {
            type_parsed = 1;
            fd->type_name = "map";
        }
    }
    if (is_map) {
        if (fd->oneof_index >= 0) perr(P, "Map fields are not allowed in oneofs.");
        if (has_label) perr(P, "Field labels (required/optional/repeated) are not allowed on map fields.");
        if (fd->extendee) perr(P, "Map fields are not allowed to be extensions.");
        fd->label = 3;
        consume(P, "<");
        ktype = parse_type(P, &kname);
        consume(P, ",");
        vtype = parse_type(P, &vname);
        consume(P, ">");
        pc_loc_add(P->C, tl, 6);
    } else {
        if (!has_label && (P->f->proto3 || P->f->edition)) fd->label = 1;
        if (!fd->label) perr(P, "Expected \"required\", \"optional\", or \"repeated\".");
        if (!type_parsed) fd->type = parse_type(P, &fd->type_name);
        pc_loc_add(P->C, tl, fd->type_name ? 6 : 5);
    }
    DONE(P, tl);
    fd->name_pos = curpos(P);
    pc_pos name_pos = curpos(P);
    pc_tok name_tok = *CUR(P);
    pc_loc *nl = LOC(P, floc, 1, 1, 0);
    fd->name = ident(P, "Expected field name.");
    DONE(P, nl);
    consume_msg(P, "=", "Missing field number.");
    fd->num_pos = curpos(P);
    pc_loc *numl = LOC(P, floc, 1, 3, 0);
    fd->number = integer(P, "Expected field number.");
    DONE(P, numl);
    field_options(P, fd, floc);
    if (fd->type == DP_T_GROUP) {
        pc_loc *gl = LOC(P, ploc, 0, 0, 0);
        L_start_loc(gl, floc);
        pc_loc_add(P->C, gl, nested_num);
        pc_loc_add(P->C, gl, nested->n);
        pc_msg *g = new_msg(P, fd->name, parent, name_pos);
        pc_vec_push(P->C, nested, g);
        pc_loc *l1 = LOC(P, gl, 1, 1, 0);
        L_start_tok(l1, &name_tok);
        pc_loc_end_at(l1, &name_tok);
        pc_loc *l2 = LOC(P, floc, 1, 6, 0);
        L_start_tok(l2, &name_tok);
        pc_loc_end_at(l2, &name_tok);
        if (g->name[0] < 'A' || g->name[0] > 'Z')
            pc_fail(P->C, P->fname, name_pos.line, name_pos.col, "Group names must start with a capital letter.");
        char *low = pc_strndup(P->C, fd->name, strlen(fd->name));
        for (char *c = low; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
        fd->name = low;
        fd->type_name = g->name;
        fd->is_group = 1;
        if (!looking_at(P, "{")) perr(P, "Missing group body.");
        g->parent = parent;
        parse_message_block(P, g, gl);
        DONE(P, gl);
    } else {
        end_decl(P, ";", floc);
    }
    if (is_map) {
        fd->is_map = 1;
        pc_msg *e = new_msg(P, map_entry_name(P, fd->name), parent, tpos);
        e->map_entry = 1;
        e->opts.present = 1;
        pc_field *kf = entry_field(P, e, "key", 1, ktype, kname, tpos);
        pc_field *vf = entry_field(P, e, "value", 2, vtype, vname, tpos);
        /* protoc's GenerateMapEntry: the map field's features go to key and value */
        for (pc_uopt *u = P->f->edition ? fd->opts.head : NULL; u; u = u->next) {
            if (u->parts[0].is_ext || strcmp(u->parts[0].name, "features") != 0) continue;
            for (int k = 0; k < 2; k++) {
                pc_uopt *c = pc_alloc(P->C, sizeof *c);
                *c = *u;
                c->next = NULL;
                add_uopt(k ? &vf->opts : &kf->opts, c);
            }
        }
        pc_vec_push(P->C, &e->fields, kf);
        pc_vec_push(P->C, &e->fields, vf);
        pc_vec_push(P->C, nested, e);
        fd->type_name = e->name;
    }
}

static int parse_label(pc_parser *P, pc_field *fd, const pc_loc *floc) {
    fd->label_pos = curpos(P);
    if (!looking_at(P, "optional") && !looking_at(P, "required") && !looking_at(P, "repeated")) return 0;
    if (P->f->edition && looking_at(P, "optional"))
        perr(P, "Label \"optional\" is not supported in editions. By default, all singular fields have presence "
                "unless features.field_presence is set.");
    if (P->f->edition && looking_at(P, "required"))
        perr(P, "Label \"required\" is not supported in editions, use features.field_presence = LEGACY_REQUIRED.");
    pc_loc *ll = LOC(P, floc, 1, 4, 0);
    if (try_consume(P, "optional")) fd->label = 1;
    else if (try_consume(P, "required")) fd->label = 2;
    else consume(P, "repeated"), fd->label = 3;
    DONE(P, ll);
    if (fd->label == 1 && P->f->proto3) fd->proto3_optional = 1;
    return 1;
}

static void message_field(pc_parser *P, pc_field *fd, pc_vec *nested, pc_msg *parent, const pc_loc *ploc,
                          int nested_num, pc_loc *floc) {
    int has = parse_label(P, fd, floc);
    field_no_label(P, fd, has, nested, parent, ploc, nested_num, floc);
}

static void parse_extend(pc_parser *P, pc_vec *exts, pc_vec *nested, pc_msg *parent, const pc_loc *ploc,
                         int nested_num, pc_loc *xloc) {
    consume(P, "extend");
    pc_pos epos = curpos(P);
    pc_tok estart = *CUR(P);
    const char *extendee = user_type(P);
    pc_tok eend = P->X.prev;
    end_decl(P, "{", xloc);
    do {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in extend definition (missing '}').");
        pc_loc *l = LOC(P, xloc, 1, exts->n, 0);
        pc_loc *el = LOC(P, l, 1, 2, 0);
        L_start_tok(el, &estart);
        pc_loc_end_at(el, &eend);
        pc_field *fd = new_field(P, parent);
        fd->extendee = extendee;
        fd->ext_pos = epos;
        fd->is_ext = 1;
        message_field(P, fd, nested, parent, ploc, nested_num, l);
        DONE(P, l);
        pc_vec_push(P->C, exts, fd);
    } while (!try_end_decl(P, "}", NULL));
}

/* numbers or names after "reserved"; end_exclusive for messages */
static void parse_reserved(pc_parser *P, pc_vec *ranges, pc_vec *names, int is_enum, const pc_loc *mloc) {
    pc_tok st = *CUR(P);
    consume(P, "reserved");
    pc_loc *l;
    if (P->f->edition && CUR(P)->type == TK_STRING)
        perr(P, "Reserved names must be identifiers in editions, not string literals.");
    if (P->f->edition && CUR(P)->type == TK_IDENT) {
        /* protoc's ParseReservedIdentifiers */
        l = LOC(P, mloc, 1, is_enum ? 5 : 10, 0);
        L_start_tok(l, &st);
        do {
            pc_loc *nl = LOC(P, l, 1, names->n, 0);
            pc_vec_push(P->C, names, (void *)ident(P, is_enum ? "Expected enum value identifier." : "Expected field name identifier."));
            DONE(P, nl);
        } while (try_consume(P, ","));
    } else if (CUR(P)->type == TK_STRING) {
        l = LOC(P, mloc, 1, is_enum ? 5 : 10, 0);
        L_start_tok(l, &st);
        do {
            pc_loc *nl = LOC(P, l, 1, names->n, 0);
            pc_vec_push(P->C, names, string(P, is_enum ? "Expected enum value." : "Expected field name.", NULL));
            DONE(P, nl);
        } while (try_consume(P, ","));
    } else {
        l = LOC(P, mloc, 1, is_enum ? 4 : 9, 0);
        L_start_tok(l, &st);
        int first = 1;
        do {
            pc_loc *rl = LOC(P, l, 1, ranges->n, 0);
            pc_range *r = pc_alloc(P->C, sizeof *r);
            r->pos = curpos(P);
            int32_t start, end;
            pc_loc *sl = LOC(P, rl, 1, 1, 0);
            pc_tok stok = *CUR(P);
            if (is_enum) start = signed_integer(P, first ? "Expected enum value or number range." : "Expected enum number range.");
            else start = integer(P, first ? "Expected field name or number range." : "Expected field number range.");
            DONE(P, sl);
            if (try_consume(P, "to")) {
                pc_loc *el = LOC(P, rl, 1, 2, 0);
                if (try_consume(P, "max")) end = is_enum ? INT32_MAX : RANGE_SENTINEL - 1;
                else end = is_enum ? signed_integer(P, "Expected integer.") : integer(P, "Expected integer.");
                DONE(P, el);
            } else {
                pc_loc *el = LOC(P, rl, 1, 2, 0);
                L_start_tok(el, &stok);
                pc_loc_end_at(el, &stok);
                end = start;
            }
            if (!is_enum) end++;
            r->start = start;
            r->end = end;
            pc_vec_push(P->C, ranges, r);
            DONE(P, rl);
            first = 0;
        } while (try_consume(P, ","));
    }
    end_decl(P, ";", l);
    DONE(P, l);
}

static void parse_extensions(pc_parser *P, pc_msg *m, pc_loc *xloc) {
    consume(P, "extensions");
    int first = m->extranges.n;
    do {
        pc_loc *rl = LOC(P, xloc, 1, m->extranges.n, 0);
        pc_range *r = pc_alloc(P->C, sizeof *r);
        pc_opts_init(&r->opts);
        r->pos = curpos(P);
        pc_loc *sl = LOC(P, rl, 1, 1, 0);
        pc_tok stok = *CUR(P);
        int32_t start = integer(P, "Expected field number range."), end;
        DONE(P, sl);
        pc_loc *el;
        if (try_consume(P, "to")) {
            el = LOC(P, rl, 1, 2, 0);
            if (try_consume(P, "max")) end = RANGE_SENTINEL - 1;
            else end = integer(P, "Expected integer.");
        } else {
            el = LOC(P, rl, 1, 2, 0);
            L_start_tok(el, &stok);
            pc_loc_end_at(el, &stok);
            end = start;
        }
        DONE(P, el);
        r->start = start;
        r->end = end + 1;
        pc_vec_push(P->C, &m->extranges, r);
        DONE(P, rl);
    } while (try_consume(P, ","));
    if (looking_at(P, "[")) {
        pc_range *r0 = m->extranges.v[first];
        /* protoc records these in a scratch SourceCodeInfo, then copies them
           for every range of the statement */
        pc_vec scratch = {0}, *main = P->locs;
        P->locs = &scratch;
        pc_loc *il = LOC(P, xloc, 1, 0, 0);
        pc_loc *ol = LOC(P, il, 1, 3, 0);
        consume(P, "[");
        do parse_option(P, &r0->opts, 0, ol);
        while (try_consume(P, ","));
        consume(P, "]");
        DONE(P, ol);
        DONE(P, il);
        P->locs = main;
        for (int i = first + 1; i < m->extranges.n; i++) ((pc_range *)m->extranges.v[i])->opts = r0->opts;
        if (P->si) {
            int k = xloc->npath;
            for (int i = first; i < m->extranges.n; i++)
                for (int j = 0; j < scratch.n; j++) {
                    pc_loc *src = scratch.v[j];
                    if (src->npath == k + 1) continue;
                    pc_loc *d = pc_alloc(P->C, sizeof *d);
                    *d = *src;
                    d->path = pc_alloc(P->C, sizeof(int32_t) * (size_t)src->cap);
                    memcpy(d->path, src->path, sizeof(int32_t) * (size_t)src->npath);
                    d->path[k] = i;
                    pc_vec_push(P->C, P->locs, d);
                }
        }
    }
    end_decl(P, ";", xloc);
}

static void parse_oneof(pc_parser *P, pc_msg *m, pc_loc *oloc, const pc_loc *mloc) {
    consume(P, "oneof");
    pc_oneof *o = pc_alloc(P->C, sizeof *o);
    pc_opts_init(&o->opts);
    o->pos = curpos(P);
    int idx = m->oneofs.n;
    pc_loc *nl = LOC(P, oloc, 1, 1, 0);
    o->name = ident(P, "Expected oneof name.");
    DONE(P, nl);
    pc_vec_push(P->C, &m->oneofs, o);
    end_decl(P, "{", oloc);
    do {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in oneof definition (missing '}').");
        if (looking_at(P, "option")) {
            pc_loc *ol = LOC(P, oloc, 1, 2, 0);
            parse_option(P, &o->opts, 1, ol);
            DONE(P, ol);
            continue;
        }
        if (looking_at(P, "required") || looking_at(P, "optional") || looking_at(P, "repeated"))
            perr(P, "Fields in oneofs must not have labels (required / optional / repeated).");
        pc_loc *fl = LOC(P, mloc, 2, 2, m->fields.n);
        pc_field *fd = new_field(P, m);
        fd->label = 1;
        fd->oneof_index = idx;
        field_no_label(P, fd, 1, &m->nested, m, mloc, 3, fl);
        DONE(P, fl);
        pc_vec_push(P->C, &m->fields, fd);
        o->nfields++;
    } while (!try_end_decl(P, "}", NULL));
}

static int is_message_set(pc_msg *m) {
    for (pc_uopt *u = m->opts.head; u; u = u->next)
        if (u->nparts == 1 && !u->parts[0].is_ext && strcmp(u->parts[0].name, "message_set_wire_format") == 0 &&
            u->vkind == V_IDENT && strcmp(u->ident, "true") == 0)
            return 1;
    return 0;
}

static void synthetic_oneofs(pc_parser *P, pc_msg *m) {
    int any = 0;
    for (int i = 0; i < m->fields.n; i++) any |= ((pc_field *)m->fields.v[i])->proto3_optional;
    if (!any) return;
    pc_set names = {0};
    for (int j = 0; j < m->fields.n; j++) pc_set_add(P->C, &names, ((pc_field *)m->fields.v[j])->name);
    for (int j = 0; j < m->oneofs.n; j++) pc_set_add(P->C, &names, ((pc_oneof *)m->oneofs.v[j])->name);
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *fd = m->fields.v[i];
        if (!fd->proto3_optional) continue;
        const char *nm = fd->name[0] == '_' ? fd->name : pc_strcat3(P->C, "_", fd->name, "");
        while (pc_set_has(&names, nm)) nm = pc_strcat3(P->C, "X", nm, "");
        pc_set_add(P->C, &names, nm);
        pc_oneof *o = pc_alloc(P->C, sizeof *o);
        pc_opts_init(&o->opts);
        o->name = nm;
        o->pos = fd->pos;
        o->synthetic = 1;
        o->nfields = 1;
        fd->oneof_index = m->oneofs.n;
        pc_vec_push(P->C, &m->oneofs, o);
    }
}

/* edition 2024's `export` / `local` before a message or enum (protoc's
   ParseVisibility, before the declaration's location starts): 1 local,
   2 export, 0 none */
static int parse_visibility(pc_parser *P) {
    if (P->f->edition < PC_EDITION_2024 || (!looking_at(P, "export") && !looking_at(P, "local"))) return 0;
    int v = looking_at(P, "export") ? 2 : 1;
    pc_lex_next(&P->X);
    if (!looking_at(P, "message") && !looking_at(P, "enum"))
        perr(P, "'local' and 'export' visibility modifiers are valid only on 'message' and 'enum'");
    return v;
}

/* "message" Name { ... }: mloc is the message's location */
static pc_msg *parse_message_def(pc_parser *P, pc_msg *parent, pc_loc *mloc) {
    consume(P, "message");
    pc_msg *n = new_msg(P, NULL, parent, curpos(P));
    pc_loc *nl = LOC(P, mloc, 1, 1, 0);
    n->name = ident(P, "Expected message name.");
    DONE(P, nl);
    return n;
}

static void parse_message_block(pc_parser *P, pc_msg *m, pc_loc *mloc) {
    enter(P);
    end_decl(P, "{", mloc);
    while (!try_end_decl(P, "}", NULL)) {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in message definition (missing '}').");
        if (try_end_decl(P, ";", NULL)) continue;
        pc_loc *l = NULL;
        int vis = parse_visibility(P);
        if (looking_at(P, "message")) {
            l = LOC(P, mloc, 2, 3, m->nested.n);
            pc_msg *n = parse_message_def(P, m, l);
            n->visibility = vis;
            pc_vec_push(P->C, &m->nested, n);
            parse_message_block(P, n, l);
        } else if (looking_at(P, "enum")) {
            l = LOC(P, mloc, 2, 4, m->enums.n);
            parse_enum(P, &m->enums, l);
            ((pc_enum *)m->enums.v[m->enums.n - 1])->visibility = vis;
            ((pc_enum *)m->enums.v[m->enums.n - 1])->nested = 1;
        } else if (looking_at(P, "extensions")) {
            l = LOC(P, mloc, 1, 5, 0);
            parse_extensions(P, m, l);
        } else if (looking_at(P, "reserved")) {
            parse_reserved(P, &m->resranges, &m->resnames, 0, mloc);
        } else if (looking_at(P, "extend")) {
            l = LOC(P, mloc, 1, 6, 0);
            parse_extend(P, &m->exts, &m->nested, m, mloc, 3, l);
        } else if (looking_at(P, "option")) {
            l = LOC(P, mloc, 1, 7, 0);
            parse_option(P, &m->opts, 1, l);
        } else if (looking_at(P, "oneof")) {
            l = LOC(P, mloc, 2, 8, m->oneofs.n);
            parse_oneof(P, m, l, mloc);
        } else {
            l = LOC(P, mloc, 2, 2, m->fields.n);
            pc_field *fd = new_field(P, m);
            message_field(P, fd, &m->nested, m, mloc, 3, l);
            pc_vec_push(P->C, &m->fields, fd);
        }
        DONE(P, l);
    }
    m->message_set = is_message_set(m);
    int32_t maxext = m->message_set ? INT32_MAX : MAX_NUMBER + 1;
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        if (r->end == RANGE_SENTINEL) r->end = maxext;
    }
    for (int i = 0; i < m->resranges.n; i++) {
        pc_range *r = m->resranges.v[i];
        if (r->end == RANGE_SENTINEL) r->end = MAX_NUMBER + 1;
    }
    if (P->f->proto3) synthetic_oneofs(P, m);
    P->depth--;
}

/* protoc's Parser::ValidateEnum: allow_alias set but useless (reported at
   the token after the enum, as protoc does) */
static void validate_enum(pc_parser *P, pc_enum *e) {
    int has = 0, allow = 0;
    for (pc_uopt *u = e->opts.head; u; u = u->next) {
        if (u->nparts > 1) continue;
        if (!u->parts[0].is_ext && strcmp(u->parts[0].name, "allow_alias") == 0) {
            has = 1;
            allow = u->vkind == V_IDENT && strcmp(u->ident, "true") == 0;
            break;
        }
    }
    char msg[400];
    if (has && !allow) {
        snprintf(msg, sizeof msg, "\"%s\" declares 'option allow_alias = false;' which has no effect. Please remove the declaration.", e->name);
        perr(P, msg);
    }
    if (!allow) return;
    pc_set used = {0};
    for (int i = 0; i < e->values.n; i++)
        if (pc_imap_get_or_add(P->C, &used, ((pc_enumval *)e->values.v[i])->number, i) >= 0) return;
    snprintf(msg, sizeof msg,
             "\"%s\" declares support for enum aliases but no enum values share field numbers. Please remove the "
             "unnecessary 'option allow_alias = true;' declaration.", e->name);
    perr(P, msg);
}

static void parse_enum(pc_parser *P, pc_vec *into, pc_loc *eloc) {
    pc_enum *e = pc_alloc(P->C, sizeof *e);
    e->file = P->f;
    pc_opts_init(&e->opts);
    consume(P, "enum");
    e->pos = curpos(P);
    pc_loc *nl = LOC(P, eloc, 1, 1, 0);
    e->name = ident(P, "Expected enum name.");
    DONE(P, nl);
    pc_vec_push(P->C, into, e);
    end_decl(P, "{", eloc);
    while (!try_end_decl(P, "}", NULL)) {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in enum definition (missing '}').");
        if (try_end_decl(P, ";", NULL)) continue;
        if (looking_at(P, "option")) {
            pc_loc *l = LOC(P, eloc, 1, 3, 0);
            parse_option(P, &e->opts, 1, l);
            DONE(P, l);
        } else if (looking_at(P, "reserved")) {
            parse_reserved(P, &e->resranges, &e->resnames, 1, eloc);
        } else {
            pc_loc *vl = LOC(P, eloc, 2, 2, e->values.n);
            pc_enumval *v = pc_alloc(P->C, sizeof *v);
            pc_opts_init(&v->opts);
            v->pos = curpos(P);
            pc_loc *l = LOC(P, vl, 1, 1, 0);
            v->name = ident(P, "Expected enum constant name.");
            DONE(P, l);
            consume_msg(P, "=", "Missing numeric value for enum constant.");
            v->num_pos = curpos(P);
            l = LOC(P, vl, 1, 2, 0);
            v->number = signed_integer(P, "Expected integer.");
            DONE(P, l);
            if (looking_at(P, "[")) {
                pc_loc *ol = LOC(P, vl, 1, 3, 0);
                consume(P, "[");
                do parse_option(P, &v->opts, 0, ol);
                while (try_consume(P, ","));
                consume(P, "]");
                DONE(P, ol);
            }
            end_decl(P, ";", vl);
            DONE(P, vl);
            pc_vec_push(P->C, &e->values, v);
        }
    }
    validate_enum(P, e);
}

static void parse_service(pc_parser *P, pc_loc *sloc) {
    pc_service *s = pc_alloc(P->C, sizeof *s);
    pc_opts_init(&s->opts);
    consume(P, "service");
    s->pos = curpos(P);
    pc_loc *nl = LOC(P, sloc, 1, 1, 0);
    s->name = ident(P, "Expected service name.");
    DONE(P, nl);
    pc_vec_push(P->C, &P->f->services, s);
    end_decl(P, "{", sloc);
    while (!try_end_decl(P, "}", NULL)) {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in service definition (missing '}').");
        if (try_end_decl(P, ";", NULL)) continue;
        if (looking_at(P, "option")) {
            pc_loc *l = LOC(P, sloc, 1, 3, 0);
            parse_option(P, &s->opts, 1, l);
            DONE(P, l);
            continue;
        }
        pc_loc *ml = LOC(P, sloc, 2, 2, s->methods.n);
        pc_method *m = pc_alloc(P->C, sizeof *m);
        pc_opts_init(&m->opts);
        consume(P, "rpc");
        m->pos = curpos(P);
        pc_loc *l = LOC(P, ml, 1, 1, 0);
        m->name = ident(P, "Expected method name.");
        DONE(P, l);
        consume(P, "(");
        if (looking_at(P, "stream")) {
            l = LOC(P, ml, 1, 5, 0);
            consume(P, "stream");
            DONE(P, l);
            m->cstream = 1;
        }
        m->in_pos = curpos(P);
        l = LOC(P, ml, 1, 2, 0);
        m->in = user_type(P);
        DONE(P, l);
        consume(P, ")");
        consume(P, "returns");
        consume(P, "(");
        if (looking_at(P, "stream")) {
            l = LOC(P, ml, 1, 6, 0);
            consume(P, "stream");
            DONE(P, l);
            m->sstream = 1;
        }
        m->out_pos = curpos(P);
        l = LOC(P, ml, 1, 3, 0);
        m->out = user_type(P);
        DONE(P, l);
        consume(P, ")");
        if (looking_at(P, "{")) {
            end_decl(P, "{", ml);
            m->opts.present = 1;
            while (!try_end_decl(P, "}", NULL)) {
                if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in method options (missing '}').");
                if (try_end_decl(P, ";", NULL)) continue;
                l = LOC(P, ml, 1, 4, 0);
                parse_option(P, &m->opts, 1, l);
                DONE(P, l);
            }
        } else {
            end_decl(P, ";", ml);
        }
        DONE(P, ml);
        pc_vec_push(P->C, &s->methods, m);
    }
}

static void parse_import(pc_parser *P, const pc_loc *root) {
    pc_file *f = P->f;
    pc_pos *pos = pc_alloc(P->C, sizeof *pos);
    *pos = curpos(P);
    pc_loc *l = LOC(P, root, 2, 3, f->deps.n);
    consume(P, "import");
    if (looking_at(P, "option")) {
        /* edition 2024: a file imported for its options only (FileDescriptorProto
           field 15); the location is [15, i] from the `import` token */
        if (f->edition < PC_EDITION_2024) perr(P, "option import is not supported before edition 2024.");
        if (l) {
            l->path[l->npath - 2] = 15;
            l->path[l->npath - 1] = f->opt_deps.n;
        }
        consume(P, "option");
        char *oname = string(P, "Expected a string naming the file to import.", NULL);
        pc_vec_push(P->C, &f->opt_deps, oname);
        pc_vec_push(P->C, &f->opt_dep_pos, pos);
        end_decl(P, ";", l);
        DONE(P, l);
        return;
    }
    if (f->opt_deps.n) perr(P, "imports should precede any option imports to ensure proto files can roundtrip.");
    if (looking_at(P, "weak") && f->edition >= PC_EDITION_2024)
        perr(P, "weak import is not supported in edition 2024 and above. Consider using option import instead.");
    if (looking_at(P, "public")) {
        pc_loc *pl = LOC(P, root, 2, 10, f->public_deps.n);
        consume(P, "public");
        DONE(P, pl);
        pc_vec_push(P->C, &f->public_deps, (void *)(intptr_t)f->deps.n);
    } else if (looking_at(P, "weak")) {
        pc_loc *wl = LOC(P, root, 2, 11, f->weak_deps.n);
        consume(P, "weak");
        DONE(P, wl);
        pc_vec_push(P->C, &f->weak_deps, (void *)(intptr_t)f->deps.n);
    }
    char *name = string(P, "Expected a string naming the file to import.", NULL);
    for (int i = 0; i < f->deps.n; i++)
        if (strcmp(f->deps.v[i], name) == 0)
            pc_fail(P->C, P->fname, pos->line, pos->col, "Import \"%s\" was listed twice.", name);
    pc_vec_push(P->C, &f->deps, name);
    pc_vec_push(P->C, &f->dep_pos, pos);
    end_decl(P, ";", l);
    DONE(P, l);
}

/* the Edition enum value of `edition = "<s>"` (protoc: "EDITION_" + s must name
   one); dynpb.compile supports 2023 and 2024, as its feature defaults do */
static int edition_number(pc_ctx *C, const char *file, pc_pos sp, const char *s) {
    static const struct { const char *name; int num; } known[] = {
        {"LEGACY", 900}, {"2023", 1000}, {"2024", 1001}, {"2026", 1002}, {"UNSTABLE", 9999},
        {"1_TEST_ONLY", 1}, {"2_TEST_ONLY", 2}, {"99997_TEST_ONLY", 99997}, {"99998_TEST_ONLY", 99998},
        {"99999_TEST_ONLY", 99999}, {"MAX", 0x7fffffff}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(known[i].name, s) != 0) continue;
        int n = known[i].num;
        if (n == PC_EDITION_2023 || n == PC_EDITION_2024) return n;
        if (n < PC_EDITION_2023)
            pc_fail(C, file, sp.line, sp.col, "Edition %s is earlier than the minimum supported edition 2023.", s);
        pc_fail(C, file, sp.line, sp.col, "Edition %s is later than the maximum supported edition 2024.", s);
    }
    pc_fail(C, file, sp.line, sp.col, "Unknown edition \"%s\".", s);
}

pc_file *pc_parse(pc_ctx *C, const char *name, const char *src, size_t len) {
    pc_parser P;
    memset(&P, 0, sizeof P);
    P.C = C;
    P.fname = name;
    if (len > PC_MAX_SOURCE)
        pc_fail(C, name, -1, 0, "file is larger than the limit of %u bytes", (unsigned)PC_MAX_SOURCE);
    pc_file *f = pc_alloc(C, sizeof *f);
    f->name = name;
    f->pkg = "";
    f->src = src;
    f->srclen = len;
    pc_opts_init(&f->opts);
    P.f = f;
    P.si = C->source_info && !C->in_std;
    P.locs = &f->locs;
    pc_lex_init(&P.X, C, name, src, 0, 0, 0);
    P.X.end = src + len;
    if (P.si) {
        int hl;
        pc_lex_next_comments(&P.X, 1, NULL, &P.up_det, &P.up_doc, &hl);
    } else {
        pc_lex_next(&P.X);
    }
    pc_loc *root = LOC(&P, NULL, 0, 0, 0);
    if (looking_at(&P, "syntax")) {
        pc_loc *l = LOC(&P, root, 1, 12, 0);
        consume(&P, "syntax");
        consume(&P, "=");
        pc_pos sp = curpos(&P);
        char *syn = string(&P, "Expected syntax identifier.", NULL);
        end_decl(&P, ";", l);
        DONE(&P, l);
        if (strcmp(syn, "proto3") == 0) f->proto3 = 1;
        else if (strcmp(syn, "proto2") != 0)
            pc_fail(C, name, sp.line, sp.col,
                    "Unrecognized syntax identifier \"%s\".  This parser only recognizes \"proto2\" and \"proto3\".", syn);
    } else if (looking_at(&P, "edition")) {
        /* protoc's ParseSyntaxIdentifier: the statement's location is the syntax field's */
        pc_loc *l = LOC(&P, root, 1, 12, 0);
        f->edition_pos = curpos(&P);
        consume(&P, "edition");
        consume(&P, "=");
        pc_pos sp = curpos(&P);
        char *ed = string(&P, "Expected syntax identifier.", NULL);
        end_decl(&P, ";", l);
        DONE(&P, l);
        f->edition = edition_number(C, name, sp, ed);
    }
    int have_pkg = 0;
    while (CUR(&P)->type != TK_EOF) {
        if (try_end_decl(&P, ";", NULL)) continue;
        pc_loc *l = NULL;
        int vis = parse_visibility(&P);
        if (looking_at(&P, "message")) {
            l = LOC(&P, root, 2, 4, f->msgs.n);
            pc_msg *m = parse_message_def(&P, NULL, l);
            m->visibility = vis;
            pc_vec_push(C, &f->msgs, m);
            parse_message_block(&P, m, l);
        } else if (looking_at(&P, "enum")) {
            l = LOC(&P, root, 2, 5, f->enums.n);
            parse_enum(&P, &f->enums, l);
            ((pc_enum *)f->enums.v[f->enums.n - 1])->visibility = vis;
        } else if (looking_at(&P, "service")) {
            l = LOC(&P, root, 2, 6, f->services.n);
            parse_service(&P, l);
        } else if (looking_at(&P, "extend")) {
            l = LOC(&P, root, 1, 7, 0);
            parse_extend(&P, &f->exts, &f->msgs, NULL, root, 4, l);
        } else if (looking_at(&P, "import")) {
            parse_import(&P, root);
        } else if (looking_at(&P, "package")) {
            if (have_pkg) perr(&P, "Multiple package definitions.");
            l = LOC(&P, root, 1, 2, 0);
            f->pkg_pos = curpos(&P);
            consume(&P, "package");
            pc_buf b = {0};
            const char *id = ident(&P, "Expected identifier.");
            pc_buf_put(C, &b, id, strlen(id));
            while (try_consume(&P, ".")) {
                pc_buf_byte(C, &b, '.');
                id = ident(&P, "Expected identifier.");
                pc_buf_put(C, &b, id, strlen(id));
            }
            pc_buf_byte(C, &b, 0);
            f->pkg = (const char *)b.p;
            have_pkg = 1;
            end_decl(&P, ";", l);
        } else if (looking_at(&P, "option")) {
            l = LOC(&P, root, 1, 8, 0);
            parse_option(&P, &f->opts, 1, l);
        } else {
            perr(&P, "Expected top-level statement (e.g. \"message\").");
        }
        DONE(&P, l);
    }
    DONE(&P, root);
    return f;
}
