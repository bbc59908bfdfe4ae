/**
 * The agent's listener: one HTTP(S) server for the WebSocket protocol,
 * /healthz and /metrics. Authentication happens at the upgrade (401 before
 * any frame is read); a token in the URL is refused outright.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { WebSocketServer } from 'ws';
import type { Pool } from '../engine';
import type { SessionRegistry } from '../nbd/sessions';
import { Agent, type IdentityHooksFactory } from './agent';
import { AuthBackoff, MIN_TOKEN_LENGTH, TOKEN_TOO_SHORT, TokenCheck } from './auth';
import { AgentConnection } from './connection';
import { guardConnections } from './connection-guard';
import { watchIdle } from './idle-watch';
import { Logger } from './logger';
import { isLoopback } from './loopback';
import { AllowedDirs, poolPaths } from './paths';
import { toWire } from './wire-error';

/**
 * The paths the agent serves are logged as they are; any other only by its
 * length: a client may have put the token in it, percent-encoded (or worse)
 * where no scrubbing of the literal token finds it.
 */
const SERVED_PATHS = new Set(['/', '/metrics', '/healthz']);
function loggedPath(url: string | undefined): string {
  const requested = (url ?? '').split('?')[0]!;
  return SERVED_PATHS.has(requested) ? requested : `(not served here, ${requested.length} characters)`;
}

/** As NBD's --nbd-max-reply-bytes: QD32 of 1 MiB reads, or two 32 MiB requests, stay below it. */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;
/** All API connections together: four connections at their own bound, or eight 32 MiB requests. */
export const DEFAULT_MAX_HELD_BYTES_TOTAL = 256 * 1024 * 1024;

export interface AgentServerOptions {
  pool: Pool;
  host?: string;
  port?: number;
  /** Bearer token; null only together with insecureNoAuth on a loopback address. */
  token: string | null;
  insecureNoAuth?: boolean;
  tls?: { cert: Buffer; key: Buffer };
  allowDirs?: string[];
  /** Import from / export to block devices inside the allowed directories (off by default). */
  allowBlockDevices?: boolean;
  maxMessageBytes?: number;
  maxInFlight?: number;
  /** The agent's own files (token, TLS and NBD credentials): no import or export reaches them. */
  agentFiles?: string[];
  /** Bytes a connection may hold for its client: replies not taken, reads under way, write data (default 64 MiB). */
  maxHeldBytes?: number;
  /** Bytes all connections may hold together (default 256 MiB); see held-bytes-total.ts. */
  maxHeldBytesTotal?: number;
  idempotencyTtlMs?: number;
  logger?: Logger;
  identityHooks?: IdentityHooksFactory;
  /** Connection limits and timeouts; see CONNECTION_DEFAULTS. */
  connectionLimits?: Partial<AgentConnectionLimits>;
  /** NBD sessions to guard operations against (the NBD server's registry). */
  sessions?: SessionRegistry;
}

export interface AgentConnectionLimits {
  /** From TCP accept to an authenticated WebSocket upgrade. */
  handshakeTimeoutMs: number;
  /** An authenticated client from which nothing arrives (no request, no pong) this long is closed. */
  idleTimeoutMs: number;
  /**
   * Authenticated WebSocket connections one address may hold, and as many
   * not yet authenticated (HTTP, handshakes: the oldest is closed for a new one).
   */
  maxConnectionsPerAddress: number;
  /** The same in all. */
  maxConnections: number;
}

/** Defaults of the serve flags --handshake-timeout, --idle-timeout, --max-connections-per-address, --max-connections. */
export const CONNECTION_DEFAULTS: AgentConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxConnectionsPerAddress: 64,
  maxConnections: 1024,
};

/** Why an authenticated request is turned away: HTTP status and headers. */
interface Refusal {
  status: number;
  headers: Record<string, string>;
}

export interface RunningAgent {
  agent: Agent;
  url: string;
  port: number;
  /** Stops accepting, finishes what is in flight, flushes and closes the pool. */
  stop(): Promise<void>;
  /**
   * Rotates the bearer token: new connections and /metrics need `token` from now
   * on; those already authenticated stay. Throws (TOKEN_TOO_SHORT) for a short one.
   */
  replaceToken(token: string): void;
}

export async function startAgentServer(options: AgentServerOptions): Promise<RunningAgent> {
  const host = options.host ?? '127.0.0.1';
  if (options.token === null) {
    if (!options.insecureNoAuth)
      throw new Error('a token is required (or pass --insecure-no-auth on a loopback address)');
    if (!isLoopback(host)) throw new Error('--insecure-no-auth is only allowed on a loopback address');
  }
  if (options.token !== null && options.token.length < MIN_TOKEN_LENGTH)
    throw Object.assign(new Error(`the token is shorter than ${MIN_TOKEN_LENGTH} characters`), {
      code: TOKEN_TOO_SHORT,
    });
  const logger = options.logger ?? new Logger();
  logger.addSecret(options.token);
  const agent = new Agent(
    options.pool,
    logger,
    new AllowedDirs(options.allowDirs ?? [], {
      blockDevices: options.allowBlockDevices,
      protect: poolPaths(options.pool),
      agentFiles: options.agentFiles ?? [],
    }),
    {
      maxInFlight: options.maxInFlight ?? 64,
      maxHeldBytes: options.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES,
      maxHeldBytesTotal: options.maxHeldBytesTotal ?? DEFAULT_MAX_HELD_BYTES_TOTAL,
      idempotencyTtlMs: options.idempotencyTtlMs ?? 7 * 24 * 3600 * 1000,
    },
    options.identityHooks ?? (() => null),
    options.sessions,
  );
  const auth = new TokenCheck(options.token);
  const backoff = new AuthBackoff();
  const connections = new Set<AgentConnection>();

  /** Counts and logs a refused request. */
  const refusal = (
    req: http.IncomingMessage,
    status: number,
    reason: string,
    headers: Record<string, string> = {},
  ): Refusal => {
    agent.metrics.authFailures.inc({ reason });
    logger.warn('request refused', {
      remote: req.socket.remoteAddress ?? 'unknown',
      reason,
      path: loggedPath(req.url),
    });
    return { status, headers };
  };

  /**
   * The token check for every authenticated entry point (the WebSocket
   * upgrade and /metrics): per-address back-off, no token in the URL, the
   * bearer token.
   */
  const admit = (req: http.IncomingMessage): Refusal | null => {
    const remote = req.socket.remoteAddress ?? 'unknown';
    const refuse = (status: number, reason: string, headers?: Record<string, string>) =>
      refusal(req, status, reason, headers);
    const url = new URL(req.url ?? '/', 'http://agent');
    const tokenInUrl = [...url.searchParams.keys()].some((k) => /token|auth|key/i.test(k));
    // The right token is let in even while its address backs off: all local
    // clients share 127.0.0.1 (and remote ones a NAT), so a flood of guesses
    // must not lock the operator out. Guessing a 16+ character token is
    // hopeless anyway; the back-off only spares the agent and its log.
    if (!tokenInUrl && auth.accepts(req.headers.authorization)) {
      backoff.succeed(remote);
      return null;
    }
    const wait = backoff.blockedFor(remote);
    if (wait > 0) return refuse(429, 'backoff', { 'Retry-After': `${Math.ceil(wait / 1000)}` });
    backoff.fail(remote);
    if (tokenInUrl) return refuse(400, 'token-in-url');
    return refuse(401, 'bad-token', { 'WWW-Authenticate': 'Bearer' });
  };

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      // Degraded: the pool still reads, but writes cannot be made durable (the last commit failed).
      // Unauthenticated: the stable code only; the message (paths, uids) is in the log and the failed replies.
      const failure = options.pool.commitFailure;
      const status = agent.stopping ? 'stopping' : failure ? 'degraded' : 'ok';
      const error = failure && toWire(failure.error, path.join(options.pool.directory, 'meta', 'data.mdb'));
      res.writeHead(status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status,
          pool: options.pool.info().uuid,
          ...(failure && error ? { error: { code: error.code }, since: failure.since.toISOString() } : {}),
        }),
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      const refused = admit(req);
      if (refused) {
        res.writeHead(refused.status, refused.headers).end();
        return;
      }
      res.writeHead(200, { 'content-type': agent.metrics.registry.contentType });
      res.end(await agent.metrics.registry.metrics());
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    : http.createServer(onRequest);
  // --- connection limits and timeouts (connection-guard.ts, idle-watch.ts) ---
  const limits = { ...CONNECTION_DEFAULTS, ...options.connectionLimits };
  const guard = guardConnections(server, {
    perAddress: limits.maxConnectionsPerAddress,
    total: limits.maxConnections,
    handshakeTimeoutMs: limits.handshakeTimeoutMs,
    countRefusal: (reason) => agent.metrics.authFailures.inc({ reason }),
    onRefused: (fields) => logger.warn('connection refused', fields),
  });
  /** The token check passed: the connection takes a slot of the authenticated budget (logged and counted by the guard). */
  const overLimit = (req: http.IncomingMessage): Refusal | null =>
    guard.authenticated(req.socket) === null ? null : { status: 503, headers: { 'Retry-After': '1' } };
  // --- end connection limits ---
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxMessageBytes ?? 33 * 1024 * 1024,
  });

  server.on('upgrade', (req, socket, head) => {
    const remote = req.socket.remoteAddress ?? 'unknown';
    // Until ws owns the socket nothing listens for its errors: a client that resets
    // the connection after a refusal (ECONNRESET) must not take the agent down.
    const onSocketError = (err: Error) => logger.warn('upgrade socket error', { remote, error: String(err) });
    socket.on('error', onSocketError);
    const refused = agent.stopping ? refusal(req, 503, 'stopping') : (admit(req) ?? overLimit(req));
    if (refused) {
      const extra = Object.entries(refused.headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.end(
        `HTTP/1.1 ${refused.status} ${http.STATUS_CODES[refused.status]}\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', onSocketError); // ws handles the socket's errors from here on
      logger.info('connected', { remote });
      const connection = new AgentConnection(agent, ws, remote);
      watchIdle(
        ws,
        limits.idleTimeoutMs,
        () => {
          logger.info('idle connection closed', { remote, idleMs: limits.idleTimeoutMs });
          connection.close(1001, 'idle timeout');
        },
        () => connection.busy,
      );
      connections.add(connection);
      agent.connections++;
      agent.metrics.connections.inc();
      ws.on('close', () => {
        connections.delete(connection);
        agent.connections--;
        agent.metrics.connections.dec();
      });
      ws.on('error', (err) => logger.warn('connection error', { remote, error: err.message }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${options.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info('listening', { url, auth: auth.required ? 'token' : 'none', tls: Boolean(options.tls) });

  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      agent.stopping = true;
      server.close();
      await agent.drained();
      for (const c of connections) c.close(1001, 'agent stopping');
      wss.close();
      // Stopping must succeed whatever the state (a full host refuses the last commit): log, release, go on.
      try {
        await options.pool.flush();
      } catch (err) {
        logger.error('final flush failed: writes no client flushed are lost', { error: String(err) });
      }
      try {
        await options.pool.close();
      } catch (err) {
        logger.error('pool closed without its last commit', { error: String(err) });
      }
      server.closeAllConnections?.();
      logger.info('stopped', {});
    })();
    return stopped;
  };
  const replaceToken = (next: string) => {
    if (next.length < MIN_TOKEN_LENGTH)
      throw Object.assign(new Error(`the token is shorter than ${MIN_TOKEN_LENGTH} characters`), {
        code: TOKEN_TOO_SHORT,
      });
    // Scrubbed before anything can log it.
    logger.addSecret(next);
    auth.replace(next);
  };
  return { agent, url, port, stop, replaceToken };
}
