/**
 * Drives the real dynamic-provider plugin shipped in @pulumi/pulumi
 * (`cmd/dynamic-provider`) exactly as the Pulumi engine does: spawn it, read
 * the port it prints, and call Configure/Check/Diff/Create/Read/Update/Delete
 * over gRPC with the provider serialized by Pulumi's own closure serializer.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

// biome-ignore lint/suspicious/noExplicitAny: generated protobuf stubs have no useful types here
type Any = any;

const pulumiDir = path.dirname(require.resolve('@pulumi/pulumi/package.json'));
const grpc: Any = require(require.resolve('@grpc/grpc-js', { paths: [pulumiDir] }));
const structpb: Any = require(
  require.resolve('google-protobuf/google/protobuf/struct_pb', { paths: [pulumiDir] }),
);
const provproto: Any = require('@pulumi/pulumi/proto/provider_pb');
const provrpc: Any = require('@pulumi/pulumi/proto/provider_grpc_pb');

export interface DiffResult {
  changes: 'none' | 'some' | 'unknown';
  replaces: string[];
  diffs: string[];
  deleteBeforeReplace: boolean;
}

/** Serializes a dynamic provider object the way `pulumi.dynamic.Resource` does. */
export async function serializeProvider(provider: object): Promise<string> {
  const { serializeFunction } = require('@pulumi/pulumi/runtime/closure/serializeClosure');
  const serialized = await serializeFunction(() => provider, { allowSecrets: true });
  return serialized.text;
}

const toStruct = (value: Record<string, unknown>) => structpb.Struct.fromJavaScript(value);
const fromStruct = (struct: Any): Record<string, unknown> => (struct ? struct.toJavaScript() : {});

export class DynamicProviderPlugin {
  private constructor(
    private readonly child: ChildProcess,
    private readonly client: Any,
    readonly stderr: () => string,
  ) {}

  /**
   * Starts the plugin. `cwd` is the Pulumi project directory (where the
   * serialized providers' `require`s resolve); `env` reaches the plugin process.
   */
  static async start(
    options: { cwd?: string; env?: Record<string, string> } = {},
  ): Promise<DynamicProviderPlugin> {
    const script = require.resolve('@pulumi/pulumi/cmd/dynamic-provider');
    const child = spawn(process.execPath, [script, '127.0.0.1:1'], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const match = /^(\d+)\s*$/m.exec(out);
        if (match) resolve(Number(match[1]));
      });
      child.on('exit', (code) => reject(new Error(`dynamic provider exited (${code}): ${stderr}`)));
    });
    const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return new DynamicProviderPlugin(child, client, () => stderr);
  }

  private call<T>(method: string, request: Any, unwrap: (response: Any) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method](request, (err: Error | null, response: Any) =>
        err ? reject(err) : resolve(unwrap(response)),
      );
    });
  }

  configure(config: Record<string, unknown>): Promise<void> {
    const req = new provproto.ConfigureRequest();
    req.setArgs(toStruct(config));
    return this.call('configure', req, () => undefined);
  }

  check(urn: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const req = new provproto.CheckRequest();
    req.setUrn(urn);
    req.setOlds(toStruct(olds));
    req.setNews(toStruct(news));
    return this.call('check', req, (res) => ({
      inputs: fromStruct(res.getInputs()),
      failures: res
        .getFailuresList()
        .map((f: Any) => ({ property: f.getProperty(), reason: f.getReason() })) as Array<{
        property: string;
        reason: string;
      }>,
    }));
  }

  diff(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<DiffResult> {
    const req = new provproto.DiffRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(toStruct(olds));
    req.setNews(toStruct(news));
    const names = { 0: 'unknown', 1: 'none', 2: 'some' } as const;
    return this.call('diff', req, (res) => ({
      changes: names[res.getChanges() as 0 | 1 | 2],
      replaces: res.getReplacesList(),
      diffs: res.getDiffsList(),
      deleteBeforeReplace: res.getDeletebeforereplace(),
    }));
  }

  create(urn: string, properties: Record<string, unknown>, preview = false) {
    const req = new provproto.CreateRequest();
    req.setUrn(urn);
    req.setProperties(toStruct(properties));
    req.setPreview(preview);
    return this.call('create', req, (res) => ({
      id: res.getId() as string,
      properties: fromStruct(res.getProperties()),
    }));
  }

  read(urn: string, id: string, properties: Record<string, unknown>, inputs: Record<string, unknown>) {
    const req = new provproto.ReadRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setProperties(toStruct(properties));
    req.setInputs(toStruct(inputs));
    return this.call('read', req, (res) => ({
      id: res.getId() as string,
      properties: fromStruct(res.getProperties()),
      inputs: fromStruct(res.getInputs()),
    }));
  }

  update(
    urn: string,
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
    preview = false,
  ) {
    const req = new provproto.UpdateRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(toStruct(olds));
    req.setNews(toStruct(news));
    req.setPreview(preview);
    return this.call('update', req, (res) => ({ properties: fromStruct(res.getProperties()) }));
  }

  delete(urn: string, id: string, properties: Record<string, unknown>) {
    const req = new provproto.DeleteRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setProperties(toStruct(properties));
    return this.call('delete', req, () => undefined);
  }

  stop(): void {
    this.client.close();
    this.child.kill('SIGTERM');
  }
}
