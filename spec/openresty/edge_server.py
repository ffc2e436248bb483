#!/usr/bin/env python3
"""HTTP edge cases for dynpb.resty's cosocket client (standard library only).

    python3 edge_server.py SET.pb

Listens on 127.0.0.1 (ephemeral port), prints "PORT PID", serves raw HTTP/1.1:

    /chunked        SET.pb in 100-byte chunks (a chunk extension and a trailer)
    /close          SET.pb without Content-Length, ended by closing the connection
    /big            a chunked body of 2 MiB
    /big-length     Content-Length: 2097152 (the body is never sent)
    /redirect       302 -> /redirect2 -> /chunked (relative Location)
    /continue       "100 Continue", then the 200 response with SET.pb
    /slow-headers   the status line, then nothing for 10 s
    /bad-chunk      a chunk size line that is not hex
    /truncated      Content-Length larger than what is sent, then close
    /not-http       a line that is not an HTTP status line

Exits when its parent goes away, after 10 minutes, or on SIGTERM.
"""
import os
import signal
import socket
import sys
import threading
import time

LIFETIME = 600


def respond(conn, path, body):
    def send(b):
        conn.sendall(b)

    if path == "/chunked":
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"c1\"\r\n\r\n")
        for i in range(0, len(body), 100):
            part = body[i:i + 100]
            ext = b";name=value" if i == 0 else b""
            send(b"%x%s\r\n%s\r\n" % (len(part), ext, part))
        send(b"0\r\nX-Trailer: yes\r\n\r\n")
    elif path == "/close":
        send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
    elif path == "/big":
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\x0a" * 65536
        try:
            for _ in range(32):
                send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            send(b"0\r\n\r\n")
        except OSError:
            pass
    elif path == "/big-length":
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n")
        time.sleep(1)
    elif path == "/redirect":
        send(b"HTTP/1.1 302 Found\r\nLocation: /redirect2\r\nContent-Length: 0\r\n\r\n")
    elif path == "/redirect2":
        send(b"HTTP/1.1 301 Moved\r\nLocation: chunked\r\nContent-Length: 3\r\n\r\nabc")
    elif path == "/continue":
        send(b"HTTP/1.1 100 Continue\r\n\r\n")
        send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    elif path == "/slow-headers":
        send(b"HTTP/1.1 200 OK\r\n")
        time.sleep(10)
    elif path == "/bad-chunk":
        send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    elif path == "/truncated":
        send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body[: len(body) // 2]))
    elif path == "/not-http":
        send(b"SSH-2.0-OpenSSH\r\n\r\n")
    else:
        send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def serve(conn, body):
    try:
        conn.settimeout(15)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            got = conn.recv(4096)
            if not got:
                return
            data += got
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        path = parts[1] if len(parts) >= 2 else "/"
        respond(conn, path, body)
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def main(argv):
    with open(argv[0], "rb") as f:
        body = f.read()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    parent, started = os.getppid(), time.time()

    def watchdog():
        while os.getppid() == parent and time.time() - started < LIFETIME:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write("%d %d\n" % (srv.getsockname()[1], os.getpid()))
    sys.stdout.flush()
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, body), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
