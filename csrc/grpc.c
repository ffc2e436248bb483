/*
 * grpc.c -- dynpb.grpc_core: the C mechanisms under dynpb.grpc (Lua).
 *
 * Only what Lua cannot do well: zlib (gzip) for compressed gRPC messages,
 * base64 for grpc-web-text and -bin metadata, and an HTTP/2 transport over a
 * libcurl multi handle. Every policy (framing, status mapping, timeouts as
 * gRPC codes, header names) lives in lua/dynpb/grpc.lua.
 *
 * Lua API (module "dynpb.grpc_core"):
 *   core.gzip(s)              --> gzip member of s
 *   core.gunzip(s, max)       --> s | nil, err    (err when the output exceeds max bytes
 *                                                  or the data is not valid gzip)
 *   core.b64encode(s)         --> standard base64 with padding
 *   core.b64decode(s)         --> bytes | nil, err. #s must be a multiple of 4; every
 *                                 quad may end in padding ("=" / "=="), so the
 *                                 concatenation of separately encoded pieces decodes
 *   core.now()                --> CLOCK_MONOTONIC seconds (float)
 *   core.conn()               --> conn: a libcurl multi handle (a connection pool:
 *                                 transfers started on it share connections, HTTP/2
 *                                 streams multiplexed on one connection). After an
 *                                 aborted or failed transfer the conn moves to a new
 *                                 pool (libcurl 7.88 HTTP/2 session bugs, see below)
 *   conn:start(req)           --> xfer (the POST is under way; nothing blocks here)
 *       req = { url =, headers = { "name: value", ... }, body = "...",
 *               timeout_ms = 0 (none), connect_timeout_ms = 10000,
 *               prior_knowledge = bool (h2c), cafile =, capath =, cert =, key =,
 *               key_password = }
 *   conn:stats()              --> { connects = new connections made, transfers = finished }
 *   conn:close()              frees the pool once no transfer uses it; idempotent
 *   xfer:step(wait_ms)        --> data, done. Drives every transfer of the conn; data is
 *                                 the response body received for this transfer since the
 *                                 last step (possibly ""). Waits up to wait_ms (0: never
 *                                 blocks) for activity when there was none.
 *   xfer:result()             --> { status =, headers = "raw lines", trailers = "raw lines",
 *                                   curl_code =, error = message|nil,
 *                                   error_class = "timeout"|"connect"|"other"|nil } (after done)
 *   xfer:headers()            --> the raw response header lines once complete, else nil
 *   xfer:cancel()             abort; later steps return "", true with error "cancelled"
 *
 * Ownership: conn_t is reference counted by its userdata and by every live
 * xfer_t; a pool_t (the multi handle) by its conn while current and by every
 * xfer_t started on it, so a multi handle outlives its transfers whatever
 * order the collector finalizes them in. An xfer_t is owned by its userdata from
 * creation, so a Lua error while reading req leaves it to __gc. No mutable
 * C global; curl_global_init (reference counted) is called from luaopen.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <zlib.h>

#include "dynpb.h"

#define CONN_MT "dynpb.grpc.conn"
#define XFER_MT "dynpb.grpc.xfer"
#define ZS_MT "dynpb.grpc.zstream"
#define MAX_HEADER_BYTES (256 * 1024)

/* ---- zlib: a z_stream in a userdata, so an error longjmp cannot leak it */

typedef struct {
    z_stream z;
    int ready;      /* 1 inflate, 2 deflate */
} zs_ud;

static int zs_gc(lua_State *L) {
    zs_ud *u = luaL_checkudata(L, 1, ZS_MT);
    if (u->ready == 1) inflateEnd(&u->z);
    else if (u->ready == 2) deflateEnd(&u->z);
    u->ready = 0;
    return 0;
}

/* [-0, +1] a zeroed z_stream userdata */
static zs_ud *new_zs(lua_State *L) {
    zs_ud *u = dp_newudata(L, sizeof *u);
    memset(u, 0, sizeof *u);
    luaL_getmetatable(L, ZS_MT);
    lua_setmetatable(L, -2);
    return u;
}

/* core.gzip(s) --> gzip bytes. [-0, +1, m] */
static int l_gzip(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    zs_ud *u = new_zs(L);                               /* +1 */
    if (deflateInit2(&u->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return luaL_error(L, "dynpb: grpc: gzip: deflateInit failed");
    u->ready = 2;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    u->z.next_in = (Bytef *)s;
    u->z.avail_in = (uInt)n;
    int rc;
    do {
        char *out = luaL_prepbuffer(&b);
        u->z.next_out = (Bytef *)out;
        u->z.avail_out = LUAL_BUFFERSIZE;
        rc = deflate(&u->z, Z_FINISH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return luaL_error(L, "dynpb: grpc: gzip: deflate failed (%d)", rc);
        luaL_addsize(&b, LUAL_BUFFERSIZE - u->z.avail_out);
    } while (rc != Z_STREAM_END);
    luaL_pushresult(&b);
    deflateEnd(&u->z);
    u->ready = 0;
    return 1;
}

/* core.gunzip(s, max) --> bytes | nil, err. [-0, +1|+2, m] */
static int l_gunzip(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_Number maxn = luaL_checknumber(L, 2);
    size_t max = maxn < 0 ? 0 : (size_t)maxn;
    zs_ud *u = new_zs(L);                               /* +1 */
    if (inflateInit2(&u->z, 15 + 16) != Z_OK)
        return luaL_error(L, "dynpb: grpc: gunzip: inflateInit failed");
    u->ready = 1;
    u->z.next_in = (Bytef *)s;
    u->z.avail_in = (uInt)n;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        char *out = luaL_prepbuffer(&b);
        u->z.next_out = (Bytef *)out;
        u->z.avail_out = LUAL_BUFFERSIZE;
        rc = inflate(&u->z, Z_NO_FLUSH);
        size_t got = LUAL_BUFFERSIZE - u->z.avail_out;
        total += got;
        if (total > max) {
            lua_pushnil(L);
            lua_pushfstring(L, "decompressed message larger than max_len (%d bytes)", (int)max);
            return 2;
        }
        luaL_addsize(&b, got);
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && u->z.avail_in == 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "truncated gzip data");
            return 2;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            lua_pushnil(L);
            lua_pushfstring(L, "invalid gzip data (%s)", u->z.msg ? u->z.msg : "zlib error");
            return 2;
        }
    }
    if (u->z.avail_in != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "trailing bytes after the gzip data");
        return 2;
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- base64 */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int l_b64encode(lua_State *L) {
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        char q[4] = { b64chars[v >> 18], b64chars[(v >> 12) & 63], b64chars[(v >> 6) & 63],
                      b64chars[v & 63] };
        luaL_addlstring(&b, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        char q[4] = { b64chars[v >> 18], b64chars[(v >> 12) & 63], '=', '=' };
        luaL_addlstring(&b, q, 4);
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        char q[4] = { b64chars[v >> 18], b64chars[(v >> 12) & 63], b64chars[(v >> 6) & 63], '=' };
        luaL_addlstring(&b, q, 4);
    }
    luaL_pushresult(&b);
    return 1;
}

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int l_b64decode(lua_State *L) {
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    if (n % 4) {
        lua_pushnil(L);
        lua_pushfstring(L, "base64 length %d is not a multiple of 4", (int)n);
        return 2;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = pad ? -1 : b64val(s[i + k]);
            if (v[k] < 0) {
                lua_pushnil(L);
                lua_pushfstring(L, "invalid base64 at byte %d", (int)(i + k));
                return 2;
            }
        }
        unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        char o[3] = { (char)(x >> 16), (char)(x >> 8 & 255), (char)(x & 255) };
        luaL_addlstring(&b, o, (size_t)(3 - pad));
    }
    luaL_pushresult(&b);
    return 1;
}

static int l_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* ---- the transport */

/* a libcurl multi handle and so a connection pool; a conn moves to a new
 * pool when a transfer is aborted mid-stream (see xfer_abort) */
typedef struct {
    CURLM *multi;
    int refs;           /* its conn (while current) + every xfer started on it */
} pool_t;

typedef struct {
    pool_t *pool;       /* current pool; NULL until the next start */
    int refs;           /* the conn userdata (until close/gc) + every live xfer */
    long connects;      /* new connections, summed over finished transfers */
    long transfers;
    int h2c_up;         /* an h2c connection was made (see xfer_version) */
    int reuse_bug;      /* libcurl < 8.0.0: prior knowledge breaks on reuse */
} conn_t;

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    conn_t *conn;
    pool_t *pool;
    CURL *easy;
    int in_multi;
    int done;
    int cancelled;
    int too_big;        /* headers over MAX_HEADER_BYTES */
    int hdr_done;       /* the header block ended: later header lines are trailers */
    CURLcode rc;
    long status;
    struct curl_slist *headers;
    char *url, *body;
    size_t body_len;
    char *tls[5];
    buf_t data, hdr, trl;
    int nomem;
    int h2c;            /* the request wants h2c (prior knowledge) */
    int reuse_try;      /* sent with the reuse workaround: retry on a fresh h2c connection */
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

typedef struct { conn_t *c; } conn_ud;
typedef struct { xfer_t *x; } xfer_ud;

static void pool_unref(pool_t *p) {
    if (!p || --p->refs > 0) return;
    if (p->multi) curl_multi_cleanup(p->multi);
    free(p);
}

static pool_t *pool_new(void) {
    pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->refs = 1;
    p->multi = curl_multi_init();
    if (!p->multi) {
        free(p);
        return NULL;
    }
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return p;
}

static void conn_unref(conn_t *c) {
    if (!c || --c->refs > 0) return;
    pool_unref(c->pool);
    free(c);
}

static void xfer_detach(xfer_t *x) {
    if (x->in_multi) {
        curl_multi_remove_handle(x->pool->multi, x->easy);
        x->in_multi = 0;
    }
}

static void xfer_free(xfer_t *x) {
    if (!x) return;
    xfer_detach(x);
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->url);
    free(x->body);
    for (int i = 0; i < 5; i++) free(x->tls[i]);
    free(x->data.p);
    free(x->hdr.p);
    free(x->trl.p);
    pool_unref(x->pool);
    conn_unref(x->conn);
    free(x);
}

static int buf_add(buf_t *b, const char *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 1;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
    xfer_t *x = ud;
    size_t k = size * n;
    x->hdr_done = 1;
    if (!buf_add(&x->data, p, k)) {
        x->nomem = 1;
        return k ? 0 : 1;
    }
    return k;
}

/* Header lines of the response go to hdr until the blank line ending the
 * block; lines after it (HTTP/2 trailers) go to trl. A status line (an
 * interim 1xx response) starts the header block again. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    xfer_t *x = ud;
    size_t k = size * n;
    if (k >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->hdr.len = 0;
        x->hdr_done = 0;
        return k;
    }
    if (k <= 2 && (k == 0 || p[0] == '\r' || p[0] == '\n')) {
        x->hdr_done = 1;
        return k;
    }
    buf_t *b = x->hdr_done ? &x->trl : &x->hdr;
    if (b->len + k > MAX_HEADER_BYTES) {
        x->too_big = 1;
        return 0;
    }
    if (!buf_add(b, p, k)) {
        x->nomem = 1;
        return 0;
    }
    return k;
}

/* a cancelled transfer is aborted by libcurl itself (the stream is reset
 * properly) on the next perform; removing it mid-stream instead leaves the
 * HTTP/2 session of libcurl 7.88 broken for the next transfer */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt; (void)dn; (void)ut; (void)un;
    return ((xfer_t *)ud)->cancelled;
}

/* Aborts x through libcurl (see on_progress), then takes it out of the
 * multi whatever happened. */
static void collect(conn_t *c, pool_t *p);
static void xfer_abort(xfer_t *x) {
    x->cancelled = 1;
    if (!x->in_multi) return;
    int running;
    for (int i = 0; i < 3 && x->in_multi; i++) {
        curl_multi_perform(x->pool->multi, &running);
        collect(x->conn, x->pool);
    }
    xfer_detach(x);
    /* libcurl 7.88 fails the next stream of a connection on which a stream
     * was aborted ("Stream error in the HTTP/2 framing layer"): later
     * transfers go to a new pool; the old one lives on for the transfers
     * still running on it */
    conn_t *c = x->conn;
    if (c->pool == x->pool) {
        pool_unref(c->pool);
        c->pool = NULL;
        c->h2c_up = 0;
    }
}

static conn_t *check_conn(lua_State *L, int i) {
    conn_ud *u = luaL_checkudata(L, i, CONN_MT);
    if (!u->c) luaL_error(L, "dynpb: grpc: the client is closed");
    return u->c;
}

static xfer_t *check_xfer(lua_State *L, int i) {
    xfer_ud *u = luaL_checkudata(L, i, XFER_MT);
    if (!u->x) luaL_error(L, "dynpb: grpc: transfer already freed");
    return u->x;
}

static int l_conn(lua_State *L) {
    conn_ud *u = dp_newudata(L, sizeof *u);
    u->c = NULL;
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);
    conn_t *c = calloc(1, sizeof *c);
    if (!c) return luaL_error(L, "dynpb: grpc: out of memory");
    u->c = c;
    c->refs = 1;
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    c->reuse_bug = !vi || vi->version_num < 0x080000;
    return 1;
}

static int l_conn_close(lua_State *L) {
    conn_ud *u = luaL_checkudata(L, 1, CONN_MT);
    if (u->c) conn_unref(u->c);
    u->c = NULL;
    return 0;
}

static int l_conn_stats(lua_State *L) {
    conn_t *c = check_conn(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)c->connects);
    lua_setfield(L, -2, "connects");
    lua_pushinteger(L, (lua_Integer)c->transfers);
    lua_setfield(L, -2, "transfers");
    return 1;
}

static char *dup_field(lua_State *L, int t, const char *name, size_t *len, int required) {
    lua_getfield(L, t, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (required) luaL_error(L, "dynpb: grpc: transfer needs '%s'", name);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "dynpb: grpc: '%s' must be a string", name);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    char *d = malloc(n + 1);
    if (!d) luaL_error(L, "dynpb: grpc: out of memory");
    memcpy(d, s, n);
    d[n] = '\0';
    if (len) *len = n;
    lua_pop(L, 1);
    return d;
}

static long int_field(lua_State *L, int t, const char *name, long dflt) {
    lua_getfield(L, t, name);
    long v = dflt;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) || lua_tonumber(L, -1) > 1e12)
            luaL_error(L, "dynpb: grpc: '%s' must be a number in 0..1e12", name);
        v = (long)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* The HTTP version asked of libcurl. https: ALPN (h2 or fail later on the
 * content type). http: prior knowledge (h2c), except on libcurl < 8.0.0
 * once an h2c connection exists: those versions fail a reused prior-knowledge
 * connection with "Error in the HTTP2 framing layer" (curl PR 10643), so
 * the request asks for CURL_HTTP_VERSION_2TLS, which multiplexes on the
 * existing HTTP/2 connection. If that connection is gone, libcurl sends
 * HTTP/1.1 on a new one, which a gRPC server rejects before running anything;
 * the transfer is then retried once with prior knowledge (see retry_fresh). */
static long xfer_version(const xfer_t *x) {
    if (!x->h2c || x->reuse_try) return (long)CURL_HTTP_VERSION_2TLS;
    return (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
}

/* conn:start(req) --> xfer. [-0, +1, e] raises on misuse or when libcurl
 * refuses an option (a static cause); network failures come from step. */
static int l_conn_start(lua_State *L) {
    conn_t *c = check_conn(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    xfer_ud *u = dp_newudata(L, sizeof *u);             /* +1 */
    u->x = NULL;
    luaL_getmetatable(L, XFER_MT);
    lua_setmetatable(L, -2);
    xfer_t *x = calloc(1, sizeof *x);
    if (!x) return luaL_error(L, "dynpb: grpc: out of memory");
    u->x = x;
    x->conn = c;
    c->refs++;
    if (!c->pool && !(c->pool = pool_new()))
        return luaL_error(L, "dynpb: grpc: cannot create a libcurl multi handle");
    x->pool = c->pool;
    x->pool->refs++;
    static const char *const tls_fields[5] = { "cafile", "capath", "cert", "key", "key_password" };
    static const CURLoption tls_opts[5] = {
        CURLOPT_CAINFO, CURLOPT_CAPATH, CURLOPT_SSLCERT, CURLOPT_SSLKEY, CURLOPT_KEYPASSWD
    };
    x->url = dup_field(L, 2, "url", NULL, 1);
    x->body = dup_field(L, 2, "body", &x->body_len, 0);
    for (int i = 0; i < 5; i++) x->tls[i] = dup_field(L, 2, tls_fields[i], NULL, 0);
    long timeout_ms = int_field(L, 2, "timeout_ms", 0);
    long connect_ms = int_field(L, 2, "connect_timeout_ms", 10000);
    lua_getfield(L, 2, "prior_knowledge");
    int h2c = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "headers");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        for (int i = 1;; i++) {
            lua_rawgeti(L, t, i);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            if (!s || strlen(s) != n || strpbrk(s, "\r\n"))
                luaL_error(L, "dynpb: grpc: header line %d is not a string without CR/LF/NUL", i);
            struct curl_slist *l = curl_slist_append(x->headers, s);
            if (!l) luaL_error(L, "dynpb: grpc: out of memory");
            x->headers = l;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    x->easy = curl_easy_init();
    if (!x->easy) return luaL_error(L, "dynpb: grpc: cannot create a libcurl handle");
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, x->url);
    SET(CURLOPT_PRIVATE, (void *)x);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    x->h2c = h2c;
    x->reuse_try = h2c && c->reuse_bug && c->h2c_up;
    SET(CURLOPT_HTTP_VERSION, xfer_version(x));
    SET(CURLOPT_PIPEWAIT, 1L);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, x->body ? x->body : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->body ? x->body_len : 0));
    if (timeout_ms > 0) SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_HTTPHEADER, x->headers);
    SET(CURLOPT_WRITEFUNCTION, on_data);
    SET(CURLOPT_WRITEDATA, (void *)x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, (void *)x);
    SET(CURLOPT_TCP_NODELAY, 1L);
    if (getenv("DYNPB_GRPC_VERBOSE")) SET(CURLOPT_VERBOSE, 1L);    /* debugging: libcurl's trace on stderr */
    for (int i = 0; i < 5; i++)
        if (x->tls[i]) SET(tls_opts[i], x->tls[i]);
#undef SET
    if (rc != CURLE_OK) return luaL_error(L, "dynpb: grpc: libcurl option: %s", curl_easy_strerror(rc));
    CURLMcode mc = curl_multi_add_handle(x->pool->multi, e);
    if (mc != CURLM_OK) return luaL_error(L, "dynpb: grpc: %s", curl_multi_strerror(mc));
    x->in_multi = 1;
    return 1;
}

/* Collects finished transfers of c: marks them done, records their
 * result, and takes them out of the multi (their connection goes back to
 * the pool at once). */
static void collect(conn_t *c, pool_t *p) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x) continue;
        CURLcode rc = m->data.result;
        long status = 0, nc = 0, ver = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nc);
        curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
        c->connects += nc;
        xfer_detach(x);
        if (x->reuse_try && nc > 0) {
            /* not reused (the h2c connection was gone), so this went out
             * as HTTP/1.1, which no gRPC server runs: retry with h2c */
            x->reuse_try = 0;
            c->h2c_up = 0;
            x->hdr.len = x->trl.len = x->data.len = 0;
            x->hdr_done = 0;
            if (curl_easy_setopt(x->easy, CURLOPT_HTTP_VERSION, xfer_version(x)) == CURLE_OK &&
                curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L) == CURLE_OK &&
                curl_multi_add_handle(p->multi, x->easy) == CURLM_OK) {
                x->in_multi = 1;
                continue;
            }
        }
        if (x->h2c && ver == CURL_HTTP_VERSION_2_0) c->h2c_up = 1;
        if (rc != CURLE_OK && c->pool == p) {
            /* after a failed transfer libcurl 7.88's HTTP/2 session may be
             * unusable (as after an abort): later transfers get a new pool */
            pool_unref(p);
            c->pool = NULL;
            c->h2c_up = 0;
        }
        x->rc = rc;
        x->status = status;
        x->done = 1;
        c->transfers++;
    }
}

/* xfer:step(wait_ms) --> data, done. [-0, +2] */
static int l_xfer_step(lua_State *L) {
    xfer_t *x = check_xfer(L, 1);
    lua_Number w = luaL_optnumber(L, 2, 0);
    int wait_ms = w <= 0 ? 0 : w > 60000 ? 60000 : (int)w;
    conn_t *c = x->conn;
    if (!x->done && x->in_multi) {
        int running;
        CURLM *multi = x->pool->multi;
        CURLMcode mc = curl_multi_perform(multi, &running);
        collect(c, x->pool);
        if (mc == CURLM_OK && !x->done && x->data.len == 0 && wait_ms > 0) {
            mc = curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
            if (mc == CURLM_OK) mc = curl_multi_perform(multi, &running);
            collect(c, x->pool);
        }
        if (mc != CURLM_OK && !x->done) {
            x->done = 1;
            x->rc = CURLE_FAILED_INIT;
            snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_multi_strerror(mc));
            xfer_detach(x);
        }
    }
    lua_pushlstring(L, x->data.p ? x->data.p : "", x->data.len);
    x->data.len = 0;
    lua_pushboolean(L, x->done);
    return 2;
}

static int l_xfer_cancel(lua_State *L) {
    xfer_t *x = check_xfer(L, 1);
    if (!x->done) {
        xfer_abort(x);
        x->done = 1;
        x->rc = CURLE_ABORTED_BY_CALLBACK;
    }
    return 0;
}

/* xfer:headers() --> the raw response header lines once the header block
 * ended, else nil. [-0, +1] */
static int l_xfer_headers(lua_State *L) {
    xfer_t *x = check_xfer(L, 1);
    if (!x->hdr_done && !x->done) lua_pushnil(L);
    else lua_pushlstring(L, x->hdr.p ? x->hdr.p : "", x->hdr.len);
    return 1;
}

/* xfer:result() --> table. [-0, +1] raises while the transfer runs */
static int l_xfer_result(lua_State *L) {
    xfer_t *x = check_xfer(L, 1);
    if (!x->done) return luaL_error(L, "dynpb: grpc: transfer still running");
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)x->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, x->hdr.p ? x->hdr.p : "", x->hdr.len);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, x->trl.p ? x->trl.p : "", x->trl.len);
    lua_setfield(L, -2, "trailers");
    lua_pushinteger(L, (lua_Integer)x->rc);
    lua_setfield(L, -2, "curl_code");
    const char *kind = NULL;
    if (x->cancelled) kind = "cancelled";
    else if (x->too_big) kind = "response headers too large";
    else if (x->nomem) kind = "out of memory receiving the response";
    if (kind) {
        lua_pushstring(L, kind);
        lua_setfield(L, -2, "error");
    } else if (x->rc != CURLE_OK) {
        size_t n = strlen(x->errbuf);
        while (n && (x->errbuf[n - 1] == '\n' || x->errbuf[n - 1] == '\r')) x->errbuf[--n] = '\0';
        if (n) lua_pushfstring(L, "%s (%s)", curl_easy_strerror(x->rc), x->errbuf);
        else lua_pushstring(L, curl_easy_strerror(x->rc));
        lua_setfield(L, -2, "error");
        const char *cls = "other";
        switch (x->rc) {
        case CURLE_OPERATION_TIMEDOUT: cls = "timeout"; break;
        case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY: cls = "connect"; break;
        default: break;
        }
        lua_pushstring(L, cls);
        lua_setfield(L, -2, "error_class");
    }
    return 1;
}

static int xfer_gc(lua_State *L) {
    xfer_ud *u = luaL_checkudata(L, 1, XFER_MT);
    if (u->x && !u->x->done) xfer_abort(u->x);
    xfer_free(u->x);
    u->x = NULL;
    return 0;
}

static const luaL_Reg conn_methods[] = {
    { "start", l_conn_start }, { "stats", l_conn_stats }, { "close", l_conn_close }, { NULL, NULL }
};
static const luaL_Reg xfer_methods[] = {
    { "step", l_xfer_step }, { "result", l_xfer_result }, { "cancel", l_xfer_cancel },
    { "headers", l_xfer_headers }, { NULL, NULL }
};
static const luaL_Reg module_funcs[] = {
    { "gzip", l_gzip }, { "gunzip", l_gunzip }, { "b64encode", l_b64encode },
    { "b64decode", l_b64decode }, { "now", l_now }, { "conn", l_conn }, { NULL, NULL }
};

/* [-0, +0] creates metatable `name` with methods and __gc */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
    if (luaL_newmetatable(L, name)) {
        if (methods) {
            lua_newtable(L);
            dp_setfuncs(L, methods);
            lua_setfield(L, -2, "__index");
        }
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

DP_EXPORT int luaopen_dynpb_grpc_core(lua_State *L) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "dynpb: grpc: curl_global_init failed");
    new_class(L, ZS_MT, NULL, zs_gc);
    new_class(L, CONN_MT, conn_methods, l_conn_close);
    new_class(L, XFER_MT, xfer_methods, xfer_gc);
    lua_newtable(L);
    dp_setfuncs(L, module_funcs);
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    lua_pushboolean(L, vi && (vi->features & CURL_VERSION_HTTP2));
    lua_setfield(L, -2, "http2");
    return 1;
}
