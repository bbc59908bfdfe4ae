/**
 * Who an NBD client is: the common name of an x509 client certificate the
 * configured CA verified (`cn:NAME`), or the identity of the TLS-PSK key it
 * proved it holds (`psk:NAME`). No identity means no authentication.
 * PSK keys come from a file in QEMU's keys.psk format (`identity:hexkey` per
 * line, as `psktool -u NAME -p keys.psk` writes), so one file serves both.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { NbdError } from './errors';

/** Identity a PSK handshake proved, by TLS socket (recorded by the PSK callback). */
const pskIdentities = new WeakMap<tls.TLSSocket, string>();

/** The server's PSK callback: the key for a known identity (and remember who it was), else none. */
export function pskCallback(keys: ReadonlyMap<string, Buffer>) {
  return (socket: tls.TLSSocket, identity: string): Buffer | null => {
    const key = keys.get(identity);
    if (!key) return null;
    pskIdentities.set(socket, identity);
    return key;
  };
}

/**
 * Verifies the client certificate once the handshake is done, as tls.Server
 * does for its own sockets (a TLSSocket made by hand, as STARTTLS needs, is
 * not checked by Node): a certificate the CA did not sign ends the
 * connection; a verified one sets `authorized`. A PSK client has no certificate.
 */
export function checkClientCertificate(secure: tls.TLSSocket): void {
  if (pskIdentities.has(secure)) return;
  const error = verifyError(secure);
  if (error) {
    secure.authorized = false;
    secure.destroy(new NbdError('TLS_FAILED', `client certificate refused: ${error.message}`));
  } else secure.authorized = true;
}

/** OpenSSL's verdict on the peer certificate (null: verified); fails closed if Node hides it. */
function verifyError(secure: tls.TLSSocket): Error | null {
  const handle = (secure as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  return handle?.verifyError ? handle.verifyError() : new Error('cannot verify the client certificate');
}

/** `cn:NAME` / `psk:NAME` of an authenticated TLS client; null for a plain or unauthenticated stream. */
export function clientIdentity(stream: net.Socket | tls.TLSSocket | null): string | null {
  if (!stream || !('encrypted' in stream) || !stream.encrypted) return null;
  const secure = stream as tls.TLSSocket;
  const psk = pskIdentities.get(secure);
  if (psk !== undefined) return `psk:${psk}`;
  // Checked here too, not only on 'secure': an option may be read before that event has run.
  if (!secure.authorized && verifyError(secure) !== null) return null;
  const cn = secure.getPeerCertificate()?.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return typeof name === 'string' && name !== '' ? `cn:${name}` : null;
}

/** Parses QEMU keys.psk text: `identity:hexkey` lines; blank lines and `#` comments skipped. */
export function parsePskKeys(text: string, source = 'PSK file'): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = line.lastIndexOf(':');
    const identity = line.slice(0, at);
    const hex = line.slice(at + 1);
    if (at <= 0 || !/^([0-9a-fA-F]{2})+$/.test(hex))
      throw new NbdError('INVALID_PSK_FILE', `${source} line ${i + 1}: expected identity:hexkey`);
    if (hex.length < 32)
      throw new NbdError('INVALID_PSK_FILE', `${source} line ${i + 1}: a key needs at least 16 bytes`);
    if (keys.has(identity))
      throw new NbdError('INVALID_PSK_FILE', `${source} line ${i + 1}: identity "${identity}" twice`);
    keys.set(identity, Buffer.from(hex, 'hex'));
  });
  return keys;
}

export function loadPskKeys(file: string): Map<string, Buffer> {
  const keys = parsePskKeys(fs.readFileSync(file, 'utf8'), file);
  if (keys.size === 0) throw new NbdError('INVALID_PSK_FILE', `${file}: no keys`);
  return keys;
}
