#!/usr/bin/python3
"""A real gRPC server (Debian's python3-grpcio) for spec/grpc_client_spec.lua.

Usage: grpc_server.py SET.pb [--tls CERT KEY]
       grpc_server.py --gateway SET.pb   (every service of package gw.v1 in SET.pb, see below)
Serves test.v1.Echo (over TLS with --tls: the client reaches it by ALPN h2) (spec/fixtures/grpc/test/v1/echo.proto) on 127.0.0.1,
port chosen by the OS, and prints "PORT PID" on stdout once it listens.
Generic handlers with raw-bytes (de)serializers; the messages are
python3-protobuf classes built at run time from the descriptor set the
spec compiled with protoc, so nothing is generated.
"""
import os
import sys
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf import message_factory

try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:  # older python3-protobuf
    GetMessageClass = None


def load(path, with_pool=False):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = None if GetMessageClass else message_factory.MessageFactory(pool)

    def cls(name):
        d = pool.FindMessageTypeByName(name)
        return GetMessageClass(d) if GetMessageClass else factory.GetPrototype(d)
    if with_pool:
        return cls, pool, fds
    return cls


GATEWAY = sys.argv[1] == "--gateway"
if GATEWAY:
    gw_cls, gw_pool, gw_fds = load(sys.argv[2], True)
    Req = gw_cls("gw.v1.Req")
    Reply = gw_cls("gw.v1.Reply")
    ErrorInfo = gw_cls("gw.v1.ErrorInfo")
    DETAIL_TYPE = b"type.googleapis.com/gw.v1.ErrorInfo"
else:
    cls = load(sys.argv[1])
    Req = cls("test.v1.EchoRequest")
    Reply = cls("test.v1.EchoReply")
    ErrorInfo = cls("test.v1.ErrorInfo")
    DETAIL_TYPE = b"type.googleapis.com/test.v1.ErrorInfo"
Status = None  # google.rpc.Status is encoded by hand below (3 fields)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def status_bin(code, message):
    info = ErrorInfo(reason="SHOP_CLOSED", metadata={"shop": "42"})
    any1 = ld(1, DETAIL_TYPE) + ld(2, info.SerializeToString())
    any2 = ld(1, b"type.googleapis.com/other.v1.Unknown") + ld(2, b"\x08\x07")
    return varint(1 << 3) + varint(code) + ld(2, message.encode()) + ld(3, any1) + ld(3, any2)


def reply_for(req, context, index=0):
    md = {}
    for k, v in context.invocation_metadata():
        if k.endswith("-bin"):
            v = v.hex()
        md[k] = md[k] + "," + v if k in md else v
    return Reply(text=req.text, peer=context.peer(), payload=b"x" * req.size,
                 metadata=md, index=index)


def maybe_fail(req, context):
    if req.fail_code:
        if req.details:
            context.set_trailing_metadata((("grpc-status-details-bin",
                                            status_bin(req.fail_code, req.fail_message)),))
        code = next(c for c in grpc.StatusCode if c.value[0] == req.fail_code)
        context.abort(code, req.fail_message)


def common(req, context):
    if req.gzip:  # before the headers go out
        context.set_compression(grpc.Compression.Gzip)
    context.send_initial_metadata((("x-init", "yes"), ("x-init-bin", b"\x00\x01\xff")))
    context.set_trailing_metadata((("x-trail", "done"),))


def say(raw, context):
    req = Req.FromString(raw)
    if req.sleep:
        time.sleep(req.sleep)
    if not req.fail_code:
        common(req, context)
    maybe_fail(req, context)
    r = reply_for(req, context)
    if req.payload:
        r.payload = req.payload
    return r.SerializeToString()


def count(raw, context):
    req = Req.FromString(raw)
    common(req, context)
    for i in range(req.count):
        if req.die and i == 2:
            os._exit(3)
        if req.sleep:
            time.sleep(req.sleep)
        yield reply_for(req, context, i).SerializeToString()
    maybe_fail(req, context)


def collect(it, context):
    texts = []
    n = 0
    for raw in it:
        req = Req.FromString(raw)
        texts.append(req.text)
        n += 1
    r = Reply(text=",".join(texts), index=n, peer=context.peer())
    return r.SerializeToString()


def chat(it, context):
    i = 0
    for raw in it:
        req = Req.FromString(raw)
        maybe_fail(req, context)
        yield reply_for(req, context, i).SerializeToString()
        i += 1


def ident(b):
    return b


handlers = {
    "Say": grpc.unary_unary_rpc_method_handler(say, ident, ident),
    "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
    "Collect": grpc.stream_unary_rpc_method_handler(collect, ident, ident),
    "Chat": grpc.stream_stream_rpc_method_handler(chat, ident, ident),
}

server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                     options=[("grpc.max_receive_message_length", 8 * 1024 * 1024),
                              ("grpc.max_send_message_length", 8 * 1024 * 1024)])

# --gateway: every method of every gw.v1 service answers a gw.v1.Reply
# echoing the request (req), the method's gRPC path and the metadata; fields
# of gw.v1.Req steer it: fail_code/fail_message/details (the status, with
# grpc-status-details-bin), headers_first (headers before the error: not
# Trailers-Only), count/sleep (server streaming: replies, seconds between).
def gw_metadata(context):
    md = {}
    for k, v in context.invocation_metadata():
        if k.endswith("-bin"):
            v = v.hex()
        md[k] = md[k] + "," + v if k in md else v
    return md


def gw_fail(req, context):
    if req.fail_code:
        if req.headers_first:
            context.send_initial_metadata((("x-init", "yes"),))
        maybe_fail(req, context)


def gw_unary(path):
    def handle(raw, context):
        req = Req.FromString(raw)
        if req.sleep:
            time.sleep(req.sleep)
        gw_fail(req, context)
        context.set_trailing_metadata((("x-trail", "done"),))
        return Reply(req=req, method=path, metadata=gw_metadata(context)).SerializeToString()
    return handle


def gw_stream(path):
    def handle(raw, context):
        req = Req.FromString(raw)
        if req.count or not req.fail_code:  # else Trailers-Only
            context.send_initial_metadata((("x-init", "yes"),))
        context.set_trailing_metadata((("x-trail", "done"),))
        for i in range(req.count):
            if req.sleep:
                time.sleep(req.sleep)
            yield Reply(req=req, method=path, metadata=gw_metadata(context), index=i).SerializeToString()
        maybe_fail(req, context)
    return handle


class Gateway(grpc.GenericRpcHandler):
    def __init__(self):
        self.methods = {}
        for fd in gw_fds.file:
            if fd.package != "gw.v1":
                continue
            for svc in fd.service:
                for m in svc.method:
                    path = "/%s.%s/%s" % (fd.package, svc.name, m.name)
                    if m.server_streaming:
                        h = grpc.unary_stream_rpc_method_handler(gw_stream(path), ident, ident)
                    else:
                        h = grpc.unary_unary_rpc_method_handler(gw_unary(path), ident, ident)
                    self.methods[path] = h

    def service(self, details):
        return self.methods.get(details.method)


if GATEWAY:
    server.add_generic_rpc_handlers((Gateway(),))
else:
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.v1.Echo", handlers),))
if "--tls" in sys.argv:
    i = sys.argv.index("--tls")
    with open(sys.argv[i + 1], "rb") as f:
        cert = f.read()
    with open(sys.argv[i + 2], "rb") as f:
        key = f.read()
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(((key, cert),)))
else:
    port = server.add_insecure_port("127.0.0.1:0")
server.start()
sys.stdout.write("%d %d\n" % (port, os.getpid()))
sys.stdout.flush()
server.wait_for_termination()
