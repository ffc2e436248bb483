/*
 * desc.h -- the parts of a FileDescriptorSet that schema.c compiles, as
 * read from the wire bytes by desc_read.c.
 *
 * The structs keep the member names of descriptor.proto (has_x for an
 * optional scalar that was present, n_x for the length of repeated x), but
 * only for the fields dynpb compiles; arrays hold the structs themselves.
 * Strings are NUL-terminated copies (absent: NULL), except the four strings
 * of a field and an enum value's name (the most numerous): those are
 * dp_dstr, offsets into the input bytes (absent: off 0). Either way a NUL
 * inside a string ends it (as it did when protobuf-c parsed the set). All
 * of it lives in the arena of a dp_dset, a userdata whose __gc frees it, or
 * in the input bytes, which must outlive the dset's use.
 */
#ifndef DYNPB_DESC_H
#define DYNPB_DESC_H

#include "dynpb.h"

/* a string in the input bytes: base[off .. off + n) (base: dp_dset.base),
   no NUL inside; off 0: absent (no string of a set starts at its first
   byte, a tag) */
typedef struct dp_dstr {
    uint32_t off, n;
} dp_dstr;

/* google.protobuf.FeatureSet: the six features with a run-time meaning */
typedef struct dp_dfeatures {
    uint8_t has_field_presence, has_enum_type, has_repeated_field_encoding,
            has_utf8_validation, has_message_encoding, has_json_format;
    int32_t field_presence, enum_type, repeated_field_encoding, utf8_validation,
            message_encoding, json_format;
} dp_dfeatures;

/* any *Options message: the fields of File/Message/Field/Oneof/Enum/
   EnumValueOptions that dynpb compiles (each kind sets only its own) */
typedef struct dp_dopts {
    dp_dfeatures *features;
    uint8_t has_packed, packed;                                  /* FieldOptions */
    uint8_t has_map_entry, map_entry;                            /* MessageOptions */
    uint8_t has_message_set_wire_format, message_set_wire_format;
} dp_dopts;

typedef struct dp_dfield {                  /* FieldDescriptorProto */
    dp_dstr name, extendee, type_name, json_name;
    const char *default_value;
    int32_t number, label, type, oneof_index;
    uint8_t has_number, has_label, has_type, has_oneof_index;
    uint8_t has_proto3_optional, proto3_optional;
    dp_dopts *options;
} dp_dfield;

typedef struct dp_doneof {                  /* OneofDescriptorProto */
    const char *name;
    dp_dopts *options;
} dp_doneof;

typedef struct dp_dxrange {                 /* DescriptorProto.ExtensionRange */
    int32_t start, end;
} dp_dxrange;

typedef struct dp_devalue {                 /* EnumValueDescriptorProto */
    dp_dstr name;
    int32_t number;
    uint8_t has_number;
    dp_dopts *options;
} dp_devalue;

typedef struct dp_denum {                   /* EnumDescriptorProto */
    const char *name;
    size_t n_value;
    dp_devalue *value;
    dp_dopts *options;
} dp_denum;

typedef struct dp_dmsg {                    /* DescriptorProto */
    const char *name;
    uint32_t n_field, n_nested_type, n_enum_type, n_extension_range, n_extension, n_oneof_decl;
    dp_dfield *field;
    struct dp_dmsg *nested_type;
    dp_denum *enum_type;
    dp_dxrange *extension_range;
    dp_dfield *extension;
    dp_doneof *oneof_decl;
    dp_dopts *options;
} dp_dmsg;

typedef struct dp_dfile {                   /* FileDescriptorProto */
    const char *name, *package, *syntax;
    int32_t edition;
    uint8_t has_edition;
    size_t n_dependency, n_message_type, n_enum_type, n_extension;
    const char **dependency;
    dp_dmsg *message_type;
    dp_denum *enum_type;
    dp_dfield *extension;
    dp_dopts *options;
} dp_dfile;

/* the arena and the set read into it; a userdata (see dp_dset_push) */
typedef struct dp_dchunk {
    struct dp_dchunk *next;
    size_t size;                            /* bytes, header included */
} dp_dchunk;

typedef struct dp_dset {
    lua_Alloc alloc;
    void *alloc_ud;
    dp_dchunk *chunks;                      /* the arena, freed by __gc */
    char *cur;                              /* bump pointer in the newest chunk */
    size_t left;                            /* bytes left at cur */
    size_t chunk;                           /* size of the next chunk */
    size_t n_file;                          /* FileDescriptorSet.file */
    dp_dfile *file;
    const unsigned char *base;              /* the input bytes (dp_dstr) */
} dp_dset;

/* the first byte of s (see dp_dstr), NULL when absent */
static inline const char *dp_dstr_p(const dp_dset *d, dp_dstr s) {
    return s.off ? (const char *)d->base + s.off : NULL;
}

/* [-0, +1, m] pushes a new empty dp_dset userdata (its __gc frees the arena) */
DP_HIDDEN dp_dset *dp_dset_push(lua_State *L);
/* [-0, +0] frees the arena now (the userdata stays, empty) */
DP_HIDDEN void dp_dset_release(dp_dset *d);
/* [-0, +0, m] n zeroed bytes (aligned) from the arena; raises on OOM */
DP_HIDDEN void *dp_dalloc(lua_State *L, dp_dset *d, size_t n);

/* [-0, +0, m] reads the FileDescriptorSet data[0..len) into d: its whole
   wire structure is checked as dynpb's decoder checks it (every message
   field of descriptor.proto entered, tags, lengths, groups), message
   declarations nest at most DP_MAX_TYPE_DEPTH deep. Returns 1, or 0 with
   "malformed descriptor set: <what> at byte <n>" in err (errlen bytes);
   a set of 4 GiB or more is refused.
   The dp_dstr strings point into data, which must outlive d's use; the
   others are copies. Raises only for memory errors. */
DP_HIDDEN int dp_desc_read(lua_State *L, dp_dset *d, const unsigned char *data, size_t len,
                           char *err, size_t errlen);

#endif
