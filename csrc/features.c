/*
 * features.c -- protobuf editions: the resolved features of a scope.
 *
 * Every file has an edition: EDITION_PROTO2 / EDITION_PROTO3 for syntax
 * "proto2" / "proto3" (and no syntax), or the `edition` field of a file with
 * syntax "editions" (2023 and 2024 are supported). The edition's default
 * FeatureSet (csrc/gen/feature_defaults.h, derived by `make regen` from the
 * edition_defaults in descriptor.proto) is overridden by the `features`
 * option of the file, then of each nested scope: message -> nested message,
 * message -> field, message -> oneof -> member field, file or message ->
 * enum -> enum value. schema.c asks for one scope at a time, passing its
 * parent's result down.
 *
 * Only the six features with a run-time meaning are resolved; language
 * extensions of FeatureSet (pb.cpp, pb.java, ...) are not read (desc_read.c
 * skips them), nor are the source-retention features.
 */
#include <stdio.h>
#include <string.h>

#include "desc.h"
#include "gen/feature_defaults.h"

/* google.protobuf.Edition values without a case in edition_text */
static const struct { int32_t v; const char *name; } edition_names[] = {
    {0, "EDITION_UNKNOWN"}, {900, "EDITION_LEGACY"}, {1002, "EDITION_2026"},
    {9999, "EDITION_UNSTABLE"}, {1, "EDITION_1_TEST_ONLY"}, {2, "EDITION_2_TEST_ONLY"},
    {99997, "EDITION_99997_TEST_ONLY"}, {99998, "EDITION_99998_TEST_ONLY"},
    {99999, "EDITION_99999_TEST_ONLY"}, {0x7FFFFFFF, "EDITION_MAX"}
};

/* the edition of a file as text: "2023", "proto2", or its enum name */
static const char *edition_text(int32_t edition, char *buf, size_t n) {
    switch (edition) {
    case DP_EDITION_PROTO2: return "proto2";
    case DP_EDITION_PROTO3: return "proto3";
    case DP_EDITION_2023: return "2023";
    case DP_EDITION_2024: return "2024";
    }
    for (size_t i = 0; i < sizeof edition_names / sizeof edition_names[0]; i++)
        if (edition_names[i].v == edition) {
            snprintf(buf, n, "%s (%d)", edition_names[i].name, (int)edition);
            return buf;
        }
    snprintf(buf, n, "%d", (int)edition);
    return buf;
}

int dp_file_features(lua_State *L, const struct dp_dfile *f,
                     dp_features *out) {
    const char *name = f->name ? f->name : "?";
    const char *syn = f->syntax;
    int32_t edition;
    char buf[64];
    if (!syn || !*syn || strcmp(syn, "proto2") == 0) {
        edition = DP_EDITION_PROTO2;
    } else if (strcmp(syn, "proto3") == 0) {
        edition = DP_EDITION_PROTO3;
    } else if (strcmp(syn, "editions") == 0) {
        if (!f->has_edition) {
            lua_pushfstring(L, "file '%s': syntax 'editions' without an edition", name);
            return 0;
        }
        edition = (int32_t)f->edition;
        if (edition != DP_EDITION_2023 && edition != DP_EDITION_2024) {
            lua_pushfstring(L, "file '%s': edition %s is not supported (dynpb reads proto2, "
                               "proto3 and editions 2023 and 2024)",
                            name, edition_text(edition, buf, sizeof buf));
            return 0;
        }
    } else {
        lua_pushfstring(L, "file '%s': unsupported syntax '%s' (dynpb supports proto2, proto3 "
                           "and editions 2023 and 2024)", name, syn);
        return 0;
    }
    int i = 0;
    while (i < DP_FEATURE_EDITIONS - 1 && dp_feature_defaults[i].edition != edition) i++;
    const uint8_t *v = dp_feature_defaults[i].v;
    out->field_presence = v[0];
    out->enum_type = v[1];
    out->repeated_field_encoding = v[2];
    out->utf8_validation = v[3];
    out->message_encoding = v[4];
    out->json_format = v[5];
    out->edition = edition;
    const struct dp_dfeatures *fs = f->options ? f->options->features : NULL;
    if (!fs) return 1;                                       /* the edition's defaults */
    lua_pushfstring(L, "file '%s'", name);                   /* +1 where */
    int ok = dp_features_merge(L, out, fs, lua_tostring(L, -1), out);
    if (ok) lua_pop(L, 1);
    else lua_remove(L, -2);                                  /* keep the message */
    return ok;
}

/* one feature: its name, and whether value v is one of its known values */
static int known(int feature, int v) {
    switch (feature) {
    case 0: return v >= 1 && v <= 3;   /* field_presence: EXPLICIT IMPLICIT LEGACY_REQUIRED */
    case 3: return v == 2 || v == 3;   /* utf8_validation: VERIFY NONE */
    default: return v == 1 || v == 2;  /* the others have two values, 1 and 2 */
    }
}

static const char *const feature_names[6] = {
    "field_presence", "enum_type", "repeated_field_encoding", "utf8_validation",
    "message_encoding", "json_format"
};

int dp_features_merge(lua_State *L, const dp_features *parent,
                      const struct dp_dfeatures *fs, const char *where,
                      dp_features *out) {
    dp_features r = *parent;
    if (fs) {
        const uint8_t has[6] = {
            fs->has_field_presence, fs->has_enum_type, fs->has_repeated_field_encoding,
            fs->has_utf8_validation, fs->has_message_encoding, fs->has_json_format
        };
        const int val[6] = {
            (int)fs->field_presence, (int)fs->enum_type, (int)fs->repeated_field_encoding,
            (int)fs->utf8_validation, (int)fs->message_encoding, (int)fs->json_format
        };
        uint8_t *dst[6] = {
            &r.field_presence, &r.enum_type, &r.repeated_field_encoding,
            &r.utf8_validation, &r.message_encoding, &r.json_format
        };
        char buf[64];
        for (int i = 0; i < 6; i++) {
            if (!has[i]) continue;
            if (r.edition < DP_EDITION_2023) {
                lua_pushfstring(L, "%s: features.%s is set, but features are only valid "
                                   "under editions (the file's syntax is %s)",
                                where, feature_names[i], edition_text(r.edition, buf, sizeof buf));
                return 0;
            }
            if (!known(i, val[i])) {
                lua_pushfstring(L, "%s: features.%s = %d is not a known value (edition %s)",
                                where, feature_names[i], val[i],
                                edition_text(r.edition, buf, sizeof buf));
                return 0;
            }
            *dst[i] = (uint8_t)val[i];
        }
    }
    *out = r;
    return 1;
}
