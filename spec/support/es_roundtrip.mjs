// Round trip through protobuf-es (npm @bufbuild/protobuf), the reference
// runtime for spec/editions_es_spec.lua: argv = descriptor set, message type;
// stdin = one hex payload per line ("-" = empty); stdout = per line the hex
// of toBinary(fromBinary(payload)), or "ERR <message>", or "UNK <hex>" when
// protobuf-es kept part of the payload as unknown fields (it did not read it
// as the schema says).
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
const [setPath, typeName] = process.argv.slice(2);
const reg = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(setPath)));
const desc = reg.getMessage(typeName);
if (!desc) { console.error("no type " + typeName); process.exit(2); }
// does a parsed message (or anything inside it) hold unknown fields?
function hasUnknown(v, seen = new Set()) {
  if (v === null || typeof v !== "object" || seen.has(v)) return false;
  seen.add(v);
  if (Array.isArray(v.$unknown) && v.$unknown.length > 0) return true;
  if (v instanceof Uint8Array) return false;
  const vals = v instanceof Map ? [...v.values()] : Object.values(v);
  return vals.some((x) => hasUnknown(x, seen));
}
const out = [];
for (const line of readFileSync(0, "utf8").split("\n")) {
  if (line === "") continue;
  const hex = line === "-" ? "" : line;
  try {
    const msg = fromBinary(desc, Buffer.from(hex, "hex"));
    const b = Buffer.from(toBinary(desc, msg)).toString("hex");
    out.push(hasUnknown(msg) ? "UNK " + b : b === "" ? "-" : b);
  } catch (e) {
    out.push("ERR " + String(e.message).replace(/\n/g, " "));
  }
}
process.stdout.write(out.join("\n") + "\n");
