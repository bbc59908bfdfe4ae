/**
 * NBD_OPT_STARTTLS: the in-session upgrade of a plain socket to TLS (server side).
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { checkClientCertificate, pskCallback } from './client-auth';
import { NbdError } from './errors';

export interface NbdTlsOptions {
  /** PEM certificate chain and private key of the server (needed unless only PSK is used). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** CA to verify client certificates against; when given, clients must present one. */
  ca?: string | Buffer;
  /** TLS-PSK keys by identity (QEMU keys.psk): a client may authenticate with one instead of a certificate. */
  psk?: ReadonlyMap<string, Buffer>;
  /**
   * 'require' (default): every option but STARTTLS/ABORT is refused until TLS is up (FORCEDTLS).
   * 'allow': TLS is the client's choice (SELECTIVETLS with no TLS-only export). Ignored when
   * clients must authenticate (ca or psk): then TLS is always required.
   */
  mode?: 'require' | 'allow';
}

export interface TlsPolicy {
  context: tls.SecureContext;
  required: boolean;
  verifyClients: boolean;
  psk: ReadonlyMap<string, Buffer> | null;
  /** Every client authenticates, with a certificate from `ca` or a PSK. */
  authenticatesClients: boolean;
}

/** TLS 1.2 PSK suites for clients that do not speak TLS 1.3 (TLS 1.3 needs none: its suites work with PSK). */
const PSK_CIPHERS =
  'ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256';

export function tlsPolicy(options: NbdTlsOptions): TlsPolicy {
  const psk = options.psk && options.psk.size > 0 ? options.psk : null;
  if (!psk && !(options.cert && options.key))
    throw new NbdError('TLS_FAILED', 'NBD TLS needs a certificate and key, or PSK keys');
  // With a server certificate, OpenSSL (as Node uses it) does not complete a TLS 1.3 handshake with
  // an external PSK (GnuTLS clients get "insufficient credentials"): one server does one or the other.
  if (psk && options.ca)
    throw new NbdError('TLS_FAILED', 'NBD clients authenticate with x509 certificates or with PSK, not both');
  // A PSK server offers no certificate: a certificate handshake would let a client in without credentials.
  const offerCert = Boolean(options.cert && options.key) && !psk;
  const context = tls.createSecureContext({
    ...(offerCert ? { cert: options.cert, key: options.key } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    ...(psk ? { ciphers: `${tls.DEFAULT_CIPHERS}:${PSK_CIPHERS}`, dhparam: 'auto' } : {}),
    minVersion: 'TLSv1.2',
  });
  const verifyClients = options.ca !== undefined;
  const authenticatesClients = verifyClients || psk !== null;
  return {
    context,
    required: authenticatesClients || options.mode !== 'allow',
    verifyClients,
    psk,
    authenticatesClients,
  };
}

/**
 * Wraps `socket` after the NBD_REP_ACK went out. Must run in the same tick as
 * that write: the client's ClientHello must reach the TLS layer, not us.
 */
export function upgradeToTls(socket: net.Socket, policy: TlsPolicy): tls.TLSSocket {
  const secure = new tls.TLSSocket(socket, {
    isServer: true,
    secureContext: policy.context,
    // A PSK handshake carries no certificate; Node lets it through rejectUnauthorized.
    requestCert: policy.verifyClients,
    rejectUnauthorized: policy.verifyClients,
    ...(policy.psk ? { pskCallback: pskCallback(policy.psk) } : {}),
  } as tls.TLSSocketOptions);
  if (policy.verifyClients) secure.once('secure', () => checkClientCertificate(secure));
  return secure;
}
