/**
 * The fixed newstyle handshake: greeting, client flags, then option haggling
 * until the client picks an export (GO / EXPORT_NAME) or leaves (ABORT).
 * Options we cannot satisfy get an error reply and haggling goes on; only a
 * broken option header, bad client flags or a failed EXPORT_NAME drop the
 * connection (the protocol leaves no other way).
 */
import type { NbdBackend, NbdExports } from './backend';
import { clientIdentity } from './client-auth';
import type { NbdConnection } from './connection';
import {
  BASE_ALLOCATION,
  BASE_ALLOCATION_ID,
  FLAG_C_FIXED_NEWSTYLE,
  FLAG_C_NO_ZEROES,
  IHAVEOPT,
  INFO,
  MAX_OPTION_DATA,
  MAX_PAYLOAD,
  OPT,
  REP,
  TFLAG,
} from './constants';
import { NbdError } from './errors';
import { matchContexts } from './meta-context';
import {
  exportNameReply,
  greeting,
  infoBlockSize,
  infoExport,
  infoString,
  metaContextReply,
  optionError,
  optionReply,
  parseInfoRequest,
  parseMetaContextRequest,
  parseName,
  serverEntry,
} from './option-codec';
import type { TlsPolicy } from './tls';
import type { Session } from './transmission';
import { unixPeerIdentity } from './unix-peer';

export interface HandshakeConfig {
  exports: NbdExports;
  tls: TlsPolicy | null;
  shuttingDown(): boolean;
  /** Why this export is refused to new connections (a fence, fences.ts), or null. Logged by the caller. */
  fenced?(name: string): string | null;
  /** Whether NBD_OPT_LIST shows this export (a fenced one is left out: nothing may open it). Default: all. */
  listed?(name: string): boolean;
}

/** Option-haggling state that later options depend on. */
interface Haggle {
  noZeroes: boolean;
  structured: boolean;
  /** Export for which base:allocation was selected by the last SET_META_CONTEXT. */
  metaExport: string | null;
}

const violation = (message: string) => new NbdError('PROTOCOL_VIOLATION', message);

/**
 * Transmission flags for an export as this session would see it.
 * CAN_MULTI_CONN only when the backend says more connections may write it
 * (or it is read-only): a flush is pool-wide, so it then covers every
 * connection's acknowledged writes.
 */
export function transmissionFlags(
  info: { readOnly: boolean; multiConn: boolean },
  structured: boolean,
): number {
  let flags = TFLAG.HAS_FLAGS | TFLAG.SEND_FLUSH | TFLAG.SEND_FUA;
  if (info.readOnly) flags |= TFLAG.READ_ONLY;
  else flags |= TFLAG.SEND_TRIM | TFLAG.SEND_WRITE_ZEROES | TFLAG.SEND_FAST_ZERO;
  if (info.multiConn) flags |= TFLAG.CAN_MULTI_CONN;
  if (structured) flags |= TFLAG.SEND_DF;
  return flags;
}

/** Block size constraints: any byte granularity works; the pool block is what avoids copy-up. */
function blockSizes(preferred: number): [number, number, number] {
  const pref = Math.min(Math.max(preferred, 512), MAX_PAYLOAD);
  return [1, pref, MAX_PAYLOAD];
}

/** Runs the handshake. Resolves to the session to serve, or null if the client left. */
export async function negotiate(conn: NbdConnection, config: HandshakeConfig): Promise<Session | null> {
  const q = conn.queue;
  conn.send(greeting());
  await q.need(4);
  const clientFlags = q.take(4).readUInt32BE(0);
  if (clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) {
    throw violation(`unknown client flags 0x${clientFlags.toString(16)}`);
  }
  const state: Haggle = {
    noZeroes: (clientFlags & FLAG_C_NO_ZEROES) !== 0,
    structured: false,
    metaExport: null,
  };

  for (;;) {
    await q.need(16);
    const header = q.take(16);
    if (header.readBigUInt64BE(0) !== IHAVEOPT) throw violation('bad option magic');
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (length > MAX_OPTION_DATA) {
      if (option === OPT.EXPORT_NAME) throw violation(`EXPORT_NAME of ${length} bytes`);
      await skip(conn, length);
      conn.send(optionError(option, REP.ERR_TOO_BIG, `option data of ${length} bytes is too large`));
      continue;
    }
    await q.need(length);
    const data = q.take(length);
    const reply = (type: number, payload?: Buffer) => conn.send(optionReply(option, type, payload));
    const error = (type: number, message: string) => conn.send(optionError(option, type, message));

    if (option === OPT.ABORT) {
      reply(REP.ACK);
      return null;
    }
    if (config.shuttingDown()) {
      if (option === OPT.EXPORT_NAME) throw violation('server is shutting down');
      error(REP.ERR_SHUTDOWN, 'server is shutting down');
      continue;
    }
    if (config.tls?.required && !conn.tls && option !== OPT.STARTTLS) {
      if (option === OPT.EXPORT_NAME) throw violation('EXPORT_NAME before STARTTLS on a TLS-only server');
      error(REP.ERR_TLS_REQD, 'this server requires TLS: send NBD_OPT_STARTTLS first');
      continue;
    }

    switch (option) {
      case OPT.EXPORT_NAME: {
        const name = parseName(data);
        const fence = name === null ? null : (config.fenced?.(name) ?? null);
        if (fence !== null) throw new NbdError('EXPORT_FENCED', fence);
        const backend = name === null ? null : config.exports.open(name, clientOf(conn));
        // EXPORT_NAME cannot be answered with an error: the session ends.
        if (backend === null) throw new NbdError('EXPORT_NOT_FOUND', `no export "${name}"`);
        conn.send(
          exportNameReply(backend.size, transmissionFlags(backend, state.structured), state.noZeroes),
        );
        return session(backend, state, name!);
      }
      case OPT.LIST: {
        if (length !== 0) {
          error(REP.ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const e of config.exports.list())
          if (config.listed?.(e.name) ?? true) reply(REP.SERVER, serverEntry(e.name, e.description));
        reply(REP.ACK);
        break;
      }
      case OPT.STARTTLS: {
        if (config.tls === null) error(REP.ERR_POLICY, 'TLS is not configured on this server');
        else if (conn.tls) error(REP.ERR_INVALID, 'TLS is already active');
        else if (length !== 0) error(REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
        else {
          reply(REP.ACK);
          conn.startTls(config.tls);
          // Nothing negotiated in clear text survives the upgrade.
          state.structured = false;
          state.metaExport = null;
        }
        break;
      }
      case OPT.INFO:
      case OPT.GO: {
        const request = parseInfoRequest(data);
        if (request === null) {
          error(REP.ERR_INVALID, 'malformed INFO/GO request');
          break;
        }
        const go = option === OPT.GO;
        const fence = config.fenced?.(request.name) ?? null;
        if (fence !== null) {
          error(REP.ERR_POLICY, fence);
          break;
        }
        const opened = go ? config.exports.open(request.name, clientOf(conn)) : null;
        const info = go ? opened : config.exports.describe(request.name, clientOf(conn));
        if (info === null) {
          error(REP.ERR_UNKNOWN, `no export "${request.name}"`);
          break;
        }
        reply(REP.INFO, infoExport(info.size, transmissionFlags(info, state.structured)));
        for (const item of new Set(request.requests)) {
          if (item === INFO.NAME) reply(REP.INFO, infoString(INFO.NAME, request.name));
          else if (item === INFO.DESCRIPTION)
            reply(REP.INFO, infoString(INFO.DESCRIPTION, 'description' in info ? info.description : ''));
          else if (item === INFO.BLOCK_SIZE) reply(REP.INFO, infoBlockSize(...blockSizes(info.blockSize)));
        }
        reply(REP.ACK);
        if (go) return session(opened!, state, request.name);
        break;
      }
      case OPT.STRUCTURED_REPLY: {
        if (length !== 0) error(REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        else {
          state.structured = true;
          reply(REP.ACK);
        }
        break;
      }
      case OPT.LIST_META_CONTEXT:
      case OPT.SET_META_CONTEXT: {
        const set = option === OPT.SET_META_CONTEXT;
        // SET replaces the selection even when it fails.
        if (set) state.metaExport = null;
        if (!state.structured) {
          error(REP.ERR_INVALID, 'negotiate structured replies first');
          break;
        }
        const request = parseMetaContextRequest(data);
        const contexts = request && matchContexts(request.queries, set ? 'set' : 'list');
        if (!request || !contexts) {
          error(REP.ERR_INVALID, 'malformed metadata context request');
          break;
        }
        const fence = config.fenced?.(request.name) ?? null;
        if (fence !== null) {
          error(REP.ERR_POLICY, fence);
          break;
        }
        if (config.exports.describe(request.name) === null) {
          error(REP.ERR_UNKNOWN, `no export "${request.name}"`);
          break;
        }
        for (const context of contexts) {
          reply(REP.META_CONTEXT, metaContextReply(set ? BASE_ALLOCATION_ID : 0, context));
        }
        if (set && contexts.includes(BASE_ALLOCATION)) state.metaExport = request.name;
        reply(REP.ACK);
        break;
      }
      default:
        error(REP.ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}

/**
 * Who the client is, for writer groups (engine-backend.ts): its authenticated
 * TLS identity, else the process of a Unix-socket peer (unix-peer.ts), else
 * null (a client that cannot be told from another).
 */
function clientOf(conn: NbdConnection): string | null {
  const tlsIdentity = clientIdentity(conn.tls ? conn.stream : null);
  if (tlsIdentity !== null) return tlsIdentity;
  return conn.unixPeer !== null ? unixPeerIdentity(conn.unixPeer) : null;
}

function session(backend: NbdBackend, state: Haggle, name: string): Session {
  return {
    backend,
    structured: state.structured,
    blockStatus: state.structured && state.metaExport === name,
  };
}

/** Skips `bytes` of option data without buffering it all. */
async function skip(conn: NbdConnection, bytes: number): Promise<void> {
  let left = bytes;
  while (left > 0) {
    await conn.queue.need(1);
    left -= conn.queue.skip(left);
  }
}
