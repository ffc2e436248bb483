/*
 * slowdns.c -- an LD_PRELOAD shim for spec/hardening_spec.lua: getaddrinfo
 * of the host named by SLOWDNS_HOST sleeps SLOWDNS_SECS seconds (default 4)
 * and then fails with EAI_NONAME, like a resolver that does not answer.
 * Other names resolve normally.
 *
 *   cc -shared -fPIC -o slowdns.so slowdns.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    const char *slow = getenv("SLOWDNS_HOST");
    if (node && slow && strcmp(node, slow) == 0) {
        const char *secs = getenv("SLOWDNS_SECS");
        double s = secs ? atof(secs) : 4.0;
        struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
        while (nanosleep(&ts, &ts) != 0) {}
        return EAI_NONAME;
    }
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
            dlsym(RTLD_NEXT, "getaddrinfo");
    return real(node, service, hints, res);
}
