// A real gRPC server with server reflection (@grpc/grpc-js + @grpc/reflection
// + @grpc/proto-loader, test-time only) for spec/grpc_reflect_spec.lua.
// Usage: node server.js PORT ROOT FILE... [--raw SET.pb]   (PORT 0: the OS chooses)
// Serves shop.v1.Shops from the .proto files under ROOT and the reflection
// service of @grpc/reflection (v1 and v1alpha); prints "PORT PID" once it
// listens. With --raw, the reflection service (v1 only) is the one below
// instead: it serves the files of protoc's SET.pb as they are (real names
// and imports), and file_containing_symbol answers with the one file that
// declares the symbol, so a client must ask for the imports by name.
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');

const args = process.argv.slice(2);
let raw = null;
const rawAt = args.indexOf('--raw');
if (rawAt >= 0) { raw = args[rawAt + 1]; args.splice(rawAt, 2); }
const [port, root, ...files] = args;
const def = protoLoader.loadSync(files, { includeDirs: [root], keepCase: true, longs: String });
const pkg = grpc.loadPackageDefinition(def);
const server = new grpc.Server();
const impl = {
  GetShop(call, cb) {
    if (call.request.id === 'missing') {
      cb({ code: grpc.status.NOT_FOUND, details: 'no shop ' + call.request.id });
      return;
    }
    cb(null, { id: call.request.id, name: 'Shop ' + call.request.id, balance: { currency: 'EUR', units: '12' } });
  },
  ListShops(call) {
    for (let i = 0; i < call.request.page_size; i++) call.write({ id: String(i), name: 'Shop ' + i });
    call.end();
  },
};
server.addService(pkg.shop.v1.Shops.service, impl);
if (raw) addRawReflection(server, raw); else new ReflectionService(def).addToServer(server);

function addRawReflection(srv, setPath) {
  const fs = require('fs');
  const path = require('path');
  const descriptor = require('protobufjs/ext/descriptor');
  const set = fs.readFileSync(setPath);
  // FileDescriptorSet: field 1 (length-delimited) per file, kept as raw bytes
  const varint = (b, i) => { let n = 0, m = 1, c; do { c = b[i++]; n += (c & 127) * m; m *= 128; } while (c & 128); return [n, i]; };
  const byName = {}, bySymbol = {}, services = [];
  for (let i = 0; i < set.length;) {
    let key, len;
    [key, i] = varint(set, i);
    [len, i] = varint(set, i);
    const bytes = set.subarray(i, i + len);
    i += len;
    if (key !== 10) continue;
    const f = descriptor.FileDescriptorProto.decode(bytes);
    byName[f.name] = bytes;
    const pkg = f.package ? f.package + '.' : '';
    const walk = (prefix, msgs) => (msgs || []).forEach((m) => { bySymbol[prefix + m.name] = bytes; walk(prefix + m.name + '.', m.nestedType); });
    walk(pkg, f.messageType);
    (f.enumType || []).forEach((e) => { bySymbol[pkg + e.name] = bytes; });
    (f.service || []).forEach((s) => { bySymbol[pkg + s.name] = bytes; services.push(pkg + s.name); });
  }
  const reflDir = path.dirname(require.resolve('@grpc/reflection/package.json'));
  const refl = protoLoader.loadSync(path.join(reflDir, 'build/proto/grpc/reflection/v1/reflection.proto'),
    { longs: String, enums: String, defaults: false, oneofs: true, keepCase: true });
  const svc = grpc.loadPackageDefinition(refl).grpc.reflection.v1.ServerReflection.service;
  srv.addService(svc, {
    ServerReflectionInfo(stream) {
      stream.on('end', () => stream.end());
      stream.on('data', (req) => {
        const out = { valid_host: req.host || '', original_request: req };
        const notFound = (what) => { out.error_response = { error_code: grpc.status.NOT_FOUND, error_message: what + ' not found' }; };
        if (req.list_services !== undefined && req.message_request === 'list_services') {
          out.list_services_response = { service: services.concat(['grpc.reflection.v1.ServerReflection']).map((name) => ({ name })) };
        } else if (req.message_request === 'file_containing_symbol') {
          const b = bySymbol[req.file_containing_symbol];
          if (b) out.file_descriptor_response = { file_descriptor_proto: [b] }; else notFound(req.file_containing_symbol);
        } else if (req.message_request === 'file_by_filename') {
          const b = byName[req.file_by_filename];
          if (b) out.file_descriptor_response = { file_descriptor_proto: [b] }; else notFound(req.file_by_filename);
        } else {
          out.error_response = { error_code: grpc.status.UNIMPLEMENTED, error_message: 'not supported' };
        }
        stream.write(out);
      });
    },
  });
}
server.bindAsync('127.0.0.1:' + port, grpc.ServerCredentials.createInsecure(), (err, p) => {
  if (err) { console.log('error ' + err.message); process.exit(1); }
  console.log(p + ' ' + process.pid);
});
