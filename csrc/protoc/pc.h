/*
 * pc.h -- internals of dynpb's .proto compiler (dynpb.compile).
 *
 * Stages, one file each:
 *   arena.c    memory (from the lua_State allocator, owned by a userdata),
 *              growable byte buffers, the symbol hash table
 *   lexer.c    protoc's tokenizer: tokens with 0-based line/column
 *   parser.c   tokens -> pc_file trees shaped like FileDescriptorProto
 *              (map entries, groups, synthetic oneofs added as protoc does)
 *   resolve.c  symbols, name resolution (protoc's scoping), validation
 *   options.c  option interpretation (standard and custom, aggregates)
 *   emit.c     FileDescriptorSet bytes in protoc's field order
 *   compile.c  the Lua binding: dynpb.compile, file lookup, built-ins
 *
 * Errors: every stage reports through pc_fail (a message "file:line:col:
 * msg"), which longjmps to the driver in compile.c; all memory is in the
 * arena, so nothing leaks. No global mutable state.
 */
#ifndef DYNPB_PC_H
#define DYNPB_PC_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "dynpb.h"

#define PC_MAX_DEPTH 64            /* nesting of messages, aggregates, parens */
#define PC_MAX_SOURCE (64u << 20)  /* bytes of one source file */
#define PC_MAX_FILES 10000

/* ---- arena.c */
typedef struct pc_block { struct pc_block *next; size_t size; } pc_block;

typedef struct pc_ctx pc_ctx;

typedef struct pc_buf { unsigned char *p; size_t n, cap; } pc_buf;

typedef struct pc_vec { void **v; int n, cap; } pc_vec;

DP_HIDDEN void *pc_alloc(pc_ctx *C, size_t n);            /* zeroed; longjmps on OOM */
DP_HIDDEN char *pc_strndup(pc_ctx *C, const char *s, size_t n);
DP_HIDDEN char *pc_strcat3(pc_ctx *C, const char *a, const char *b, const char *c);
DP_HIDDEN void pc_arena_free(pc_ctx *C);
DP_HIDDEN void pc_buf_put(pc_ctx *C, pc_buf *b, const void *p, size_t n);
DP_HIDDEN void pc_buf_byte(pc_ctx *C, pc_buf *b, int c);
DP_HIDDEN void pc_buf_varint(pc_ctx *C, pc_buf *b, uint64_t v);
DP_HIDDEN void pc_buf_tag(pc_ctx *C, pc_buf *b, uint32_t num, int wt);
DP_HIDDEN void pc_buf_lenbytes(pc_ctx *C, pc_buf *b, uint32_t num, const void *p, size_t n);
DP_HIDDEN void pc_buf_str(pc_ctx *C, pc_buf *b, uint32_t num, const char *s);
DP_HIDDEN void pc_vec_push(pc_ctx *C, pc_vec *v, void *x);
/* a set of strings / a map of int32 keys (open addressing, in the arena) */
typedef struct pc_set { const char **k; int32_t *ik; int *iv; uint32_t mask, n; } pc_set;
DP_HIDDEN int pc_set_add(pc_ctx *C, pc_set *s, const char *k);          /* 0 if already there */
DP_HIDDEN int pc_set_has(const pc_set *s, const char *k);
DP_HIDDEN int pc_imap_get_or_add(pc_ctx *C, pc_set *s, int32_t k, int v); /* the value, or -1 if added */
DP_HIDDEN void pc_fail(pc_ctx *C, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 5, 6)));

/* ---- positions and tokens */
typedef struct pc_pos { int line, col; } pc_pos;    /* 0-based, as protoc stores */

enum { TK_EOF, TK_IDENT, TK_INT, TK_FLOAT, TK_STRING, TK_SYMBOL };

typedef struct pc_tok {
    int type;
    const char *s;            /* text in the source */
    size_t n;
    int line, col, endcol;
} pc_tok;

typedef struct pc_lexer {
    pc_ctx *C;
    const char *file;         /* for errors */
    const char *p, *end;
    int line, col;
    int textfmt;              /* text format: '#' comments, 1.5f floats */
    pc_tok cur, prev;
    int has_prev;
} pc_lexer;

DP_HIDDEN void pc_lex_init(pc_lexer *X, pc_ctx *C, const char *file, const char *s, size_t n,
                           int line, int col);
DP_HIDDEN void pc_lex_next(pc_lexer *X);
/* unescapes a string token (quotes included) onto b */
DP_HIDDEN void pc_lex_string(pc_lexer *X, const pc_tok *t, pc_buf *b);
/* parses an integer token; returns 0 on overflow of uint64 */
DP_HIDDEN int pc_parse_uint(const char *s, size_t n, uint64_t *out);
DP_HIDDEN double pc_parse_float(const char *s, size_t n);

/* ---- trees */
enum { V_NONE, V_IDENT, V_POS, V_NEG, V_DOUBLE, V_STRING, V_AGG };

typedef struct pc_optpart { const char *name; int is_ext; pc_pos pos; } pc_optpart;

typedef struct pc_uopt {      /* an uninterpreted option */
    pc_optpart *parts;
    int nparts;
    int vkind;
    const char *ident;
    uint64_t u;               /* V_POS; V_NEG: magnitude */
    double d;
    char *str; size_t slen;   /* V_STRING */
    const char *agg; size_t agglen; pc_pos aggpos;  /* V_AGG: source text inside braces */
    pc_pos pos;               /* the option name */
    pc_pos vpos;
    int32_t *dest; int ndest; /* interpreted: field numbers (+ index), for source info */
    struct pc_uopt *next;
} pc_uopt;

/* a SourceCodeInfo.Location (srcinfo.c) */
typedef struct pc_loc {
    int32_t *path;
    int npath, cap;
    int32_t span[4];
    int nspan;
    pc_buf lead, trail;
    int has_lead;
    pc_vec det;               /* pc_buf* */
    pc_uopt *opt;             /* an option statement: path + opt->dest */
} pc_loc;

typedef struct pc_opts {
    pc_uopt *head, **tail;
    int present;              /* an options message exists (even empty) */
    pc_buf out;               /* serialized options message, after options.c */
} pc_opts;

typedef struct pc_file pc_file;
typedef struct pc_msg pc_msg;
typedef struct pc_enum pc_enum;

typedef struct pc_field {
    const char *name, *full;
    int32_t number;
    int label, type;          /* type 0 = named type, resolved later */
    const char *type_name;    /* as written (NULL for scalars) */
    const char *extendee;     /* as written (extensions) */
    int has_default;
    char *def; size_t deflen; /* parser's default text (idents for enums) */
    int def_is_ident;
    int32_t oneof_index;      /* -1 */
    const char *json_name;
    int has_json_name;
    int proto3_optional;
    int packed;               /* [packed = true] seen */
    int feat[9];              /* editions: resolved FeatureSet enum values by field number 1-8 (editions.c) */
    int feat_set[9];          /* editions: set on this field itself */
    pc_opts opts;
    pc_pos pos, name_pos, type_pos, num_pos, def_pos, json_pos, ext_pos, label_pos;
    pc_msg *parent;           /* containing message (or NULL at file level) */
    const char *scope;        /* full name of the scope names resolve in */
    pc_file *file;
    int is_ext, is_group, is_map;
    /* resolved */
    pc_msg *rmsg; pc_enum *renum; pc_msg *rext;
    char *rtype_name, *rextendee;   /* with leading dot */
    char *out_def; size_t out_deflen;
} pc_field;

typedef struct pc_oneof { const char *name; pc_opts opts; pc_pos pos; int nfields; int synthetic; } pc_oneof;

typedef struct pc_range { int32_t start, end; pc_opts opts; pc_pos pos; } pc_range;

struct pc_msg {
    const char *name, *full;
    pc_vec fields, nested, enums, extranges, exts, oneofs, resranges, resnames;
    pc_opts opts;
    pc_pos pos;
    pc_file *file;
    pc_msg *parent;
    int feat[9];              /* editions: resolved features (editions.c) */
    int is_local;             /* not visible to other files (2024 visibility, editions.c) */
    int map_entry;
    int message_set;          /* option message_set_wire_format = true */
    int visibility;           /* edition 2024: 1 local, 2 export, 0 unset */
};

typedef struct pc_enumval { const char *name, *full; int32_t number; pc_opts opts; pc_pos pos, num_pos; } pc_enumval;

struct pc_enum {
    const char *name, *full;
    pc_vec values, resranges, resnames;
    pc_opts opts;
    pc_pos pos;
    pc_file *file;
    const char *scope;
    int visibility;           /* edition 2024: 1 local, 2 export, 0 unset */
    int closed;               /* a closed enum (proto2, or enum_type = CLOSED): editions.c */
    int is_local;             /* not visible to other files (2024 visibility, editions.c) */
    int nested;               /* declared in a message */
};

typedef struct pc_method {
    const char *name, *full, *in, *out;
    char *rin, *rout;
    int cstream, sstream;
    pc_opts opts;
    pc_pos pos, in_pos, out_pos;
} pc_method;

typedef struct pc_service { const char *name, *full; pc_vec methods; pc_opts opts; pc_pos pos; } pc_service;

struct pc_file {
    const char *name;
    const char *pkg;          /* "" if none */
    int proto3;
    int edition;              /* editions: 1000 (2023) or 1001 (2024); 0 for proto2/proto3 */
    int edctx;                /* an editions file, or imported (transitively) by one, or an
                                 editions-era built-in: its imports get the editions-era built-ins */
    pc_pos edition_pos, pkg_pos;  /* the edition statement, the package statement */
    pc_vec deps;              /* const char* names */
    pc_vec dep_pos;           /* pc_pos* of each import */
    pc_vec public_deps, weak_deps;  /* intptr_t indices */
    pc_vec opt_deps, opt_dep_pos;   /* edition 2024 `import option`: names, pc_pos* */
    pc_vec optfiles;          /* pc_file* of opt_deps (resolved): visible to options only */
    pc_vec msgs, enums, services, exts;
    pc_opts opts;
    pc_vec depfiles;          /* pc_file* (resolved) */
    int state;                /* 0 new, 1 loading, 2 done */
    int id, vis;              /* vis == id of the file being resolved: visible to it */
    int emitted;
    const char *src; size_t srclen;
    struct pc_pool *pool;
    pc_vec locs;              /* pc_loc*, source_info only */
};

/* ---- srcinfo.c */
DP_HIDDEN pc_loc *pc_loc_new(pc_ctx *C, pc_vec *into, const pc_loc *parent, const pc_tok *cur, int n, int a,
                             int b);
DP_HIDDEN void pc_loc_add(pc_ctx *C, pc_loc *l, int c);
DP_HIDDEN void pc_loc_end_at(pc_loc *l, const pc_tok *t);
DP_HIDDEN void pc_loc_done(pc_loc *l, const pc_tok *prev);   /* the recorder's destructor */
/* protoc's Tokenizer::NextWithComments (start: the first token of the file) */
DP_HIDDEN void pc_lex_next_comments(pc_lexer *X, int start, pc_buf *trail, pc_vec *det, pc_buf *lead,
                                    int *has_lead);
DP_HIDDEN void pc_emit_srcinfo(pc_ctx *C, pc_file *f, pc_buf *out);

/* ---- symbols */
enum { SYM_NONE, SYM_PACKAGE, SYM_MSG, SYM_ENUM, SYM_ENUMVAL, SYM_FIELD, SYM_ONEOF,
       SYM_SERVICE, SYM_METHOD };

typedef struct pc_sym {
    const char *name;
    int kind;
    void *p;
    pc_file *file;
} pc_sym;

typedef struct pc_pool {
    pc_sym *syms;             /* open addressing */
    uint32_t mask, n;
    pc_vec files;             /* in build order */
} pc_pool;

DP_HIDDEN pc_sym *pc_sym_find(pc_pool *P, const char *name);
/* inserts; returns the existing symbol of that name instead (no insert) */
DP_HIDDEN pc_sym *pc_sym_add(pc_ctx *C, pc_pool *P, const char *name, int kind, void *p,
                             pc_file *f);

/* ---- the compile context */
typedef struct pc_source { const char *name; const char *text; size_t len; } pc_source;

struct pc_ctx {
    lua_State *L;
    lua_Alloc alloc;
    void *alloc_ud;
    pc_block *blocks;
    jmp_buf *jb;
    int oom;
    char err[1024];
    pc_pool pool;             /* the files being compiled */
    pc_pool std;              /* built-in descriptor.proto (option types) */
    pc_file *stdfile;
    pc_pool std_ed;           /* the newer built-in descriptor.proto: option types of editions files */
    pc_file *stdfile_ed;
    int depth;
    /* file lookup (compile.c) */
    int srcidx, pathsidx;     /* Lua stack slots of opts.sources / opts.paths (0 = none) */
    int source_info;
    int in_std;               /* parsing the built-in descriptor.proto for option types */
    int ed_mode;              /* the compile has an editions file: the editions-era built-ins
                                 serve every file (compile.c) */
    int used_deb;             /* a Debian built-in (file or option types) was used */
    int restart;              /* longjmp'd to run the compile again in ed_mode */
    void *fp;                 /* FILE being read (closed on error) */
};

/* ---- parser.c */
DP_HIDDEN pc_file *pc_parse(pc_ctx *C, const char *name, const char *src, size_t len);
DP_HIDDEN void pc_opts_init(pc_opts *o);
DP_HIDDEN const char *pc_json_name(pc_ctx *C, const char *name);

/* ---- resolve.c */
/* registers the symbols of f (its deps are already in P) and resolves it */
DP_HIDDEN void pc_resolve_file(pc_ctx *C, pc_pool *P, pc_file *f);
/* protoc's LookupSymbol: name relative to scope; only types if types_only */
DP_HIDDEN pc_sym *pc_lookup(pc_ctx *C, pc_pool *P, pc_file *from, const char *scope,
                            const char *name, int types_only, const char **tried);

/* makes the files f imports with `import option` (and their public imports)
   visible to f's option names; called after f's types are resolved */
DP_HIDDEN void pc_mark_option_imports(pc_file *f);

/* ---- options.c */
DP_HIDDEN void pc_interpret_options(pc_ctx *C, pc_file *f);

/* ---- editions.c */
#define PC_EDITION_2023 1000
#define PC_EDITION_2024 1001
/* FeatureSet fields (descriptor.proto) */
enum { FT_PRESENCE = 1, FT_ENUM = 2, FT_REPEATED = 3, FT_UTF8 = 4, FT_MSGENC = 5, FT_JSON = 6, FT_NAMING = 7,
       FT_VISIBILITY = 8 };
/* resolves features (edition defaults, file, message, field) and applies protoc's
   editions validation (descriptor.cc ValidateFieldFeatures and friends) to f, after
   its options are interpreted; longjmps on the first error */
DP_HIDDEN void pc_check_editions(pc_ctx *C, pc_file *f);

/* ---- emit.c */
DP_HIDDEN void pc_emit_file(pc_ctx *C, pc_file *f, pc_buf *out);

/* ---- compile.c */
/* finds, parses and resolves a file by import name (NULL if absent) */
/* the built-in descriptor.proto whose *Options types interpret options: Debian's
   3.21 copy, or for editions (ed != 0) the newer one */
DP_HIDDEN pc_file *pc_load_std(pc_ctx *C, int ed);
/* a built-in source: Debian's well-known types; ed != 0: the editions-era copies
   (the newer descriptor.proto and the language feature files) first */
DP_HIDDEN int pc_builtin(const char *name, const char **src, size_t *len);
DP_HIDDEN int pc_builtin_ed(const char *name, const char **src, size_t *len);

#endif
