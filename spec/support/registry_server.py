#!/usr/bin/env python3
"""A schema-registry stand-in for spec/registry_spec.lua (standard library only).

    python3 registry_server.py [--host IP] [--port N] [--tls CERT KEY [--client-ca CA]]
                               V1.pb [V2.pb ...]

Listens on 127.0.0.1 only, or on --host (another loopback address such as
127.0.0.2); port 0 = ephemeral unless --port; HTTPS with --tls, requiring a
client certificate signed by CA with --client-ca. Prints
"PORT PID" on stdout, and serves Stencil's API shape under BASE:

    BASE                  the latest version's bytes
    BASE/versions         {"versions":[1,...,latest]}
    BASE/versions/<n>     version n's bytes
    /redirect/<k>         302 chain of k hops ending at BASE
    /goto?to=<url>        302 to <url> (any host; for the cross-origin checks)

with BASE = /v1beta1/namespaces/shop/schemas/domain. Controlled with

    GET /_control?key=value&...   set state, returns it as JSON
    GET /_stats[?path=P|?status=S] number of schema requests (all, to path P,
                                  or answered with status S: 200, 304, hang, ...)
    GET /_header?name=N           header N of the last schema request ("" if absent)
    GET /_reset                   counters to zero, state to defaults

State keys: latest=<n>; mode=ok|500|404|429|503|hang|truncate|garbage|empty|huge
(applied to BASE routes; `faults=listing` or `faults=version` limits it to
one of the two versions routes); etag=0|1; lm=0|1 (Last-Modified);
retry_after=<value>; hang=<seconds>; listing=<raw body for BASE/versions>.

The process exits when its parent process goes away, after 10 minutes, or
on SIGTERM.
"""
import hashlib
import json
import os
import signal
import ssl
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BASE = "/v1beta1/namespaces/shop/schemas/domain"
LIFETIME = 600
DEFAULTS = {"latest": 1, "mode": "ok", "faults": "all", "etag": 1, "lm": 0,
            "retry_after": "1", "hang": 10.0, "listing": None}


class State:
    def __init__(self, versions):
        self.lock = threading.Lock()
        self.versions = versions
        self.epoch = time.time() - 86400
        self.reset()

    def reset(self):
        with self.lock:
            self.cfg = dict(DEFAULTS)
            self.counts = {}
            self.statuses = {}
            self.last_headers = {}
            self.requests = 0
            self.generation = getattr(self, "generation", 0) + 1

    def count(self, path, status):
        with self.lock:
            self.requests += 1
            self.counts[path] = self.counts.get(path, 0) + 1
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "registry-standin/1"

    def log_message(self, *args):
        pass

    # -- helpers
    def send_bytes(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def send_json(self, obj):
        self.send_bytes(200, json.dumps(obj).encode(), [("Content-Type", "application/json")])

    def do_GET(self):
        st = self.server.state
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/_control":
            with st.lock:
                for k, vals in parse_qs(parts.query, keep_blank_values=True).items():
                    if k not in DEFAULTS:
                        self.send_bytes(400, ("unknown key " + k).encode())
                        return
                    v = vals[-1]
                    st.cfg[k] = float(v) if k == "hang" else int(v) if k in ("latest", "etag", "lm") else v
                    if k == "mode":
                        st.generation += 1
                cfg = dict(st.cfg)
            self.send_json(cfg)
            return
        if path == "/_stats":
            q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            with st.lock:
                if "path" in q:
                    n = st.counts.get(q["path"], 0)
                elif "status" in q:
                    n = st.statuses.get(q["status"], 0)
                else:
                    n = st.requests
            self.send_bytes(200, str(n).encode(), [("Content-Type", "text/plain")])
            return
        if path == "/_header":
            name = parse_qs(parts.query).get("name", [""])[-1].lower()
            with st.lock:
                value = st.last_headers.get(name, "")
            self.send_bytes(200, value.encode(), [("Content-Type", "text/plain")])
            return
        if path == "/_reset":
            st.reset()
            self.send_json({"ok": True})
            return
        if path == "/goto":
            target = parse_qs(parts.query).get("to", [""])[-1]
            with st.lock:
                st.last_headers = {k.lower(): v for k, v in self.headers.items()}
            st.count(path, 302)
            self.send_bytes(302, b"", [("Location", target)])
            return
        if path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            target = BASE if hops <= 1 else "/redirect/%d" % (hops - 1)
            st.count(path, 302)
            self.send_bytes(302, b"", [("Location", target)])
            return
        self.serve_schema(st, path)

    def serve_schema(self, st, path):
        with st.lock:
            cfg = dict(st.cfg)
            st.last_headers = {k.lower(): v for k, v in self.headers.items()}
            gen = st.generation
        latest = cfg["latest"]
        if path == BASE:
            kind, version = "latest", latest
        elif path == BASE + "/versions":
            kind, version = "listing", latest
        elif path.startswith(BASE + "/versions/"):
            kind = "version"
            try:
                version = int(path.rsplit("/", 1)[1])
            except ValueError:
                version = -1
        else:
            st.count(path, 404)
            self.send_bytes(404, b"no such route\n")
            return

        mode = cfg["mode"]
        if cfg["faults"] != "all" and cfg["faults"] != kind:
            mode = "ok"
        if mode != "ok":
            self.fault(st, path, mode, cfg, gen)
            return

        if kind == "listing":
            body = cfg["listing"].encode() if cfg["listing"] is not None else \
                json.dumps({"versions": list(range(1, latest + 1))}).encode()
            ctype = "application/json"
        else:
            if version not in st.versions:
                st.count(path, 404)
                self.send_bytes(404, b"no such version\n")
                return
            body = st.versions[version]
            ctype = "application/octet-stream"

        headers = [("Content-Type", ctype)]
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:20]
        modified = formatdate(st.epoch + version * 3600, usegmt=True)
        if cfg["etag"]:
            headers.append(("ETag", etag))
            if self.headers.get("If-None-Match") == etag:
                st.count(path, 304)
                self.send_bytes(304, b"", headers[1:])
                return
        if cfg["lm"]:
            headers.append(("Last-Modified", modified))
            if not cfg["etag"] and self.headers.get("If-Modified-Since") == modified:
                st.count(path, 304)
                self.send_bytes(304, b"", headers[1:])
                return
        st.count(path, 200)
        self.send_bytes(200, body, headers)

    def fault(self, st, path, mode, cfg, gen):
        if mode in ("500", "404", "429", "503"):
            st.count(path, int(mode))
            headers = [("Retry-After", cfg["retry_after"])] if mode in ("429", "503") else []
            self.send_bytes(int(mode), b"registry says no\n", headers)
        elif mode == "hang":
            st.count(path, "hang")
            deadline = time.time() + cfg["hang"]
            while time.time() < deadline:
                with st.lock:
                    if st.generation != gen:
                        break
                time.sleep(0.02)
            self.close_connection = True
        elif mode == "truncate":
            st.count(path, "truncate")
            body = st.versions[cfg["latest"]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif mode == "garbage":
            st.count(path, "garbage")
            self.send_bytes(200, b"<html>this is not a descriptor set</html>\xff\xfe\x00\x01",
                            [("ETag", '"garbage"')])
        elif mode == "empty":
            st.count(path, "empty")
            self.send_bytes(200, b"")
        elif mode == "huge":
            st.count(path, "huge")
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\x0a" * 65536
            self.close_connection = True
            try:
                for _ in range(1024):            # 64 MiB, or until the client hangs up
                    self.wfile.write(chunk)
            except OSError:
                pass
        else:
            st.count(path, 400)
            self.send_bytes(400, ("unknown mode " + mode).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients that time out or cancel hang up on purpose
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


def main(argv):
    port, tls, host, client_ca = 0, None, "127.0.0.1", None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--host":
            host = argv[1]
            argv = argv[2:]
        elif argv[0] == "--client-ca":
            client_ca = argv[1]
            argv = argv[2:]
        elif argv[0] == "--port":
            port = int(argv[1])
            argv = argv[2:]
        elif argv[0] == "--tls":
            tls = (argv[1], argv[2])
            argv = argv[3:]
        else:
            raise SystemExit("unknown option " + argv[0])
    versions = {}
    for i, name in enumerate(argv, 1):
        with open(name, "rb") as f:
            versions[i] = f.read()
    if not host.startswith("127."):
        raise SystemExit("--host must be a loopback address")
    server = Server((host, port), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.state = State(versions)
    parent = os.getppid()
    started = time.time()

    def watchdog():
        while os.getppid() == parent and time.time() - started < LIFETIME:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write("%d %d\n" % (server.server_address[1], os.getpid()))
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main(sys.argv[1:])
