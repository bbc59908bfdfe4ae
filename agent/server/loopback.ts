/** Loopback addresses: the only ones that may be served without a token (agent) or without TLS (NBD). */
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/i;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}
