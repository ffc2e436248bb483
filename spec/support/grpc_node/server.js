// A real gRPC server with server reflection (@grpc/grpc-js + @grpc/reflection
// + @grpc/proto-loader, test-time only) for spec/grpc_reflect_spec.lua.
// Usage: node server.js PORT ROOT FILE...   (PORT 0: the OS chooses)
// Serves shop.v1.Shops from the .proto files under ROOT and the reflection
// service (v1 and v1alpha); prints "PORT PID" once it listens.
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { ReflectionService } = require('@grpc/reflection');

const [port, root, ...files] = process.argv.slice(2);
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
new ReflectionService(def).addToServer(server);
server.bindAsync('127.0.0.1:' + port, grpc.ServerCredentials.createInsecure(), (err, p) => {
  if (err) { console.log('error ' + err.message); process.exit(1); }
  console.log(p + ' ' + process.pid);
});
