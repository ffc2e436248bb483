#!/usr/bin/python3
"""Random differential testing of dynpb's JSON against python3-protobuf's
json_format (driven by spec/json_differential_spec.lua; run it with
/usr/bin/python3, the interpreter Debian's python3-protobuf is installed for).

  pyjson.py gen SET.pb TYPE SEED N OUT
      writes N random messages of TYPE (pydiff.py's generator, unknown fields
      dropped: JSON has none), one per line: the hex of
      SerializeToString(deterministic=True), a tab, and MessageToJson of it
      (compact). Messages Python cannot print are replaced by the next one.
  pyjson.py check SET.pb TYPE IN RESULTS [OPTS]
      RESULTS has one line per line of IN: "OK <dynpb's JSON>" or
      "ERR <message>". Each JSON must be the same document as Python's (the
      same members and values: numbers compared as numbers, NaN equal to
      NaN) and must parse back with json_format.Parse to the original message
      (when Python's parses its own text: 4.21 rejects FLT_MAX as it prints it).
      OPTS: "names" (preserving_proto_field_name) or "defaults"
      (including_default_value_fields, proto3 only) or "enums"
      (use_integers_for_enums). Prints a summary; exits 1 naming the first
      difference.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pydiff import Gen, load_set  # noqa: E402

from google.protobuf import json_format  # noqa: E402


def to_json(m, opts):
    return json_format.MessageToJson(
        m, indent=None,
        preserving_proto_field_name=opts == "names",
        including_default_value_fields=opts == "defaults",
        use_integers_for_enums=opts == "enums")


def cmd_gen(setpath, typename, seed, n, out, opts=""):
    pool, get_class, files = load_set(setpath)
    cls = get_class(typename)
    g = Gen(int(seed), cls.DESCRIPTOR.file.syntax)
    with open(out, "w") as fh:
        made = 0
        while made < int(n):
            m = g.fill(cls(), 0)
            m.DiscardUnknownFields()
            # a NullValue field prints as null whatever number it holds
            if "nothing" in cls.DESCRIPTOR.fields_by_name:
                m.nothing = 0
            try:
                j = to_json(m, opts)
            except Exception:  # noqa: BLE001 -- a message JSON cannot hold
                continue
            fh.write(m.SerializeToString(deterministic=True).hex() + "\t" + j + "\n")
            made += 1
    return 0


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def first_diff(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s: python %r, dynpb %r" % (path, k, a.get(k, "<absent>"),
                                                       b.get(k, "<absent>"))
            d = first_diff(a[k], b[k], path + "." + k)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if same(a, b) else "%s: python %r, dynpb %r" % (path, a, b)


def cmd_check(setpath, typename, inpath, respath, opts=""):
    pool, get_class, files = load_set(setpath)
    cls = get_class(typename)
    with open(inpath) as fh:
        inputs = [l.rstrip("\n").split("\t", 1) for l in fh]
    with open(respath) as fh:
        results = [l.rstrip("\n") for l in fh]
    if len(results) != len(inputs):
        print("FAIL: %d inputs but %d results" % (len(inputs), len(results)))
        return 1
    failures = []
    for i, ((hx, pyj), res) in enumerate(zip(inputs, results), 1):
        if not res.startswith("OK "):
            failures.append((i, "dynpb failed: %s\n  input %s\n  python %s" % (res, hx, pyj)))
            continue
        dj = res[3:]
        try:
            a, b = json.loads(pyj), json.loads(dj)
        except ValueError as e:
            failures.append((i, "not JSON: %s\n  dynpb %s" % (e, dj)))
            continue
        d = first_diff(a, b)
        if d:
            failures.append((i, "JSON differs: %s\n  python %s\n  dynpb  %s" % (d, pyj, dj)))
            continue
        orig = cls.FromString(bytes.fromhex(hx))
        try:
            json_format.Parse(pyj, cls())
        except Exception:  # noqa: BLE001
            # python 4.21 rejects its own text for some values (FLT_MAX as
            # 3.4028235e+38): the parse-back check does not apply
            continue
        try:
            back = json_format.Parse(dj, cls())
        except Exception as e:  # noqa: BLE001
            failures.append((i, "Python cannot parse dynpb's JSON: %s\n  dynpb %s" % (e, dj)))
            continue
        if back.SerializeToString(deterministic=True) != orig.SerializeToString(deterministic=True):
            failures.append((i, "dynpb's JSON parses to another message\n  dynpb %s" % dj))
    if failures:
        i, detail = failures[0]
        print("FAIL: %d of %d messages differ (%s); the first, message %d: %s"
              % (len(failures), len(inputs), ",".join(str(k) for k, _ in failures[:30]), i,
                 detail))
        return 1
    print("ok %d" % len(inputs))
    return 0


def main(argv):
    if len(argv) in (7, 8) and argv[1] == "gen":
        return cmd_gen(*argv[2:])
    if len(argv) in (6, 7) and argv[1] == "check":
        return cmd_check(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
