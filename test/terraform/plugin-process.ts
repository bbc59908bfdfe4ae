/**
 * Starts bin/terraform-provider-snapsync as tofu does (magic cookie, a client
 * certificate in PLUGIN_CLIENT_CERT), reads the handshake line and connects
 * with that client certificate over the unix socket, trusting only the
 * certificate the line carries.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { providerSchema } from '../../provider-terraform/config';
import { type ServerCertificate, selfSignedCertificate } from '../../provider-terraform/plugin/certificate';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../../provider-terraform/plugin/serve';
import { objectType } from '../../provider-terraform/schema';
import { encode } from '../../provider-terraform/wire/cty';
import { clientConstructor } from '../../provider-terraform/wire/protocol';
import { tempDir } from '../helpers/tmp';

export const PLUGIN_BIN = path.resolve(__dirname, '../../bin/terraform-provider-snapsync');

export interface Handshake {
  core: string;
  app: string;
  network: string;
  address: string;
  protocol: string;
  cert: string;
}

export interface PluginProcess {
  child: ChildProcess;
  handshake: Handshake;
  clientCert: ServerCertificate;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function parseHandshake(line: string): Handshake {
  const [core, app, network, address, protocol, cert] = line.trim().split('|');
  return { core: core!, app: app!, network: network!, address: address!, protocol: protocol!, cert: cert! };
}

export function certPemFromHandshake(cert: string): string {
  const b64 = Buffer.from(cert, 'base64')
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`.replace('\n\n', '\n');
}

/**
 * Starts the plugin with `node` (the Node that runs the tests unless given) as tofu would. Its
 * socket directory goes in a temporary directory of the test's (cleanupTempDirs): a plugin the
 * test kills outright leaves nothing in the system's temporary directory.
 */
export async function startPlugin(
  env: Record<string, string> = {},
  node: string = process.execPath,
): Promise<PluginProcess> {
  const clientCert = selfSignedCertificate();
  const child = spawn(node, [PLUGIN_BIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
      PLUGIN_PROTOCOL_VERSIONS: '5,6',
      PLUGIN_CLIENT_CERT: clientCert.certPem,
      PLUGIN_UNIX_SOCKET_DIR: tempDir(),
      ...env,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    exited.then((code) => reject(new Error(`plugin exited (${code}) before its handshake: ${stderr}`)));
  });
  return { child, handshake: parseHandshake(line), clientCert, stderr: () => stderr, exited };
}

/** A client of one service of the plugin, authenticated with `identity` (by default the certificate the plugin pins). */
export function pluginClient(
  plugin: PluginProcess,
  service: 'tfplugin6.Provider' | 'grpc.health.v1.Health' | 'plugin.GRPCController',
  identity: ServerCertificate = plugin.clientCert,
): grpc.Client {
  const credentials = grpc.credentials.createSsl(
    Buffer.from(certPemFromHandshake(plugin.handshake.cert)),
    Buffer.from(identity.keyPem),
    Buffer.from(identity.certPem),
  );
  const Client = clientConstructor(service);
  return new Client(`unix:${plugin.handshake.address}`, credentials, {
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
  });
}

/** Calls a unary method; resolves with the response. */
export function call<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  request: object,
): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (r: object, cb: (e: Error | null, v: T) => void) => void>)[method]!(
      request,
      (err, value) => (err ? reject(err) : resolve(value)),
    );
  });
}

/**
 * A plugin started as tofu starts it, its provider block configured with the
 * agent's url and token (none from the environment), as the client of its
 * tfplugin6.Provider service.
 */
export async function configuredPlugin(agent: {
  url: string;
  token: string;
}): Promise<{ plugin: PluginProcess; client: grpc.Client }> {
  const plugin = await startPlugin({ SNAPSYNC_URL: '', SNAPSYNC_TOKEN: '' });
  const client = pluginClient(plugin, 'tfplugin6.Provider');
  const config = encode({ url: agent.url, token: agent.token }, objectType(providerSchema));
  const configured = await call<{ diagnostics: unknown[] }>(client, 'ConfigureProvider', {
    config: { msgpack: config },
  });
  if (configured.diagnostics.length > 0)
    throw new Error(`ConfigureProvider: ${JSON.stringify(configured.diagnostics)}`);
  return { plugin, client };
}
