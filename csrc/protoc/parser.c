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

static void end_decl(pc_parser *P, const char *s) { consume(P, s); }

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
static void parse_option(pc_parser *P, pc_opts *o, int statement) {
    pc_uopt *u = pc_alloc(P->C, sizeof *u);
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
    if (statement) end_decl(P, ";");
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

static void parse_message_block(pc_parser *P, pc_msg *m);
static void parse_enum(pc_parser *P, pc_vec *into, pc_msg *parent);

static void default_assignment(pc_parser *P, pc_field *fd) {
    if (fd->has_default) perr(P, "Already set option \"default\".");
    consume(P, "default");
    consume(P, "=");
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

static void field_options(pc_parser *P, pc_field *fd) {
    if (!looking_at(P, "[")) return;
    consume(P, "[");
    do {
        if (looking_at(P, "default")) {
            default_assignment(P, fd);
        } else if (looking_at(P, "json_name")) {
            if (fd->has_json_name) perr(P, "Already set option \"json_name\".");
            fd->json_pos = curpos(P);
            consume(P, "json_name");
            consume(P, "=");
            fd->json_name = string(P, "Expected string for JSON name.", NULL);
            fd->has_json_name = 1;
        } else {
            parse_option(P, &fd->opts, 0);
        }
    } while (try_consume(P, ","));
    consume(P, "]");
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
    fd->type_pos = pos;
    return fd;
}

/* the field after its label (if any): protoc's ParseMessageFieldNoLabel.
   has_label: a label was written. nested: where groups and map entries go. */
static void field_no_label(pc_parser *P, pc_field *fd, int has_label, pc_vec *nested, pc_msg *parent) {
    int ktype = 0, vtype = 0, is_map = 0;
    const char *kname = NULL, *vname = NULL;
    pc_pos tpos = curpos(P);
    fd->type_pos = tpos;
    int type_parsed = 0;
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
    } else {
        if (!has_label && P->f->proto3) fd->label = 1;
        if (!fd->label) perr(P, "Expected \"required\", \"optional\", or \"repeated\".");
        if (!type_parsed) fd->type = parse_type(P, &fd->type_name);
    }
    fd->name_pos = curpos(P);
    pc_pos name_pos = curpos(P);
    fd->name = ident(P, "Expected field name.");
    consume_msg(P, "=", "Missing field number.");
    fd->num_pos = curpos(P);
    fd->number = integer(P, "Expected field number.");
    field_options(P, fd);
    if (fd->type == DP_T_GROUP) {
        pc_msg *g = new_msg(P, fd->name, parent, name_pos);
        pc_vec_push(P->C, nested, g);
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
        parse_message_block(P, g);
    } else {
        end_decl(P, ";");
    }
    if (is_map) {
        fd->is_map = 1;
        pc_msg *e = new_msg(P, map_entry_name(P, fd->name), parent, tpos);
        e->map_entry = 1;
        e->opts.present = 1;
        pc_vec_push(P->C, &e->fields, entry_field(P, e, "key", 1, ktype, kname, tpos));
        pc_vec_push(P->C, &e->fields, entry_field(P, e, "value", 2, vtype, vname, tpos));
        pc_vec_push(P->C, nested, e);
        fd->type_name = e->name;
    }
}

static int parse_label(pc_parser *P, pc_field *fd) {
    fd->label_pos = curpos(P);
    if (try_consume(P, "optional")) fd->label = 1;
    else if (try_consume(P, "required")) fd->label = 2;
    else if (try_consume(P, "repeated")) fd->label = 3;
    else return 0;
    if (fd->label == 1 && P->f->proto3) fd->proto3_optional = 1;
    return 1;
}

static void message_field(pc_parser *P, pc_field *fd, pc_vec *nested, pc_msg *parent) {
    int has = parse_label(P, fd);
    field_no_label(P, fd, has, nested, parent);
}

static void parse_extend(pc_parser *P, pc_vec *exts, pc_vec *nested, pc_msg *parent) {
    consume(P, "extend");
    pc_pos epos = curpos(P);
    const char *extendee = user_type(P);
    end_decl(P, "{");
    do {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in extend definition (missing '}').");
        pc_field *fd = new_field(P, parent);
        fd->extendee = extendee;
        fd->ext_pos = epos;
        fd->is_ext = 1;
        message_field(P, fd, nested, parent);
        pc_vec_push(P->C, exts, fd);
    } while (!try_consume(P, "}"));
}

/* numbers or names after "reserved"; end_exclusive for messages */
static void parse_reserved(pc_parser *P, pc_vec *ranges, pc_vec *names, int is_enum) {
    consume(P, "reserved");
    if (CUR(P)->type == TK_STRING) {
        do {
            pc_vec_push(P->C, names, string(P, "Expected field name.", NULL));
        } while (try_consume(P, ","));
    } else {
        do {
            pc_range *r = pc_alloc(P->C, sizeof *r);
            r->pos = curpos(P);
            int32_t start, end;
            if (is_enum) start = signed_integer(P, "Expected enum value or number range.");
            else start = integer(P, "Expected field name or number range.");
            if (try_consume(P, "to")) {
                if (try_consume(P, "max")) end = is_enum ? INT32_MAX : RANGE_SENTINEL - 1;
                else end = is_enum ? signed_integer(P, "Expected integer.") : integer(P, "Expected integer.");
            } else end = start;
            if (!is_enum) end++;
            r->start = start;
            r->end = end;
            pc_vec_push(P->C, ranges, r);
        } while (try_consume(P, ","));
    }
    end_decl(P, ";");
}

static void parse_extensions(pc_parser *P, pc_msg *m) {
    consume(P, "extensions");
    int first = m->extranges.n;
    do {
        pc_range *r = pc_alloc(P->C, sizeof *r);
        pc_opts_init(&r->opts);
        r->pos = curpos(P);
        int32_t start = integer(P, "Expected field number range."), end;
        if (try_consume(P, "to")) {
            if (try_consume(P, "max")) end = RANGE_SENTINEL - 1;
            else end = integer(P, "Expected integer.");
        } else end = start;
        r->start = start;
        r->end = end + 1;
        pc_vec_push(P->C, &m->extranges, r);
    } while (try_consume(P, ","));
    if (looking_at(P, "[")) {
        pc_range *r0 = m->extranges.v[first];
        consume(P, "[");
        do parse_option(P, &r0->opts, 0);
        while (try_consume(P, ","));
        consume(P, "]");
        for (int i = first + 1; i < m->extranges.n; i++) ((pc_range *)m->extranges.v[i])->opts = r0->opts;
    }
    end_decl(P, ";");
}

static void parse_oneof(pc_parser *P, pc_msg *m) {
    consume(P, "oneof");
    pc_oneof *o = pc_alloc(P->C, sizeof *o);
    pc_opts_init(&o->opts);
    o->pos = curpos(P);
    int idx = m->oneofs.n;
    o->name = ident(P, "Expected oneof name.");
    pc_vec_push(P->C, &m->oneofs, o);
    end_decl(P, "{");
    do {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in oneof definition (missing '}').");
        if (looking_at(P, "option")) {
            parse_option(P, &o->opts, 1);
            continue;
        }
        if (looking_at(P, "required") || looking_at(P, "optional") || looking_at(P, "repeated"))
            perr(P, "Fields in oneofs must not have labels (required / optional / repeated).");
        pc_field *fd = new_field(P, m);
        fd->label = 1;
        fd->oneof_index = idx;
        field_no_label(P, fd, 1, &m->nested, m);
        pc_vec_push(P->C, &m->fields, fd);
        o->nfields++;
    } while (!try_consume(P, "}"));
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
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *fd = m->fields.v[i];
        if (!fd->proto3_optional) continue;
        const char *nm = fd->name[0] == '_' ? fd->name : pc_strcat3(P->C, "_", fd->name, "");
        for (;;) {
            int clash = 0;
            for (int j = 0; j < m->fields.n && !clash; j++)
                clash = strcmp(((pc_field *)m->fields.v[j])->name, nm) == 0;
            for (int j = 0; j < m->oneofs.n && !clash; j++)
                clash = strcmp(((pc_oneof *)m->oneofs.v[j])->name, nm) == 0;
            if (!clash) break;
            nm = pc_strcat3(P->C, "X", nm, "");
        }
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

static void parse_message_block(pc_parser *P, pc_msg *m) {
    enter(P);
    consume(P, "{");
    while (!try_consume(P, "}")) {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in message definition (missing '}').");
        if (try_consume(P, ";")) continue;
        if (looking_at(P, "message")) {
            consume(P, "message");
            pc_msg *n = new_msg(P, NULL, m, curpos(P));
            n->name = ident(P, "Expected message name.");
            pc_vec_push(P->C, &m->nested, n);
            parse_message_block(P, n);
        } else if (looking_at(P, "enum")) {
            parse_enum(P, &m->enums, m);
        } else if (looking_at(P, "extensions")) {
            parse_extensions(P, m);
        } else if (looking_at(P, "reserved")) {
            parse_reserved(P, &m->resranges, &m->resnames, 0);
        } else if (looking_at(P, "extend")) {
            parse_extend(P, &m->exts, &m->nested, m);
        } else if (looking_at(P, "option")) {
            parse_option(P, &m->opts, 1);
        } else if (looking_at(P, "oneof")) {
            parse_oneof(P, m);
        } else {
            pc_field *fd = new_field(P, m);
            message_field(P, fd, &m->nested, m);
            pc_vec_push(P->C, &m->fields, fd);
        }
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

static void parse_enum(pc_parser *P, pc_vec *into, pc_msg *parent) {
    pc_enum *e = pc_alloc(P->C, sizeof *e);
    e->file = P->f;
    pc_opts_init(&e->opts);
    consume(P, "enum");
    e->pos = curpos(P);
    e->name = ident(P, "Expected enum name.");
    pc_vec_push(P->C, into, e);
    (void)parent;
    consume(P, "{");
    while (!try_consume(P, "}")) {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in enum definition (missing '}').");
        if (try_consume(P, ";")) continue;
        if (looking_at(P, "option")) {
            parse_option(P, &e->opts, 1);
        } else if (looking_at(P, "reserved")) {
            parse_reserved(P, &e->resranges, &e->resnames, 1);
        } else {
            pc_enumval *v = pc_alloc(P->C, sizeof *v);
            pc_opts_init(&v->opts);
            v->pos = curpos(P);
            v->name = ident(P, "Expected enum constant name.");
            consume_msg(P, "=", "Missing numeric value for enum constant.");
            v->num_pos = curpos(P);
            v->number = signed_integer(P, "Expected integer.");
            if (looking_at(P, "[")) {
                consume(P, "[");
                do parse_option(P, &v->opts, 0);
                while (try_consume(P, ","));
                consume(P, "]");
            }
            end_decl(P, ";");
            pc_vec_push(P->C, &e->values, v);
        }
    }
}

static void parse_service(pc_parser *P) {
    pc_service *s = pc_alloc(P->C, sizeof *s);
    pc_opts_init(&s->opts);
    consume(P, "service");
    s->pos = curpos(P);
    s->name = ident(P, "Expected service name.");
    pc_vec_push(P->C, &P->f->services, s);
    consume(P, "{");
    while (!try_consume(P, "}")) {
        if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in service definition (missing '}').");
        if (try_consume(P, ";")) continue;
        if (looking_at(P, "option")) {
            parse_option(P, &s->opts, 1);
            continue;
        }
        pc_method *m = pc_alloc(P->C, sizeof *m);
        pc_opts_init(&m->opts);
        consume(P, "rpc");
        m->pos = curpos(P);
        m->name = ident(P, "Expected method name.");
        consume(P, "(");
        if (looking_at(P, "stream")) {
            consume(P, "stream");
            m->cstream = 1;
        }
        m->in_pos = curpos(P);
        m->in = user_type(P);
        consume(P, ")");
        consume(P, "returns");
        consume(P, "(");
        if (looking_at(P, "stream")) {
            consume(P, "stream");
            m->sstream = 1;
        }
        m->out_pos = curpos(P);
        m->out = user_type(P);
        consume(P, ")");
        if (looking_at(P, "{")) {
            consume(P, "{");
            m->opts.present = 1;
            while (!try_consume(P, "}")) {
                if (CUR(P)->type == TK_EOF) perr(P, "Reached end of input in method options (missing '}').");
                if (try_consume(P, ";")) continue;
                parse_option(P, &m->opts, 1);
            }
        } else {
            end_decl(P, ";");
        }
        pc_vec_push(P->C, &s->methods, m);
    }
}

static void parse_import(pc_parser *P) {
    pc_file *f = P->f;
    pc_pos *pos = pc_alloc(P->C, sizeof *pos);
    *pos = curpos(P);
    consume(P, "import");
    if (try_consume(P, "public")) pc_vec_push(P->C, &f->public_deps, (void *)(intptr_t)f->deps.n);
    else if (try_consume(P, "weak")) pc_vec_push(P->C, &f->weak_deps, (void *)(intptr_t)f->deps.n);
    char *name = string(P, "Expected a string naming the file to import.", NULL);
    for (int i = 0; i < f->deps.n; i++)
        if (strcmp(f->deps.v[i], name) == 0)
            pc_fail(P->C, P->fname, pos->line, pos->col, "Import \"%s\" was listed twice.", name);
    pc_vec_push(P->C, &f->deps, name);
    pc_vec_push(P->C, &f->dep_pos, pos);
    end_decl(P, ";");
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
    pc_lex_init(&P.X, C, name, src, len, 0, 0);
    if (looking_at(&P, "syntax")) {
        consume(&P, "syntax");
        consume(&P, "=");
        pc_pos sp = curpos(&P);
        char *syn = string(&P, "Expected syntax identifier.", NULL);
        end_decl(&P, ";");
        if (strcmp(syn, "proto3") == 0) f->proto3 = 1;
        else if (strcmp(syn, "proto2") != 0)
            pc_fail(C, name, sp.line, sp.col,
                    "Unrecognized syntax identifier \"%s\".  This parser only recognizes \"proto2\" and \"proto3\".", syn);
    } else if (looking_at(&P, "edition")) {
        perr(&P, "editions sources are not supported by dynpb.compile yet");
    }
    int have_pkg = 0;
    while (CUR(&P)->type != TK_EOF) {
        if (try_consume(&P, ";")) continue;
        if (looking_at(&P, "message")) {
            consume(&P, "message");
            pc_msg *m = new_msg(&P, NULL, NULL, curpos(&P));
            m->name = ident(&P, "Expected message name.");
            pc_vec_push(C, &f->msgs, m);
            parse_message_block(&P, m);
        } else if (looking_at(&P, "enum")) {
            parse_enum(&P, &f->enums, NULL);
        } else if (looking_at(&P, "service")) {
            parse_service(&P);
        } else if (looking_at(&P, "extend")) {
            parse_extend(&P, &f->exts, &f->msgs, NULL);
        } else if (looking_at(&P, "import")) {
            parse_import(&P);
        } else if (looking_at(&P, "package")) {
            if (have_pkg) perr(&P, "Multiple package definitions.");
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
            end_decl(&P, ";");
        } else if (looking_at(&P, "option")) {
            parse_option(&P, &f->opts, 1);
        } else {
            perr(&P, "Expected top-level statement (e.g. \"message\").");
        }
    }
    return f;
}
