/**
 * The agent client (used by the CLI and the Pulumi provider; it imports only
 * schema/). One WebSocket, many requests in flight, every reply validated
 * against the schemas. Mutations with an idempotency key are resent after a
 * dropped connection, so a retry never acts twice.
 */
import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import WebSocket from 'ws';
import {
  acceptHelloResult,
  acceptReply,
  acceptResult,
  isMutating,
  OP_NAMES,
  type OpMap,
  type OpName,
  PROTOCOL_VERSION,
} from '../../schema';

export class AgentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

export interface ConnectOptions {
  token?: string;
  /** PEM CA bundle that must have signed the agent's certificate (wss). */
  ca?: Buffer;
  /** SHA-256 fingerprint the agent's certificate must have (wss), hex with or without colons. */
  fingerprint?: string;
  clientName?: string;
  /** How often a request is resent over a new connection after the old one dropped (default: as often as `retryWindowMs` allows). */
  retries?: number;
  /**
   * How long a request whose connection dropped keeps being resent, in ms (default 30 s: an agent
   * restarted for an upgrade is back within it; a run of tofu or Pulumi rides through).
   */
  retryWindowMs?: number;
}

/** Waits between resends: 200 ms, doubling, at most this. */
const MAX_RETRY_DELAY_MS = 2000;

export interface CallOptions {
  idempotencyKey?: string;
  onProgress?: (done: number, total: number) => void;
  /** Binary payload (write). */
  data?: Buffer;
}

interface Pending {
  op: OpName;
  resolve: (value: { result: unknown; data: Buffer | null }) => void;
  reject: (err: Error) => void;
  onProgress?: (done: number, total: number) => void;
  data: Buffer | null;
}

const normalize = (fp: string) => fp.replace(/:/g, '').toUpperCase();

export class AgentClient {
  private ws!: WebSocket;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private closed = false;
  private connecting: Promise<void> | null = null;

  private constructor(
    readonly url: string,
    private readonly options: ConnectOptions,
  ) {}

  static async connect(url: string, options: ConnectOptions = {}): Promise<AgentClient> {
    const client = new AgentClient(url, options);
    await client.open();
    return client;
  }

  private open(): Promise<void> {
    this.connecting ??= this.openOnce().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async openOnce(): Promise<void> {
    const { token, ca, fingerprint } = this.options;
    const wsOptions: WebSocket.ClientOptions = {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      handshakeTimeout: 10_000,
      perMessageDeflate: false,
    };
    if (ca) wsOptions.ca = ca;
    if (fingerprint) {
      // The pin is checked when the TLS handshake completes, before the upgrade request (and the token) is sent.
      wsOptions.createConnection = ((opts: tls.ConnectionOptions) => {
        const socket = tls.connect({ ...opts, rejectUnauthorized: false });
        const cork = socket.write.bind(socket);
        const held: Array<[unknown, unknown, unknown]> = [];
        let verified = false;
        socket.write = ((chunk: unknown, enc?: unknown, cb?: unknown) => {
          if (verified) return cork(chunk as never, enc as never, cb as never);
          held.push([chunk, enc, cb]);
          return true;
        }) as typeof socket.write;
        socket.once('secureConnect', () => {
          const seen = socket.getPeerCertificate()?.fingerprint256 ?? '';
          if (normalize(seen) !== normalize(fingerprint)) {
            socket.destroy(
              new AgentError(
                'TLS_PIN_MISMATCH',
                `agent certificate ${seen} does not match the pinned fingerprint`,
              ),
            );
            return;
          }
          verified = true;
          for (const [chunk, enc, cb] of held.splice(0)) cork(chunk as never, enc as never, cb as never);
        });
        return socket as unknown as net.Socket;
      }) as never;
    }
    const ws = new WebSocket(this.url, wsOptions);
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        const code = status === 401 ? 'UNAUTHORIZED' : status === 429 ? 'AUTH_BACKOFF' : 'CONNECTION_REFUSED';
        reject(new AgentError(code, `agent refused the connection: HTTP ${status}`, { status }));
        ws.terminate();
      });
      ws.once('error', (err) =>
        reject(
          err instanceof AgentError
            ? err
            : new AgentError('CONNECTION_FAILED', `cannot reach ${this.url}: ${err.message}`),
        ),
      );
    });
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', () => {});
    const hello = await this.send(
      'hello' as OpName,
      { protocols: [PROTOCOL_VERSION], client: this.options.clientName ?? 'snapsync-client/0.1' },
      {},
    );
    const problems = acceptHelloResult(hello.result);
    if (problems.length > 0)
      throw new AgentError('INVALID_REPLY', `bad hello reply: ${problems[0]!.path} ${problems[0]!.message}`);
  }

  private onMessage(raw: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const idLength = raw.readUInt16BE(0);
      const id = raw.subarray(2, 2 + idLength).toString('utf8');
      const pending = this.pending.get(id);
      if (pending) pending.data = raw.subarray(2 + idLength);
      return;
    }
    let message: {
      id?: string;
      ok?: boolean;
      event?: string;
      done?: number;
      total?: number;
      result?: unknown;
      error?: { code: string; message: string; details: Record<string, unknown> };
    };
    try {
      message = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    const problems = acceptReply(message);
    const pending = message.id ? this.pending.get(message.id) : undefined;
    if (!pending) return;
    if (problems.length > 0) {
      this.pending.delete(message.id!);
      pending.reject(
        new AgentError('INVALID_REPLY', `invalid reply: ${problems[0]!.path} ${problems[0]!.message}`),
      );
      return;
    }
    if (message.event === 'progress') {
      pending.onProgress?.(message.done!, message.total!);
      return;
    }
    this.pending.delete(message.id!);
    if (message.ok) pending.resolve({ result: message.result, data: pending.data });
    else pending.reject(new AgentError(message.error!.code, message.error!.message, message.error!.details));
  }

  private onClose(): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(new AgentError('CONNECTION_LOST', 'the connection to the agent dropped'));
    }
  }

  private send(
    op: OpName,
    params: object,
    options: CallOptions,
  ): Promise<{ result: unknown; data: Buffer | null }> {
    const id = `${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { op, resolve, reject, onProgress: options.onProgress, data: null });
      const request: Record<string, unknown> = { v: 1, id, op, params };
      if (options.idempotencyKey) request.idempotencyKey = options.idempotencyKey;
      this.ws.send(JSON.stringify(request));
      if (options.data) {
        const idBytes = Buffer.from(id);
        const header = Buffer.allocUnsafe(2);
        header.writeUInt16BE(idBytes.length, 0);
        this.ws.send(Buffer.concat([header, idBytes, options.data]));
      }
    });
  }

  /** Runs an operation. Reads resend freely; mutations resend only with an idempotency key. */
  async call<K extends OpName>(
    op: K,
    params: OpMap[K]['params'],
    options: CallOptions = {},
  ): Promise<OpMap[K]['result']> {
    const { result } = await this.callRaw(op, params, options);
    return result as OpMap[K]['result'];
  }

  async callRaw<K extends OpName>(op: K, params: OpMap[K]['params'], options: CallOptions = {}) {
    const retriable = options.idempotencyKey !== undefined || !MUTATING.has(op);
    const until = Date.now() + (this.options.retryWindowMs ?? 30_000);
    // The request had reached the agent when its connection dropped: what later reconnects say is not the story.
    let dropped: AgentError | null = null;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new AgentError('CLOSED', 'client is closed');
      try {
        if (this.ws.readyState !== WebSocket.OPEN) await this.open();
        const reply = await this.send(op, params as object, options);
        const problems = acceptResult(op, reply.result);
        if (problems.length > 0) {
          throw new AgentError(
            'INVALID_REPLY',
            `invalid ${op} result: ${problems[0]!.path} ${problems[0]!.message}`,
          );
        }
        return reply;
      } catch (err) {
        const lost =
          err instanceof AgentError && (err.code === 'CONNECTION_LOST' || err.code === 'CONNECTION_FAILED');
        if (!lost) throw err;
        if (err.code === 'CONNECTION_LOST') dropped ??= err;
        const delay = Math.min(200 * 2 ** attempt, MAX_RETRY_DELAY_MS);
        const exhausted =
          attempt >= (this.options.retries ?? Number.POSITIVE_INFINITY) || Date.now() + delay > until;
        if (!retriable || exhausted) {
          if (dropped === null) throw err;
          const why = !retriable
            ? ' (not resent: it changes state and has no idempotency key)'
            : err !== dropped
              ? ` and it could not be reached again (${err.message})`
              : '';
          throw new AgentError('CONNECTION_LOST', `the connection to the agent dropped during ${op}${why}`);
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async read(container: string, offset: number, length: number, snapshot?: string): Promise<Buffer> {
    const { data } = await this.callRaw(
      'read',
      snapshot ? { container, offset, length, snapshot } : { container, offset, length },
    );
    return data ?? Buffer.alloc(0);
  }

  async write(container: string, offset: number, data: Buffer): Promise<void> {
    await this.callRaw('write', { container, offset, length: data.length }, { data });
  }

  /** A fresh idempotency key (callers that derive keys from their own state pass those instead). */
  static newKey(prefix = 'cli'): string {
    return `${prefix}:${randomBytes(12).toString('hex')}`;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        this.ws.once('close', () => resolve());
        this.ws.close(1000);
      });
    }
  }
}

/** Operations that change state; without an idempotency key they are never resent. */
const MUTATING = new Set<string>([...OP_NAMES.filter(isMutating), 'write', 'writeZeroes', 'trim']);
