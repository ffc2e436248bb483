/*
 * editions.c -- what protoc checks of an editions file once its options are
 * interpreted: features resolved as protobuf defines them (the edition's
 * defaults, then the file's, each enclosing message's, the oneof's and the
 * element's own `features` options), and the rules of descriptor.cc that use
 * them (ValidateFileFeatures, ValidateFieldFeatures, the open-enum and JSON
 * name checks). proto2/proto3 files only get their enums marked closed or
 * open, for editions files that use them.
 *
 * Features are read back from the serialized options (pc_opts.out), so
 * `features.x = V`, `features = { x: V }` and repeated statements merge as
 * protoc merges them.
 */
#include <stdio.h>
#include <string.h>

#include "pc.h"
#include "gen/feature_defaults.h"

/* FeatureSet enum values (descriptor.proto) */
enum { PRES_EXPLICIT = 1, PRES_IMPLICIT = 2, PRES_REQUIRED = 3 };
enum { ENUM_OPEN = 1, ENUM_CLOSED = 2 };
enum { REP_PACKED = 1, REP_EXPANDED = 2 };
enum { JSON_ALLOW = 1, JSON_LEGACY = 2 };
enum { STYLE2024 = 1, STYLE_LEGACY = 2 };
enum { VIS_EXPORT_ALL = 1, VIS_EXPORT_TOP_LEVEL = 2, VIS_LOCAL_ALL = 3, VIS_STRICT = 4 };
#define NF 9                  /* FeatureSet fields 1-8 (0 unused) */

/* the `features` field of each *Options message */
enum { FN_FILE = 50, FN_MSG = 12, FN_FIELD = 21, FN_ONEOF = 1, FN_ENUM = 7, FN_ENUMVAL = 2,
       FN_SERVICE = 34, FN_METHOD = 35, FN_EXTRANGE = 50 };

static const char *const feat_name[NF] = {"", "field_presence", "enum_type", "repeated_field_encoding",
                                         "utf8_validation", "message_encoding", "json_format",
                                         "enforce_naming_style", "default_symbol_visibility"};
static const char *const feat_unknown[NF] = {"", "FIELD_PRESENCE_UNKNOWN", "ENUM_TYPE_UNKNOWN",
                                            "REPEATED_FIELD_ENCODING_UNKNOWN", "UTF8_VALIDATION_UNKNOWN",
                                            "MESSAGE_ENCODING_UNKNOWN", "JSON_FORMAT_UNKNOWN",
                                            "ENFORCE_NAMING_STYLE_UNKNOWN", "DEFAULT_SYMBOL_VISIBILITY_UNKNOWN"};

typedef struct {
    pc_ctx *C;
    pc_file *f;
} ed;

static int rd_varint(const unsigned char **p, const unsigned char *e, uint64_t *v) {
    *v = 0;
    for (int sh = 0; sh < 64 && *p < e; sh += 7) {
        unsigned c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) return 1;
    }
    return 0;
}

/* skips a value of wire type wt at *p; 0 if malformed (never for bytes
   options.c wrote) */
static int skip(const unsigned char **p, const unsigned char *e, int wt, uint64_t num) {
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
            uint64_t t;
            if (!rd_varint(p, e, &t)) return 0;
            if ((t & 7) == 4) return (t >> 3) == num;
            if (!skip(p, e, (int)(t & 7), t >> 3)) return 0;
        }
    default: return 0;
    }
}

/* the FeatureSet enum fields 1-6 set in the options message o (its field fnum):
   into v (and set[i] = 1) for each one present; the last value wins */
static void read_features(const pc_opts *o, int fnum, int v[NF], int set[NF]) {
    const unsigned char *p = o->out.p, *e = p + o->out.n;
    while (p && p < e) {
        uint64_t t;
        if (!rd_varint(&p, e, &t)) return;
        int wt = (int)(t & 7);
        const unsigned char *start = p;
        if (!skip(&p, e, wt, t >> 3)) return;
        if ((t >> 3) != (uint64_t)fnum || wt != 2) continue;
        uint64_t len;
        const unsigned char *q = start;
        rd_varint(&q, e, &len);
        const unsigned char *qe = q + len;
        while (q < qe) {
            uint64_t ft, x;
            if (!rd_varint(&q, qe, &ft)) return;
            int fwt = (int)(ft & 7);
            uint64_t n = ft >> 3;
            if (fwt == 0 && n >= 1 && n <= 8) {
                if (!rd_varint(&q, qe, &x)) return;
                v[n] = (int)x;
                if (set) set[n] = 1;
            } else if (!skip(&q, qe, fwt, n)) return;
        }
    }
}

static void edition_defaults(int edition, int v[NF]) {
    int k = 0;
    for (int i = 0; i < DP_FEATURE_EDITIONS; i++)
        if (dp_feature_defaults[i].edition <= edition) k = i;
    v[0] = 0;
    for (int i = 0; i < 6; i++) v[i + 1] = dp_feature_defaults[k].v[i];
    /* the source-only features (not in feature_defaults.h): 2024's defaults */
    v[FT_NAMING] = edition >= PC_EDITION_2024 ? STYLE2024 : STYLE_LEGACY;
    v[FT_VISIBILITY] = edition >= PC_EDITION_2024 ? VIS_EXPORT_TOP_LEVEL : VIS_EXPORT_ALL;
}

/* protoc's ValidateMergedFeatures: an element's own features must not be
   *_UNKNOWN (0) */
static void check_known(ed *E, const int set[NF], const int v[NF], pc_pos pos) {
    for (int i = 1; i < NF; i++)
        if (set[i] && v[i] == 0)
            pc_fail(E->C, E->f->name, pos.line, pos.col, "Feature field `%s` must resolve to a known value, found %s",
                    feat_name[i], feat_unknown[i]);
}

/* features of an element: its parent's, overridden by its own options */
static void resolve(ed *E, const int parent[NF], const pc_opts *o, int fnum, int out[NF], int set[NF], pc_pos pos) {
    int own[NF] = {0}, s[NF] = {0};
    memcpy(out, parent, sizeof own);
    read_features(o, fnum, own, s);
    check_known(E, s, own, pos);
    for (int i = 1; i < NF; i++)
        if (s[i]) out[i] = own[i];
    if (set) memcpy(set, s, sizeof s);
}

/* ---- edition 2024's naming style (naming_style.cc), when enforce_naming_style
   resolves to STYLE2024: NULL if name is fine, else why not */
static int bad_underscores(const char *s) {
    size_t n = strlen(s);
    if (!n) return 0;
    if (s[0] == '_' || s[n - 1] == '_') return 1;
    for (size_t i = 1; i < n; i++)
        if (s[i - 1] == '_' && !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) return 1;
    return 0;
}

static const char *title_case(const char *s) {
    if (!*s) return "is empty";
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) return "should be TitleCase";
    if (!(s[0] >= 'A' && s[0] <= 'Z')) return "should begin with a capital letter";
    return NULL;
}

static const char *lower_snake(const char *s) {
    if (!*s) return "is empty";
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.')) return "should be lower_snake_case";
    if (!(s[0] >= 'a' && s[0] <= 'z')) return "should begin with a lower case letter";
    if (bad_underscores(s)) return "contains style violating underscores";
    return NULL;
}

static const char *upper_snake(const char *s) {
    if (!*s) return "is empty";
    for (const char *c = s; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) return "should be UPPER_SNAKE_CASE";
    if (!(s[0] >= 'A' && s[0] <= 'Z')) return "should begin with an upper case letter";
    if (bad_underscores(s)) return "contains style violating underscores";
    return NULL;
}

/* what: "Message name", ...; check: one of the three above */
static void style(ed *E, const int v[NF], const char *what, const char *name, const char *(*check)(const char *), pc_pos pos) {
    if (!E->f->edition || v[FT_NAMING] != STYLE2024) return;
    const char *why = check(name);
    if (why)
        pc_fail(E->C, E->f->name, pos.line, pos.col,
                "%s %s %s (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)", what,
                name, why);
}

/* symbol visibility (symbol.cc GetEffectiveVisibility): keyword 1 local, 2 export */
static int is_local(int keyword, int nested, const int v[NF]) {
    if (keyword) return keyword == 1;
    switch (v[FT_VISIBILITY]) {
    case VIS_EXPORT_TOP_LEVEL: return nested;
    case VIS_LOCAL_ALL: case VIS_STRICT: return 1;
    default: return 0;
    }
}

static void mark_enum(ed *E, pc_enum *e, const int parent[NF]) {
    if (!E->f->edition) {
        e->closed = !E->f->proto3;
        return;
    }
    int v[NF];
    resolve(E, parent, &e->opts, FN_ENUM, v, NULL, e->pos);
    e->closed = v[FT_ENUM] == ENUM_CLOSED;
    e->is_local = is_local(e->visibility, e->nested, v);
    style(E, v, "Enum name", e->name, title_case, e->pos);
    for (int i = 0; i < e->values.n; i++) {
        pc_enumval *ev = e->values.v[i];
        int w[NF];
        resolve(E, v, &ev->opts, FN_ENUMVAL, w, NULL, ev->pos);
        style(E, w, "Enum value name", ev->name, upper_snake, ev->pos);
    }
    /* descriptor.cc ValidateOptions(EnumDescriptor) */
    if (!e->closed && e->values.n && ((pc_enumval *)e->values.v[0])->number != 0) {
        pc_enumval *v0 = e->values.v[0];
        pc_fail(E->C, E->f->name, v0->num_pos.line, v0->num_pos.col, "The first enum value must be zero for open enums.");
    }
}

static void mark_enums(ed *E, pc_msg *m, const int parent[NF]) {
    int v[NF];
    if (E->f->edition) resolve(E, parent, &m->opts, FN_MSG, v, NULL, m->pos);
    else memcpy(v, parent, sizeof v);
    memcpy(m->feat, v, sizeof v);
    m->is_local = E->f->edition && is_local(m->visibility, m->parent != NULL, v);
    style(E, v, "Message name", m->name, title_case, m->pos);
    for (int i = 0; i < m->enums.n; i++) mark_enum(E, m->enums.v[i], v);
    for (int i = 0; i < m->nested.n; i++) mark_enums(E, m->nested.v[i], v);
}

static int is_string_map(pc_field *fd) {
    if (!fd->is_map || !fd->rmsg) return 0;
    for (int i = 0; i < fd->rmsg->fields.n; i++)
        if (((pc_field *)fd->rmsg->fields.v[i])->type == DP_T_STRING) return 1;
    return 0;
}

static int is_message(pc_field *fd) { return fd->type == DP_T_MESSAGE || fd->type == DP_T_GROUP; }

/* descriptor.cc ValidateFieldFeatures; errors at the field's name */
static void check_field(ed *E, pc_field *fd, const int parent[NF]) {
    pc_ctx *C = E->C;
    const char *fn = E->f->name;
    pc_pos np = fd->name_pos;
    int *v = fd->feat, *set = fd->feat_set;
    resolve(E, parent, &fd->opts, FN_FIELD, v, set, np);
    style(E, v, "Field name", fd->name, lower_snake, np);
    int repeated = fd->label == 3;
    if (fd->packed)
        pc_fail(C, fn, np.line, np.col,
                "Field option packed is not allowed under editions.  Use the repeated_field_encoding feature to "
                "control this behavior.");
    int presence = !repeated && (is_message(fd) || fd->is_ext || fd->oneof_index >= 0 || v[FT_PRESENCE] != PRES_IMPLICIT);
    if (!repeated && !presence) {
        if (fd->has_default) pc_fail(C, fn, np.line, np.col, "Implicit presence fields can't specify defaults.");
        if (fd->renum && fd->renum->closed)
            pc_fail(C, fn, np.line, np.col, "Implicit presence enum fields must always be open.");
    }
    if (fd->is_ext && v[FT_PRESENCE] == PRES_REQUIRED) pc_fail(C, fn, np.line, np.col, "Extensions can't be required.");
    if (E->f->edition >= PC_EDITION_2024)
        for (pc_uopt *u = fd->opts.head; u; u = u->next)
            if (u->nparts == 1 && !u->parts[0].is_ext && strcmp(u->parts[0].name, "ctype") == 0)
                pc_fail(C, fn, fd->type_pos.line, fd->type_pos.col,
                        "ctype option is not allowed under edition 2024 and beyond. Use the feature string_type = "
                        "VIEW|CORD|STRING|... instead.");
    if (fd->parent && fd->parent->map_entry) return;
    if (set[FT_PRESENCE]) {
        if (fd->oneof_index >= 0 && !fd->is_ext)
            pc_fail(C, fn, np.line, np.col, "Oneof fields can't specify field presence.");
        if (repeated) pc_fail(C, fn, np.line, np.col, "Repeated fields can't specify field presence.");
        if (fd->is_ext && v[FT_PRESENCE] != PRES_REQUIRED)
            pc_fail(C, fn, np.line, np.col, "Extensions can't specify field presence.");
        if (fd->rmsg && v[FT_PRESENCE] == PRES_IMPLICIT)
            pc_fail(C, fn, np.line, np.col, "Message fields can't specify implicit presence.");
    }
    if (!repeated && set[FT_REPEATED])
        pc_fail(C, fn, np.line, np.col, "Only repeated fields can specify repeated field encoding.");
    if (fd->type != DP_T_STRING && !is_string_map(fd) && set[FT_UTF8])
        pc_fail(C, fn, np.line, np.col, "Only string fields can specify utf8 validation.");
    int packable = repeated && fd->type != DP_T_STRING && fd->type != DP_T_BYTES && !is_message(fd);
    if (!packable && set[FT_REPEATED] && v[FT_REPEATED] == REP_PACKED)
        pc_fail(C, fn, np.line, np.col, "Only repeated primitive fields can specify PACKED repeated field encoding.");
    if ((!is_message(fd) || fd->is_map) && set[FT_MSGENC])
        pc_fail(C, fn, np.line, np.col, "Only message fields can specify message encoding.");
}

static const char *json_of(pc_ctx *C, pc_field *fd, int custom, int *is_custom) {
    const char *def = pc_json_name(C, fd->name);
    *is_custom = custom && fd->has_json_name && strcmp(fd->json_name, def) != 0;
    return *is_custom ? fd->json_name : def;
}

/* descriptor.cc CheckFieldJsonNameUniqueness (one pass) */
static void check_json(ed *E, pc_msg *m, int custom) {
    pc_ctx *C = E->C;
    int n = m->fields.n;
    for (int i = 0; i < n; i++) {
        pc_field *a = m->fields.v[i];
        int ac;
        const char *an = json_of(C, a, custom, &ac);
        size_t al = strlen(an);
        if (ac && al && an[0] == '[' && an[al - 1] == ']')
            pc_fail(C, E->f->name, a->name_pos.line, a->name_pos.col,
                    "The custom JSON name of field \"%s\" (\"%s\") is invalid: JSON names may not start with '[' and "
                    "end with ']'.", a->name, an);
        for (int j = 0; j < i; j++) {
            pc_field *b = m->fields.v[j];
            int bc;
            const char *bn = json_of(C, b, custom, &bc);
            if (bc && bn[0] == '[' && bn[strlen(bn) - 1] == ']') continue;
            if (strcmp(an, bn) != 0) continue;
            if (custom && !ac && !bc) break;
            if (m->feat[FT_JSON] == JSON_LEGACY && (!ac || !bc)) break;   /* protoc: a warning */
            pc_fail(C, E->f->name, a->name_pos.line, a->name_pos.col,
                    "The %s JSON name of field \"%s\" (\"%s\") conflicts with the %s JSON name of field \"%s\".",
                    ac ? "custom" : "default", a->name, an, bc ? "custom" : "default", b->name);
        }
    }
}

static int legacy_json_conflicts(pc_msg *m) {
    for (pc_uopt *u = m->opts.head; u; u = u->next)
        if (u->nparts == 1 && !u->parts[0].is_ext && strcmp(u->parts[0].name, "deprecated_legacy_json_field_conflicts") == 0 &&
            u->vkind == V_IDENT && strcmp(u->ident, "true") == 0)
            return 1;
    return 0;
}

static void check_msg(ed *E, pc_msg *m) {
    const int *v = m->feat;
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *fd = m->fields.v[i];
        int base[NF];
        memcpy(base, v, sizeof base);
        if (fd->oneof_index >= 0) {
            pc_oneof *o = m->oneofs.v[fd->oneof_index];
            resolve(E, v, &o->opts, FN_ONEOF, base, NULL, o->pos);
        }
        check_field(E, fd, base);
    }
    for (int i = 0; i < m->oneofs.n; i++) {
        pc_oneof *o = m->oneofs.v[i];
        int w[NF];
        resolve(E, v, &o->opts, FN_ONEOF, w, NULL, o->pos);
        style(E, w, "Oneof name", o->name, lower_snake, o->pos);
    }
    for (int i = 0; i < m->exts.n; i++) check_field(E, m->exts.v[i], v);
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        int w[NF];
        resolve(E, v, &r->opts, FN_EXTRANGE, w, NULL, r->pos);
    }
    if (!m->map_entry && !legacy_json_conflicts(m)) {
        check_json(E, m, 0);
        check_json(E, m, 1);
    }
    for (int i = 0; i < m->nested.n; i++) check_msg(E, m->nested.v[i]);
}

/* descriptor.cc: a proto3 field of a closed editions enum (proto2 enums are
   refused by resolve.c already, as protoc 3.21 words it) */
static void proto3_enums(ed *E, pc_msg *m) {
    for (int i = 0; i < m->fields.n; i++) {
        pc_field *fd = m->fields.v[i];
        if (fd->renum && fd->renum->file->edition && fd->renum->closed)
            pc_fail(E->C, E->f->name, fd->type_pos.line, fd->type_pos.col,
                    "Enum type \"%s\" is not an open enum, but is used in \"%s\" which is a proto3 message type.",
                    fd->renum->full, m->full);
    }
    for (int i = 0; i < m->nested.n; i++) proto3_enums(E, m->nested.v[i]);
}

/* descriptor.cc: a type of another file must be visible from this one
   (symbol.cc GetVisibilityError); any syntax may refer to a 2024 file */
static void not_visible(ed *E, int is_msg, void *t, pc_pos pos, const char *usage) {
    pc_msg *m = is_msg ? t : NULL;
    pc_enum *e = is_msg ? NULL : t;
    pc_file *tf = m ? m->file : e->file;
    int loc = m ? m->is_local : e->is_local;
    if (tf == E->f || !loc) return;
    int kw = m ? m->visibility : e->visibility;
    static const char *const vn[] = {"DEFAULT_SYMBOL_VISIBILITY_UNKNOWN", "EXPORT_ALL", "EXPORT_TOP_LEVEL", "LOCAL_ALL", "STRICT"};
    char reason[200];
    if (kw == 1) snprintf(reason, sizeof reason, "It is explicitly marked 'local'");
    else {
        /* the file-level default (messages carry it resolved; enums: their file's) */
        int dv = m ? m->feat[FT_VISIBILITY] : (tf->edition >= PC_EDITION_2024 ? VIS_EXPORT_TOP_LEVEL : VIS_EXPORT_ALL);
        snprintf(reason, sizeof reason, "It defaulted to local from file-level 'option features.default_symbol_visibility = '%s';",
                 vn[dv >= 0 && dv <= 4 ? dv : 0]);
    }
    pc_fail(E->C, E->f->name, pos.line, pos.col,
            "Symbol \"%s\", defined in \"%s\" %s is not visible from \"%s\". %s and cannot be accessed outside its own file",
            m ? m->full : e->full, tf->name, usage, E->f->name, reason);
}

static void vis_field(ed *E, pc_field *fd) {
    if (fd->is_ext && fd->rext) not_visible(E, 1, fd->rext, fd->ext_pos, "target of extend");
    if (fd->rmsg && !fd->is_map) not_visible(E, 1, fd->rmsg, fd->type_pos, "");
    if (fd->renum) not_visible(E, 0, fd->renum, fd->type_pos, "");
}

static void vis_msg(ed *E, pc_msg *m) {
    for (int i = 0; i < m->fields.n; i++) vis_field(E, m->fields.v[i]);
    for (int i = 0; i < m->exts.n; i++) vis_field(E, m->exts.v[i]);
    for (int i = 0; i < m->nested.n; i++) vis_msg(E, m->nested.v[i]);
}

static void visibility(ed *E) {
    pc_file *f = E->f;
    for (int i = 0; i < f->msgs.n; i++) vis_msg(E, f->msgs.v[i]);
    for (int i = 0; i < f->exts.n; i++) vis_field(E, f->exts.v[i]);
    for (int i = 0; i < f->services.n; i++) {
        pc_service *s = f->services.v[i];
        for (int j = 0; j < s->methods.n; j++) {
            pc_method *m = s->methods.v[j];
            pc_sym *a = m->rin ? pc_sym_find(f->pool, m->rin + 1) : NULL;
            pc_sym *b = m->rout ? pc_sym_find(f->pool, m->rout + 1) : NULL;
            if (a && a->kind == SYM_MSG) not_visible(E, 1, a->p, m->in_pos, "");
            if (b && b->kind == SYM_MSG) not_visible(E, 1, b->p, m->out_pos, "");
        }
    }
}

void pc_check_editions(pc_ctx *C, pc_file *f) {
    ed E = {C, f};
    int base[NF], fv[NF], set[NF];
    edition_defaults(f->edition ? f->edition : (f->proto3 ? 999 : 998), base);
    if (f->edition) resolve(&E, base, &f->opts, FN_FILE, fv, set, f->edition_pos);
    else memcpy(fv, base, sizeof fv);
    if (*f->pkg) style(&E, fv, "Package name", f->pkg, lower_snake, f->pkg_pos);
    for (int i = 0; i < f->enums.n; i++) mark_enum(&E, f->enums.v[i], fv);
    for (int i = 0; i < f->msgs.n; i++) mark_enums(&E, f->msgs.v[i], fv);
    visibility(&E);
    if (f->proto3) {
        for (int i = 0; i < f->msgs.n; i++) proto3_enums(&E, f->msgs.v[i]);
        return;
    }
    if (!f->edition) return;
    /* descriptor.cc ValidateFileFeatures: at the edition statement */
    pc_pos ep = f->edition_pos;
    if (fv[FT_PRESENCE] == PRES_REQUIRED)
        pc_fail(C, f->name, ep.line, ep.col, "Required presence can't be specified by default.");
    for (pc_uopt *u = f->opts.head; u; u = u->next)
        if (u->nparts == 1 && !u->parts[0].is_ext && strcmp(u->parts[0].name, "java_string_check_utf8") == 0 &&
            u->vkind == V_IDENT && strcmp(u->ident, "true") == 0)
            pc_fail(C, f->name, ep.line, ep.col,
                    "File option java_string_check_utf8 is not allowed under editions. Use the (pb.java).utf8_validation "
                    "feature to control this behavior.");
    for (int i = 0; i < f->msgs.n; i++) check_msg(&E, f->msgs.v[i]);
    for (int i = 0; i < f->exts.n; i++) check_field(&E, f->exts.v[i], fv);
    for (int i = 0; i < f->services.n; i++) {
        pc_service *s = f->services.v[i];
        int sv[NF], mv[NF];
        resolve(&E, fv, &s->opts, FN_SERVICE, sv, NULL, s->pos);
        style(&E, sv, "Service name", s->name, title_case, s->pos);
        for (int j = 0; j < s->methods.n; j++) {
            pc_method *m = s->methods.v[j];
            resolve(&E, sv, &m->opts, FN_METHOD, mv, NULL, m->pos);
            style(&E, mv, "Method name", m->name, title_case, m->pos);
        }
    }
}
