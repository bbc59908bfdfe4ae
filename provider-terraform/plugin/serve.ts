/**
 * The go-plugin side of a provider, as `tofu` and `terraform` launch one: the
 * magic-cookie check, AutoMTLS (a fresh server certificate per run, the host's
 * client certificate from PLUGIN_CLIENT_CERT required and pinned), a gRPC
 * server on a unix socket (in a directory of its own, removed on Shutdown or
 * any exit of the process), the handshake line on stdout, and the services
 * go-plugin calls besides the provider's own (broker, stdio, controller, health).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { protocols } from '../wire/protocol';
import { selfSignedCertificate } from './certificate';

export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
const CORE_PROTOCOL_VERSION = 1;
const APP_PROTOCOL_VERSION = 6;

export class PluginStartError extends Error {
  override name = 'PluginStartError';
}

export interface RunningPlugin {
  socket: string;
  handshake: string;
  /** Resolves when the host asked the plugin to stop (GRPCController.Shutdown) or stop() ran. */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

/** Starts serving `provider`; throws PluginStartError when not launched by a plugin host. */
export async function servePlugin(
  provider: grpc.UntypedServiceImplementation,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningPlugin> {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    throw new PluginStartError(
      'This binary is a plugin: tofu or terraform runs it. To use the provider, write a configuration that ' +
        'needs snapsync/snapsync and run `tofu plan` (see README, "Terraform/OpenTofu").',
    );
  }
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS ?? String(APP_PROTOCOL_VERSION)).split(',').map(Number);
  if (!offered.includes(APP_PROTOCOL_VERSION)) {
    throw new PluginStartError(
      `the host speaks plugin protocol ${offered.join(', ')}; this provider speaks ${APP_PROTOCOL_VERSION}`,
    );
  }
  const clientCert = env.PLUGIN_CLIENT_CERT;
  if (!clientCert?.includes('BEGIN CERTIFICATE')) {
    // Without AutoMTLS anyone who can reach the socket could drive the provider (and its agent token).
    throw new PluginStartError('PLUGIN_CLIENT_CERT is missing: the host must use AutoMTLS');
  }

  const cert = selfSignedCertificate();
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(clientCert),
    [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }],
    true,
  );
  const dir = fs.mkdtempSync(path.join(env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir(), 'snapsync-plugin-'));
  const socket = path.join(dir, 'plugin.sock');
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
  // Also when the process ends without Shutdown (a signal, its launcher gone, an error): no directory left behind.
  process.on('exit', removeDir);

  const server = new grpc.Server();
  const p = protocols();
  let markStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    markStopped = resolve;
  });
  const openStreams = new Set<
    grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>
  >();
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      for (const stream of openStreams) stream.end();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      removeDir();
      process.off('exit', removeDir);
      markStopped();
    })();
    return stopping;
  };

  server.addService(p.provider, provider);
  server.addService(p.broker, {
    // The provider opens no sub-connections; the stream stays open until the host closes it.
    StartStream: (stream: grpc.ServerDuplexStream<unknown, unknown>) => {
      openStreams.add(stream);
      stream.on('data', () => {});
      stream.on('end', () => {
        openStreams.delete(stream);
        stream.end();
      });
      stream.on('error', () => openStreams.delete(stream));
    },
  });
  server.addService(p.stdio, {
    // The provider's log goes to stderr, which the host reads itself: nothing to forward here.
    StreamStdio: (stream: grpc.ServerWritableStream<unknown, unknown>) => {
      openStreams.add(stream);
      stream.on('cancelled', () => openStreams.delete(stream));
    },
  });
  server.addService(p.controller, {
    Shutdown: (_call: unknown, callback: grpc.sendUnaryData<object>) => {
      callback(null, {});
      setImmediate(() => void stop());
    },
  });
  server.addService(p.health, {
    Check: (
      call: grpc.ServerUnaryCall<{ service: string }, unknown>,
      callback: grpc.sendUnaryData<object>,
    ) => {
      const known = call.request.service === '' || call.request.service === 'plugin';
      callback(null, { status: known ? 1 : 3 }); // SERVING, SERVICE_UNKNOWN
    },
  });

  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, credentials, (err) => (err ? reject(err) : resolve())),
  );
  // Base64 of the certificate's DER without padding: go-plugin decodes it with RawStdEncoding.
  const certText = cert.der.toString('base64').replace(/=+$/, '');
  const handshake = `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|unix|${socket}|grpc|${certText}`;
  return { socket, handshake, stopped, stop };
}
