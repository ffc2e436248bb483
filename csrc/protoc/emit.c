/*
 * emit.c -- a resolved pc_file -> FileDescriptorProto bytes, as protoc
 * writes them: FileDescriptor::CopyTo plus CopyJsonNameTo, serialized by
 * the C++ runtime in field-number order. What CopyTo sets is what appears:
 * label and type always, syntax only for proto3 and editions (with the
 * edition, field 14), json_name on every field,
 * options whenever the source had any (even empty), streaming flags only
 * when true. Sub-messages are written to a scratch buffer and copied in
 * behind their length.
 */
#include <string.h>

#include "pc.h"

static void put_sub(pc_ctx *C, pc_buf *out, uint32_t num, const pc_buf *sub) {
    pc_buf_lenbytes(C, out, num, sub->p, sub->n);
}

static void put_int(pc_ctx *C, pc_buf *b, uint32_t num, int64_t v) {
    pc_buf_tag(C, b, num, 0);
    pc_buf_varint(C, b, (uint64_t)v);
}

static void put_opts(pc_ctx *C, pc_buf *b, uint32_t num, const pc_opts *o) {
    if (o->present) pc_buf_lenbytes(C, b, num, o->out.p, o->out.n);
}

static void emit_field(pc_ctx *C, pc_buf *out, uint32_t num, pc_field *fd) {
    pc_buf b = {0};
    pc_buf_str(C, &b, 1, fd->name);
    if (fd->is_ext) pc_buf_str(C, &b, 2, fd->rextendee);
    put_int(C, &b, 3, fd->number);
    put_int(C, &b, 4, fd->label);
    put_int(C, &b, 5, fd->type);
    if (fd->rtype_name) pc_buf_str(C, &b, 6, fd->rtype_name);
    if (fd->has_default) pc_buf_lenbytes(C, &b, 7, fd->out_def, fd->out_deflen);
    put_opts(C, &b, 8, &fd->opts);
    if (fd->oneof_index >= 0 && !fd->is_ext) put_int(C, &b, 9, fd->oneof_index);
    pc_buf_str(C, &b, 10, fd->has_json_name ? fd->json_name : pc_json_name(C, fd->name));
    if (fd->proto3_optional) put_int(C, &b, 17, 1);
    put_sub(C, out, num, &b);
}

static void emit_enum(pc_ctx *C, pc_buf *out, uint32_t num, pc_enum *e) {
    pc_buf b = {0};
    pc_buf_str(C, &b, 1, e->name);
    for (int i = 0; i < e->values.n; i++) {
        pc_enumval *v = e->values.v[i];
        pc_buf vb = {0};
        pc_buf_str(C, &vb, 1, v->name);
        put_int(C, &vb, 2, v->number);
        put_opts(C, &vb, 3, &v->opts);
        put_sub(C, &b, 2, &vb);
    }
    put_opts(C, &b, 3, &e->opts);
    for (int i = 0; i < e->resranges.n; i++) {
        pc_range *r = e->resranges.v[i];
        pc_buf rb = {0};
        put_int(C, &rb, 1, r->start);
        put_int(C, &rb, 2, r->end);
        put_sub(C, &b, 4, &rb);
    }
    for (int i = 0; i < e->resnames.n; i++) pc_buf_str(C, &b, 5, e->resnames.v[i]);
    if (e->visibility) put_int(C, &b, 6, e->visibility);
    put_sub(C, out, num, &b);
}

static void emit_msg(pc_ctx *C, pc_buf *out, uint32_t num, pc_msg *m) {
    pc_buf b = {0};
    pc_buf_str(C, &b, 1, m->name);
    for (int i = 0; i < m->fields.n; i++) emit_field(C, &b, 2, m->fields.v[i]);
    for (int i = 0; i < m->nested.n; i++) emit_msg(C, &b, 3, m->nested.v[i]);
    for (int i = 0; i < m->enums.n; i++) emit_enum(C, &b, 4, m->enums.v[i]);
    for (int i = 0; i < m->extranges.n; i++) {
        pc_range *r = m->extranges.v[i];
        pc_buf rb = {0};
        put_int(C, &rb, 1, r->start);
        put_int(C, &rb, 2, r->end);
        put_opts(C, &rb, 3, &r->opts);
        put_sub(C, &b, 5, &rb);
    }
    for (int i = 0; i < m->exts.n; i++) emit_field(C, &b, 6, m->exts.v[i]);
    put_opts(C, &b, 7, &m->opts);
    for (int i = 0; i < m->oneofs.n; i++) {
        pc_oneof *o = m->oneofs.v[i];
        pc_buf ob = {0};
        pc_buf_str(C, &ob, 1, o->name);
        put_opts(C, &ob, 2, &o->opts);
        put_sub(C, &b, 8, &ob);
    }
    for (int i = 0; i < m->resranges.n; i++) {
        pc_range *r = m->resranges.v[i];
        pc_buf rb = {0};
        put_int(C, &rb, 1, r->start);
        put_int(C, &rb, 2, r->end);
        put_sub(C, &b, 9, &rb);
    }
    for (int i = 0; i < m->resnames.n; i++) pc_buf_str(C, &b, 10, m->resnames.v[i]);
    if (m->visibility) put_int(C, &b, 11, m->visibility);
    put_sub(C, out, num, &b);
}

void pc_emit_file(pc_ctx *C, pc_file *f, pc_buf *out) {
    pc_buf b = {0};
    pc_buf_str(C, &b, 1, f->name);
    if (*f->pkg) pc_buf_str(C, &b, 2, f->pkg);
    for (int i = 0; i < f->deps.n; i++) pc_buf_str(C, &b, 3, f->deps.v[i]);
    for (int i = 0; i < f->msgs.n; i++) emit_msg(C, &b, 4, f->msgs.v[i]);
    for (int i = 0; i < f->enums.n; i++) emit_enum(C, &b, 5, f->enums.v[i]);
    for (int i = 0; i < f->services.n; i++) {
        pc_service *s = f->services.v[i];
        pc_buf sb = {0};
        pc_buf_str(C, &sb, 1, s->name);
        for (int j = 0; j < s->methods.n; j++) {
            pc_method *m = s->methods.v[j];
            pc_buf mb = {0};
            pc_buf_str(C, &mb, 1, m->name);
            pc_buf_str(C, &mb, 2, m->rin);
            pc_buf_str(C, &mb, 3, m->rout);
            put_opts(C, &mb, 4, &m->opts);
            if (m->cstream) put_int(C, &mb, 5, 1);
            if (m->sstream) put_int(C, &mb, 6, 1);
            put_sub(C, &sb, 2, &mb);
        }
        put_opts(C, &sb, 3, &s->opts);
        put_sub(C, &b, 6, &sb);
    }
    for (int i = 0; i < f->exts.n; i++) emit_field(C, &b, 7, f->exts.v[i]);
    put_opts(C, &b, 8, &f->opts);
    if (C->source_info) pc_emit_srcinfo(C, f, &b);
    for (int i = 0; i < f->public_deps.n; i++) put_int(C, &b, 10, (intptr_t)f->public_deps.v[i]);
    for (int i = 0; i < f->weak_deps.n; i++) put_int(C, &b, 11, (intptr_t)f->weak_deps.v[i]);
    if (f->proto3) pc_buf_str(C, &b, 12, "proto3");
    if (f->edition) {
        pc_buf_str(C, &b, 12, "editions");
        put_int(C, &b, 14, f->edition);
    }
    for (int i = 0; i < f->opt_deps.n; i++) pc_buf_str(C, &b, 15, f->opt_deps.v[i]);
    put_sub(C, out, 1, &b);
}
