/** The gRPC service definitions the plugin serves, loaded from protocol/*.proto. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// Next to the bundle (dist/terraform-provider/protocol, copied by the build), or in the sources.
const PROTO_DIR = [path.join(__dirname, 'protocol'), path.join(__dirname, '..', 'protocol')].find((dir) =>
  fs.existsSync(path.join(dir, 'tfplugin6.proto')),
)!;

export interface Protocols {
  provider: grpc.ServiceDefinition;
  broker: grpc.ServiceDefinition;
  controller: grpc.ServiceDefinition;
  stdio: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

let loaded: Protocols | null = null;

/** Field names as in the .proto files (snake_case), 64-bit integers as numbers, bytes as Buffers. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  defaults: true,
  oneofs: true,
};

let definition: protoLoader.PackageDefinition | null = null;

/** The .proto files, parsed once per process. */
function packageDefinition(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync(
    ['tfplugin6.proto', 'go-plugin.proto', 'health.proto'].map((f) => path.join(PROTO_DIR, f)),
    LOADER_OPTIONS,
  );
  return definition;
}

export function protocols(): Protocols {
  if (loaded) return loaded;
  const definition = packageDefinition();
  const service = (name: string) => definition[name] as grpc.ServiceDefinition;
  loaded = {
    provider: service('tfplugin6.Provider'),
    broker: service('plugin.GRPCBroker'),
    controller: service('plugin.GRPCController'),
    stdio: service('plugin.GRPCStdio'),
    health: service('grpc.health.v1.Health'),
  };
  return loaded;
}

/** A client constructor for tests that play the host's part. */
export function clientConstructor(
  name: 'tfplugin6.Provider' | 'grpc.health.v1.Health' | 'plugin.GRPCController',
) {
  return grpc.makeClientConstructor(packageDefinition()[name] as grpc.ServiceDefinition, name);
}
