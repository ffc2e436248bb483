#!/usr/bin/python3
"""Reference for spec/services_spec.lua: messages with extensions (and a
MessageSet) made by python3-protobuf from spec/fixtures/ext.pb.

usage: pyext.py SET.pb make          prints "name TAB type TAB hex" per case
       pyext.py SET.pb eq NAME HEX   parses HEX as case NAME's type and
                                     prints "ok" when it equals the case,
                                     else the difference (text format)
"""
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
C = message_factory.MessageFactory(pool).GetMessages([f.name for f in fds.file])


def X(name):
    return pool.FindExtensionByName(name)


def base_all():
    m = C["ext.Base"]()
    m.id = 1
    m.Extensions[X("ext.num")] = 5
    m.Extensions[X("ext.packed_nums")].extend([1, 2, 300])
    m.Extensions[X("ext.nums")].extend([4, -5])
    m.Extensions[X("ext.payload")].text = "hi"
    m.Extensions[X("ext.grp")].x = 4
    m.Extensions[X("ext.color")] = 2
    m.Extensions[X("ext.words")].extend(["a", "b"])
    m.Extensions[X("ext.label")] = "L"
    m.Extensions[X("ext.payloads")].add().text = "p1"
    m.Extensions[X("ext.payloads")].add().text = "p2"
    h = m.Extensions[X("ext.Holder.holder")]
    h.note = "n"
    h.base.id = 2
    h.base.Extensions[X("ext.num")] = 9
    m.Extensions[X("ext.Holder.big")] = -7
    return m


def mset():
    m = C["ext.MSet"]()
    m.Extensions[X("ext.MItem.item")].s = "hello"
    m.Extensions[X("ext.MItem2.item2")].n = 42
    return m


def mset_holder():
    m = C["ext.MSetHolder"]()
    m.mset.Extensions[X("ext.MItem.item")].s = "x"
    return m


CASES = {"base_all": base_all, "mset": mset, "mset_holder": mset_holder}

if sys.argv[2] == "make":
    for name in sorted(CASES):
        m = CASES[name]()
        print("%s\t%s\t%s" % (name, m.DESCRIPTOR.full_name,
                              m.SerializeToString(deterministic=True).hex()))
else:
    want = CASES[sys.argv[3]]()
    got = type(want).FromString(bytes.fromhex(sys.argv[4]))
    if got == want:
        print("ok")
    else:
        print("want:\n%s\ngot:\n%s" % (text_format.MessageToString(want),
                                       text_format.MessageToString(got)))
