#!/usr/bin/python3
"""Random differential testing of dynpb against Debian's python3-protobuf.

Driven by spec/differential_spec.lua (run it with /usr/bin/python3, the
interpreter Debian's python3-protobuf is installed for):

  pydiff.py gen SET.pb TYPE SEED N OUT
      writes N random messages of TYPE (reproducible from SEED), one per line
      as the hex of SerializeToString(deterministic=True)
  pydiff.py check SET.pb TYPE IN RESULTS
      RESULTS has one line per line of IN: "OK <hex>" (what dynpb encoded
      after decoding the input) or "ERR <message>". Python parses dynpb's
      bytes and compares them with the original message: equal when the
      deterministic serializations are equal (unknown fields and NaN
      included). Prints a summary; exits 1 naming the first difference.
  pydiff.py probe
      exits 0 when google.protobuf can be imported

The message classes are made from the descriptor set at run time (no protoc
and no generated modules needed). The module is also imported by
spec/fixtures/make_codec_cases.py for load_set().
"""
import math
import random
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor as FD


def load_set(path):
    """(pool, get_class, file_protos) for the FileDescriptorSet at path."""
    with open(path, "rb") as fh:
        fds = descriptor_pb2.FileDescriptorSet.FromString(fh.read())
    pool = descriptor_pool.DescriptorPool()
    for fp in fds.file:
        pool.Add(fp)
    factory = message_factory.MessageFactory(pool)
    cache = {}

    def get_class(name):
        if name not in cache:
            desc = pool.FindMessageTypeByName(name)
            maker = getattr(message_factory, "GetMessageClass", None)
            cache[name] = maker(desc) if maker else factory.GetPrototype(desc)
        return cache[name]

    return pool, get_class, list(fds.file)


def is_real_oneof(field):
    """field is in a oneof that is not proto3 optional's synthetic one"""
    o = field.containing_oneof
    if o is None:
        return False
    if len(o.fields) == 1 and o.name == "_" + field.name and field.file.syntax == "proto3":
        return False
    return True


def is_map(field):
    return (field.type == FD.TYPE_MESSAGE and field.label == FD.LABEL_REPEATED
            and field.message_type.GetOptions().map_entry)


# ---- wire helpers (for unknown fields)

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(num, wt):
    return varint((num << 3) | wt)


# ---- random values

INT_RANGES = {
    FD.TYPE_INT32: (-(1 << 31), (1 << 31) - 1),
    FD.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1),
    FD.TYPE_SFIXED32: (-(1 << 31), (1 << 31) - 1),
    FD.TYPE_UINT32: (0, (1 << 32) - 1),
    FD.TYPE_FIXED32: (0, (1 << 32) - 1),
    FD.TYPE_INT64: (-(1 << 63), (1 << 63) - 1),
    FD.TYPE_SINT64: (-(1 << 63), (1 << 63) - 1),
    FD.TYPE_SFIXED64: (-(1 << 63), (1 << 63) - 1),
    FD.TYPE_UINT64: (0, (1 << 64) - 1),
    FD.TYPE_FIXED64: (0, (1 << 64) - 1),
}

STRINGS = ["", "a", "hello", "h\u00e9llo", "\u2713", "\U0001d11e", "a\x00b", "\x00",
           "key", "Key", "k\u00e9y", "zz", "0", "-1", "\u65e5\u672c\u8a9e"]


class Gen:
    def __init__(self, seed, syntax):
        self.r = random.Random(seed)
        self.proto2 = syntax == "proto2"

    def int_value(self, t):
        lo, hi = INT_RANGES[t]
        r = self.r
        k = r.random()
        if k < 0.25:
            return r.choice([lo, hi, 0, 1, -1 if lo < 0 else 2, lo + 1, hi - 1])
        if k < 0.45:  # around 2^53, where Lua numbers stop being exact
            v = r.choice([1, -1]) * ((1 << 53) + r.randint(-3, 3))
            if lo <= v <= hi:
                return v
        if k < 0.6:  # around the 2^31 / 2^32 / 2^63 boundaries
            b = r.choice([31, 32, 63])
            v = r.choice([1, -1]) * ((1 << b) + r.randint(-2, 2))
            if lo <= v <= hi:
                return v
        if k < 0.8:
            v = r.randint(-300, 300)
            if lo <= v <= hi:
                return v
        # any number of bits
        bits = r.randint(1, 64)
        v = r.getrandbits(bits)
        if lo < 0 and r.random() < 0.5:
            v = -v
        return max(lo, min(hi, v))

    def float_value(self, single):
        r = self.r
        k = r.random()
        if k < 0.3:
            v = r.choice([0.0, -0.0, 1.0, -1.5, math.inf, -math.inf, math.nan, 0.1, 1e-300,
                          5e-324, 1.7976931348623157e308, 3.4028234663852886e38,
                          1.401298464324817e-45, 2.0 ** 53 + 2, 1 / 3])
        elif k < 0.6:
            v = r.uniform(-1e6, 1e6)
        else:
            v = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
        if single:
            if math.isnan(v):
                return math.nan
            if math.isinf(v) or abs(v) > 3.4028234663852886e38:
                v = math.copysign(math.inf, v) if r.random() < 0.5 else r.uniform(-1e30, 1e30)
            v = struct.unpack("<f", struct.pack("<f", v))[0]
        if math.isnan(v):
            return math.nan  # the quiet NaN: no payload bits
        return v

    def scalar(self, f):
        t, r = f.type, self.r
        if t in INT_RANGES:
            return self.int_value(t)
        if t == FD.TYPE_BOOL:
            return r.random() < 0.5
        if t == FD.TYPE_FLOAT:
            return self.float_value(True)
        if t == FD.TYPE_DOUBLE:
            return self.float_value(False)
        if t == FD.TYPE_STRING:
            k = r.random()
            if k < 0.6:
                return r.choice(STRINGS)
            return "".join(r.choice(["x", "\u00fc", "\u20ac", "\U0001f600", "\x00", " "])
                           for _ in range(r.randint(0, 40)))
        if t == FD.TYPE_BYTES:
            return bytes(r.getrandbits(8) for _ in range(r.randint(0, 24)))
        if t == FD.TYPE_ENUM:
            vals = [v.number for v in f.enum_type.values]
            if not self.proto2 and r.random() < 0.15:
                return r.choice([7, 99, -5, 123456, -(1 << 31), (1 << 31) - 1])
            return r.choice(vals)
        raise ValueError("scalar type %d" % t)

    def unknown_bytes(self, depth=0):
        """a few random fields with numbers no schema here uses"""
        r = self.r
        out = bytearray()
        for _ in range(r.randint(1, 3)):
            num = r.choice([500, 501, 777, 1500, 5000, 100000, 536870911])
            wt = r.choice([0, 1, 2, 5, 3] if depth < 2 else [0, 1, 2, 5])
            out += tag(num, wt)
            if wt == 0:
                out += varint(self.int_value(FD.TYPE_UINT64))
            elif wt == 1:
                out += struct.pack("<Q", r.getrandbits(64))
            elif wt == 5:
                out += struct.pack("<I", r.getrandbits(32))
            elif wt == 2:
                b = bytes(r.getrandbits(8) for _ in range(r.randint(0, 8)))
                out += varint(len(b)) + b
            else:
                out += self.unknown_bytes(depth + 1) + tag(num, 4)
        return bytes(out)

    def closed_enum_unknown(self, msg):
        """wire bytes of a number outside a closed enum, for a random enum
        field of msg (proto2 only): the parser moves it to unknown fields"""
        fields = [f for f in msg.DESCRIPTOR.fields
                  if f.type == FD.TYPE_ENUM and not is_map(f)]
        if not fields:
            return b""
        f = self.r.choice(fields)
        used = {v.number for v in f.enum_type.values}
        n = self.r.choice([4, 99, 1000, -7])
        if n in used:
            return b""
        return tag(f.number, 0) + varint(n)

    def fill(self, msg, depth):
        r = self.r
        p = 0.45 if depth == 0 else 0.3 / depth
        chosen_oneofs = set()
        for f in msg.DESCRIPTOR.fields:
            if f.name.startswith("d_") and r.random() < 0.7:
                continue
            if r.random() >= p:
                continue
            o = f.containing_oneof
            if o is not None and is_real_oneof(f):
                if o.name in chosen_oneofs:
                    continue
                chosen_oneofs.add(o.name)
            sub = f.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP)
            if is_map(f):
                kf = f.message_type.fields_by_name["key"]
                vf = f.message_type.fields_by_name["value"]
                if vf.type == FD.TYPE_MESSAGE and depth >= 3:
                    continue
                m = getattr(msg, f.name)
                for _ in range(r.randint(1, 4)):
                    k = self.scalar(kf)
                    if vf.type == FD.TYPE_MESSAGE:
                        self.fill(m[k], depth + 1)
                    else:
                        m[k] = self.scalar(vf)
            elif f.label == FD.LABEL_REPEATED:
                if sub and depth >= 3:
                    continue
                c = getattr(msg, f.name)
                for _ in range(r.randint(1, 5)):
                    if sub:
                        self.fill(c.add(), depth + 1)
                    else:
                        c.append(self.scalar(f))
            elif sub:
                if depth >= 4:
                    continue
                self.fill(getattr(msg, f.name), depth + 1)
                if r.random() < 0.2:
                    getattr(msg, f.name).SetInParent()
            else:
                setattr(msg, f.name, self.scalar(f))
        if r.random() < 0.12:
            msg.MergeFromString(self.unknown_bytes())
        if self.proto2 and r.random() < 0.1:
            msg.MergeFromString(self.closed_enum_unknown(msg))
        return msg


def cmd_gen(setpath, typename, seed, n, out):
    pool, get_class, files = load_set(setpath)
    cls = get_class(typename)
    g = Gen(int(seed), cls.DESCRIPTOR.file.syntax)
    with open(out, "w") as fh:
        for _ in range(int(n)):
            m = g.fill(cls(), 0)
            fh.write(m.SerializeToString(deterministic=True).hex() + "\n")
    return 0


def cmd_check(setpath, typename, inpath, respath):
    pool, get_class, files = load_set(setpath)
    cls = get_class(typename)
    with open(inpath) as fh:
        inputs = [l.rstrip("\n") for l in fh]
    with open(respath) as fh:
        results = [l.rstrip("\n") for l in fh]
    if len(results) != len(inputs):
        print("FAIL: %d inputs but %d results" % (len(inputs), len(results)))
        return 1
    same_bytes = 0
    differ_bytes = []
    failures = []  # (index, detail)
    for i, (hx, res) in enumerate(zip(inputs, results), 1):
        orig = bytes.fromhex(hx)
        if not res.startswith("OK "):
            failures.append((i, "dynpb failed: %s\n  input %s" % (res, hx)))
            continue
        got = bytes.fromhex(res[3:])
        try:
            back = cls.FromString(got)
        except Exception as e:  # noqa: BLE001 -- any parse failure is a difference
            failures.append((i, "Python cannot parse dynpb's bytes: %s\n  input %s\n  dynpb %s"
                             % (e, hx, got.hex())))
            continue
        again = back.SerializeToString(deterministic=True)
        if again != orig:
            # the details (text format) are made for the first failure only
            failures.append((i, (hx, got, again, back)))
            continue
        if got == orig:
            same_bytes += 1
        else:
            differ_bytes.append(i)
    if failures:
        i, detail = failures[0]
        if not isinstance(detail, str):
            hx, got, again, back = detail
            want, back = str(cls.FromString(bytes.fromhex(hx))), str(back)
            if len(want) + len(back) > 40000:
                want, back = want[:20000] + "\n...", back[:20000] + "\n..."
            detail = ("differs after the dynpb round trip\n  input %s\n  dynpb %s\n"
                      "  python's re-serialization of dynpb's bytes %s\n"
                      "  expected (text):\n%s\n  got (text):\n%s"
                      % (hx, got.hex(), again.hex(), want, back))
        print("FAIL: %d of %d messages differ (%s); the first, message %d: %s"
              % (len(failures), len(inputs), ",".join(str(k) for k, _ in failures), i, detail))
        return 1
    print("ok %d equal %d bytes_equal %d bytes_differ %s"
          % (len(inputs), len(inputs), same_bytes, ",".join(map(str, differ_bytes[:20])) or "-"))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "probe":
        return 0
    if len(argv) == 7 and argv[1] == "gen":
        return cmd_gen(*argv[2:])
    if len(argv) == 6 and argv[1] == "check":
        return cmd_check(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
