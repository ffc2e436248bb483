/*
 * durable.c -- dynpb.write_durable(path, bytes): replace a file so that a
 * crash or a power loss leaves either the old or the new contents.
 *
 * Lua API (module "dynpb"):
 *   dynpb.write_durable(path, bytes) --> true | nil, err
 *
 * The steps, each checked:
 *   1. open("<path>.<12 random hex>.tmp", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|
 *      O_CLOEXEC, 0644) in the target's directory (the umask applies; the
 *      name is unpredictable, and O_EXCL never opens an existing file or a
 *      symlink someone planted; EEXIST retries with a new name);
 *   2. write all the bytes (short writes and EINTR continue);
 *   3. fsync the temp file, then close it (a close error fails too);
 *   4. rename it over path (atomic; a symlink at path is replaced, never
 *      followed);
 *   5. open the directory and fsync it, so the rename itself is on disk.
 * A failure in steps 1-4 removes the temp file and leaves path untouched;
 * a failure in step 5 leaves the new file in place (the rename happened)
 * but reports it, since its durability is not confirmed. Errors are data
 * errors: nil and "dynpb: write_durable <path>: <step>: <strerror>".
 * Misuse (non-string arguments, an empty path) raises.
 *
 * The function blocks for the fsyncs (milliseconds on a disk); callers
 * that must not block (dynpb.resty) run it on a thread
 * (ngx.run_worker_thread). It uses no Lua state while doing I/O and
 * allocates only the temp name, in a userdata (nothing leaks on an error).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "dynpb.h"

#define TMP_TRIES 16

/* 6 random bytes; getrandom where there is one, else a mix of clock, pid
   and the previous value (the name then is only hard to guess, and O_EXCL
   still makes it safe). */
static void random_bytes(unsigned char out[6], unsigned counter) {
#if defined(__linux__)
    if (getrandom(out, 6, GRND_NONBLOCK) == 6) return;
#endif
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long x = (unsigned long long)ts.tv_nsec * 0x9E3779B97F4A7C15ull
                           ^ (unsigned long long)ts.tv_sec ^ ((unsigned long long)getpid() << 20)
                           ^ ((unsigned long long)counter << 40);
    for (int i = 0; i < 6; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        out[i] = (unsigned char)(x >> 56);
    }
}

/* Writes all n bytes to fd; returns 0 or -1 with errno set. */
static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync the directory holding path (dlen bytes of path, 0 = "."). */
static int sync_dir(const char *path, size_t dlen, char *buf) {
    if (dlen == 0) {
        strcpy(buf, ".");
    } else {
        memcpy(buf, path, dlen);
        buf[dlen] = '\0';
    }
#ifdef O_DIRECTORY
    int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
#else
    int fd = open(buf, O_RDONLY | O_CLOEXEC);
#endif
    if (fd < 0) return -1;
    int rc;
    do rc = fsync(fd); while (rc != 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    /* some file systems cannot fsync a directory: nothing more to do there */
    if (rc != 0 && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    return rc;
}

/* [-0, +1|2, e] dynpb.write_durable(path, bytes) --> true | nil, err */
int dp_l_write_durable(lua_State *L) {
    size_t plen, n;
    const char *path = luaL_checklstring(L, 1, &plen);
    const char *bytes = luaL_checklstring(L, 2, &n);
    if (plen == 0 || strlen(path) != plen)
        return luaL_error(L, "dynpb: write_durable: path must be a non-empty string without NUL");
    /* the temp name: "<path>.<12 hex>.tmp"; the same buffer serves the directory */
    char *tmp = dp_newudata(L, plen + 32);                    /* +1 name buffer */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (slash && dlen == 0) dlen = 1;                         /* "/x": the root */
    const char *step = "create the temp file";
    int fd = -1;
    for (unsigned t = 0; t < TMP_TRIES; t++) {
        unsigned char r[6];
        random_bytes(r, t);
        snprintf(tmp, plen + 32, "%s.%02x%02x%02x%02x%02x%02x.tmp", path, r[0], r[1], r[2],
                 r[3], r[4], r[5]);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) break;
    }
    int err = 0;
    if (fd < 0) {
        err = errno;
    } else {
        if (write_all(fd, bytes, n) != 0) {
            step = "write the temp file";
            err = errno;
        } else {
            int rc;
            do rc = fsync(fd); while (rc != 0 && errno == EINTR);
            if (rc != 0) {
                step = "fsync the temp file";
                err = errno;
            }
        }
        if (close(fd) != 0 && !err) {
            step = "close the temp file";
            err = errno;
        }
        if (!err && rename(tmp, path) != 0) {
            step = "rename the temp file over it";
            err = errno;
        }
        if (err) unlink(tmp);
    }
    if (!err && sync_dir(path, dlen, tmp) != 0) {
        step = "fsync its directory (the new file is in place)";
        err = errno;
    }
    if (err) {
        lua_pushnil(L);
        lua_pushfstring(L, "dynpb: write_durable %s: %s: %s", path, step, strerror(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}
