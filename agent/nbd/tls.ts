/**
 * NBD_OPT_STARTTLS: the in-session upgrade of a plain socket to TLS (server side).
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';

export interface NbdTlsOptions {
  /** PEM certificate chain and private key of the server. */
  cert: string | Buffer;
  key: string | Buffer;
  /** CA to verify client certificates against; when given, clients must present one. */
  ca?: string | Buffer;
  /**
   * 'require' (default): every option but STARTTLS/ABORT is refused until TLS is up (FORCEDTLS).
   * 'allow': TLS is the client's choice (SELECTIVETLS with no TLS-only export).
   */
  mode?: 'require' | 'allow';
}

export interface TlsPolicy {
  context: tls.SecureContext;
  required: boolean;
  verifyClients: boolean;
}

export function tlsPolicy(options: NbdTlsOptions): TlsPolicy {
  const context = tls.createSecureContext({
    cert: options.cert,
    key: options.key,
    ...(options.ca ? { ca: options.ca } : {}),
    minVersion: 'TLSv1.2',
  });
  return { context, required: options.mode !== 'allow', verifyClients: options.ca !== undefined };
}

/**
 * Wraps `socket` after the NBD_REP_ACK went out. Must run in the same tick as
 * that write: the client's ClientHello must reach the TLS layer, not us.
 */
export function upgradeToTls(socket: net.Socket, policy: TlsPolicy): tls.TLSSocket {
  return new tls.TLSSocket(socket, {
    isServer: true,
    secureContext: policy.context,
    requestCert: policy.verifyClients,
    rejectUnauthorized: policy.verifyClients,
  });
}
