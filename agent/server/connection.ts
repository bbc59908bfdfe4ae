/**
 * One WebSocket connection: parses and validates each frame, enforces the
 * hello exchange and the in-flight limit, pairs write requests with their
 * binary frame, and answers every request exactly once. A bad frame gets an
 * error reply; it never takes the agent down. What it holds for its client
 * (replies not taken, reads under way, write data) is bounded, alone and
 * with all the others: connection-bytes.ts, held-bytes-total.ts.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type WebSocket from 'ws';
import {
  checkHello,
  checkParamsProblems,
  checkRequest,
  isMutating,
  isOp,
  OP_NAMES,
  type OpName,
  PROTOCOL_VERSION,
} from '../../schema';
import { stableJson } from '../../schema/stable-json';
import type { Agent } from './agent';
import { ConnectionBytes } from './connection-bytes';
import { decodeBinary, encodeBinary } from './framing';
import { handlers, lockKeys } from './handlers';
import { toWire, WireError } from './wire-error';

interface Request {
  v: 1;
  id: string;
  op: string;
  idempotencyKey?: string;
  params: Record<string, unknown>;
}

const DATA_TIMEOUT_MS = 30_000;

/** The versions a hello offered, as an error message names them: the first few (a client may offer thousands). */
function offered(protocols: number[]): string {
  const named = protocols.slice(0, 8).join(', ');
  return protocols.length > 8 ? `${named} and ${protocols.length - 8} more` : named;
}

export class AgentConnection {
  private hello = false;
  private readonly inFlight = new Set<string>();
  /** Write requests waiting for their binary frame. */
  private readonly awaitingData = new Map<string, (data: Buffer) => void>();
  private readonly bytes: ConnectionBytes;

  constructor(
    private readonly agent: Agent,
    private readonly ws: WebSocket,
    private readonly remote: string,
  ) {
    this.bytes = new ConnectionBytes(
      agent.options.maxHeldBytes,
      (paused) => (paused ? ws.pause() : ws.resume()),
      agent.heldBytes,
    );
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /**
   * Whether the agent still works for the client: it owes answers, or holds
   * bytes of it (connection-bytes.ts: replies the client has not taken, whose
   * pings wait behind them; its frames unread at the bound, pongs among them).
   * Such a client is slow, not idle.
   */
  get busy(): boolean {
    return this.inFlight.size > 0 || this.bytes.bytes > 0;
  }

  private send(message: object): void {
    const text = JSON.stringify({ v: 1, ...message });
    this.sendHeld(text, Buffer.byteLength(text));
  }

  /** Sends a frame, held (connection-bytes.ts) until the socket has handed it to the kernel. */
  private sendHeld(frame: string | Buffer, length: number): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.bytes.take(length);
    this.ws.send(frame, () => this.bytes.release(length));
  }

  private fail(id: string | null, err: unknown, op = 'invalid'): void {
    const error = toWire(err);
    this.send({ id, ok: false, error });
    // Requests refused before they run are counted (and logged) too; unknown op names do not become labels.
    if (error.code !== 'INTERNAL')
      this.agent.observe(isOp(op) || op === 'hello' ? op : 'invalid', error.code, 0, {
        id,
        remote: this.remote,
      });
  }

  private onFrame(raw: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const frame = decodeBinary(raw);
      const waiter = frame && this.awaitingData.get(frame.id);
      if (!frame || !waiter) {
        this.fail(
          frame?.id ?? null,
          new WireError('INVALID_REQUEST', 'binary frame for no pending write', {}),
        );
        return;
      }
      this.awaitingData.delete(frame.id);
      this.bytes.take(frame.data.length); // until its write is done (handle)
      waiter(frame.data);
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(raw.toString('utf8'));
    } catch {
      this.fail(
        null,
        new WireError('INVALID_REQUEST', 'frame is not JSON', {
          problems: [{ path: '/', message: 'not JSON' }],
        }),
      );
      return;
    }
    const id = typeof (message as { id?: unknown })?.id === 'string' ? (message as { id: string }).id : null;
    // Only a request object can speak another protocol version; an array or a scalar is not a request.
    const isObject = message !== null && typeof message === 'object' && !Array.isArray(message);
    if (isObject && (message as { v?: unknown }).v !== PROTOCOL_VERSION) {
      this.fail(
        id,
        new WireError('UNSUPPORTED_PROTOCOL', `this agent speaks protocol ${PROTOCOL_VERSION}`, {
          supported: [PROTOCOL_VERSION],
        }),
      );
      return;
    }
    const problems = checkRequest(message);
    if (problems.length > 0) {
      this.fail(
        id,
        new WireError('INVALID_REQUEST', `invalid request: ${problems[0]!.path} ${problems[0]!.message}`, {
          problems,
        }),
      );
      return;
    }
    void this.handle(message as Request);
  }

  private async handle(req: Request): Promise<void> {
    const { id, op } = req;
    if (this.inFlight.has(id)) {
      this.fail(id, new WireError('DUPLICATE_ID', `request ${id} is still in flight`, { id }), op);
      return;
    }
    if (op === 'hello') {
      this.answerHello(req);
      return;
    }
    if (!this.hello) {
      this.fail(id, new WireError('HELLO_REQUIRED', 'send hello first', {}), op);
      return;
    }
    if (!isOp(op)) {
      this.fail(id, new WireError('UNKNOWN_OP', `unknown operation "${op}"`, { op, known: OP_NAMES }));
      return;
    }
    if (this.agent.stopping) {
      this.fail(id, new WireError('SHUTTING_DOWN', 'the agent is stopping', {}), op);
      return;
    }
    if (this.inFlight.size >= this.agent.options.maxInFlight) {
      this.fail(
        id,
        new WireError(
          'TOO_MANY_REQUESTS',
          `at most ${this.agent.options.maxInFlight} requests in flight per connection`,
          {},
        ),
        op,
      );
      return;
    }
    const problems = checkParamsProblems(op, req.params);
    if (problems.length > 0) {
      this.fail(
        id,
        new WireError(
          'INVALID_REQUEST',
          `invalid ${op} params: ${problems[0]!.path} ${problems[0]!.message}`,
          { op, problems },
        ),
        op,
      );
      return;
    }
    this.inFlight.add(id);
    const started = process.hrtime.bigint();
    let code = 'OK';
    let data: Buffer | null = null;
    // A read's bytes are held before it reads them: it waits while the client has not taken earlier replies.
    const reply = { reserved: op === 'read' ? (req.params.length as number) : 0 };
    const answerError = (err: unknown) => {
      const wire = toWire(err, path.join(this.agent.pool.directory, 'meta', 'data.mdb'));
      code = wire.code;
      if (code === 'INTERNAL')
        this.agent.logger.error('internal error', { id, op, error: String((err as Error)?.stack ?? err) });
      else if (wire.details.lmdb !== undefined)
        this.agent.logger.error('pool metadata damaged', { id, op, error: wire.message });
      this.send({ id, ok: false, error: wire }); // counted in finally
    };
    try {
      if (reply.reserved > 0) await this.bytes.reserve(reply.reserved);
      data = op === 'write' ? await this.receiveData(id) : null;
      // The reply is sent inside run(): a graceful stop closes connections only after it went out.
      await this.agent.run(lockKeys(op, req.params), async () => {
        try {
          const result = await this.execute(req, op, data, reply);
          this.send({ id, ok: true, result: result.value, ...(result.replayed ? { replayed: true } : {}) });
        } catch (err) {
          answerError(err);
        }
      });
    } catch (err) {
      answerError(err); // the write's data never came
    } finally {
      this.inFlight.delete(id);
      this.bytes.release(reply.reserved + (data?.length ?? 0));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.agent.observe(op, code, seconds, {
        id,
        remote: this.remote,
        container: lockKeys(op, req.params)[0],
        durationMs: Math.round(seconds * 1e6) / 1000,
      });
    }
  }

  private answerHello(req: Request): void {
    const problems = checkHello(req.params);
    if (problems.length > 0) {
      this.fail(
        req.id,
        new WireError('INVALID_REQUEST', `invalid hello: ${problems[0]!.path} ${problems[0]!.message}`, {
          problems,
        }),
      );
      return;
    }
    const protocols = req.params.protocols as number[];
    if (!protocols.includes(PROTOCOL_VERSION)) {
      this.fail(
        req.id,
        new WireError(
          'UNSUPPORTED_PROTOCOL',
          `this agent speaks protocol ${PROTOCOL_VERSION}; the client offered ${offered(protocols)}`,
          { supported: [PROTOCOL_VERSION] },
        ),
      );
      this.ws.close(1002, 'unsupported protocol');
      return;
    }
    this.hello = true;
    this.send({
      id: req.id,
      ok: true,
      result: {
        protocol: PROTOCOL_VERSION,
        agent: this.agent.version,
        pool: this.agent.pool.info().uuid,
        ops: OP_NAMES,
      },
    });
  }

  private receiveData(id: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const expire = () => {
        // Not read because the connection holds its limit (its earlier writes wait for a lock): not missing.
        if (this.bytes.readingPaused && this.ws.readyState === this.ws.OPEN) {
          timer = setTimeout(expire, DATA_TIMEOUT_MS);
          return;
        }
        this.awaitingData.delete(id);
        reject(new WireError('DATA_MISSING', 'the binary frame of the write did not arrive', {}));
      };
      let timer = setTimeout(expire, DATA_TIMEOUT_MS);
      this.awaitingData.set(id, (data) => {
        clearTimeout(timer);
        resolve(data);
      });
    });
  }

  private async execute(
    req: Request,
    op: OpName,
    data: Buffer | null,
    reply: { reserved: number },
  ): Promise<{ value: unknown; replayed: boolean }> {
    const pool = this.agent.pool;
    const key = isMutating(op) ? req.idempotencyKey : undefined;
    const fingerprint = createHash('sha256')
      .update(`${op}\u0000${stableJson(req.params)}`)
      .digest('hex');
    if (key) {
      const earlier = pool.idempotent(key);
      if (earlier) {
        if (earlier.fingerprint !== fingerprint) {
          throw new WireError(
            'IDEMPOTENCY_CONFLICT',
            `idempotency key "${key}" was used with other parameters`,
            { key },
          );
        }
        // Operations that return nothing stored null; their fresh answer is {}.
        return { value: earlier.result ?? {}, replayed: true };
      }
    }
    const value = await handlers[op](req.params as never, {
      pool,
      dirs: this.agent.dirs,
      mutation: key
        ? { idempotency: { key, fingerprint, expiresAt: Date.now() + this.agent.options.idempotencyTtlMs } }
        : {},
      progress: (done, total) => this.send({ id: req.id, event: 'progress', done, total }),
      data,
      sendData: (bytes) => {
        const frame = encodeBinary(req.id, bytes);
        this.sendHeld(frame, frame.length);
        // The frame is held now, until the client takes it: the read's reservation goes.
        this.bytes.release(reply.reserved);
        reply.reserved = 0;
      },
      identityHooks: this.agent.identityHooks,
      stats: () => this.agent.stats(),
      stopping: () => this.agent.stopping,
      attachments: this.agent.attachments,
    });
    // A mutation is answered once it is durable.
    if (isMutating(op)) await pool.durable();
    return { value: JSON.parse(JSON.stringify(value ?? {})), replayed: false };
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }
}
