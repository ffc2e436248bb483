/*
 * failsys.c -- an LD_PRELOAD shim for spec/durable_spec.lua: makes the Nth
 * file-system call on a marked path fail, or kills the process just before it.
 *
 *   cc -shared -fPIC -o failsys.so failsys.c -ldl
 *   FAILSYS_MARK=<substring> FAILSYS_AT=<N> FAILSYS_MODE=fail|kill LD_PRELOAD=./failsys.so ...
 *
 * Counted calls: open/openat/open64 and rename whose path contains MARK,
 * and write/fsync/close on a descriptor such an open returned. Call N
 * (1-based, in that order of occurrence) fails with EIO (close still
 * closes the descriptor) or, with FAILSYS_MODE=kill, gets SIGKILL before
 * it runs (a crash between two steps). FAILSYS_LOG=<file> appends one line
 * per counted call ("N name"), so the spec knows how many steps there are.
 * Without FAILSYS_MARK the shim only passes calls through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int count;
static char tracked[1024];      /* tracked[fd]: opened on a marked path */

static int marked(const char *path) {
    const char *m = getenv("FAILSYS_MARK");
    return m && *m && path && strstr(path, m);
}

static void note(const char *name) {
    const char *log = getenv("FAILSYS_LOG");
    if (!log) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%d %s\n", count, name);
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write) real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    static int (*real_open)(const char *, int, ...);
    if (!real_open) real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    int fd = real_open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        real_write(fd, line, (size_t)n);
        static int (*real_close)(int);
        if (!real_close) real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
        real_close(fd);
    }
}

/* one counted call: 0 = go on, 1 = fail it (errno = EIO) */
static int step(const char *name) {
    count++;
    note(name);
    const char *at = getenv("FAILSYS_AT");
    if (!at || atoi(at) != count) return 0;
    const char *mode = getenv("FAILSYS_MODE");
    if (mode && strcmp(mode, "kill") == 0) raise(SIGKILL);
    return 1;
}

static int fd_marked(int fd) {
    return fd >= 0 && fd < (int)sizeof tracked && tracked[fd];
}

static void track(int fd, const char *path) {
    if (fd >= 0 && fd < (int)sizeof tracked) tracked[fd] = (char)marked(path);
}

#define REAL(ret, name, args) \
    static ret(*real) args; \
    if (!real) real = (ret(*) args)dlsym(RTLD_NEXT, name)

static int do_open(const char *name, int dirfd, const char *path, int flags, mode_t mode) {
    if (marked(path) && step(name)) {
        errno = EIO;
        return -1;
    }
    REAL(int, "openat", (int, const char *, int, ...));
    int fd = real(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open("open", AT_FDCWD, path, flags, m);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open("open", AT_FDCWD, path, flags, m);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_open("open", dirfd, path, flags, m);
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (fd_marked(fd) && step("write")) {
        errno = EIO;
        return -1;
    }
    REAL(ssize_t, "write", (int, const void *, size_t));
    return real(fd, buf, n);
}

int fsync(int fd) {
    if (fd_marked(fd) && step("fsync")) {
        errno = EIO;
        return -1;
    }
    REAL(int, "fsync", (int));
    return real(fd);
}

int close(int fd) {
    int fail = fd_marked(fd) && step("close");
    if (fd >= 0 && fd < (int)sizeof tracked) tracked[fd] = 0;
    REAL(int, "close", (int));
    int rc = real(fd);
    if (fail) {
        errno = EIO;
        return -1;
    }
    return rc;
}

int rename(const char *from, const char *to) {
    if ((marked(from) || marked(to)) && step("rename")) {
        errno = EIO;
        return -1;
    }
    REAL(int, "rename", (const char *, const char *));
    return real(from, to);
}
