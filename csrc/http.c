/*
 * http.c -- dynpb.http: the libcurl transport of dynpb.registry.
 *
 * Lua API (module "dynpb.http"):
 *   http.fetch(req)  --> res | nil, err     blocking GET (bounded by req.timeout)
 *   http.start(req)  --> job | nil, err     the same GET on a POSIX thread
 *   job:poll()       --> nil while running; then, exactly once, res | false, err
 *                        (polling again after that raises)
 *   job:cancel()     abort the transfer and join the thread; idempotent.
 *                    A later poll gives the outcome (normally false, "...: cancelled").
 *   http.now()       --> seconds (float) on CLOCK_MONOTONIC, for scheduling
 *   http.sleep(s)    sleep s seconds (nanosleep; blocks the calling thread)
 *   http.curl_version  libcurl's version, e.g. "7.88.1"
 *
 *   req = { url = "http(s)://..." | "file://...",   -- required
 *           headers = { Name = "value", ... },
 *           timeout = 30, connect_timeout = 10,     -- seconds, > 0
 *           max_bytes = 64 MiB, max_redirects = 5,
 *           forward_headers = false, allow_insecure_redirect = false,
 *           cafile =, capath =, cert =, key =, key_password = }  -- TLS; peer and host
 *                                                                  -- are always verified
 *   res = { status = 200, body = "...", url = effective url,
 *           headers = { etag =, ["last-modified"] =, ["retry-after"] =, ["content-type"] = } }
 *
 * Redirects (301, 302, 303, 307, 308; at most max_redirects; http and https
 * only) are followed here, hop by hop, not by libcurl: `headers` and the
 * URL's user:password go only to the scheme, host and port of req.url
 * (forward_headers = true sends the headers to every hop), and a redirect
 * from https to http is refused unless allow_insecure_redirect = true.
 * req.timeout bounds the whole chain.
 *
 * Every completed HTTP exchange is a result, whatever its status (the caller
 * decides what 304, 429 or 500 mean). A successful non-HTTP transfer
 * (file://) reports status 200. Failures to complete an exchange (refused,
 * timeout, DNS, TLS, truncated body, body over max_bytes, cancelled) give
 * nil/false and a message "GET <url>: <reason>" (userinfo stripped from the
 * URL). Misuse (wrong types, unknown request fields, CR/LF in headers) raises.
 *
 * Ownership: a request lives in a malloc'd fetch_t owned by a job userdata
 * from the moment the request is read, so a Lua error at any point leaves
 * it to the userdata's __gc. The worker thread touches only its fetch_t and
 * libcurl, never the lua_State; `cancel` and `done` are the only fields
 * shared while it runs, under fetch_t.mu. __gc cancels, joins, then frees.
 * No mutable C global: curl_global_init (reference counted and thread-safe
 * since libcurl 7.84) is called from luaopen. CURLOPT_QUICK_EXIT (7.87+)
 * lets a cancel leave a DNS lookup to libcurl's resolver thread instead of
 * waiting for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "dynpb.h"

#if LIBCURL_VERSION_NUM < 0x075500
#error "dynpb.http needs libcurl >= 7.85 (CURLOPT_PROTOCOLS_STR, curl_multi_wakeup)"
#endif

#define JOB_MT "dynpb.http.job"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_MS 10000L
#define DEFAULT_MAX_BYTES ((curl_off_t)64 * 1024 * 1024)
#define DEFAULT_REDIRECTS 5L
#define MAX_REDIRECTS 20L
#define MAX_HEADER_VALUE 1024   /* longer captured header values are dropped */

enum { H_ETAG, H_LAST_MODIFIED, H_RETRY_AFTER, H_CONTENT_TYPE, H_COUNT };
static const char *const captured_names[H_COUNT] = {
    "etag", "last-modified", "retry-after", "content-type"
};

typedef struct {
    /* request: set by the Lua thread before the transfer, then read-only */
    char *url;                  /* as given */
    char *shown;                /* url without userinfo, for messages */
    struct curl_slist *headers;
    char *tls[5];               /* cafile, capath, cert, key, key_password */
    long timeout_ms, connect_ms, max_redirects;
    curl_off_t max_bytes;
    int forward_headers;        /* headers to every redirect hop */
    int allow_insecure;         /* follow https -> http */
    char *user, *password;      /* userinfo of url (for its origin only) */
    char *origin[3];            /* scheme, host, port of url (NULL: unparsable) */
    char *hop;                  /* the URL of the current redirect hop */
    CURL *easy;
    CURLM *multi;
    /* response: written by the transfer only, read after `done` */
    char *body;
    size_t len, cap;
    char *hdr[H_COUNT];
    long status;
    int over_limit;             /* body exceeded max_bytes */
    int nomem;                  /* a body buffer could not grow */
    CURLcode rc;
    char errbuf[CURL_ERROR_SIZE];
    char redirect_err[512];     /* why a redirect was not followed ("" = none) */
    /* shared with the worker thread, under mu */
    pthread_mutex_t mu;
    int mu_ready;
    int cancel;
    int done;
    /* thread bookkeeping, Lua thread only */
    int joinable;
    pthread_t thread;
} fetch_t;

typedef struct {
    fetch_t *f;                 /* NULL once the result was taken or freed */
} job_ud;

static const char *const tls_fields[5] = { "cafile", "capath", "cert", "key", "key_password" };

/* ---- lifetime */

/* Frees f and everything it owns. The worker must not be running. */
static void fetch_free(fetch_t *f) {
    if (!f) return;
    if (f->easy) curl_easy_cleanup(f->easy);
    if (f->multi) curl_multi_cleanup(f->multi);
    curl_slist_free_all(f->headers);
    free(f->url);
    free(f->shown);
    free(f->hop);
    free(f->user);
    free(f->password);
    for (int i = 0; i < 3; i++) free(f->origin[i]);
    for (int i = 0; i < 5; i++) free(f->tls[i]);
    for (int i = 0; i < H_COUNT; i++) free(f->hdr[i]);
    free(f->body);
    if (f->mu_ready) pthread_mutex_destroy(&f->mu);
    free(f);
}

static int is_cancelled(fetch_t *f) {
    pthread_mutex_lock(&f->mu);
    int c = f->cancel;
    pthread_mutex_unlock(&f->mu);
    return c;
}

static int is_done(fetch_t *f) {
    pthread_mutex_lock(&f->mu);
    int d = f->done;
    pthread_mutex_unlock(&f->mu);
    return d;
}

/* Stops a running worker (abort flag + wakeup) and joins it. Blocks only as
 * long as libcurl takes to return from one poll step after the wakeup. */
static void fetch_stop(fetch_t *f) {
    if (!f || !f->joinable) return;
    pthread_mutex_lock(&f->mu);
    f->cancel = 1;
    pthread_mutex_unlock(&f->mu);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    f->joinable = 0;
}

static int job_gc(lua_State *L) {
    job_ud *u = luaL_checkudata(L, 1, JOB_MT);
    if (u->f) {
        fetch_stop(u->f);
        fetch_free(u->f);
        u->f = NULL;
    }
    return 0;
}

/* ---- libcurl callbacks (run on the transfer's thread; no Lua) */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    fetch_t *f = ud;
    size_t k = size * n;
    if ((curl_off_t)(f->len + k) > f->max_bytes) {
        f->over_limit = 1;
        return k ? 0 : 1;       /* anything but k aborts the transfer */
    }
    if (f->len + k > f->cap) {
        size_t cap = f->cap ? f->cap : 16384;
        while (cap < f->len + k) cap *= 2;
        if ((curl_off_t)cap > f->max_bytes) cap = (size_t)f->max_bytes;
        char *b = realloc(f->body, cap);
        if (!b) {
            f->nomem = 1;
            return k ? 0 : 1;
        }
        f->body = b;
        f->cap = cap;
    }
    memcpy(f->body + f->len, p, k);
    f->len += k;
    return k;
}

/* Captures the headers in captured_names of the last response (a status
 * line resets them, so a redirect's headers do not leak into the result). */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    fetch_t *f = ud;
    size_t k = size * n;
    if (k >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        for (int i = 0; i < H_COUNT; i++) {
            free(f->hdr[i]);
            f->hdr[i] = NULL;
        }
        return k;
    }
    const char *colon = memchr(p, ':', k);
    if (!colon) return k;
    size_t nl = (size_t)(colon - p);
    for (int i = 0; i < H_COUNT; i++) {
        if (strlen(captured_names[i]) != nl || strncasecmp(p, captured_names[i], nl) != 0)
            continue;
        const char *v = colon + 1, *e = p + k;
        while (v < e && (*v == ' ' || *v == '\t')) v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t')) e--;
        size_t vl = (size_t)(e - v);
        if (vl > MAX_HEADER_VALUE) break;
        char *s = malloc(vl + 1);
        if (!s) break;          /* the header is lost, the transfer goes on */
        memcpy(s, v, vl);
        s[vl] = '\0';
        free(f->hdr[i]);
        f->hdr[i] = s;
        break;
    }
    return k;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt; (void)dn; (void)ut; (void)un;
    return is_cancelled(ud);    /* non-zero aborts with CURLE_ABORTED_BY_CALLBACK */
}

/* ---- redirects (transfer's thread; no Lua) */

/* Splits url into lowercase scheme, host and port (the scheme's default if
   none); 0 on success. The strings are curl_malloc'd (curl_free). */
static int url_origin(const char *url, char *out[3]) {
    out[0] = out[1] = out[2] = NULL;
    CURLU *u = curl_url();
    if (!u) return -1;
    int bad = curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &out[0], 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &out[1], 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PORT, &out[2], CURLU_DEFAULT_PORT) != CURLUE_OK;
    curl_url_cleanup(u);
    if (bad) {
        for (int i = 0; i < 3; i++) {
            curl_free(out[i]);
            out[i] = NULL;
        }
        return -1;
    }
    for (int i = 0; i < 2; i++)
        for (char *c = out[i]; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return 0;
}

/* url with any "user:pass@" dropped, cut to fit n bytes, into out */
static void shown_into(char *out, size_t n, const char *url) {
    const char *s = strstr(url, "://");
    const char *at = NULL;
    if (s) {
        size_t auth = strcspn(s + 3, "/?#");
        for (const char *q = s + 3; q < s + 3 + auth; q++)
            if (*q == '@') at = q;
    }
    if (at) snprintf(out, n, "%.*s%s", (int)(s + 3 - url), url, at + 1);
    else snprintf(out, n, "%s", url);
}

/* One transfer of f->easy (already configured) to its end, cancellation or
   failure: sets rc and, on success, status. */
static void run_transfer(fetch_t *f) {
    int running = 1;
    CURLMcode mc = curl_multi_add_handle(f->multi, f->easy);
    if (mc != CURLM_OK) {
        f->rc = CURLE_FAILED_INIT;
        snprintf(f->errbuf, sizeof f->errbuf, "%s", curl_multi_strerror(mc));
        return;
    }
    f->rc = CURLE_OK;
    while (running) {
        mc = curl_multi_perform(f->multi, &running);
        if (mc == CURLM_OK && running && !is_cancelled(f))
            mc = curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            f->rc = CURLE_FAILED_INIT;
            snprintf(f->errbuf, sizeof f->errbuf, "%s", curl_multi_strerror(mc));
            break;
        }
        if (running && is_cancelled(f)) {
            f->rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
    }
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(f->multi, &left)))
        if (m->msg == CURLMSG_DONE && m->easy_handle == f->easy) f->rc = m->data.result;
    if (f->rc == CURLE_OK) {
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
        if (f->status == 0) f->status = 200;    /* file:// and other non-HTTP */
    }
    curl_multi_remove_handle(f->multi, f->easy);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prepares the next hop to target (absolute URL). Returns 0, or -1 with
   f->redirect_err set (the redirect is refused). */
static int next_hop(fetch_t *f, const char *target, long deadline) {
    char shown[300];
    shown_into(shown, sizeof shown, target);
    if (strncasecmp(target, "http://", 7) != 0 && strncasecmp(target, "https://", 8) != 0) {
        snprintf(f->redirect_err, sizeof f->redirect_err,
                 "redirect to %s refused: only http and https are followed", shown);
        return -1;
    }
    char *o[3];
    if (url_origin(target, o) != 0) {
        snprintf(f->redirect_err, sizeof f->redirect_err, "redirect to %s: not a valid URL", shown);
        return -1;
    }
    int ok = 0;
    if (f->origin[0] && strcmp(f->origin[0], "https") == 0 && strcmp(o[0], "http") == 0
               && !f->allow_insecure) {
        snprintf(f->redirect_err, sizeof f->redirect_err,
                 "redirect from https to %s refused (allow_insecure_redirect = true allows it)",
                 shown);
    } else {
        ok = 1;
    }
    int same = ok && f->origin[0] && strcmp(o[0], f->origin[0]) == 0
               && strcmp(o[1], f->origin[1]) == 0 && strcmp(o[2], f->origin[2]) == 0;
    for (int i = 0; i < 3; i++) curl_free(o[i]);
    if (!ok) return -1;
    char *copy = strdup(target);
    if (!copy) {
        snprintf(f->redirect_err, sizeof f->redirect_err, "redirect to %s: out of memory", shown);
        return -1;
    }
    free(f->hop);
    f->hop = copy;
    long left = deadline - now_ms();
    if (left < 1) left = 1;
    CURL *e = f->easy;
    curl_easy_setopt(e, CURLOPT_URL, f->hop);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left);
    /* custom headers and credentials only to the origin of req.url */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, same || f->forward_headers ? f->headers : NULL);
    curl_easy_setopt(e, CURLOPT_USERNAME, same ? f->user : NULL);
    curl_easy_setopt(e, CURLOPT_PASSWORD, same ? f->password : NULL);
    /* a new response: drop the redirect's body and headers */
    f->len = 0;
    f->status = 0;
    for (int i = 0; i < H_COUNT; i++) {
        free(f->hdr[i]);
        f->hdr[i] = NULL;
    }
    return 0;
}

/* Runs the prepared request, following redirects, to its end, cancellation
   or failure. Touches only f and libcurl; sets f->done last. */
static void fetch_run(fetch_t *f) {
    long deadline = now_ms() + f->timeout_ms;
    for (long hops = 0;; hops++) {
        run_transfer(f);
        if (f->rc != CURLE_OK || f->max_redirects == 0) break;
        long st = f->status;
        if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308) break;
        char *loc = NULL;
        if (curl_easy_getinfo(f->easy, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || !loc) break;
        if (hops >= f->max_redirects) {
            snprintf(f->redirect_err, sizeof f->redirect_err,
                     "too many redirects (max_redirects = %ld)", f->max_redirects);
            break;
        }
        if (next_hop(f, loc, deadline) != 0) break;
        if (is_cancelled(f)) {
            f->rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
    }
    pthread_mutex_lock(&f->mu);
    f->done = 1;
    pthread_mutex_unlock(&f->mu);
}

static void *fetch_thread(void *ud) {
    fetch_run(ud);
    return NULL;
}

/* ---- reading the request (Lua thread; raises on misuse) */

static char *dup_string(lua_State *L, const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) luaL_error(L, "dynpb: http: out of memory");
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* [-0, +0] copy of the URL with any "user:pass@" removed. */
static char *shown_url(lua_State *L, const char *url) {
    const char *s = strstr(url, "://");
    size_t n = strlen(url);
    if (s) {
        const char *host = s + 3;
        size_t auth = strcspn(host, "/?#");
        const char *at = NULL;
        for (const char *q = host; q < host + auth; q++)
            if (*q == '@') at = q;
        if (at) {
            size_t pre = (size_t)(host - url);
            char *d = malloc(n + 1);
            if (!d) luaL_error(L, "dynpb: http: out of memory");
            memcpy(d, url, pre);
            strcpy(d + pre, at + 1);
            return d;
        }
    }
    return dup_string(L, url, n);
}

static int has_crlf(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 1;
    return 0;
}

/* [-0, +0] seconds at the top of the stack -> milliseconds; raises unless a number > 0 */
static long seconds_ms(lua_State *L, const char *name) {
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "dynpb: http: request field '%s' must be a number of seconds, got %s",
                   name, luaL_typename(L, -1));
    lua_Number s = lua_tonumber(L, -1);
    if (!(s > 0) || s > 86400.0 * 365)
        luaL_error(L, "dynpb: http: request field '%s' must be > 0 seconds", name);
    long ms = (long)(s * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

static void read_headers(lua_State *L, int idx, fetch_t *f) {
    if (!lua_istable(L, idx))
        luaL_error(L, "dynpb: http: request field 'headers' must be a table, got %s",
                   luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx)) {                          /* -1 +2 name, value */
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "dynpb: http: headers must map strings to strings");
        size_t nl, vl;
        const char *name = lua_tolstring(L, -2, &nl);
        const char *val = lua_tolstring(L, -1, &vl);
        if (nl == 0 || has_crlf(name, nl) || memchr(name, ':', nl) || memchr(name, ' ', nl))
            luaL_error(L, "dynpb: http: invalid header name '%s'", name);
        if (has_crlf(val, vl))
            luaL_error(L, "dynpb: http: header '%s' has a CR, LF or NUL in its value", name);
        /* "Name;" is libcurl's way to send a header with an empty value */
        lua_pushfstring(L, vl ? "%s: %s" : "%s;", name, val);   /* +1 line */
        struct curl_slist *l = curl_slist_append(f->headers, lua_tostring(L, -1));
        if (!l) luaL_error(L, "dynpb: http: out of memory");
        f->headers = l;
        lua_pop(L, 2);                                  /* -2 line, value */
    }
}

/* Reads the request table at idx into f (which the caller's userdata owns). */
static void read_request(lua_State *L, int idx, fetch_t *f) {
    luaL_checktype(L, idx, LUA_TTABLE);
    idx = dp_absindex(L, idx);
    f->timeout_ms = DEFAULT_TIMEOUT_MS;
    f->connect_ms = DEFAULT_CONNECT_MS;
    f->max_bytes = DEFAULT_MAX_BYTES;
    f->max_redirects = DEFAULT_REDIRECTS;
    lua_pushnil(L);
    while (lua_next(L, idx)) {                          /* -1 +2 key, value */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int t = lua_type(L, -1);
        int known = 0;
        if (!k) {
            luaL_error(L, "dynpb: http: unknown request field (%s key)", luaL_typename(L, -2));
        } else if (strcmp(k, "url") == 0) {
            if (t != LUA_TSTRING) luaL_error(L, "dynpb: http: request field 'url' must be a string");
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            if (n == 0 || has_crlf(s, n)) luaL_error(L, "dynpb: http: invalid url");
            f->url = dup_string(L, s, n);
            f->shown = shown_url(L, f->url);
            known = 1;
        } else if (strcmp(k, "headers") == 0) {
            read_headers(L, lua_gettop(L), f);
            known = 1;
        } else if (strcmp(k, "timeout") == 0) {
            f->timeout_ms = seconds_ms(L, k);
            known = 1;
        } else if (strcmp(k, "connect_timeout") == 0) {
            f->connect_ms = seconds_ms(L, k);
            known = 1;
        } else if (strcmp(k, "forward_headers") == 0 || strcmp(k, "allow_insecure_redirect") == 0) {
            if (t != LUA_TBOOLEAN)
                luaL_error(L, "dynpb: http: request field '%s' must be a boolean, got %s", k,
                           luaL_typename(L, -1));
            if (k[0] == 'f') f->forward_headers = lua_toboolean(L, -1);
            else f->allow_insecure = lua_toboolean(L, -1);
            known = 1;
        } else if (strcmp(k, "max_bytes") == 0 || strcmp(k, "max_redirects") == 0) {
            int is_bytes = strcmp(k, "max_bytes") == 0;
            lua_Number v = t == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
            lua_Number hi = is_bytes ? 9.0e15 : (lua_Number)MAX_REDIRECTS;
            if (t != LUA_TNUMBER || !(v >= 0) || v > hi || v != (lua_Number)(long long)v)
                luaL_error(L, "dynpb: http: request field '%s' must be an integer in 0..%s", k,
                           is_bytes ? "2^53" : "20");
            if (is_bytes) f->max_bytes = (curl_off_t)v;
            else f->max_redirects = (long)v;
            known = 1;
        } else {
            for (int i = 0; i < 5 && !known; i++) {
                if (strcmp(k, tls_fields[i]) != 0) continue;
                if (t != LUA_TSTRING)
                    luaL_error(L, "dynpb: http: request field '%s' must be a string", k);
                size_t n;
                const char *s = lua_tolstring(L, -1, &n);
                f->tls[i] = dup_string(L, s, n);
                known = 1;
            }
        }
        if (!known) luaL_error(L, "dynpb: http: unknown request field '%s'", k);
        lua_pop(L, 1);                                  /* -1 value */
    }
    if (!f->url) luaL_error(L, "dynpb: http: request needs a 'url'");
}

/* Creates the curl handles and sets every option. Returns NULL or a static
 * description of what failed (the caller reports it as a data error). */
static const char *prepare(fetch_t *f) {
    static const CURLoption tls_opts[5] = {
        CURLOPT_CAINFO, CURLOPT_CAPATH, CURLOPT_SSLCERT, CURLOPT_SSLKEY, CURLOPT_KEYPASSWD
    };
    f->easy = curl_easy_init();
    f->multi = curl_multi_init();
    if (!f->easy || !f->multi) return "cannot create a libcurl handle";
    /* the origin of url, and its credentials, for the redirect checks */
    char *o[3];
    if (url_origin(f->url, o) == 0) {
        for (int i = 0; i < 3; i++) {
            f->origin[i] = strdup(o[i]);
            curl_free(o[i]);
            if (!f->origin[i]) return "out of memory";
        }
        CURLU *u = curl_url();
        if (!u) return "out of memory";
        char *user = NULL, *pass = NULL;
        if (curl_url_set(u, CURLUPART_URL, f->url, 0) == CURLUE_OK) {
            curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
            curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
        }
        curl_url_cleanup(u);
        if (user) f->user = strdup(user);
        if (pass) f->password = strdup(pass);
        curl_free(user);
        curl_free(pass);
        if ((user && !f->user) || (pass && !f->password)) return "out of memory";
    }
    CURL *e = f->easy;
    CURLcode c = CURLE_OK;
#define SET(opt, val) do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, f->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
    SET(CURLOPT_FOLLOWLOCATION, 0L);            /* followed by fetch_run */
#if LIBCURL_VERSION_NUM >= 0x075700
    SET(CURLOPT_QUICK_EXIT, 1L);                /* cancel: do not wait for a DNS lookup */
#endif
    SET(CURLOPT_TIMEOUT_MS, f->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, f->connect_ms);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_MAXFILESIZE_LARGE, f->max_bytes);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_USERAGENT, "dynpb.http libcurl/" LIBCURL_VERSION);
    SET(CURLOPT_HTTPHEADER, f->headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)f);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)f);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, (void *)f);
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    for (int i = 0; i < 5; i++)
        if (f->tls[i]) SET(tls_opts[i], f->tls[i]);
#undef SET
    return c == CURLE_OK ? NULL : curl_easy_strerror(c);
}

/* [-0, +1] a new job userdata owning a zeroed fetch_t; raises on no memory. */
static fetch_t *new_job(lua_State *L) {
    job_ud *u = dp_newudata(L, sizeof *u);
    u->f = NULL;
    luaL_getmetatable(L, JOB_MT);
    lua_setmetatable(L, -2);
    fetch_t *f = calloc(1, sizeof *f);
    if (!f) luaL_error(L, "dynpb: http: out of memory");
    u->f = f;
    if (pthread_mutex_init(&f->mu, NULL) != 0) luaL_error(L, "dynpb: http: cannot create a mutex");
    f->mu_ready = 1;
    return f;
}

/* ---- results */

/* [-0, +1 or +2] pushes the outcome of a finished f: the result table
 * (returns 1) or `failure` (nil or false) and the message (returns 2). */
static int push_outcome(lua_State *L, fetch_t *f, int failure_is_false) {
    const char *why = NULL;
    char buf[64];
    if (f->over_limit || f->rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(buf, sizeof buf, "%lld", (long long)f->max_bytes);
        lua_pushfstring(L, "GET %s: response body larger than max_bytes (%s bytes)", f->shown, buf);
        why = "";
    } else if (f->nomem) {
        lua_pushfstring(L, "GET %s: out of memory receiving the body", f->shown);
        why = "";
    } else if (f->redirect_err[0]) {
        lua_pushfstring(L, "GET %s: %s", f->shown, f->redirect_err);
        why = "";
    } else if (f->rc == CURLE_ABORTED_BY_CALLBACK && f->cancel) {
        lua_pushfstring(L, "GET %s: cancelled", f->shown);
        why = "";
    } else if (f->rc != CURLE_OK) {
        size_t n = strlen(f->errbuf);
        const char *what = curl_easy_strerror(f->rc);
        size_t wn = strlen(what);
        while (n && (f->errbuf[n - 1] == '\n' || f->errbuf[n - 1] == '\r')) f->errbuf[--n] = '\0';
        /* libcurl's detail often repeats the summary ("Failed to connect ...:
           Couldn't connect to server"): say it once */
        if (n >= wn + 2 && memcmp(f->errbuf + n - wn, what, wn) == 0 &&
            f->errbuf[n - wn - 2] == ':' && f->errbuf[n - wn - 1] == ' ')
            f->errbuf[n -= wn + 2] = '\0';
        if (n && strcmp(f->errbuf, what) != 0)
            lua_pushfstring(L, "GET %s: %s (%s)", f->shown, what, f->errbuf);
        else lua_pushfstring(L, "GET %s: %s", f->shown, what);
        why = "";
    }
    if (why) {
        if (failure_is_false) lua_pushboolean(L, 0);
        else lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)f->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, f->body ? f->body : "", f->len);
    lua_setfield(L, -2, "body");
    char *eff = NULL;
    if (curl_easy_getinfo(f->easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) {
        lua_pushstring(L, eff);
        lua_setfield(L, -2, "url");
    }
    lua_createtable(L, 0, H_COUNT);
    for (int i = 0; i < H_COUNT; i++) {
        if (!f->hdr[i]) continue;
        lua_pushstring(L, f->hdr[i]);
        lua_setfield(L, -2, captured_names[i]);
    }
    lua_setfield(L, -2, "headers");
    return 1;
}

/* ---- module functions */

/* http.fetch(req) --> res | nil, err. Blocks up to req.timeout. */
static int l_fetch(lua_State *L) {
    fetch_t *f = new_job(L);                            /* +1 job (owns f) */
    int ju = lua_gettop(L);
    read_request(L, 1, f);
    const char *bad = prepare(f);
    if (bad) {
        lua_pushnil(L);
        lua_pushfstring(L, "GET %s: %s", f->shown, bad);
        return 2;
    }
    fetch_run(f);
    int n = push_outcome(L, f, 0);
    job_ud *u = lua_touserdata(L, ju);
    fetch_free(u->f);                                   /* free the body now, not at GC */
    u->f = NULL;
    return n;
}

/* http.start(req) --> job | nil, err. The thread starts at once. */
static int l_start(lua_State *L) {
    fetch_t *f = new_job(L);                            /* +1 job (owns f) */
    read_request(L, 1, f);
    const char *bad = prepare(f);
    if (bad) {
        lua_pushnil(L);
        lua_pushfstring(L, "GET %s: %s", f->shown, bad);
        return 2;
    }
    int rc = pthread_create(&f->thread, NULL, fetch_thread, f);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "GET %s: cannot start a thread (%s)", f->shown, strerror(rc));
        return 2;
    }
    f->joinable = 1;
    return 1;
}

/* job:poll() --> nil (running) | res | false, err. The result is given once. */
static int l_job_poll(lua_State *L) {
    job_ud *u = luaL_checkudata(L, 1, JOB_MT);
    fetch_t *f = u->f;
    if (!f) return luaL_error(L, "dynpb: http: job:poll: the result was already taken");
    if (f->joinable) {
        if (!is_done(f)) {
            lua_pushnil(L);
            return 1;
        }
        pthread_join(f->thread, NULL);
        f->joinable = 0;
    }
    int n = push_outcome(L, f, 1);
    fetch_free(f);
    u->f = NULL;
    return n;
}

/* job:cancel(): aborts a running transfer and joins its thread. */
static int l_job_cancel(lua_State *L) {
    job_ud *u = luaL_checkudata(L, 1, JOB_MT);
    if (u->f) fetch_stop(u->f);
    return 0;
}

static int l_job_tostring(lua_State *L) {
    job_ud *u = luaL_checkudata(L, 1, JOB_MT);
    const char *state = !u->f ? "taken" : (u->f->joinable && !is_done(u->f)) ? "running" : "done";
    lua_pushfstring(L, "dynpb.http.job(%s)", state);
    return 1;
}

/* http.now() --> monotonic seconds as a float */
static int l_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* http.sleep(seconds): 0 <= seconds <= 3600 */
static int l_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    if (!(s >= 0) || s > 3600) return luaL_error(L, "dynpb: http: sleep: seconds must be in 0..3600");
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return 0;
}

static const luaL_Reg job_methods[] = {
    { "poll", l_job_poll },
    { "cancel", l_job_cancel },
    { NULL, NULL }
};

static const luaL_Reg module_funcs[] = {
    { "fetch", l_fetch },
    { "start", l_start },
    { "now", l_now },
    { "sleep", l_sleep },
    { NULL, NULL }
};

DP_EXPORT int luaopen_dynpb_http(lua_State *L) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "dynpb: http: curl_global_init failed");
    if (luaL_newmetatable(L, JOB_MT)) {                 /* +1 metatable */
        lua_newtable(L);
        dp_setfuncs(L, job_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_job_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);                                      /* -1 */
    lua_newtable(L);                                    /* +1 module */
    dp_setfuncs(L, module_funcs);
    /* curl_version_info, not curl_version: the latter initialises LDAP/SASL */
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    lua_pushstring(L, vi && vi->version ? vi->version : "?");
    lua_setfield(L, -2, "curl_version");
    return 1;
}
