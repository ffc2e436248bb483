#!/usr/bin/python3
"""Reference for spec/services_spec.lua: python3-protobuf's reading of the
options in a descriptor set.

usage: pyoptions.py SET.pb

Walks every declaration of every file (file, message, field, extension,
oneof, enum, enum value, service, method) and re-parses the bytes of its
options message with the set's own google.protobuf.*Options class (a fresh
pool holding the set: in protobuf 3.21 that is how extensions, i.e. custom
options, become visible). Prints one line per leaf value:

  <declaration> TAB <path> TAB <value>

declaration: file:NAME msg:FULL field:MSG#NUMBER oneof:MSG#NAME enum:FULL
value:ENUM#NAME service:FULL method:FULL
path: field names (extensions as [full.name]) joined by '.', [i] for
repeated elements (1-based); value: true/false, integers in decimal,
floats %.17g (integral ones in decimal), enum names, strings and bytes
in hex (a Lua table does not say which strings are enum names). Options
that neither the standard nor a declared extension field
explain are printed with path @unknown and the hex of their bytes.
"""
import sys

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from google.protobuf import message_factory

FD = descriptor.FieldDescriptor


def fmt(fd, v):
    if fd.type == FD.TYPE_BOOL:
        return "true" if v else "false"
    if fd.type == FD.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return ev.name.encode().hex() if ev else str(v)
    if fd.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return (v.encode("utf-8") if isinstance(v, str) else v).hex()
    if isinstance(v, float):
        if v == int(v) and abs(v) < 2 ** 53:
            return "%d" % v
        return "%.17g" % v
    return str(v)


def walk(out, decl, msg, prefix):
    for fd, val in msg.ListFields():
        name = "[%s]" % fd.full_name if fd.is_extension else fd.name
        path = prefix + "." + name if prefix else name
        vals = list(val) if fd.label == FD.LABEL_REPEATED else [val]
        for i, v in enumerate(vals):
            p = "%s[%d]" % (path, i + 1) if fd.label == FD.LABEL_REPEATED else path
            if fd.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
                walk(out, decl, v, p)
            else:
                out.append("%s\t%s\t%s" % (decl, p, fmt(fd, v)))
    unk = msg.UnknownFields() if hasattr(msg, "UnknownFields") else None
    if unk is not None and len(unk) and not prefix:
        # the raw bytes left: re-serialize only the unknown part
        raw = msg.SerializeToString()
        known = type(msg)()
        known.CopyFrom(msg)
        known.DiscardUnknownFields()
        kb = known.SerializeToString()
        out.append("%s\t@unknown\t%s" % (decl, raw[len(kb):].hex() if raw.startswith(kb) else raw.hex()))


def main():
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    # GetMessages registers the extensions with the classes it makes
    classes = message_factory.MessageFactory(pool).GetMessages([f.name for f in fds.file])

    def options(decl, holder, kind):
        if not holder.HasField("options"):
            return
        cls = classes.get("google.protobuf." + kind) or getattr(descriptor_pb2, kind)
        o = cls.FromString(holder.options.SerializeToString())
        walk(out, decl, o, "")

    out = []

    def message(m, scope):
        full = scope + "." + m.name if scope else m.name
        options("msg:" + full, m, "MessageOptions")
        for f in m.field:
            options("field:%s#%d" % (full, f.number), f, "FieldOptions")
        for o in m.oneof_decl:
            options("oneof:%s#%s" % (full, o.name), o, "OneofOptions")
        for e in m.enum_type:
            enum(e, full)
        for n in m.nested_type:
            message(n, full)
        for x in m.extension:
            extension(x)

    def enum(e, scope):
        full = scope + "." + e.name if scope else e.name
        options("enum:" + full, e, "EnumOptions")
        for v in e.value:
            options("value:%s#%s" % (full, v.name), v, "EnumValueOptions")

    def extension(x):
        options("field:%s#%d" % (x.extendee.lstrip("."), x.number), x, "FieldOptions")

    for f in fds.file:
        if f.name == "google/protobuf/descriptor.proto":
            continue  # its own options use features and targets of itself
        options("file:" + f.name, f, "FileOptions")
        for m in f.message_type:
            message(m, f.package)
        for e in f.enum_type:
            enum(e, f.package)
        for x in f.extension:
            extension(x)
        for s in f.service:
            full = f.package + "." + s.name if f.package else s.name
            options("service:" + full, s, "ServiceOptions")
            for m in s.method:
                options("method:%s.%s" % (full, m.name), m, "MethodOptions")
    print("\n".join(sorted(out)))


main()
